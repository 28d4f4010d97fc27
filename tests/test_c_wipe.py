"""No key or rounding keystream is left on the C stack after a kernel returns.

``tests/c/wipe_probe.c`` scrubs the stack, runs one kernel, then searches the dead
stack below main for the key (or a block of the fixed-point rounding keystream).
Every kernel must leave none, in the SIMD and the portable build; and the same
probe linked with a ``secagg_memzero`` that does nothing must find a leftover, so
the probe can fail. gcc on x86-64 Linux only: reading dead stack is outside the C
standard, and this is where the probe was checked to see what it should.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
MODES = ["chacha20", "aes256ctr", "mask-chacha20", "mask-aes256ctr", "fixedpoint",
         *(f"chacha20-{i}" for i in range(4)), *(f"aes256ctr-{i}" for i in range(3))]
NOT_AVAILABLE = 2  # the probe's exit status when this build or CPU lacks the kernel

pytestmark = pytest.mark.skipif(
    not shutil.which("gcc") or platform.machine() != "x86_64" or platform.system() != "Linux",
    reason="the stack probe is checked with gcc on x86-64 Linux only",
)


def _build(out: Path, name: str, extra: list[str], noop_wipe: bool = False) -> Path:
    sources = sorted(str(p) for p in CSRC.glob("*.c"))
    if noop_wipe:
        stub = out / "noop_memzero.c"
        stub.write_text("#include <stddef.h>\nvoid secagg_memzero(void *p, size_t n) { (void)p; (void)n; }\n")
        sources = [s for s in sources if not s.endswith("memzero.c")] + [str(stub)]
        # secagg_stack_burn lives in memzero.c too: a probe without any wipe at all.
        stub.write_text(stub.read_text() + "void secagg_stack_burn(void) {}\n")
    exe = out / name
    subprocess.run(["gcc", "-std=c11", "-O2", f"-I{CSRC}", *extra, "-o", str(exe),
                    str(ROOT / "tests" / "c" / "wipe_probe.c"), *sources, "-lm"],
                   check=True, timeout=300)
    return exe


def _probe(exe: Path, mode: str) -> subprocess.CompletedProcess:
    # Eager binding: the lazy PLT resolver saves every vector register on the stack,
    # which is the dynamic linker's doing, not the core's.
    return subprocess.run([str(exe), mode], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LD_BIND_NOW": "1"})


@pytest.mark.parametrize("config", [[], ["-DSECAGG_NO_SIMD"]], ids=["simd", "portable"])
def test_no_kernel_leaves_a_secret_on_the_stack(config, tmp_path):
    exe = _build(tmp_path, "probe", config)
    ran = []
    for mode in MODES:
        proc = _probe(exe, mode)
        if proc.returncode == NOT_AVAILABLE:
            continue
        assert proc.returncode == 0, proc.stdout
        ran.append(mode)
    assert {"chacha20", "mask-chacha20", "fixedpoint", "chacha20-0"} <= set(ran)


def test_the_probe_finds_what_an_unwiped_kernel_leaves(tmp_path):
    exe = _build(tmp_path, "probe-noop", [], noop_wipe=True)
    leaks = [m for m in MODES if _probe(exe, m).returncode == 1]
    assert "fixedpoint" in leaks and "chacha20" in leaks, leaks
