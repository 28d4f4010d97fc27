"""Client-level and record-level differential privacy: clipping and accounting.

Accounting uses Google's ``dp-accounting``: PLD by default (12 to 25 % tighter than RDP on
these runs), RDP on request (and for fixed-size sampling, which the PLD accountant lacks).
The library's warnings are never silenced. Only released rounds are charged: a round whose
aggregation aborted released nothing and is not composed. Sampling is secret (``fl.sampling``),
which is what the ``PoissonSampled`` amplification below needs:

- client level, Poisson sampling with rate q: each round is
  ``PoissonSampledDpEvent(q, GaussianDpEvent(z))`` under add-or-remove-one-client;
- client level, fixed-size sampling of m out of N: each round is
  ``SampledWithoutReplacementDpEvent(N, m, GaussianDpEvent(z / 2))`` under
  replace-one-client (replacing a client moves the clipped sum by up to 2C, so the
  noise std z*C is z/2 times that sensitivity); RDP only;
- record level (DP-SGD inside each client): a record lives in one client, so its
  loss is the composition of that client's DP-SGD steps only,
  ``SelfComposed(PoissonSampled(b / n_i, Gaussian(z)), steps_i)`` where steps_i
  counts the steps of every round the client actually took part in (which rounds
  is chosen by the server independently of the data); epsilon reported is the
  maximum over clients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import dp_accounting
import numpy as np
from dp_accounting import dp_event
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.pld import privacy_loss_distribution as pld_lib
from dp_accounting.rdp import rdp_privacy_accountant

from secagg.ddp.accounting import DistributedDpAccountant
from secagg.errors import ensure

__all__ = [
    "clip_l2",
    "client_round_event",
    "record_steps_event",
    "epsilon_of",
    "ClientAccountant",
    "RecordAccountant",
    "AdaptiveClip",
    "split_noise_multiplier",
    "membership_tpr_bound",
    "Ledger",
]

_REL = dp_accounting.NeighboringRelation
_PLD_INTERVAL = 1e-4  # dp-accounting's PLDAccountant default discretisation


def clip_l2(vector: np.ndarray, clip: float) -> tuple[np.ndarray, float]:
    """Scale ``vector`` down so its L2 norm is at most ``clip``; return it and the original norm."""
    ensure(clip > 0, f"clip must be > 0, got {clip}")
    norm = float(np.linalg.norm(vector))
    if norm > clip:
        # Dividing by a float can land one ulp above clip; shrink the factor until it holds.
        factor = clip / norm
        out = vector * factor
        while float(np.linalg.norm(out)) > clip:
            factor = np.nextafter(factor, 0.0)
            out = vector * factor
        return out, norm
    return vector.copy(), norm


def client_round_event(noise_multiplier: float, sampling: str, *, rate: float | None = None,
                       population: int | None = None, sample_size: int | None = None
                       ) -> tuple[dp_event.DpEvent, dp_accounting.NeighboringRelation]:
    """The dp-accounting event of one DP-FedAvg round and its neighbouring relation."""
    gauss = dp_event.GaussianDpEvent(noise_multiplier)
    if sampling == "poisson":
        ensure(rate is not None and 0 < rate <= 1, f"rate must be in (0, 1], got {rate}")
        return dp_event.PoissonSampledDpEvent(rate, gauss), _REL.ADD_OR_REMOVE_ONE
    ensure(sampling == "fixed", f"sampling must be 'poisson' or 'fixed', got {sampling!r}")
    ensure(population is not None and sample_size is not None and 0 < sample_size <= population,
           f"need 0 < sample_size <= population, got {sample_size} of {population}")
    return (dp_event.SampledWithoutReplacementDpEvent(
        population, sample_size, dp_event.GaussianDpEvent(noise_multiplier / 2.0)),
        _REL.REPLACE_ONE)


def record_steps_event(noise_multiplier: float, rate: float, steps: int) -> dp_event.DpEvent:
    """The event of ``steps`` DP-SGD steps with Poisson batches of rate ``rate``."""
    return dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(rate, dp_event.GaussianDpEvent(noise_multiplier)), steps)


def epsilon_of(event: dp_event.DpEvent, delta: float, accountant: str = "pld",
               relation: dp_accounting.NeighboringRelation = _REL.ADD_OR_REMOVE_ONE) -> float:
    """Epsilon at ``delta`` of ``event`` with dp-accounting's PLD or RDP accountant.

    dp-accounting's own warnings (for example RDP orders it skips) are left to reach the user.
    """
    ensure(0 < delta < 1, f"delta must be in (0, 1), got {delta}")
    if accountant == "rdp":
        acc = rdp_privacy_accountant.RdpAccountant(neighboring_relation=relation)
    else:
        ensure(accountant == "pld", f"accountant must be 'pld' or 'rdp', got {accountant!r}")
        ensure(relation == _REL.ADD_OR_REMOVE_ONE,
               "the PLD accountant here supports Poisson sampling only; use --accountant rdp")
        acc = pld_privacy_accountant.PLDAccountant(neighboring_relation=relation)
    acc.compose(event)
    return float(acc.get_epsilon(delta))


class _PldChain:
    """PLDs of t compositions of one fixed PLD, built from the PLD of t - 1 when it is known.

    Charging round r onto the PLD of rounds 1..r-1 costs one convolution, where rebuilding
    ``SelfComposed(event, r)`` from scratch every round costs a self-composition each time.
    A jump to a count with no predecessor (a first query at t = 1000) self-composes once.
    """

    def __init__(self, one: pld_lib.PrivacyLossDistribution) -> None:
        self._plds: dict[int, pld_lib.PrivacyLossDistribution] = {1: one}
        self._eps: dict[tuple[int, float], float] = {}

    def _pld(self, times: int) -> pld_lib.PrivacyLossDistribution:
        if times not in self._plds:
            before = self._plds.get(times - 1)
            self._plds[times] = (before.compose(self._plds[1]) if before is not None
                                 else self._plds[1].self_compose(times))
            if times - 2 > 1:  # counts only grow: keep the base and the last two
                self._plds.pop(times - 2, None)
        return self._plds[times]

    def epsilon(self, times: int, delta: float) -> float:
        """Epsilon at ``delta`` after ``times`` compositions (0 for none)."""
        if times <= 0:
            return 0.0
        key = (times, delta)
        if key not in self._eps:
            self._eps[key] = float(self._pld(times).get_epsilon_for_delta(delta))
        return self._eps[key]


def _poisson_gaussian_pld(noise_multiplier: float, rate: float, steps: int = 1
                          ) -> pld_lib.PrivacyLossDistribution:
    """PLD of ``steps`` Poisson-subsampled Gaussian steps, as dp-accounting's PLDAccountant builds it."""
    one = pld_lib.from_gaussian_mechanism(noise_multiplier, sampling_prob=rate,
                                          value_discretization_interval=_PLD_INTERVAL)
    return one if steps == 1 else one.self_compose(steps)


@dataclass(frozen=True)
class ClientAccountant:
    """Client-level epsilon after r released rounds of DP-FedAvg with the sampling actually used."""

    noise_multiplier: float
    sampling: str
    delta: float
    accountant: str = "pld"
    rate: float | None = None
    population: int | None = None
    sample_size: int | None = None
    unit: str = "client"  # "record" for cross-silo DP-SGD (one step per round)
    _chain: list[_PldChain] = field(default_factory=list, compare=False, repr=False)

    def describe(self) -> str:
        """One line naming the event and neighbouring relation used."""
        if self.sampling == "poisson":
            return (f"{self.unit}-level, secret Poisson sampling q={self.rate:g}, Gaussian"
                    f" z={self.noise_multiplier:g}, add/remove-one-{self.unit},"
                    f" {self.accountant.upper()}")
        return (f"client-level, secret fixed-size sampling {self.sample_size} of {self.population}"
                f" without replacement, Gaussian z={self.noise_multiplier:g} (z/2 per replace-one"
                f" sensitivity 2C), replace-one-client, {self.accountant.upper()}")

    def epsilon(self, rounds: int) -> float:
        """Epsilon at ``delta`` after ``rounds`` released rounds (PLD composed incrementally)."""
        if rounds <= 0:
            return 0.0
        if self.accountant == "pld" and self.sampling == "poisson":
            if not self._chain:
                self._chain.append(_PldChain(_poisson_gaussian_pld(self.noise_multiplier,
                                                                   float(self.rate))))
            return self._chain[0].epsilon(rounds, self.delta)
        event, rel = client_round_event(self.noise_multiplier, self.sampling, rate=self.rate,
                                        population=self.population,
                                        sample_size=self.sample_size)
        return epsilon_of(dp_event.SelfComposedDpEvent(event, rounds), self.delta,
                          self.accountant, rel)


@dataclass(frozen=True)
class RecordAccountant:
    """Record-level epsilon: the worst client's composition of its own DP-SGD steps.

    With PLD each (batch rate, steps per round) pair keeps a chain of PLDs, one per number
    of rounds taken part in, so a new round costs one composition per pair that moved.
    """

    noise_multiplier: float
    delta: float
    rates: tuple[float, ...]
    steps_per_round: tuple[int, ...]
    accountant: str = "pld"
    _chains: dict[tuple[float, int], _PldChain] = field(default_factory=dict, compare=False,
                                                        repr=False)
    _rdp: dict[tuple[float, int], float] = field(default_factory=dict, compare=False, repr=False)

    def describe(self) -> str:
        """One line naming the event and neighbouring relation used."""
        return (f"record-level DP-SGD, secret Poisson batches per client, Gaussian"
                f" z={self.noise_multiplier:g}, add/remove-one-record, composed over each client's"
                f" own steps in released rounds (max over clients), {self.accountant.upper()}")

    def _client_epsilon(self, rate: float, steps: int, times: int) -> float:
        if self.accountant == "pld":
            key = (rate, steps)
            if key not in self._chains:
                self._chains[key] = _PldChain(_poisson_gaussian_pld(self.noise_multiplier, rate,
                                                                    steps))
            return self._chains[key].epsilon(times, self.delta)
        total = (rate, steps * times)
        if total not in self._rdp:
            self._rdp[total] = epsilon_of(record_steps_event(self.noise_multiplier, rate,
                                                             steps * times), self.delta, "rdp")
        return self._rdp[total]

    def epsilon(self, participations: Sequence[int]) -> float:
        """Max over clients of epsilon after each took part ``participations[i]`` times."""
        # Epsilon grows with the batch rate and with the total steps, so a client whose rate
        # and total are both no larger than another's cannot be the worst: skip it (exact).
        clients = sorted({(rate, steps * int(times), steps, int(times)) for rate, steps, times
                          in zip(self.rates, self.steps_per_round, participations, strict=False)
                          if int(times) > 0}, reverse=True)
        worst, most = 0.0, -1
        for rate, total, steps, times in clients:  # by rate, highest first
            if total > most:
                worst = max(worst, self._client_epsilon(rate, steps, times))
                most = total
        return worst


def split_noise_multiplier(noise_multiplier: float, bit_noise_std: float) -> float:
    """Update noise z_delta so updates plus clipped-count bits compose to z (Andrew et al. 2021)."""
    ensure(2.0 * bit_noise_std > noise_multiplier,
           f"adaptive clipping needs 2*sigma_b > z (sigma_b={bit_noise_std:g}, z={noise_multiplier:g})")
    return (noise_multiplier ** -2 - (2.0 * bit_noise_std) ** -2) ** -0.5


@dataclass(frozen=True)
class AdaptiveClip:
    """Geometric quantile update of the clip norm (Andrew et al., NeurIPS 2021)."""

    clip: float
    target_quantile: float = 0.5
    learning_rate: float = 0.2

    def updated(self, unclipped_fraction: float) -> AdaptiveClip:
        """Next clip after a round where ``unclipped_fraction`` of updates had norm <= clip."""
        step = math.exp(-self.learning_rate * (unclipped_fraction - self.target_quantile))
        return AdaptiveClip(self.clip * step, self.target_quantile, self.learning_rate)


def membership_tpr_bound(epsilon: float, delta: float, fpr: float = 1e-3) -> float:
    """Largest true-positive rate at false-positive rate ``fpr`` that (epsilon, delta)-DP allows.

    Any membership test against an (epsilon, delta)-DP mechanism has
    TPR <= min(e^eps * FPR + delta, 1 - e^-eps * (1 - delta - FPR)) (Kairouz, Oh and Viswanath
    2015, the hypothesis-testing region of (epsilon, delta)-DP); capped at 1.
    """
    ensure(epsilon >= 0 and 0 <= delta < 1 and 0 <= fpr <= 1,
           f"need epsilon >= 0, delta in [0, 1), fpr in [0, 1]; got {epsilon}, {delta}, {fpr}")
    if math.isinf(epsilon):
        return 1.0
    first = math.exp(epsilon) * fpr + delta
    second = 1.0 - math.exp(-epsilon) * (1.0 - delta - fpr)
    return float(min(1.0, first, second))


#: What a Ledger can charge: client level, record level per client, or distributed DP.
Accountant = ClientAccountant | RecordAccountant | DistributedDpAccountant


class Ledger:
    """Charges released rounds to an accountant and answers "what if one more?".

    Client level: each released round is one composition. Record level: each client that
    sent an update in a released round has its DP-SGD steps of that round composed. A round
    that aborted released nothing and is never charged.
    """

    def __init__(self, accountant: Accountant | None, population: int) -> None:
        self.accountant = accountant
        self.rounds = 0
        self.participations = np.zeros(population, dtype=np.int64)

    def describe(self) -> str:
        """The accountant's one-line description, or that there is no DP."""
        return self.accountant.describe() if self.accountant is not None \
            else "no differential privacy (no noise: clipping alone gives no guarantee)"

    def _epsilon(self, rounds: int, participations: np.ndarray) -> float | None:
        if isinstance(self.accountant, (ClientAccountant, DistributedDpAccountant)):
            return self.accountant.epsilon(rounds)
        if isinstance(self.accountant, RecordAccountant):
            return self.accountant.epsilon(participations.tolist())
        return None

    @property
    def epsilon(self) -> float | None:
        """Epsilon spent so far (None without DP)."""
        return self._epsilon(self.rounds, self.participations)

    def peek(self, participants: np.ndarray) -> float | None:
        """Epsilon if a round with ``participants`` (client indices) were released now."""
        parts = self.participations.copy()
        parts[participants] += 1
        return self._epsilon(self.rounds + 1, parts)

    def charge(self, participants: np.ndarray) -> float | None:
        """Record a released round with ``participants``; return the epsilon spent so far."""
        self.rounds += 1
        self.participations[participants] += 1
        return self.epsilon
