"""Exact integer noise for distributed DP: discrete Gaussian and Skellam.

Thin layer over the C samplers (csrc/noise.c, documented in csrc/cdef/noise.h):
parameters are exact rationals (``fractions.Fraction`` or ``int``), never floats,
so what is sampled is exactly what the accountant is told. Randomness is the
core's ChaCha20 keyed by a fresh ``os.urandom(32)`` per call unless a seed is
given (for tests and reproducible examples only: noise from a known seed is no
noise). numpy's and Python's generators are never used.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np

from secagg import bindings
from secagg.errors import SecAggTypeError, ensure

__all__ = [
    "Rational",
    "rational_at_least",
    "discrete_gaussian",
    "skellam",
    "poisson",
]

Rational = Fraction | int


def _as_fraction(value: object, name: str) -> Fraction:
    ensure(
        isinstance(value, (Fraction, int)) and not isinstance(value, bool),
        f"{name} must be an int or fractions.Fraction (exact), got {type(value).__name__}",
        raising=SecAggTypeError,
    )
    assert isinstance(value, (Fraction, int))  # narrowed by the check above
    return Fraction(value)


def rational_at_least(x: float, max_den: int) -> Fraction:
    """The smallest k/max_den >= x (reduced): a float parameter made exact, rounded up.

    Rounding a noise variance up only adds noise, so a guarantee computed for the
    returned value holds for it exactly.
    """
    ensure(math.isfinite(x) and x >= 0, f"value must be finite and >= 0, got {x!r}")
    ensure(isinstance(max_den, int) and max_den >= 1, f"max_den must be an int >= 1, got {max_den!r}")
    f = Fraction(x)
    return Fraction(math.ceil(f * max_den), max_den)


def _seed(seed: bytes | None) -> bytes:
    return os.urandom(bindings.NOISE_SEEDBYTES) if seed is None else seed


def discrete_gaussian(m: int, variance: Rational, *, seed: bytes | None = None) -> np.ndarray:
    """``m`` i.i.d. draws of N_Z(0, variance): P(x) proportional to exp(-x^2 / (2 variance)).

    ``variance`` is the parameter sigma^2 (the true variance is slightly below it for
    sigma < 1); denominator <= 2^16 and sigma^2 <= 2^40. Returns int64.
    """
    v = _as_fraction(variance, "variance")
    return bindings.secagg_noise_dgauss(m, v.numerator, v.denominator, _seed(seed))


def skellam(m: int, mu: Rational, *, seed: bytes | None = None) -> np.ndarray:
    """``m`` i.i.d. draws of Skellam(mu, mu) = Poisson(mu) - Poisson(mu); variance 2 mu.

    Exact; O(sqrt(mu)) expected work per draw for mu >= 6 (rejection from a two-sided
    geometric with rational acceptance factors), O(mu) below; csrc/cdef/noise.h has the
    derivation. mu <= 2^24, denominator <= 2^32. Returns int64.
    """
    mu = _as_fraction(mu, "mu")
    return bindings.secagg_noise_skellam(m, mu.numerator, mu.denominator, _seed(seed))


def poisson(m: int, mu: Rational, *, seed: bytes | None = None) -> np.ndarray:
    """``m`` i.i.d. exact Poisson(mu) draws (int64), mu <= 2^24; O(sqrt(mu)) work for mu >= 6."""
    mu = _as_fraction(mu, "mu")
    return bindings.secagg_noise_poisson(m, mu.numerator, mu.denominator, _seed(seed))
