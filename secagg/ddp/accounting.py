"""Privacy accounting for distributed DP: the sum of n discrete Gaussians, and Skellam.

What is accounted, and under which assumptions (each reported epsilon carries them):

- The released value per round is the secure sum: the rounded, rotated inputs of the
  participating clients plus the noise shares of the honest survivors. At least
  ``min_survivors`` honest clients add their share (the SecAgg threshold enforces
  the count; see ``check_secagg_config``); clients that drop, or collude with the
  server, are assumed to add nothing. Neighbouring: one client's input is added or
  removed (its noise share counted only among the survivors above).
- Sensitivity is taken after conditional rounding, in integer units: L2 bound
  ``rounded_l2_bound`` (it holds with certainty, rounding is redrawn until it does)
  and L1 bound min(sqrt(d) L2, L2^2).
- Discrete Gaussian: the sum of n i.i.d. N_Z(0, s2) shares is not a discrete
  Gaussian; we use Kairouz, Liu, Steinke (ICML 2021, Proposition 14) which bounds its
  Renyi DP by the Gaussian's plus a term in tau = 10 sum_{k=1}^{n-1}
  exp(-2 pi^2 s2 k/(k+1)) (for s2 >= 1/4). With one share (n = 1) it is exact.
- Skellam: the sum of the shares is exactly Skellam; Agarwal, Kairouz, Liu (NeurIPS
  2021, Theorem 3.5) bound its Renyi DP for integer orders.
- Rounds compose additively in RDP. Poisson sampling of clients with rate q uses the
  general upper bound of Zhu and Wang (ICML 2019, Theorem 9) for any mechanism,
  integer orders only. The RDP curve is converted to (epsilon, delta) with
  dp-accounting's ``compute_epsilon``.
- One-dimensional releases (a count, a scalar): ``pld_epsilon`` builds the privacy
  loss distribution of the actual noise pmf with dp-accounting's PLD module, Poisson
  sampling included, for an exact (up to discretisation, pessimistic) answer.

dp-accounting lives in the ``fl`` extra; it is imported on first use, never by
``import secagg``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from secagg.errors import SecAggError, ensure

__all__ = [
    "ORDERS",
    "ddgauss_rdp",
    "skellam_rdp",
    "gaussian_rdp",
    "poisson_subsampled_rdp",
    "sampled_shift_rdp",
    "ddgauss_sampled_rdp",
    "rdp_epsilon",
    "discrete_gaussian_sum_pmf",
    "skellam_pmf",
    "pld_epsilon",
    "DistributedDpAccountant",
]

ORDERS: tuple[int, ...] = tuple(range(2, 65)) + tuple(range(72, 257, 8)) + (320, 384, 448, 512)


def _dp_accounting() -> tuple[ModuleType, ModuleType, ModuleType]:
    try:
        import dp_accounting
        from dp_accounting.pld import privacy_loss_distribution
        from dp_accounting.rdp import rdp_privacy_accountant
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SecAggError(
            "distributed-DP accounting needs dp-accounting: pip install 'secagg[fl]'"
        ) from exc
    return dp_accounting, rdp_privacy_accountant, privacy_loss_distribution


def gaussian_rdp(orders: Sequence[int], noise_multiplier: float) -> np.ndarray:
    """RDP of the Gaussian mechanism with std / sensitivity = noise_multiplier: a / (2 z^2)."""
    return np.asarray(orders, dtype=np.float64) / (2.0 * noise_multiplier**2)


def _tau(local_variance: float, n: int) -> float:
    k = np.arange(1, n, dtype=np.float64)
    return float(10.0 * np.exp(-2.0 * math.pi**2 * local_variance * k / (k + 1.0)).sum())


def ddgauss_rdp(orders: Sequence[int], *, l2: float, l1: float, dim: int, local_variance: float,
                n: int) -> np.ndarray:
    """RDP of the sum of n i.i.d. N_Z(0, local_variance) on Z^dim (Kairouz et al., Prop. 14).

    l2, l1: sensitivities in the same integer units. Requires local_variance >= 1/4.
    """
    ensure(local_variance >= 0.25, f"the bound needs local sigma^2 >= 1/4, got {local_variance}")
    ensure(n >= 1 and dim >= 1, "n and dim must be >= 1")
    a = np.asarray(orders, dtype=np.float64)
    s = math.sqrt(n * local_variance)
    tau = _tau(local_variance, n)
    e2, e1 = l2 / s, l1 / s
    t1 = a / 2.0 * e2**2 + tau * dim
    t2 = a / 2.0 * (e2**2 + 2.0 * e1 * tau + tau**2 * dim)
    t3 = a / 2.0 * (e2 + math.sqrt(dim) * tau) ** 2
    return np.minimum(np.minimum(t1, t2), t3)


def skellam_rdp(orders: Sequence[int], *, l2: float, l1: float, variance: float) -> np.ndarray:
    """RDP of Skellam noise of per-coordinate variance ``variance`` (Agarwal et al., Thm 3.5)."""
    ensure(variance > 0, f"variance must be > 0, got {variance}")
    a = np.asarray(orders, dtype=np.float64)
    extra = np.minimum(((2.0 * a - 1.0) * l2**2 + 6.0 * l1) / (4.0 * variance**2),
                       3.0 * l1 / (2.0 * variance))
    return a * l2**2 / (2.0 * variance) + extra


_LGAMMA = np.array([math.lgamma(i + 1) for i in range(max(ORDERS) + 1)])  # log(i!)


def poisson_subsampled_rdp(orders: Sequence[int], q: float,
                           rdp: Callable[[Sequence[int]], np.ndarray]) -> np.ndarray:
    """Zhu & Wang's upper bound on the RDP of a Poisson-subsampled mechanism, integer orders.

    eps'(a) <= 1/(a-1) log[(1-q)^(a-1) (a q - q + 1) + C(a,2) q^2 (1-q)^(a-2) e^eps(2)
                          + 3 sum_{l=3}^{a} C(a,l) q^l (1-q)^(a-l) e^((l-1) eps(l))],
    never above the unsampled eps(a).
    """
    ensure(0 < q <= 1, f"sampling rate must be in (0, 1], got {q}")
    orders = [int(a) for a in orders]
    ensure(all(a >= 2 for a in orders), "orders must be integers >= 2")
    base = rdp(orders)
    if q == 1:
        return np.asarray(base, dtype=np.float64)
    top = max(orders)
    ls = np.arange(2, top + 1)
    eps_l = np.asarray(rdp(list(ls)), dtype=np.float64)  # eps(l) for l = 2..top
    lq, l1q = math.log(q), math.log1p(-q)
    a = np.asarray(orders)[:, None]
    j = ls[None, :]
    valid = j <= a
    jj = np.where(valid, j, 2)
    terms = (_LGAMMA[a] - _LGAMMA[jj] - _LGAMMA[np.where(valid, a - j, 0)] + j * lq
             + np.where(valid, a - j, 0) * l1q + (j - 1) * eps_l[None, :])
    terms = np.where(j >= 3, terms + math.log(3.0), terms)
    terms = np.where(valid, terms, -np.inf)
    first = (a[:, 0] - 1) * l1q + np.log(a[:, 0] * q - q + 1)
    logs = np.concatenate((first[:, None], terms), axis=1)
    mx = logs.max(axis=1, keepdims=True)
    out = (mx[:, 0] + np.log(np.exp(logs - mx).sum(axis=1))) / (a[:, 0] - 1)
    bound: np.ndarray = np.minimum(out, base)
    return bound


def sampled_shift_rdp(orders: Sequence[int], q: float, mu: float) -> np.ndarray:
    """Mironov-Talwar-Zhang's RDP of a Poisson-subsampled shift with Gaussian moments.

    For integer a: (1/(a-1)) log sum_{l=0}^{a} C(a,l) (1-q)^(a-l) q^l exp((l^2 - l) mu^2 / 2).
    This is exactly the sampled Gaussian's RDP at noise multiplier 1/mu, and an upper bound
    for any symmetric shift pair whose likelihood ratio has E[ratio^l] <= exp((l^2-l) mu^2/2)
    (see ``ddgauss_sampled_rdp``).
    """
    ensure(0 < q <= 1, f"sampling rate must be in (0, 1], got {q}")
    ensure(mu >= 0 and math.isfinite(mu), f"mu must be finite and >= 0, got {mu}")
    out = np.empty(len(orders))
    for i, a in enumerate(int(o) for o in orders):
        ensure(a >= 2, "orders must be integers >= 2")
        if q == 1:
            out[i] = a * mu * mu / 2.0
            continue
        ls = np.arange(a + 1)
        terms = (_LGAMMA[a] - _LGAMMA[ls] - _LGAMMA[a - ls] + (a - ls) * math.log1p(-q)
                 + ls * math.log(q) + (ls * ls - ls) * mu * mu / 2.0)
        top = terms.max()
        out[i] = (top + math.log(np.exp(terms - top).sum())) / (a - 1)
    return out


def ddgauss_sampled_rdp(orders: Sequence[int], q: float, *, l2: float, dim: int,
                        local_variance: float, n: int) -> np.ndarray:
    """RDP of the Poisson-subsampled sum of n N_Z(0, local_variance)^dim shares, shift <= l2.

    The argument (docs/ddp.md, "Tight subsampling for the discrete Gaussian"):
    1. Kairouz et al. (Prop. 13-14) bound the sum's pmf against N_Z(0, n local_variance)
       pointwise per coordinate by a factor e^(+-eps0), eps0 = -log(1 - tau); over dim
       coordinates and both pmfs of a likelihood ratio that costs at most
       (1 + 2a) dim eps0 / (a - 1) in RDP at order a.
    2. For one discrete Gaussian N_Z(0, s^2)^dim and an integer shift v, the likelihood ratio
       is exp((2<x, v> - |v|^2) / (2 s^2)); the discrete Gaussian is s^2-sub-Gaussian
       (Canonne, Kamath, Steinke 2020), so E[ratio^l] <= exp((l^2 - l) mu^2 / 2) with
       mu = |v| / s, the Gaussian's value, and the binomial expansion of the subsampled
       ratio (non-negative terms for integer a) is at most the sampled Gaussian's
       (``sampled_shift_rdp``).
    3. The other direction (the base distribution against the mixture) is at most this one
       for any pair symmetric under x -> v - x, as the discrete Gaussian and the sum of
       shares are (Mironov, Talwar, Zhang 2019 prove it for the Gaussian by the same pairing;
       the pointwise inequality is checked in tests/test_ddp_accounting.py).
    Only used where tau <= 1e-6 (shares of variance above about 1.5); inf otherwise, so
    callers fall back to the general bound.
    """
    tau = _tau(local_variance, n)
    if not tau <= 1e-6:
        return np.full(len(orders), np.inf)
    eps0 = -math.log1p(-tau)
    a = np.asarray(orders, dtype=np.float64)
    mu = l2 / math.sqrt(n * local_variance)
    return sampled_shift_rdp(orders, q, mu) + (1.0 + 2.0 * a) * dim * eps0 / (a - 1.0)


def rdp_epsilon(orders: Sequence[int], rdp: np.ndarray, delta: float) -> float:
    """(epsilon at delta) of an RDP curve, through dp-accounting's conversion."""
    ensure(0 < delta < 1, f"delta must be in (0, 1), got {delta}")
    _, rdp_acc, _ = _dp_accounting()
    eps, _ = rdp_acc.compute_epsilon(list(orders), list(np.asarray(rdp, dtype=np.float64)), delta)
    return float(eps)


# --- one-dimensional releases: exact PLD from the pmfs ------------------------------------


def discrete_gaussian_sum_pmf(local_variance: float, n: int, *, tail: float = 14.0
                              ) -> tuple[np.ndarray, np.ndarray]:
    """(support, pmf) of the sum of n i.i.d. N_Z(0, local_variance), by convolution."""
    half = int(math.ceil(tail * math.sqrt(local_variance))) + 2
    x = np.arange(-half, half + 1)
    p = np.exp(-(x.astype(np.float64) ** 2) / (2.0 * local_variance))
    p /= p.sum()
    out = p
    for _ in range(n - 1):
        out = np.convolve(out, p)
    k = (len(out) - 1) // 2
    return np.arange(-k, k + 1), out


def skellam_pmf(variance: float, *, tail: float = 14.0) -> tuple[np.ndarray, np.ndarray]:
    """(support, pmf) of Skellam(variance/2, variance/2), from the two Poisson pmfs."""
    mu = variance / 2.0
    kmax = int(mu + tail * math.sqrt(mu) + 20)
    k = np.arange(kmax + 1, dtype=np.float64)
    logp = -mu + k * math.log(mu) - np.array([math.lgamma(v + 1) for v in k])
    p = np.exp(logp)
    pmf = np.convolve(p, p[::-1])
    return np.arange(-kmax, kmax + 1), pmf / pmf.sum()


def pld_epsilon(support: np.ndarray, pmf: np.ndarray, sensitivity: int, *, delta: float,
                rounds: int = 1, sampling_rate: float = 1.0,
                discretization: float = 1e-4) -> float:
    """Epsilon of ``rounds`` Poisson-sampled releases x + Z, |x - x'| <= sensitivity (integers).

    Builds both directions (add and remove one record/client) from the pmfs with
    dp-accounting's ``from_two_probability_mass_functions`` (pessimistic rounding),
    composes each ``rounds`` times and returns the larger epsilon.
    """
    ensure(isinstance(sensitivity, int) and sensitivity >= 1, "sensitivity must be an int >= 1")
    ensure(0 < sampling_rate <= 1, "sampling_rate must be in (0, 1]")
    _, _, pld_mod = _dp_accounting()
    q = sampling_rate
    base = dict(zip(support.tolist(), pmf.tolist(), strict=True))
    keys = sorted(set(base) | {k + sensitivity for k in base})
    p = {k: base.get(k, 0.0) for k in keys}
    shifted = {k: base.get(k - sensitivity, 0.0) for k in keys}
    mixture = {k: (1 - q) * p[k] + q * shifted[k] for k in keys}

    def log_pmf(d: dict[int, float]) -> dict[int, float]:
        return {k: math.log(v) for k, v in d.items() if v > 0}

    eps = 0.0
    for upper, lower in ((mixture, p), (p, mixture)):
        pld = pld_mod.from_two_probability_mass_functions(
            log_pmf(lower), log_pmf(upper), pessimistic_estimate=True,
            value_discretization_interval=discretization, symmetric=True)
        if rounds > 1:
            pld = pld.self_compose(rounds)
        eps = max(eps, float(pld.get_epsilon_for_delta(delta)))
    return eps


@dataclass(frozen=True)
class DistributedDpAccountant:
    """Epsilon of a distributed-DP run, with the assumptions it rests on (see module docstring).

    ``noise`` is the per-client share in integer units (discrete Gaussian sigma^2 or
    Skellam mu), ``l2``/``l1`` the rounded sensitivities in the same units.
    """

    mechanism: str
    noise: float
    min_survivors: int
    l2: float
    l1: float
    dim: int
    delta: float
    sampling_rate: float = 1.0
    unit: str = "client"  # what neighbouring datasets differ in: one client, or one record

    def round_rdp(self, orders: Sequence[int] = ORDERS) -> np.ndarray:
        """RDP of one round (sampling included) at ``orders``.

        Discrete Gaussian: the smaller of the tight sampled bound (``ddgauss_sampled_rdp``)
        and Zhu-Wang's general bound on Kairouz et al.'s; Skellam: Zhu-Wang's bound.
        """
        def base(o: Sequence[int]) -> np.ndarray:
            if self.mechanism == "ddgauss":
                return ddgauss_rdp(o, l2=self.l2, l1=self.l1, dim=self.dim,
                                   local_variance=self.noise, n=self.min_survivors)
            ensure(self.mechanism == "skellam", f"unknown mechanism {self.mechanism!r}")
            return skellam_rdp(o, l2=self.l2, l1=self.l1, variance=2.0 * self.noise * self.min_survivors)

        general = poisson_subsampled_rdp(orders, self.sampling_rate, base)
        if self.mechanism != "ddgauss":
            return general
        tight = ddgauss_sampled_rdp(orders, self.sampling_rate, l2=self.l2, dim=self.dim,
                                    local_variance=self.noise, n=self.min_survivors)
        best: np.ndarray = np.minimum(general, tight)
        return best

    def epsilon(self, rounds: int) -> float:
        """Epsilon at ``delta`` after ``rounds`` rounds."""
        if rounds <= 0:
            return 0.0
        return rdp_epsilon(ORDERS, rounds * self.round_rdp(ORDERS), self.delta)

    def describe(self) -> str:
        """The assumptions behind the reported epsilon, in one line."""
        what = ("sum of discrete Gaussians: Kairouz et al. Prop. 13-14 with sub-Gaussian"
                " moments, sampled as Mironov et al." if self.mechanism == "ddgauss"
                else "Skellam, Agarwal et al. Thm 3.5, Zhu-Wang subsampling")
        return (f"{self.unit}-level, distributed {self.mechanism}: noise of >= {self.min_survivors}"
                f" honest surviving clients (drop-outs and colluders add none),"
                f" add/remove-one-{self.unit}, rounded L2 sensitivity {self.l2:.4g} (integer units),"
                f" secret Poisson sampling of {self.unit}s q={self.sampling_rate:g}, RDP ({what})"
                f" -> (eps, delta) by dp-accounting, delta={self.delta:g}")
