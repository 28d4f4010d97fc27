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


def _assert_fits_binned(samples, support, pmf, wrong_pmf, cells=300):
    """_assert_fits after grouping a wide support into about ``cells`` equal-width cells."""
    width = max(1, len(support) // cells)
    starts = np.arange(0, len(support), width)
    cell_of = (np.clip(samples - int(support[0]), 0, len(support) - 1)) // width
    _assert_fits(cell_of, np.arange(len(starts)), np.add.reduceat(pmf, starts),
                 np.add.reduceat(wrong_pmf, starts))


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

    @pytest.mark.parametrize("t", [2**30 - 1, 2**30, 2**32])
    def test_large_scales_match_per_cell(self, t):
        # The 32-bit and 64-bit paths meet at t = 2^30. Cells of width t/64: the mass of
        # [c w, (c+1) w) is exp(-c w / t) (1 - exp(-w / t)) / (1 - exp(-1/t)) exactly.
        x = bindings.secagg_noise_dlaplace(100_000, t, _seed("dlap-big", t))
        w = t // 64
        cells = np.arange(-40 * 64, 40 * 64)

        def pmf(scale):
            lo = cells.astype(np.float64) * w
            return np.exp(-np.abs(np.where(lo < 0, lo + w - 1, lo)) / scale)

        _assert_fits(np.floor_divide(x, w), cells, pmf(t), pmf(t * 1.1))


class TestDiscreteGaussian:
    @pytest.mark.parametrize(
        "s2", [Fraction(1, 4), Fraction(1), Fraction(169, 100), Fraction(7, 3),
               Fraction(6), Fraction(10), Fraction(1234, 7), 5000, 10**6, Fraction(2**40, 3), 2**40]
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

    def test_the_smallest_variance_gives_zeros(self):
        # sigma^2 = 2^-16: P(x != 0) = 2 exp(-2^15) / Z, so any nonzero value is a bug.
        assert not noise.discrete_gaussian(100_000, Fraction(1, 2**16), seed=_seed("dg-tiny")).any()

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

    # The rejection sampler (mu >= 6): both sides of its switch, each proposal ratio
    # n = 2^s from 4 to 2^12, fractional modes, denominators up to 2^32 (factors past
    # 64 bits: the last case), and the largest mu allowed.
    @pytest.mark.parametrize("mu", [
        Fraction(59, 10), Fraction(6), Fraction(61, 10), Fraction(7), Fraction(47, 3), Fraction(16),
        Fraction(100), Fraction(2**40 + 12345, 2**32), Fraction(4095, 4), Fraction(4096),
        Fraction(10**5 + 1, 7), Fraction(10**6), Fraction(2**24), Fraction(2**56 - 5, 2**32),
    ])
    def test_poisson_rejection_sampler_matches_pmf(self, mu):
        n = 40_000 if mu <= 10**6 else 20_000
        x = noise.poisson(n, mu, seed=_seed("poi-rej", mu))
        sd = math.sqrt(mu)
        lo = max(0, int(mu - 9 * sd) - 5)
        support = np.arange(lo, int(mu + 9 * sd) + 15)
        assert x.min() >= lo and x.max() < support[-1]
        # "wrong": the right mean but 15% too much variance (a Poisson(mu) shifted by
        # a Skellam(0.075 mu, 0.075 mu), approximately a wider normal), which a sampler
        # with a slightly wrong acceptance test produces.
        wide = np.exp(-((support - float(mu)) ** 2) / (2 * 1.15 * float(mu)))
        _assert_fits_binned(x, support, _poisson_pmf(support, float(mu)), wide)

    def test_poisson_mean_and_variance_are_mu(self):
        # Exact moments at 200k draws: a sampler off by 1% in variance fails.
        mu = Fraction(3001, 3)
        x = noise.poisson(200_000, mu, seed=_seed("poi-moments"))
        m = float(mu)
        assert abs(x.mean() - m) < 5 * math.sqrt(m / 200_000)
        assert abs(x.var() / m - 1) < 5 * math.sqrt(2 / 200_000)

    @pytest.mark.parametrize("mu", [Fraction(1, 2), Fraction(3), Fraction(25, 2), Fraction(500),
                                    Fraction(4096)])
    def test_skellam_matches_pmf(self, mu):
        x = noise.skellam(50_000, mu, seed=_seed("sk", mu))
        k = np.arange(0, int(mu + 12 * math.sqrt(mu) + 15))

        def pmf(m):
            p = _poisson_pmf(k, m)
            return np.convolve(p, p[::-1])  # support -(K-1) .. K-1

        support = np.arange(-(len(k) - 1), len(k))
        _assert_fits_binned(x, support, pmf(float(mu)), pmf(float(mu) * 1.1))

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


class TestPinnedOutputs:
    """Fixed seed, fixed output: any change to what a seed produces shows up here.

    The statistical tests above cannot see a small change in the law; these hashes
    can. A deliberate change of algorithm (new outputs, same law) updates them, and
    says so in its commit.
    """

    SEED = hashlib.sha256(b"secagg noise pin").digest()
    CASES = {
        "dgauss 7/3": ("c4b03f86acf73a6c315e5389d74ba228", [-2, -4, 4, -1, 1]),
        "dgauss 2^40/3": ("21c765b13d65ae8b51ded7f5c8741e31",
                          [531520, -867897, -1296782, -366242, -1932825]),
        "dlaplace 40": ("978ca524a4ed5c6962b2528688d866df", [-13, 75, 17, -4, 45]),
        "bexp 5/2": ("25fb4b216683644cc603f4965cb1ee5d", [0, 0, 1, 0, 1]),
        "poisson 9/2": ("844fb7c7e9fcb8aa2584f0088431e9d4", [5, 9, 5, 7, 3]),
        "poisson 4096": ("236fe7e32494869ae3c7ead416124cdd", [4046, 4094, 4028, 4055, 4068]),
        "skellam 100": ("0fea71f7a542e4a2cf105bc68fd206c4", [-12, 4, -9, 15, 4]),
    }

    def _draw(self, case: str) -> np.ndarray:
        s = self.SEED
        return {
            "dgauss 7/3": lambda: noise.discrete_gaussian(1000, Fraction(7, 3), seed=s),
            "dgauss 2^40/3": lambda: noise.discrete_gaussian(1000, Fraction(2**40, 3), seed=s),
            "dlaplace 40": lambda: bindings.secagg_noise_dlaplace(1000, 40, s),
            "bexp 5/2": lambda: bindings.secagg_noise_bernoulli_exp(1000, 5, 2, s),
            "poisson 9/2": lambda: noise.poisson(1000, Fraction(9, 2), seed=s),
            "poisson 4096": lambda: noise.poisson(1000, 4096, seed=s),
            "skellam 100": lambda: noise.skellam(1000, 100, seed=s),
        }[case]()

    @pytest.mark.parametrize("case", sorted(CASES))
    def test_seeded_output_is_pinned(self, case):
        x = self._draw(case)
        digest, head = self.CASES[case]
        assert x[:5].tolist() == head
        little = x.astype(x.dtype.newbyteorder("<"))
        assert hashlib.sha256(little.tobytes()).hexdigest()[:32] == digest
