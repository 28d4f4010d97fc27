#!/usr/bin/env bash
# The main job: builds the environment if needed, then trains the `hospitals` task with
# FedAvg over SecAgg+ and central DP, printing its accuracy beside the centralised and
# plaintext-FedAvg baselines and the epsilon spent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m fl train --task hospitals "$@"
