"""The distributed-DP encoder/decoder: rotation, conditional rounding, noise split, wrap check."""

from __future__ import annotations

import math
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from secagg.ddp.mechanism import (
    DistributedDp,
    check_secagg_config,
    padded_dim,
    rotate,
    rounded_l2_bound,
    unrotate,
)
from secagg.errors import SecAggTypeError, SecAggValueError

ROT = bytes(range(32))


def _aggregate(p: DistributedDp, xs: list[np.ndarray], seed0: int = 0) -> np.ndarray:
    total = np.zeros(p.d, dtype=np.uint64)
    for i, x in enumerate(xs):
        total += p.encode(x, ROT, seed=bytes([seed0, i]) + bytes(30)).astype(np.uint64)
    return (total & np.uint64((1 << p.bits) - 1)).astype(np.uint32)


class TestRotation:
    @pytest.mark.parametrize("dim", [1, 5, 64, 1000])
    def test_round_trip_and_norm(self, dim):
        x = np.random.default_rng(dim).standard_normal(dim)
        y = rotate(x, ROT)
        assert len(y) == padded_dim(dim)
        assert math.isclose(np.linalg.norm(y), np.linalg.norm(x), rel_tol=1e-12)
        np.testing.assert_allclose(unrotate(y, ROT, dim), x, atol=1e-12)

    def test_flattens_a_spike_and_depends_on_the_seed(self):
        x = np.zeros(256)
        x[3] = 1.0
        y = rotate(x, ROT)
        np.testing.assert_allclose(np.abs(y), 1 / 16)
        z = np.random.default_rng(0).standard_normal(256)
        assert not np.allclose(rotate(z, ROT), rotate(z, bytes(32)))


class TestConditionalRounding:
    @pytest.mark.parametrize("beta", [math.exp(-0.5), 0.9, 0.0])
    def test_rounded_norm_never_exceeds_the_bound(self, beta):
        p = DistributedDp("ddgauss", dim=300, clip=1.0, gamma=0.05, bits=24, noise=1,
                          max_clients=4, min_survivors=2, beta=beta)
        x = np.random.default_rng(1).standard_normal(300)
        x /= np.linalg.norm(x)
        y = rotate(x, ROT)
        for k in range(30):
            v = p._round(y, bytes([k]) + bytes(31))
            assert float(np.sum(v.astype(np.float64) ** 2)) <= p.l2_bound**2
            assert np.all(np.abs(v - y / p.gamma) < 1)

    def test_bound_is_kairouz_et_al(self):
        # min(l2 + sqrt(d), sqrt(l2^2 + d/4 + sqrt(2 ln 1/beta) (l2 + sqrt(d)/2)))
        assert rounded_l2_bound(10.0, 16, 0.0) == 14.0
        b = rounded_l2_bound(10.0, 16, math.exp(-0.5))
        assert math.isclose(b, math.sqrt(100 + 4 + 1.0 * (10 + 2)))


class TestAggregation:
    @pytest.mark.parametrize("mechanism,noise", [("ddgauss", Fraction(100)), ("skellam", Fraction(50))])
    def test_sum_is_unbiased_and_noise_is_split_across_clients(self, mechanism, noise):
        n, dim = 8, 2000
        p = DistributedDp(mechanism, dim=dim, clip=1.0, gamma=1e-3, bits=20, noise=noise,
                          max_clients=n, min_survivors=n)
        rng = np.random.default_rng(7)
        xs = [rng.standard_normal(dim) * 0.02 for _ in range(n)]
        est = p.decode(_aggregate(p, xs), ROT)
        err = (est - sum(xs)) / p.gamma  # in integer units, after the orthonormal rotation
        # The aggregate noise is n shares of variance parameter noise (x2 for Skellam's mu),
        # plus at most n/4 of rounding variance. A client adding the full target variance,
        # or 1/n^2 of it, lands far outside this window.
        target = n * p.noise_variance
        assert target * 0.9 < err.var() < (target + n / 4) * 1.1
        assert abs(err.mean()) < 5 * math.sqrt((target + n / 4) / dim)

    def test_seeded_encoding_is_deterministic_and_fresh_otherwise(self):
        p = DistributedDp("ddgauss", dim=10, clip=1.0, gamma=0.01, bits=16, noise=4,
                          max_clients=2, min_survivors=1)
        x = np.ones(10) * 0.1
        assert np.array_equal(p.encode(x, ROT, seed=bytes(32)), p.encode(x, ROT, seed=bytes(32)))
        assert not np.array_equal(p.encode(x, ROT), p.encode(x, ROT))

    def test_clips_to_the_l2_bound(self):
        p = DistributedDp("ddgauss", dim=64, clip=1.0, gamma=1e-3, bits=24, noise=Fraction(1, 4),
                          max_clients=1, min_survivors=1)
        x = np.full(64, 10.0)
        est = p.decode(_aggregate(p, [x]), ROT)
        np.testing.assert_allclose(np.linalg.norm(est), 1.0, rtol=0.01)

    def test_worst_case_inputs_do_not_wrap_when_the_config_is_accepted(self):
        # Every client sends the same maximal vector, all along one axis: the sum has
        # norm n * clip. The rotation spreads it; the accepted config must hold it.
        n, dim = 20, 256
        p = DistributedDp("ddgauss", dim=dim, clip=1.0, gamma=2e-3, bits=16, noise=Fraction(9),
                          max_clients=n, min_survivors=n)
        x = np.zeros(dim)
        x[0] = 1.0
        est = p.decode(_aggregate(p, [x] * n), ROT)
        assert abs(est[0] - n) < 0.1 and np.abs(est[1:]).max() < 0.1


class TestWrapCheck:
    def test_refuses_too_few_bits(self):
        with pytest.raises(SecAggValueError, match="cannot hold the sum"):
            DistributedDp("ddgauss", dim=256, clip=1.0, gamma=1e-4, bits=12, noise=Fraction(9),
                          max_clients=20, min_survivors=20)

    def test_refuses_noise_that_overflows_the_modulus(self):
        with pytest.raises(SecAggValueError, match="cannot hold the sum"):
            DistributedDp("ddgauss", dim=256, clip=1.0, gamma=1.0, bits=16, noise=Fraction(10**6),
                          max_clients=20, min_survivors=20)

    def test_refused_configs_really_wrap(self):
        # Just below what the check accepts, the sum of worst-case inputs does wrap:
        # a missing check would release a garbage sum.
        n, dim = 20, 256
        accepted = DistributedDp("ddgauss", dim=dim, clip=1.0, gamma=2e-3, bits=16, noise=Fraction(9),
                                 max_clients=n, min_survivors=n)
        unchecked = object.__new__(DistributedDp)
        for k, v in vars(accepted).items():
            object.__setattr__(unchecked, k, v)
        object.__setattr__(unchecked, "gamma", 2e-4)  # 10x finer: the sum needs ~3 more bits
        assert unchecked.wrap_probability() > 1e-9
        # The input the rotation maps onto one coordinate: all n clients pile up there.
        spike = np.zeros(dim)
        spike[0] = 1.0
        x = unrotate(spike, ROT, dim)
        est = unchecked.decode(_aggregate(unchecked, [x] * n), ROT)
        assert np.abs(est - n * x).max() > 0.5  # one wrap = 2^16 gamma / 16 = 0.8 here
        # The accepted configuration holds even this input.
        est = accepted.decode(_aggregate(accepted, [x] * n), ROT)
        tol = 6 * math.sqrt(n * 9) * accepted.gamma + n * accepted.gamma
        assert np.abs(est - n * x).max() < tol

    def test_bound_is_small_for_accepted_and_monotone_in_bits(self):
        kw = dict(dim=1000, clip=1.0, gamma=1e-3, noise=Fraction(100), max_clients=10, min_survivors=5)
        p20 = DistributedDp("ddgauss", bits=20, **kw)
        p24 = DistributedDp("ddgauss", bits=24, **kw)
        assert p24.wrap_probability() <= p20.wrap_probability() <= 1e-9


class TestArguments:
    @pytest.mark.parametrize("kw,exc", [
        (dict(mechanism="laplace"), SecAggValueError),
        (dict(noise=0.5), SecAggTypeError),
        (dict(noise=Fraction(1, 2**17)), SecAggValueError),
        (dict(min_survivors=11), SecAggValueError),
        (dict(bits=40), SecAggValueError),
        (dict(clip=float("nan")), SecAggValueError),
    ])
    def test_refuses_bad_parameters(self, kw, exc):
        base = dict(mechanism="ddgauss", dim=10, clip=1.0, gamma=1e-2, bits=20, noise=Fraction(4),
                    max_clients=10, min_survivors=5)
        base.update(kw)
        with pytest.raises(exc):
            DistributedDp(**base)

    def test_refuses_bad_vectors(self):
        p = DistributedDp("ddgauss", dim=10, clip=1.0, gamma=1e-2, bits=20, noise=4,
                          max_clients=10, min_survivors=5)
        with pytest.raises(SecAggTypeError):
            p.encode(np.zeros(11), ROT)
        with pytest.raises(SecAggValueError):
            p.encode(np.full(10, np.nan), ROT)
        with pytest.raises(SecAggTypeError):
            p.encode(np.zeros(10), b"short")
        with pytest.raises(SecAggValueError):
            p.decode(np.full(16, 2**20, dtype=np.uint32), ROT)

    def test_secagg_threshold_must_cover_min_survivors(self):
        p = DistributedDp("ddgauss", dim=10, clip=1.0, gamma=1e-2, bits=20, noise=4,
                          max_clients=10, min_survivors=5)
        # A released sum has >= t + 1 survivors (shares are held by neighbours, never by the
        # owner), so t = min_survivors - 1 suffices and one less does not.
        check_secagg_config(p, SimpleNamespace(bits=20, vector_length=16, threshold=4))
        with pytest.raises(SecAggValueError, match="min_survivors"):
            check_secagg_config(p, SimpleNamespace(bits=20, vector_length=16, threshold=3))
        with pytest.raises(SecAggValueError):
            check_secagg_config(p, SimpleNamespace(bits=16, vector_length=16, threshold=5))


def test_colluders_raise_the_threshold_needed():
    p = DistributedDp("ddgauss", dim=10, clip=1.0, gamma=1e-2, bits=20, noise=4,
                      max_clients=10, min_survivors=5)
    check_secagg_config(p, SimpleNamespace(bits=20, vector_length=16, threshold=6), max_colluders=2)
    with pytest.raises(SecAggValueError, match="max_colluders"):
        check_secagg_config(p, SimpleNamespace(bits=20, vector_length=16, threshold=5), max_colluders=2)
