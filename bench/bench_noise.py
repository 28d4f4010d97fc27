"""Exact integer noise and the Hadamard transform, each beside a baseline in the same run.

Baselines are for speed only and never used for noise: numpy's float normal
generator (what an inexact implementation would call), a numpy FWHT, and the
samplers of another revision (``NOISE_BASELINE_REF``, default ``main``): its
csrc/noise.c is built with this tree's other C files into a private cffi module in
a temporary folder, so old and new run in the same process, one after the other.
Set ``NOISE_BASELINE_REF=`` (empty) to skip the baseline.

Run (CPU time, as the machine is shared):
    .venv/bin/pytest bench/bench_noise.py --benchmark-only --benchmark-group-by=group \\
        --benchmark-min-rounds=3 --benchmark-max-time=1 --benchmark-timer=time.process_time
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from secagg import bindings
from secagg.ddp import noise

M = 1_000_000
M_SKELLAM = 10_000
ROOT = Path(__file__).resolve().parents[1]
SEED = bytes(range(32))  # speed only: the noise is discarded


def _build_baseline(ref: str, where: Path):
    """The cffi module of ``ref``'s csrc/noise.c with this tree's other C files, or None."""
    import cffi

    try:
        old = subprocess.run(["git", "show", f"{ref}:csrc/noise.c"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    src = where / "csrc"
    src.mkdir()
    for p in (ROOT / "csrc").rglob("*"):
        if p.is_file() and p.suffix in (".c", ".h"):
            dst = src / p.relative_to(ROOT / "csrc")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(p.read_text())
    (src / "noise.c").write_text(old)
    ffi = cffi.FFI()
    ffi.cdef((src / "cdef" / "noise.h").read_text())
    ffi.set_source("_noise_baseline", '#include "secagg.h"',
                   sources=[str(p) for p in sorted(src.glob("*.c"))], include_dirs=[str(src)],
                   extra_compile_args=["-std=c11", "-O3", "-fno-strict-aliasing"])
    ffi.compile(tmpdir=str(where))
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module("_noise_baseline")
    finally:
        sys.path.remove(str(where))


@pytest.fixture(scope="module")
def baseline():
    ref = os.environ.get("NOISE_BASELINE_REF", "main")
    if not ref:
        pytest.skip("NOISE_BASELINE_REF is empty")
    with tempfile.TemporaryDirectory(prefix="noise-baseline-") as tmp:
        mod = _build_baseline(ref, Path(tmp))
        if mod is None:
            pytest.skip(f"cannot read {ref}:csrc/noise.c")
        yield mod


def _caller(mod, name: str) -> Callable[[int, Fraction], np.ndarray]:
    """m values of secagg_noise_<name>(num, den) from module ``mod`` (no argument checks)."""
    def call(m: int, value: Fraction) -> np.ndarray:
        out = np.empty(m, dtype=np.int64)
        rc = getattr(mod.lib, f"secagg_noise_{name}")(
            mod.ffi.cast("int64_t *", out.ctypes.data), m, value.numerator, value.denominator, SEED)
        assert rc == 0
        return out
    return call


DG = [Fraction(1, 4), Fraction(1), Fraction(1000), Fraction(10**6), Fraction(2**40, 3)]
SK = [Fraction(1, 2), Fraction(10), Fraction(100), Fraction(4096)]


@pytest.mark.benchmark(group="noise m=1e6")
@pytest.mark.parametrize("s2", DG, ids=str)
def test_dgauss(benchmark, s2):
    x = benchmark(noise.discrete_gaussian, M, s2)
    assert len(x) == M


@pytest.mark.benchmark(group="noise m=1e6, baseline")
@pytest.mark.parametrize("s2", DG, ids=str)
def test_dgauss_baseline(benchmark, baseline, s2):
    x = benchmark(_caller(baseline, "dgauss"), M, s2)
    assert len(x) == M


@pytest.mark.benchmark(group="noise m=1e6")
def test_numpy_float_normal_baseline(benchmark):
    rng = np.random.default_rng()
    x = benchmark(rng.normal, 0.0, 31.6, M)
    assert len(x) == M


@pytest.mark.benchmark(group="skellam m=1e4")
@pytest.mark.parametrize("mu", SK, ids=str)
def test_skellam(benchmark, mu):
    x = benchmark(noise.skellam, M_SKELLAM, mu)
    assert len(x) == M_SKELLAM


@pytest.mark.benchmark(group="skellam m=1e4, baseline")
@pytest.mark.parametrize("mu", SK, ids=str)
def test_skellam_baseline(benchmark, baseline, mu):
    x = benchmark.pedantic(_caller(baseline, "skellam"), args=(M_SKELLAM, mu), rounds=1
                           if mu > 1000 else 3)
    assert len(x) == M_SKELLAM


@pytest.mark.benchmark(group="skellam m=1e6")
@pytest.mark.parametrize("mu", [Fraction(1, 2), Fraction(100), Fraction(4096)], ids=str)
def test_skellam_1e6(benchmark, mu):
    x = benchmark.pedantic(noise.skellam, args=(M, mu), rounds=1 if mu > 1000 else 3)
    assert len(x) == M


def _numpy_fwht(x: np.ndarray) -> np.ndarray:
    n = len(x)
    h = 1
    x = x.copy()
    while h < n:
        y = x.reshape(-1, 2, h)
        a, b = y[:, 0, :].copy(), y[:, 1, :]
        y[:, 0, :] += b
        y[:, 1, :] = a - b
        h *= 2
    return x


@pytest.mark.benchmark(group="fwht n=2^20")
def test_fwht_c(benchmark):
    x = np.random.default_rng(0).standard_normal(2**20)
    benchmark(bindings.secagg_hadamard_fwht, x)


@pytest.mark.benchmark(group="fwht n=2^20")
def test_fwht_numpy(benchmark):
    x = np.random.default_rng(0).standard_normal(2**20)
    y = benchmark(_numpy_fwht, x)
    assert len(y) == len(x)
