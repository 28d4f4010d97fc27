#!/usr/bin/env bash
# The test suite: builds the environment if needed, lints, type-checks (mypy --strict), then runs
# pytest on both cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/ruff check secagg fl tests bench csrc examples
.venv/bin/python -m mypy --strict secagg
exec .venv/bin/python -m pytest -n 2 "$@"
