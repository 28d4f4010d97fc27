"""Client-level and record-level differential privacy: clipping and accounting.

Accounting uses Google's ``dp-accounting`` (RDP by default, PLD on request):

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

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import dp_accounting
import numpy as np
from dp_accounting import dp_event
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

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
]

_REL = dp_accounting.NeighboringRelation


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


@contextlib.contextmanager
def _quiet_absl() -> Iterator[None]:
    """Silence dp-accounting's per-order convergence warnings (those orders are just skipped)."""
    log = logging.getLogger("absl")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def epsilon_of(event: dp_event.DpEvent, delta: float, accountant: str = "rdp",
               relation: dp_accounting.NeighboringRelation = _REL.ADD_OR_REMOVE_ONE) -> float:
    """Epsilon at ``delta`` of ``event`` with dp-accounting's RDP or PLD accountant."""
    ensure(0 < delta < 1, f"delta must be in (0, 1), got {delta}")
    if accountant == "rdp":
        acc = rdp_privacy_accountant.RdpAccountant(neighboring_relation=relation)
    else:
        ensure(accountant == "pld", f"accountant must be 'rdp' or 'pld', got {accountant!r}")
        ensure(relation == _REL.ADD_OR_REMOVE_ONE,
               "the PLD accountant here supports Poisson sampling only; use --accountant rdp")
        acc = pld_privacy_accountant.PLDAccountant(neighboring_relation=relation)
    with _quiet_absl():
        acc.compose(event)
        return float(acc.get_epsilon(delta))


@dataclass(frozen=True)
class ClientAccountant:
    """Client-level epsilon after r rounds of DP-FedAvg with the sampling actually used."""

    noise_multiplier: float
    sampling: str
    delta: float
    accountant: str = "rdp"
    rate: float | None = None
    population: int | None = None
    sample_size: int | None = None

    def describe(self) -> str:
        """One line naming the event and neighbouring relation used."""
        if self.sampling == "poisson":
            return (f"client-level, Poisson sampling q={self.rate:g}, Gaussian z={self.noise_multiplier:g},"
                    f" add/remove-one-client, {self.accountant.upper()}")
        return (f"client-level, fixed-size sampling {self.sample_size} of {self.population} without"
                f" replacement, Gaussian z={self.noise_multiplier:g} (z/2 per replace-one"
                f" sensitivity 2C), replace-one-client, {self.accountant.upper()}")

    def epsilon(self, rounds: int) -> float:
        """Epsilon at ``delta`` after ``rounds`` rounds."""
        if rounds <= 0:
            return 0.0
        event, rel = client_round_event(self.noise_multiplier, self.sampling, rate=self.rate,
                                        population=self.population,
                                        sample_size=self.sample_size)
        return epsilon_of(dp_event.SelfComposedDpEvent(event, rounds), self.delta,
                          self.accountant, rel)


@dataclass(frozen=True)
class RecordAccountant:
    """Record-level epsilon: the worst client's composition of its own DP-SGD steps."""

    noise_multiplier: float
    delta: float
    rates: tuple[float, ...]
    steps_per_round: tuple[int, ...]
    accountant: str = "rdp"

    def describe(self) -> str:
        """One line naming the event and neighbouring relation used."""
        return (f"record-level DP-SGD, Poisson batches per client, Gaussian"
                f" z={self.noise_multiplier:g}, add/remove-one-record, composed over each client's"
                f" own steps (max over clients), {self.accountant.upper()}")

    def epsilon(self, participations: Sequence[int]) -> float:
        """Max over clients of epsilon after each took part ``participations[i]`` times."""
        cache: dict[tuple[float, int], float] = {}
        worst = 0.0
        for rate, steps, times in zip(self.rates, self.steps_per_round, participations, strict=False):
            total = steps * int(times)
            if total == 0:
                continue
            key = (rate, total)
            if key not in cache:
                cache[key] = epsilon_of(record_steps_event(self.noise_multiplier, rate, total),
                                        self.delta, self.accountant)
            worst = max(worst, cache[key])
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
