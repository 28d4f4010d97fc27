"""Pick (bits, gamma, noise) for distributed DP from the privacy target, or refuse.

For a bit width b the planner looks for the finest granularity gamma (smallest
value of one integer unit, so the least rounding error) for which

1. the noise needed for the target (epsilon, delta) over ``rounds`` rounds, with the
   sensitivity inflated by conditional rounding at that gamma, is found by
   bisection on the accountant of ``secagg.ddp.accounting``; each client's share is
   that variance over ``min_survivors``, rounded *up* to an exact rational;
2. the wrap bound of ``DistributedDp`` is below ``max_wrap_probability``.

Finer gamma means larger integers and a likelier wrap, so feasibility is monotone
in gamma and a bisection on log(gamma) finds the boundary. The price of few bits
is reported as ``noise_inflation``: the aggregate noise std (real units, rounding
included) over the std that central Gaussian DP needs for the same target under
the same accountant. With ``bits=None`` the smallest b in 8..32 whose inflation is
at most ``max_inflation`` is chosen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from secagg import bindings
from secagg.ddp.accounting import ORDERS, DistributedDpAccountant, gaussian_rdp, rdp_epsilon
from secagg.ddp.accounting import poisson_subsampled_rdp as _subsampled
from secagg.ddp.mechanism import DistributedDp, padded_dim, rounded_l1_bound, rounded_l2_bound
from secagg.ddp.noise import rational_at_least
from secagg.errors import SecAggValueError, ensure

__all__ = ["DdpPlan", "plan_ddp", "central_gaussian_std", "smallest_noise"]

_BITS = range(8, 33)


@dataclass(frozen=True)
class DdpPlan:
    """A checked distributed-DP configuration and what it costs."""

    params: DistributedDp
    epsilon: float
    delta: float
    rounds: int
    sampling_rate: float
    noise_std: float          # aggregate noise std per coordinate, real units, rounding included
    central_std: float        # std central Gaussian DP would need for the same target
    accountant: DistributedDpAccountant

    @property
    def noise_inflation(self) -> float:
        return self.noise_std / self.central_std

    def describe(self) -> str:
        p = self.params
        return (f"{p.mechanism}: {p.bits} bits, gamma={p.gamma:.4g}, per-client noise "
                f"{float(p.noise):.6g} (integer units), epsilon={self.epsilon:.4g} at delta="
                f"{self.delta:g} over {self.rounds} rounds (q={self.sampling_rate:g}); needs >= "
                f"{p.min_survivors} honest survivors of {p.max_clients}; noise std {self.noise_std:.4g}"
                f" = {self.noise_inflation:.3f}x central Gaussian; P(wrap) <= {p.wrap_probability():.2g}")


def central_gaussian_std(*, epsilon: float, delta: float, rounds: int, sampling_rate: float,
                         clip: float) -> float:
    """Std of central Gaussian noise meeting the target under the same RDP accountant."""
    def eps(z: float) -> float:
        rdp = _subsampled(ORDERS, sampling_rate, lambda o: gaussian_rdp(o, z))
        return rdp_epsilon(ORDERS, rounds * rdp, delta)

    z = smallest_noise(eps, epsilon, 1e-3, 1.0)
    return z * clip


def smallest_noise(eps_of: Callable[[float], float], target: float, lo: float, hi: float,
                   limit: float = 1e12) -> float:
    """Smallest x >= lo (to 1e-4 relative, rounded up) with eps_of(x) <= target; eps decreasing.

    ``hi`` is a first guess, doubled until it meets the target (up to ``limit``).
    """
    while eps_of(hi) > target:
        lo, hi = hi, hi * 2.0
        if hi > limit:
            raise SecAggValueError(f"epsilon {target:g} is out of reach even with noise {limit:g}")
    while hi / lo > 1 + 1e-4:
        mid = math.sqrt(lo * hi)
        if eps_of(mid) <= target:
            hi = mid
        else:
            lo = mid
    return hi


def _candidate(mechanism: str, gamma: float, bits: int, *, dim: int, clip: float, max_clients: int,
               min_survivors: int, epsilon: float, delta: float, rounds: int, sampling_rate: float,
               beta: float, max_wrap_probability: float, central: float) -> DdpPlan | None:
    """The plan at this (bits, gamma), or None if the sum could wrap."""
    d = padded_dim(dim)
    l2 = rounded_l2_bound(clip / gamma, d, beta)
    l1 = rounded_l1_bound(l2, d)

    def acc(local: float) -> DistributedDpAccountant:
        return DistributedDpAccountant(mechanism, local, min_survivors, l2, l1, d, delta, sampling_rate)

    floor = 0.25 if mechanism == "ddgauss" else 1e-6
    def eps_of_central_std(s: float) -> float:
        local = max(floor, s * s / min_survivors / (1.0 if mechanism == "ddgauss" else 2.0))
        return acc(local).epsilon(rounds)

    # Rounding only inflates the sensitivity: the central Gaussian's std is a lower bound.
    start = 0.999 * central / gamma
    s = smallest_noise(eps_of_central_std, epsilon, start, start * l2 / (clip / gamma) * 1.05)
    local = max(floor, s * s / min_survivors / (1.0 if mechanism == "ddgauss" else 2.0))
    if mechanism == "ddgauss":
        noise = max(rational_at_least(local, bindings.DGAUSS_MAX_DEN), Fraction(1, 4))
        if noise > bindings.DGAUSS_MAX_VARIANCE:
            return None
    else:
        noise = rational_at_least(local, 2**16)
        if noise > bindings.POISSON_MAX_MU:
            return None
    try:
        params = DistributedDp(mechanism, dim=dim, clip=clip, gamma=gamma, bits=bits, noise=noise,
                               max_clients=max_clients, min_survivors=min_survivors, beta=beta,
                               max_wrap_probability=max_wrap_probability)
    except SecAggValueError:
        return None
    accountant = acc(float(noise))
    eps = accountant.epsilon(rounds)
    var = params.noise_variance * min_survivors + 0.25 * min_survivors  # + rounding, per coordinate
    return DdpPlan(params, eps, delta, rounds, sampling_rate, gamma * math.sqrt(var), float("nan"),
                   accountant)


def plan_ddp(mechanism: str, *, max_clients: int, min_survivors: int, epsilon: float, delta: float,
             rounds: int, sampling_rate: float, dim: int, clip: float, bits: int | None = None,
             beta: float = math.exp(-0.5), max_wrap_probability: float = 1e-9,
             max_inflation: float = 1.05) -> DdpPlan:
    """Plan a distributed-DP aggregation; raises ``SecAggValueError`` if the target cannot be met."""
    ensure(epsilon > 0 and 0 < delta < 1, f"need epsilon > 0 and 0 < delta < 1, got {epsilon}, {delta}")
    ensure(isinstance(rounds, int) and rounds >= 1, f"rounds must be an int >= 1, got {rounds!r}")
    ensure(1 <= min_survivors <= max_clients, "need 1 <= min_survivors <= max_clients")
    central = central_gaussian_std(epsilon=epsilon, delta=delta, rounds=rounds,
                                   sampling_rate=sampling_rate, clip=clip)
    kw = dict(dim=dim, clip=clip, max_clients=max_clients, min_survivors=min_survivors,
              epsilon=epsilon, delta=delta, rounds=rounds, sampling_rate=sampling_rate, beta=beta,
              max_wrap_probability=max_wrap_probability, central=central)
    best: DdpPlan | None = None
    for b in ([bits] if bits is not None else _BITS):
        found = _finest_gamma(mechanism, b, kw)
        if found is None:
            continue
        found = DdpPlan(found.params, found.epsilon, delta, rounds, sampling_rate, found.noise_std,
                        central, found.accountant)
        if best is None or found.noise_inflation < best.noise_inflation:
            best = found
        if found.noise_inflation <= max_inflation:
            return found
    if best is None:
        raise SecAggValueError(
            f"no bit width {'' if bits is None else bits} can carry this sum without wrapping"
            f" (clip {clip:g}, {max_clients} clients, dim {dim}, epsilon {epsilon:g})")
    return best


def _finest_gamma(mechanism: str, bits: int, kw: dict[str, Any]) -> DdpPlan | None:
    """The feasible plan with the smallest gamma at this bit width, or None.

    Too fine a gamma wraps; too coarse a gamma inflates the rounded sensitivity (and
    so the noise) until that wraps too. A log grid finds the smallest feasible
    gamma, and a bisection against its infeasible neighbour refines it.
    """
    clip = kw["clip"]
    feasible = None
    for k in range(0, 37):  # gamma from clip down to clip * 1e-9, coarse to fine
        g = clip * 10.0 ** (-k / 4.0)
        c = _candidate(mechanism, g, bits, **kw)
        if c is not None:
            feasible = (g, c)
        elif feasible is not None:
            break
    if feasible is None:
        return None
    hi, best = feasible
    lo = hi / 10.0 ** 0.25
    for _ in range(12):
        mid = math.sqrt(lo * hi)
        c = _candidate(mechanism, mid, bits, **kw)
        if c is None:
            lo = mid
        else:
            hi, best = mid, c
        if hi / lo < 1.01:
            break
    return best
