"""Exact integer noise and the Hadamard transform, each beside a baseline in the same run.

Baselines are for speed only and never used for noise: numpy's float normal
generator (what an inexact implementation would call) and a numpy FWHT.

Run: .venv/bin/pytest bench/bench_noise.py --benchmark-only --benchmark-group-by=group \
         --benchmark-min-rounds=3 --benchmark-max-time=1
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from secagg import bindings
from secagg.ddp import noise

M = 1_000_000
M_SKELLAM = 10_000


@pytest.mark.benchmark(group="noise m=1e6")
@pytest.mark.parametrize("s2", [Fraction(1), Fraction(1000), Fraction(10**6)])
def test_dgauss(benchmark, s2):
    x = benchmark(noise.discrete_gaussian, M, s2)
    assert len(x) == M


@pytest.mark.benchmark(group="noise m=1e6")
def test_numpy_float_normal_baseline(benchmark):
    rng = np.random.default_rng()
    x = benchmark(rng.normal, 0.0, 31.6, M)
    assert len(x) == M


@pytest.mark.benchmark(group="skellam m=1e4")
@pytest.mark.parametrize("mu", [Fraction(1, 2), Fraction(10), Fraction(100)])
def test_skellam(benchmark, mu):
    x = benchmark(noise.skellam, M_SKELLAM, mu)
    assert len(x) == M_SKELLAM


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
