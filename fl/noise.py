"""Gaussian noise for differential privacy from a cryptographically seeded stream.

Every draw takes a fresh 32-byte key from ``os.urandom`` and expands it with the
core's ChaCha20 (``secagg.prg.keystream``); the bytes become 53-bit uniforms and
Box–Muller turns pairs of them into standard normals in float64. numpy's and
torch's generators are never used for noise.

Caveat (Mironov, CCS 2012): a floating-point sampler is not an exact real-valued
Gaussian; the set of reachable doubles and their low-order bits depend on the
noiseless value, so in theory the guarantee of the idealised mechanism does not
carry over exactly. We do not implement snapping or a discrete Gaussian; the
epsilon we report is the one for real-valued noise.
"""

from __future__ import annotations

import os

import numpy as np

from secagg.errors import ensure
from secagg.prg import keystream

__all__ = ["gaussian", "uniforms_from_key", "gaussian_from_key"]

_NONCE = bytes(12)
_TWO_POW_M53 = 2.0 ** -53


def uniforms_from_key(key: bytes, count: int) -> np.ndarray:
    """``count`` float64 uniforms in (0, 1] from ChaCha20(key): 53 bits of each 64-bit word."""
    ensure(isinstance(count, int) and count >= 0, f"count must be an int >= 0, got {count!r}")
    words = np.frombuffer(keystream(key, _NONCE, 8 * count), dtype="<u8")
    return ((words >> np.uint64(11)).astype(np.float64) + 1.0) * _TWO_POW_M53


def gaussian_from_key(key: bytes, count: int, std: float) -> np.ndarray:
    """``count`` N(0, std^2) samples by Box–Muller from ChaCha20(key) (deterministic in key)."""
    ensure(np.isfinite(std) and std >= 0, f"std must be finite and >= 0, got {std!r}")
    pairs = (count + 1) // 2
    u = uniforms_from_key(key, 2 * pairs)
    radius = np.sqrt(-2.0 * np.log(u[:pairs]))
    angle = 2.0 * np.pi * u[pairs:]
    out = np.empty(2 * pairs, dtype=np.float64)
    out[0::2] = radius * np.cos(angle)
    out[1::2] = radius * np.sin(angle)
    return out[:count] * std


def gaussian(count: int, std: float) -> np.ndarray:
    """``count`` N(0, std^2) samples from ChaCha20 keyed by a fresh ``os.urandom(32)``."""
    return gaussian_from_key(os.urandom(32), count, std)
