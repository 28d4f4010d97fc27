"""Shamir speed: split one secret n=1000, t=500 (goal <= 20 ms); reconstruct from 500 (<= 1 ms).

Run: .venv/bin/pytest bench/bench_shamir.py --benchmark-only
"""

from __future__ import annotations

import os

import pytest

from secagg import shamir

N, T = 1000, 500


@pytest.fixture(scope="module")
def sharing():
    secret = os.urandom(32)
    xs = list(range(1, N + 1))
    return secret, xs, shamir.split(secret, xs, T)


def test_split_n1000_t500(benchmark, sharing):
    secret, xs, _ = sharing
    shares = benchmark(shamir.split, secret, xs, T)
    assert len(shares) == N


def test_reconstruct_500_shared_lagrange(benchmark, sharing):
    secret, xs, shares = sharing
    r = shamir.Reconstructor(xs[N - T :])
    assert benchmark(r.reconstruct, shares[N - T :]) == secret


def test_lagrange_coefficients_500(benchmark, sharing):
    _, xs, _ = sharing
    r = benchmark(shamir.Reconstructor, xs[:T])
    assert len(r.xs) == T


def test_reconstruct_500_without_sharing(benchmark, sharing):
    secret, xs, shares = sharing
    assert benchmark(shamir.reconstruct, xs, shares, T) == secret
