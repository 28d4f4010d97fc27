"""Exact integer samplers and the Hadamard transform: distribution tests against the pmf.

Each sampler is checked with a chi-square test against its analytic pmf for many
parameters (seeded, so deterministic; threshold at p ~ 1e-6), and each test also
checks that the same samples *fail* against a slightly wrong pmf, so the test has
the power to catch a wrong variance or a biased acceptance step.
"""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction

import numpy as np
import pytest

from secagg import bindings
from secagg.ddp import noise
from secagg.errors import SecAggTypeError, SecAggValueError


def _seed(*params: object) -> bytes:
    return hashlib.sha256(repr(params).encode()).digest()


def _chi2_threshold(dof: int, z: float = 4.75) -> float:
    """Upper critical value of chi-square(dof) at about p = 1e-6 (Wilson-Hilferty)."""
    c = 2.0 / (9.0 * dof)
    return dof * (1.0 - c + z * math.sqrt(c)) ** 3


def _chi2(samples: np.ndarray, support: np.ndarray, pmf: np.ndarray) -> tuple[float, int]:
    """Chi-square statistic of integer samples against pmf on support (tails merged to >= 20)."""
    n = len(samples)
    pmf = pmf / pmf.sum()
    lo = int(support[0])
    counts = np.bincount(np.clip(samples - lo, 0, len(support) - 1), minlength=len(support))
    assert counts.sum() == n
    # Merge cells left to right until each expects >= 20 draws; the last keeps the rest.
    obs, exp = [], []
    o = e = 0.0
    for c, p in zip(counts, pmf, strict=True):
        o += c
        e += p * n
        if e >= 20:
            obs.append(o)
            exp.append(e)
            o = e = 0.0
    obs[-1] += o
    exp[-1] += e
    obs_a, exp_a = np.array(obs), np.array(exp)
    return float(((obs_a - exp_a) ** 2 / exp_a).sum()), len(obs) - 1


def _assert_fits(samples, support, pmf, wrong_pmf):
    stat, dof = _chi2(samples, support, pmf)
    assert stat < _chi2_threshold(dof), f"chi2 {stat:.1f} with {dof} dof"
    bad, bad_dof = _chi2(samples, support, wrong_pmf)
    assert bad > _chi2_threshold(bad_dof), "the test cannot tell a wrong pmf apart"


def _dg_pmf(support: np.ndarray, s2: float) -> np.ndarray:
    return np.exp(-(support.astype(np.float64) ** 2) / (2.0 * s2))


def _poisson_pmf(support: np.ndarray, mu: float) -> np.ndarray:
    k = support.astype(np.float64)
    if mu == 0:
        return (k == 0).astype(np.float64)
    return np.exp(-mu + k * math.log(mu) - np.array([math.lgamma(v + 1) for v in k]))


class TestBernoulliExp:
    @pytest.mark.parametrize("num,den", [(1, 3), (1, 1), (5, 2), (7, 1), (2**61, 2**62), (3, 10**9)])
    def test_frequency_is_exp_minus_gamma(self, num, den):
        n = 200_000
        bits = bindings.secagg_noise_bernoulli_exp(n, num, den, _seed("bexp", num, den))
        p = math.exp(-num / den)
        z = (bits.sum() - n * p) / math.sqrt(n * p * (1 - p))
        assert abs(z) < 5, z
        # power: a sampler off by 5% in probability would be caught
        z_wrong = (bits.sum() - n * p * 1.05) / math.sqrt(n * p * (1 - p))
        assert abs(z_wrong) > 5 or p < 0.01

    def test_gamma_zero_is_always_one(self):
        assert bindings.secagg_noise_bernoulli_exp(1000, 0, 7, _seed("b0")).all()


class TestDiscreteLaplace:
    @pytest.mark.parametrize("t", [1, 3, 40])
    def test_matches_pmf(self, t):
        x = bindings.secagg_noise_dlaplace(100_000, t, _seed("dlap", t))
        support = np.arange(-40 * t, 40 * t + 1)
        pmf = np.exp(-np.abs(support) / t)
        wrong = np.exp(-np.abs(support) / (t * 1.1))
        _assert_fits(x, support, pmf, wrong)


class TestDiscreteGaussian:
    @pytest.mark.parametrize(
        "s2", [Fraction(1, 4), Fraction(1), Fraction(7, 3), Fraction(10), Fraction(1234, 7), 5000,
               Fraction(2**40, 3)]
    )
    def test_matches_pmf(self, s2):
        n = 100_000
        x = noise.discrete_gaussian(n, s2, seed=_seed("dg", s2))
        sigma = math.sqrt(s2)
        half = int(10 * sigma) + 3
        if half > 4000:  # bin wide supports: compare counts per bin of the rescaled variable
            width = half // 2000
            support = np.arange(-half, half + 1)
            cells = (x + half) // width
            pmf = np.add.reduceat(_dg_pmf(support, float(s2)), np.arange(0, len(support), width))
            wrong = np.add.reduceat(_dg_pmf(support, float(s2) * 1.1),
                                    np.arange(0, len(support), width))
            _assert_fits(cells, np.arange(len(pmf)), pmf, wrong)
            return
        support = np.arange(-half, half + 1)
        _assert_fits(x, support, _dg_pmf(support, float(s2)), _dg_pmf(support, float(s2) * 1.1))

    def test_variance_is_the_discrete_gaussians(self):
        # For sigma^2 = 1/4 the variance is well below sigma^2: a rounded continuous
        # Gaussian (variance ~ 1/4 + 1/12) would fail this.
        s2 = 0.25
        support = np.arange(-20, 21)
        pmf = _dg_pmf(support, s2)
        pmf /= pmf.sum()
        var = float((support**2 * pmf).sum())
        x = noise.discrete_gaussian(200_000, Fraction(1, 4), seed=_seed("dgvar"))
        assert abs(x.var() - var) < 5 * math.sqrt(2 * var**2 / 200_000) + 0.01
        assert var < 0.23

    def test_seeded_is_deterministic_and_seeds_differ(self):
        a = noise.discrete_gaussian(1000, 100, seed=bytes(32))
        b = noise.discrete_gaussian(1000, 100, seed=bytes(32))
        c = noise.discrete_gaussian(1000, 100, seed=bytes([1]) + bytes(31))
        assert np.array_equal(a, b) and not np.array_equal(a, c)
        assert not np.array_equal(noise.discrete_gaussian(1000, 100), a)  # os.urandom seed

    @pytest.mark.parametrize(
        "num,den", [(0, 1), (1, 0), (1, 2**16 + 1), (2**40 + 1, 1), (2**41 + 1, 2)]
    )
    def test_refuses_parameters_out_of_range(self, num, den):
        with pytest.raises(SecAggValueError):
            bindings.secagg_noise_dgauss(10, num, den, bytes(32))

    def test_refuses_floats_and_bad_seeds(self):
        with pytest.raises(SecAggTypeError):
            noise.discrete_gaussian(10, 2.5)
        with pytest.raises(SecAggValueError):
            noise.discrete_gaussian(10, 2, seed=bytes(31))
        with pytest.raises(SecAggTypeError):
            noise.discrete_gaussian(10, 2, seed="x" * 32)
        with pytest.raises(SecAggValueError):
            noise.discrete_gaussian(-1, 2)


class TestPoissonAndSkellam:
    @pytest.mark.parametrize("mu", [Fraction(0), Fraction(3, 10), Fraction(1), Fraction(9, 2), 20])
    def test_poisson_matches_pmf(self, mu):
        x = noise.poisson(50_000, mu, seed=_seed("poi", mu))
        support = np.arange(0, int(mu + 12 * math.sqrt(mu) + 15))
        if mu == 0:
            assert not x.any()
            return
        _assert_fits(x, support, _poisson_pmf(support, float(mu)),
                     _poisson_pmf(support, float(mu) * 1.1))

    @pytest.mark.parametrize("mu", [Fraction(1, 2), Fraction(3), Fraction(25, 2)])
    def test_skellam_matches_pmf(self, mu):
        x = noise.skellam(50_000, mu, seed=_seed("sk", mu))
        k = np.arange(0, int(mu + 12 * math.sqrt(mu) + 15))

        def pmf(m):
            p = _poisson_pmf(k, m)
            return np.convolve(p, p[::-1])  # support -(K-1) .. K-1

        support = np.arange(-(len(k) - 1), len(k))
        _assert_fits(x, support, pmf(float(mu)), pmf(float(mu) * 1.1))

    def test_refuses_parameters_out_of_range(self):
        with pytest.raises(SecAggValueError):
            bindings.secagg_noise_skellam(10, 2**24 + 1, 1, bytes(32))
        with pytest.raises(SecAggValueError):
            bindings.secagg_noise_skellam(10, 1, 2**32 + 1, bytes(32))


class TestRationalAtLeast:
    def test_rounds_up_to_the_grid(self):
        assert noise.rational_at_least(0.3, 2**16) == Fraction(19661, 2**16)
        assert noise.rational_at_least(2.0, 2**16) == 2
        assert noise.rational_at_least(0.3, 2**16) >= Fraction(0.3)


class TestHadamard:
    @pytest.mark.parametrize("n", [1, 2, 8, 256])
    def test_matches_the_sylvester_matrix(self, n):
        h = np.array([[1.0]])
        while h.shape[0] < n:
            h = np.block([[h, h], [h, -h]])
        x = np.random.default_rng(n).standard_normal(n)
        y = x.copy()
        bindings.secagg_hadamard_fwht(y)
        np.testing.assert_allclose(y, h @ x, atol=1e-9)
        bindings.secagg_hadamard_fwht(y)
        np.testing.assert_allclose(y, n * x, atol=1e-9)

    @pytest.mark.parametrize("n", [0, 3, 12])
    def test_refuses_lengths_that_are_not_powers_of_two(self, n):
        with pytest.raises(SecAggValueError):
            bindings.secagg_hadamard_fwht(np.zeros(n))

    def test_refuses_wrong_dtype_and_readonly(self):
        with pytest.raises(SecAggTypeError):
            bindings.secagg_hadamard_fwht(np.zeros(4, dtype=np.float32))
        x = np.zeros(4)
        x.flags.writeable = False
        with pytest.raises(SecAggValueError):
            bindings.secagg_hadamard_fwht(x)
