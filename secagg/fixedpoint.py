"""Fixed-point encoding: float vectors <-> integers mod 2^bits, with clipping.

Each value is clipped to [-clip, clip], multiplied by ``scale`` and rounded
stochastically without bias (up with probability equal to the fractional part), so
the expected encoding is exactly ``clip(x) * scale`` and a sum of n encodings decodes
to within n/scale of the sum of the clipped inputs. Values are stored in two's
complement mod 2^bits (uint32 for bits <= 32, uint64 above), so encodings can be
summed and masked modulo 2^bits; ``decode`` reads them back as signed.

The rounding randomness is the core's ChaCha20 keystream under a 32-byte seed drawn
from ``os.urandom`` per call (32 random bits per element; see csrc/cdef/fixedpoint.h).
NaN and infinity are refused, never encoded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from secagg import bindings
from secagg.errors import SecAggTypeError, ensure

__all__ = ["encode", "decode", "FixedPoint"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def encode(
    x: np.ndarray, *, clip: float, scale: float, bits: int, seed: bytes | None = None
) -> tuple[np.ndarray, int]:
    """Encode a 1-D float32/float64 vector mod 2^bits; returns (encoded, number clipped).

    Non-contiguous or misaligned input is copied first. ``seed`` (32 bytes) makes the
    rounding reproducible, for tests; by default a fresh one comes from ``os.urandom``.
    Requires ceil(clip * scale) <= 2^(bits-1) - 1 so every rounded value fits.
    """
    ensure(
        isinstance(x, np.ndarray),
        f"x must be a numpy.ndarray, got {type(x).__name__}",
        raising=SecAggTypeError,
    )
    if x.dtype not in _FLOAT_DTYPES:
        raise SecAggTypeError(f"x must have dtype float32 or float64, got {x.dtype}")
    ensure(x.ndim == 1, f"x must be 1-D, got shape {x.shape}")
    x = np.require(x, requirements=["C", "A"])
    if seed is None:
        seed = os.urandom(bindings.FIXEDPOINT_SEEDBYTES)
    return bindings.secagg_fixedpoint_encode(x, clip, scale, bits, seed)


def decode(v: np.ndarray, *, scale: float, bits: int) -> np.ndarray:
    """Decode integers mod 2^bits (typically a sum of encodings) to float64, read as signed."""
    return bindings.secagg_fixedpoint_decode(v, scale, bits)


@dataclass(frozen=True)
class FixedPoint:
    """Encoding parameters, checked once: clip bound, scale (units per 1.0) and bit width."""

    clip: float
    scale: float
    bits: int

    def __post_init__(self) -> None:
        clip, scale, bits = bindings._ensure_fixedpoint_params(self.clip, self.scale, self.bits)
        object.__setattr__(self, "clip", clip)
        object.__setattr__(self, "scale", scale)

    def encode(self, x: np.ndarray, seed: bytes | None = None) -> tuple[np.ndarray, int]:
        """Encode ``x`` with these parameters; returns (encoded, number clipped)."""
        return encode(x, clip=self.clip, scale=self.scale, bits=self.bits, seed=seed)

    def decode(self, v: np.ndarray) -> np.ndarray:
        """Decode ``v`` (mod 2^bits) to float64 with this scale."""
        return decode(v, scale=self.scale, bits=self.bits)
