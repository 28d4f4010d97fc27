"""Pure-numpy reference implementations of the C kernels.

Slow and simple on purpose: the tests use them as the oracle that the C paths
must match bit for bit. Nothing in the protocol calls them.
"""

from __future__ import annotations

import numpy as np

from secagg.prg import keystream

__all__: list[str] = [
    "reference_rounding_words",
    "reference_encode",
    "reference_decode",
    "reference_pack",
    "reference_unpack",
    "shamir_interpolate",
]


# --- fixedpoint ---------------------------------------------------------------


def reference_rounding_words(seed: bytes, m: int) -> np.ndarray:
    """The m uint32 words that drive the rounding of encode(seed=seed): ChaCha20, zero nonce."""
    return np.frombuffer(keystream(seed, bytes(12), 4 * m), dtype="<u4").astype(np.uint32)


def reference_encode(
    x: np.ndarray, clip: float, scale: float, bits: int, uniforms: np.ndarray
) -> tuple[np.ndarray, int]:
    """Clip, scale, round up iff uniforms[i] < frac * 2^32, reduce mod 2^bits; (out, clipped)."""
    x = np.asarray(x).astype(np.float64)
    n_clipped = int(np.count_nonzero((x > clip) | (x < -clip)))
    y = np.clip(x, -clip, clip) * scale
    f = np.floor(y)
    up = np.asarray(uniforms, dtype=np.uint32).astype(np.float64) < (y - f) * 2.0**32
    k = (f.astype(np.int64) + up).astype(np.uint64)
    mask = np.uint64(2**bits - 1)
    dtype = np.uint32 if bits <= 32 else np.uint64
    return (k & mask).astype(dtype), n_clipped


def reference_decode(v: np.ndarray, scale: float, bits: int) -> np.ndarray:
    """Read each value as a signed bits-bit integer and divide by scale."""
    w = np.asarray(v).astype(np.uint64)
    sign = np.uint64(1 << (bits - 1))
    signed = ((w ^ sign) - sign).view(np.int64)  # sign extension mod 2^64
    return signed.astype(np.float64) / scale


# --- pack ---------------------------------------------------------------------


def reference_pack(v: np.ndarray, bits: int) -> bytes:
    """Little-endian bit stream: bit j of element i is stream bit i*bits + j."""
    w = np.asarray(v).astype(np.uint64)
    stream = ((w[:, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    return np.packbits(stream.reshape(-1), bitorder="little").tobytes()


def reference_unpack(data: bytes, m: int, bits: int) -> np.ndarray:
    """Inverse of reference_pack (no length or pad checks: it is an oracle, not a parser)."""
    stream = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    rows = stream[: m * bits].reshape(m, bits).astype(np.uint64)
    w = (rows << np.arange(bits, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    return w.astype(np.uint32 if bits <= 32 else np.uint64)


# --- shamir -------------------------------------------------------------------


def shamir_interpolate(
    points: list[int], values: list[int], at: int, prime: int = (1 << 61) - 1
) -> int:
    """The value at ``at`` of the polynomial of degree < len(points) through the points."""
    total = 0
    for i, (xi, yi) in enumerate(zip(points, values, strict=True)):
        num = den = 1
        for j, xj in enumerate(points):
            if j != i:
                num = num * (at - xj) % prime
                den = den * (xi - xj) % prime
        total = (total + yi * num * pow(den, -1, prime)) % prime
    return total
