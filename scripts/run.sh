#!/usr/bin/env bash
# The main job: builds the environment if needed, then runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/secagg bench prg "$@"
