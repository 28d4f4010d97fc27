#!/usr/bin/env bash
# The suite against an AddressSanitizer + UndefinedBehaviorSanitizer build of the C core,
# then a short fuzz run of the core's bindings (tests/fuzz_core.py) and of the wire parser.
#
#   scripts/sanitize.sh [--clang] [--portable] [--fuzz-seconds N] [--no-fuzz] [pytest arguments...]
#
# The core is built with -fsanitize=address,undefined,float-cast-overflow, -fno-wrapv (which
# undoes the -fwrapv in Python's CFLAGS) and -fno-sanitize-recover=all into a private
# temporary folder: the work tree's own build is not touched, and the run checks that the
# sanitized library is the one every test process loads. The fl tests are left out (torch's
# and matplotlib's C++ extensions trip ASan's interceptors), and so are the tests that build
# C programs of their own (test_c_builds, test_ctgrind), which need no sanitized core.
# --clang builds with clang (installed with apt-get when missing and run as root), with
# clang's libFuzzer coverage so that atheris sees inside the C code. Nothing is written
# into the repository: fuzz inputs and crashes go to the temporary folder (kept on failure).
# --portable builds the core as on a non-x86 machine (-DSECAGG_NO_SIMD -DSECAGG_NO_INT128:
# no SIMD paths, no AES, the portable 64x64 -> 128 multiply) and checks that it is.
set -euo pipefail
cd "$(dirname "$0")/.."

compiler=gcc
portable=0
fuzz_seconds=30
pytest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --clang) compiler=clang ;;
        --portable) portable=1 ;;
        --fuzz-seconds) fuzz_seconds=$2; shift ;;
        --no-fuzz) fuzz_seconds=0 ;;
        *) pytest_args+=("$1") ;;
    esac
    shift
done

scripts/bootstrap.sh
py=.venv/bin/python

if [ "$compiler" = clang ] && ! command -v clang >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "sanitize: installing clang with apt-get" >&2
        apt-get install -y -qq clang >/dev/null || { apt-get update -qq && apt-get install -y -qq clang >/dev/null; }
    else
        echo "sanitize: --clang needs clang on PATH (apt-get install clang)" >&2
        exit 2
    fi
fi

work=$(mktemp -d /tmp/secagg-sanitize.XXXXXX)
keep=0
trap '[ "$keep" = 1 ] && echo "sanitize: kept $work" >&2 || rm -rf "$work"' EXIT

env_build=(SECAGG_SANITIZE=1)
if [ "$compiler" = clang ]; then
    # A shared ASan runtime, preloaded below: the extension is loaded by a Python built without it.
    env_build+=(CC=clang LDSHARED="clang -shared" LDFLAGS="-shared-libasan" SECAGG_SANITIZE_FUZZER=1)
    runtime=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
else
    env_build+=(CC=gcc LDSHARED="gcc -shared")
    runtime=$(gcc -print-file-name=libasan.so)
fi
if [ "$portable" = 1 ]; then
    env_build+=(CFLAGS="-DSECAGG_NO_SIMD -DSECAGG_NO_INT128")
fi
[ -f "$runtime" ] || { echo "sanitize: no ASan runtime at $runtime" >&2; exit 1; }

echo "sanitize: building the core with $compiler, ASan + UBSan, into $work/lib" >&2
env "${env_build[@]}" "$py" setup.py -q build_ext --build-lib "$work/lib" --build-temp "$work/obj" \
    --force >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
# The Python sources beside the sanitized library (every subpackage, no other build of the core).
tar --exclude='*.so' --exclude='__pycache__' -cf - secagg | tar -xf - -C "$work/lib"
so=$(find "$work/lib/secagg" -name '_csecagg*.so' | head -n1)
nm -D "$so" >"$work/symbols"
# UBSan's signed-overflow and float-cast handlers are the ones -fwrapv and gcc's default omit.
for sym in __asan_report_load8 __ubsan_handle_add_overflow __ubsan_handle_float_cast_overflow; do
    grep -q "$sym" "$work/symbols" || { echo "sanitize: $so lacks $sym: not the build asked for" >&2; exit 1; }
done

export PYTHONPATH="$work/lib" LD_PRELOAD="$runtime" SECAGG_EXPECT_CORE="$so"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# From outside the work tree: python -c puts the current directory first on the path.
loaded=$(cd "$work" && "$OLDPWD/$py" -c 'import secagg._csecagg as c; print(c.__file__)')
[ "$loaded" = "$so" ] || { echo "sanitize: loaded $loaded, not the sanitized $so" >&2; exit 1; }
simd=$(cd "$work" && "$OLDPWD/$py" -c 'from secagg import bindings; print(int(bindings.SIMD_BUILT))')
[ "$simd" = $((1 - portable)) ] || { echo "sanitize: SIMD_BUILT=$simd, not the build asked for" >&2; exit 1; }

tests=$(ls tests/test_*.py | grep -v -e test_fl_ -e test_c_builds -e test_ctgrind)
echo "sanitize: running the suite against $so" >&2
# .venv/bin/pytest, not python -m pytest, which would put the work tree first on the path.
# tests/test_c_api.py checks SECAGG_EXPECT_CORE in every worker.
.venv/bin/pytest -q -p no:cacheprovider -n 2 $tests "${pytest_args[@]}" || { keep=1; exit 1; }

if [ "$fuzz_seconds" -gt 0 ]; then
    "$py" -c "import atheris" 2>/dev/null || "$py" -m pip install -q --disable-pip-version-check "atheris>=2.3"
    for harness in fuzz_core:corpus_core fuzz_wire:corpus; do
        name=${harness%%:*} seeds=tests/${harness##*:}
        mkdir -p "$work/$name"
        echo "sanitize: fuzzing $name for ${fuzz_seconds}s" >&2
        "$py" "tests/$name.py" -max_total_time="$fuzz_seconds" -artifact_prefix="$work/$name-" \
            -print_final_stats=1 "$work/$name" "$seeds" >"$work/$name.log" 2>&1 \
            || { tail -n 40 "$work/$name.log"; keep=1; exit 1; }
        grep -E "^(stat::number_of_executed_units|Done)" "$work/$name.log" >&2 || true
    done
fi
echo "sanitize: no sanitizer report, no fuzz crash ($compiler$([ "$portable" = 1 ] && echo ", portable"))" >&2
