"""Distributed-DP accounting: the Gaussian limit, brute-force PLDs, and upper-bound sanity."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("dp_accounting")

from dp_accounting import dp_event  # noqa: E402
from dp_accounting.rdp import rdp_privacy_accountant  # noqa: E402

from secagg.ddp import accounting as acc  # noqa: E402

DELTA = 1e-5


def _dp_accounting_gaussian_eps(z: float, rounds: int, q: float = 1.0) -> float:
    ev = dp_event.GaussianDpEvent(z)
    if q < 1:
        ev = dp_event.PoissonSampledDpEvent(q, ev)
    a = rdp_privacy_accountant.RdpAccountant()
    a.compose(dp_event.SelfComposedDpEvent(ev, rounds))
    return a.get_epsilon(DELTA)


def _brute_force_eps(support: np.ndarray, pmf: np.ndarray, sens: int, q: float, rounds: int) -> float:
    """Smallest eps with hockey-stick divergence <= DELTA both ways, straight from the pmfs."""
    k = len(support)
    p = np.concatenate((pmf, np.zeros(sens)))
    shifted = np.concatenate((np.zeros(sens), pmf))
    mix = (1 - q) * p + q * shifted
    assert k + sens == len(p)

    def delta_of(eps: float, upper: np.ndarray, lower: np.ndarray) -> float:
        u, lo = upper, lower
        for _ in range(rounds - 1):
            u, lo = np.outer(u, upper).ravel(), np.outer(lo, lower).ravel()
        return float(np.maximum(0.0, u - math.exp(eps) * lo).sum())

    worst = 0.0
    for upper, lower in ((mix, p), (p, mix)):
        lo_e, hi_e = 0.0, 50.0
        for _ in range(60):
            mid = (lo_e + hi_e) / 2
            if delta_of(mid, upper, lower) <= DELTA:
                hi_e = mid
            else:
                lo_e = mid
        worst = max(worst, hi_e)
    return worst


class TestGaussianLimit:
    @pytest.mark.parametrize("z,rounds", [(1.0, 1), (2.0, 100), (5.0, 40), (0.7, 10)])
    def test_ddgauss_equals_dp_accounting_gaussian_within_one_percent(self, z, rounds):
        # Large scale: sensitivity 1000 integer units, n = 20 shares of sigma^2 (z*1000)^2/20,
        # so tau ~ 0 and the rounding-free one-dimensional case reduces to the Gaussian.
        l2, n = 1000.0, 20
        a = acc.DistributedDpAccountant("ddgauss", (z * l2) ** 2 / n, n, l2, l2, 1, DELTA)
        ours, ref = a.epsilon(rounds), _dp_accounting_gaussian_eps(z, rounds)
        assert abs(ours - ref) / ref < 0.01, (ours, ref)

    @pytest.mark.parametrize("z,rounds", [(1.0, 1), (2.0, 100), (5.0, 40), (3.0, 50)])
    def test_skellam_equals_dp_accounting_gaussian_within_one_percent(self, z, rounds):
        l2, n = 1000.0, 20
        a = acc.DistributedDpAccountant("skellam", (z * l2) ** 2 / n / 2, n, l2, l2, 1, DELTA)
        ours, ref = a.epsilon(rounds), _dp_accounting_gaussian_eps(z, rounds)
        assert abs(ours - ref) / ref < 0.01, (ours, ref)

    @pytest.mark.parametrize("q", [0.01, 0.1])
    def test_subsampled_bound_is_above_the_exact_subsampled_gaussian(self, q):
        # Zhu-Wang's bound holds for any mechanism, so in the Gaussian limit it may only
        # be looser than dp-accounting's exact sampled-Gaussian analysis, never tighter.
        l2, n, z, rounds = 1000.0, 20, 1.0, 200
        a = acc.DistributedDpAccountant("ddgauss", (z * l2) ** 2 / n, n, l2, l2, 1, DELTA, q)
        ours, ref = a.epsilon(rounds), _dp_accounting_gaussian_eps(z, rounds, q)
        assert ref * 0.99 <= ours <= ref * 1.35, (ours, ref)


class TestDiscretePenalty:
    def test_small_shares_cost_more_than_the_gaussian(self):
        # sigma^2 = 1/4 per share: tau is large, the sum is far from Gaussian.
        n, local, l2 = 10, 0.25, 1.0
        a = acc.DistributedDpAccountant("ddgauss", local, n, l2, l2, 1, DELTA)
        gauss = _dp_accounting_gaussian_eps(math.sqrt(n * local) / l2, 1)
        assert a.epsilon(1) > gauss * 1.01

    def test_fewer_survivors_mean_more_epsilon(self):
        eps = [acc.DistributedDpAccountant("ddgauss", 100.0, n, 10.0, 100.0, 64, DELTA).epsilon(10)
               for n in (50, 20, 5)]
        assert eps[0] < eps[1] < eps[2]


class TestPldAgainstBruteForce:
    @pytest.mark.parametrize("n,local,sens,q,rounds", [
        (3, 2.0, 1, 1.0, 1),
        (3, 2.0, 2, 1.0, 2),
        (2, 1.0, 1, 0.3, 1),
        (4, 0.5, 1, 0.5, 2),
    ])
    def test_sum_of_discrete_gaussians(self, n, local, sens, q, rounds):
        support, pmf = acc.discrete_gaussian_sum_pmf(local, n, tail=10.0)
        brute = _brute_force_eps(support, pmf, sens, q, rounds)
        pld = acc.pld_epsilon(support, pmf, sens, delta=DELTA, rounds=rounds, sampling_rate=q)
        assert brute <= pld * (1 + 1e-6) + 1e-6 and pld <= brute * 1.02 + 2e-3, (pld, brute)

    @pytest.mark.parametrize("var,sens,q", [(6.0, 1, 1.0), (3.0, 2, 0.4)])
    def test_skellam(self, var, sens, q):
        support, pmf = acc.skellam_pmf(var, tail=10.0)
        brute = _brute_force_eps(support, pmf, sens, q, 1)
        pld = acc.pld_epsilon(support, pmf, sens, delta=DELTA, sampling_rate=q)
        assert brute <= pld * (1 + 1e-6) + 1e-6 and pld <= brute * 1.02 + 2e-3, (pld, brute)

    @pytest.mark.parametrize("mechanism,local", [("ddgauss", 2.0), ("ddgauss", 0.3), ("skellam", 1.5)])
    def test_rdp_bounds_are_upper_bounds_of_the_exact_epsilon(self, mechanism, local):
        n, sens = 3, 1
        if mechanism == "ddgauss":
            support, pmf = acc.discrete_gaussian_sum_pmf(local, n)
        else:
            support, pmf = acc.skellam_pmf(2 * local * n)
        exact = _brute_force_eps(support, pmf, sens, 1.0, 1)
        a = acc.DistributedDpAccountant(mechanism, local, n, float(sens), float(sens), 1, DELTA)
        assert a.epsilon(1) >= exact

    def test_pmfs_are_normalised_with_the_right_variance(self):
        s, p = acc.discrete_gaussian_sum_pmf(3.0, 4)
        assert math.isclose(p.sum(), 1.0) and math.isclose((s**2 * p).sum(), 12.0, rel_tol=1e-3)
        s, p = acc.skellam_pmf(7.0)
        assert math.isclose(p.sum(), 1.0) and math.isclose((s**2 * p).sum(), 7.0, rel_tol=1e-6)


def test_describe_states_the_assumptions():
    text = acc.DistributedDpAccountant("skellam", 3.0, 8, 5.0, 25.0, 16, DELTA, 0.1).describe()
    for needle in (">= 8 honest surviving clients", "add/remove-one-client", "q=0.1", "delta=1e-05"):
        assert needle in text
