#!/usr/bin/env bash
# The main job: builds the environment if needed, then trains the `hospitals` task with
# patient-level DP-SGD across 20 hospitals: each hospital adds its share of exact discrete
# Gaussian noise to its clipped gradient sum inside secure aggregation (distributed DP), so
# no party sees a gradient or a noiseless sum. Prints accuracy beside the centralised
# non-private model and centralised DP-SGD at the same epsilon, the epsilon (delta 1e-5) and
# the trust model. Two hospitals vanish every step; two more may collude with the server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m fl train --task hospitals --level record --dp distributed \
    --max-colluders 2 --dropout 0.1 "$@"
