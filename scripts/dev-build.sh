#!/usr/bin/env bash
# Rebuilds the C core into secagg/ for development. Serialised by a lock, and the
# new library is moved into place atomically, so processes that have the old one
# loaded keep running. Extra arguments go to build_ext (e.g. --force).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
exec 9>/tmp/secagg-dev-build.lock
flock 9
.venv/bin/python setup.py -q build_ext --build-lib "$tmp" --build-temp "$tmp/obj" "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
so=$(find "$tmp/secagg" -name '_csecagg*.so' | head -n1)
cp "$so" "secagg/.$(basename "$so").new"
mv -f "secagg/.$(basename "$so").new" "secagg/$(basename "$so")"
