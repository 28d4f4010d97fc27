"""Constant time, checked: no branch or memory index may depend on a secret.

``tests/c/ctgrind.c`` marks the secrets of every kernel (Shamir's polynomial and
shares, fixed-point inputs and rounding seed, mask keys and the vectors they mask)
as undefined for valgrind's memcheck, which reports each conditional jump on them.
It is built by each compiler at -O0 (where a ``cond ? a : b`` in the source stays a
branch) and -O3, portable, and at -O2 with the SIMD paths valgrind can run. A
canary with a deliberate secret branch must be reported, so the check can fail.
Skipped without valgrind or its memcheck.h.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
COMPILERS = [cc for cc in ("gcc", "clang") if shutil.which(cc)]
HAVE_VALGRIND = shutil.which("valgrind") is not None and any(
    (Path(d) / "valgrind" / "memcheck.h").exists() for d in ("/usr/include", "/usr/local/include")
)
pytestmark = pytest.mark.skipif(not (HAVE_VALGRIND and COMPILERS),
                                reason="needs valgrind (with memcheck.h) and gcc or clang")
# Portable builds are cheap; one SIMD build (the intrinsics headers are slow to compile).
BUILDS = [(cc, opt, False) for cc in COMPILERS for opt in ("-O0", "-O3")] + [
    (COMPILERS[0], "-O2", True)] if COMPILERS else []


def _build(cc: str, opt: str, simd: bool, out: Path) -> Path:
    exe = out / f"ctgrind-{cc}{opt}{'-simd' if simd else ''}"
    flags = ["-std=c11", opt, "-gdwarf-4", "-DSECAGG_CTGRIND", f"-I{CSRC}"]
    if not simd:
        flags.append("-DSECAGG_NO_SIMD")
    subprocess.run([cc, *flags, "-o", str(exe), str(ROOT / "tests" / "c" / "ctgrind.c"),
                    *sorted(map(str, CSRC.glob("*.c"))), "-lm"], check=True, timeout=300)
    return exe


def _memcheck(exe: Path, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(["valgrind", "-q", "--error-exitcode=99", str(exe), mode],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("cc", "opt", "simd"), BUILDS)
def test_no_branch_depends_on_a_secret(cc, opt, simd, tmp_path):
    proc = _memcheck(_build(cc, opt, simd, tmp_path), "core")
    assert "depends on uninitialised" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr


def test_the_check_reports_a_secret_dependent_branch(tmp_path):
    proc = _memcheck(_build(COMPILERS[0], "-O0", False, tmp_path), "canary")  # ~1 s to build
    assert proc.returncode == 99
    assert "Conditional jump or move depends on uninitialised value" in proc.stderr
