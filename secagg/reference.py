"""Pure-numpy reference implementations of the C kernels.

Slow and simple on purpose: the tests use them as the oracle that the C paths
must match bit for bit. Nothing in the protocol calls them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from secagg.prg import keystream

__all__: list[str] = [
    "reference_rounding_words",
    "reference_encode",
    "reference_decode",
    "reference_pack",
    "reference_unpack",
    "shamir_interpolate",
    "reference_chacha20_blocks",
    "reference_accumulate_masks",
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
    out: np.ndarray = w.astype(np.uint32 if bits <= 32 else np.uint64)
    return out


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


# --- mask ---------------------------------------------------------------------


def _rotl(x: np.ndarray, n: int) -> np.ndarray:
    return (x << np.uint32(n)) | (x >> np.uint32(32 - n))


def reference_chacha20_blocks(key: bytes, nonce: bytes, counter: int, nblocks: int) -> np.ndarray:
    """RFC 8439 ChaCha20 blocks counter .. counter+nblocks-1 as uint32 words, shape (nblocks, 16).

    Written from the RFC with numpy, independent of the C core, so it can check it.
    """
    const = np.frombuffer(b"expand 32-byte k", dtype="<u4")
    init = np.empty((16, nblocks), dtype=np.uint32)
    init[0:4] = const[:, None]
    init[4:12] = np.frombuffer(key, dtype="<u4")[:, None]
    init[12] = (counter + np.arange(nblocks, dtype=np.uint64)).astype(np.uint32)
    init[13:16] = np.frombuffer(nonce, dtype="<u4")[:, None]
    x = [row.copy() for row in init]

    def quarter(a: int, b: int, c: int, d: int) -> None:
        x[a] += x[b]; x[d] = _rotl(x[d] ^ x[a], 16)  # noqa: E702
        x[c] += x[d]; x[b] = _rotl(x[b] ^ x[c], 12)  # noqa: E702
        x[a] += x[b]; x[d] = _rotl(x[d] ^ x[a], 8)  # noqa: E702
        x[c] += x[d]; x[b] = _rotl(x[b] ^ x[c], 7)  # noqa: E702

    for _ in range(10):
        for a, b, c, d in ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
                           (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)):
            quarter(a, b, c, d)
    return (np.stack(x) + init).T.copy()


def reference_accumulate_masks(
    acc: np.ndarray,
    keys: list[bytes],
    signs: list[int],
    bits: int,
    stream: Callable[[bytes, int], bytes] | None = None,
) -> np.ndarray:
    """(acc + sum_k signs[k] * mask(keys[k])) mod 2^bits, from the numpy ChaCha20 above.

    Element i of a mask: little-endian word i (32-bit if bits <= 32, else 64-bit)
    of the keystream with the zero nonce from block 0, reduced mod 2^bits.
    ``stream(key, nbytes)``, if given, supplies that keystream instead (e.g. an
    independent AES-256-CTR).
    """
    dtype = np.uint32 if bits <= 32 else np.uint64
    m = len(acc)
    words = m if bits <= 32 else 2 * m
    total = np.asarray(acc).astype(np.uint64)
    for key, sign in zip(keys, signs, strict=True):
        if stream is None:
            ks = reference_chacha20_blocks(key, bytes(12), 0, -(-words // 16)).reshape(-1)[:words]
        else:
            ks = np.frombuffer(stream(key, 4 * words), dtype="<u4").astype(np.uint32)
        wide = ks.astype("<u4").view("<u8").astype(np.uint64) if bits > 32 else None
        mask = ks.astype(np.uint64) if wide is None else wide
        total = total + mask if sign > 0 else total - mask  # wraps mod 2^64
    return (total & np.uint64(2**bits - 1)).astype(dtype)
