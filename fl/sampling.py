"""Secret sampling: which clients take part in a round, which records form a DP-SGD batch.

Privacy amplification by subsampling (the ``PoissonSampled`` events the accountant
charges) holds only if the adversary cannot tell who was sampled. So every draw here
comes from the OS CSPRNG: a fresh ``os.urandom(32)`` keys the core's ChaCha20
(``fl.noise.uniforms_from_key``) for each call, never numpy's or torch's generators and
never ``--seed``, which is published in summary.json and only fixes the data split and
the model's initial weights. Two runs with the same seed draw different cohorts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from fl.noise import uniforms_from_key
from secagg.errors import ensure

__all__ = ["secret_uniforms", "poisson_sample", "fixed_size_sample", "poisson_mask", "CohortSampler"]


def secret_uniforms(count: int) -> np.ndarray:
    """``count`` float64 uniforms in (0, 1] from ChaCha20 keyed by a fresh ``os.urandom(32)``."""
    return uniforms_from_key(os.urandom(32), count)


def poisson_sample(population: int, rate: float) -> np.ndarray:
    """Indices of a Poisson sample: each of ``population`` members independently with ``rate``."""
    ensure(0 < rate <= 1, f"rate must be in (0, 1], got {rate}")
    # u is in (0, 1], so u <= rate keeps each member with probability exactly rate (to 2^-53).
    return np.flatnonzero(secret_uniforms(population) <= rate)


def fixed_size_sample(population: int, size: int) -> np.ndarray:
    """Sorted indices of a uniform ``size``-subset of ``range(population)`` (no replacement)."""
    ensure(0 < size <= population, f"need 0 < size <= population, got {size} of {population}")
    # The ranks of i.i.d. uniforms are a uniform permutation (ties have probability ~n^2 2^-53).
    return np.sort(np.argsort(secret_uniforms(population), kind="stable")[:size])


def poisson_mask(n: int, rate: float) -> torch.Tensor:
    """A bool tensor of length ``n``, each entry True with probability ``rate`` (DP-SGD batches)."""
    return torch.from_numpy(secret_uniforms(n) <= rate)


@dataclass(frozen=True)
class CohortSampler:
    """Draws each round's cohort: Poisson with ``rate``, or ``size`` clients without replacement."""

    population: int
    rate: float | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        """Exactly one of ``rate`` and ``size``."""
        ensure((self.rate is None) != (self.size is None), "give exactly one of rate and size")
        if self.size is not None:
            ensure(self.size <= self.population,
                   f"--clients-per-round {self.size} exceeds --clients {self.population}")

    @property
    def expected(self) -> float:
        """Expected cohort size (public: it is a function of the configuration only)."""
        return float(self.size) if self.size is not None else self.rate * self.population

    def draw(self) -> np.ndarray:
        """Sorted client indices for one round, drawn from the OS CSPRNG."""
        if self.size is not None:
            return fixed_size_sample(self.population, self.size)
        return poisson_sample(self.population, self.rate)
