"""Shamir t-of-n secret sharing of 32-byte secrets over GF(2^61 - 1), with a C core.

A secret is split into ``CHUNKS`` little-endian chunks of ``CHUNK_BYTES`` bytes (the
last zero-padded), each below the prime; each chunk is shared with its own random
polynomial of degree t-1 whose coefficients come from ``os.urandom`` by rejection
sampling. A share is the chunks' evaluations at x, as ``CHUNKS`` little-endian
uint64 (``SHARE_BYTES``). Any t shares give the secret; t-1 reveal nothing.

The x-coordinates are chosen by the caller (client index + 1): distinct, nonzero,
below the prime. Shares arriving from the network are checked (length, every
element below the prime, padding after reconstruction) and a bad one raises
``InvalidShareError``, a ``RemoteProtocolError``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from secagg import bindings
from secagg.bindings import _ensure_bytes, _ensure_int
from secagg.errors import RemoteProtocolError, SecAggTypeError, SecAggValueError, ensure

__all__ = [
    "PRIME",
    "SECRET_BYTES",
    "CHUNK_BYTES",
    "CHUNKS",
    "SHARE_BYTES",
    "InvalidShareError",
    "check_share",
    "split",
    "reconstruct",
    "Reconstructor",
]

PRIME: int = bindings.SHAMIR_PRIME
SECRET_BYTES = 32
CHUNK_BYTES = 7  # 56 bits < 61: every chunk is a field element
CHUNKS = -(-SECRET_BYTES // CHUNK_BYTES)
SHARE_BYTES = 8 * CHUNKS
_PADDED = CHUNKS * CHUNK_BYTES
_U64 = np.dtype(np.uint64)  # native byte order: what the C core reads and writes
_WIRE = np.dtype("<u8")  # shares and secret chunks as bytes: little-endian on every host
_MASK61 = np.uint64((1 << 61) - 1)

assert PRIME == (1 << 61) - 1 and CHUNK_BYTES * 8 < 61


class InvalidShareError(RemoteProtocolError):
    """A received share is malformed, or the shares do not lie on one polynomial."""


def _random_field_elements(count: int) -> np.ndarray:
    """``count`` uniform elements of [0, PRIME) from os.urandom, by rejection (no bias)."""
    out = np.frombuffer(os.urandom(8 * count), dtype=_U64) & _MASK61
    bad = np.flatnonzero(out == PRIME)  # the only 61-bit value >= PRIME
    while len(bad):
        out[bad] = np.frombuffer(os.urandom(8 * len(bad)), dtype=_U64) & _MASK61
        bad = bad[out[bad] == PRIME]
    return out


def _to_wire(arr: np.ndarray) -> bytes:
    """Field elements (native uint64) as little-endian 8-byte words, whatever the host."""
    return arr.astype(_WIRE, copy=False).tobytes()


def _from_wire(data: bytes | memoryview) -> np.ndarray:
    """Little-endian 8-byte words as a fresh native uint64 array the C core accepts."""
    return np.frombuffer(data, dtype=_WIRE).astype(_U64)


def _encode_secret(secret: bytes) -> np.ndarray:
    """32 bytes → CHUNKS field elements (little-endian 7-byte chunks, zero-padded)."""
    padded = secret + bytes(_PADDED - SECRET_BYTES)
    raw = np.frombuffer(padded, dtype=np.uint8).reshape(CHUNKS, CHUNK_BYTES)
    wide = np.zeros((CHUNKS, 8), dtype=np.uint8)
    wide[:, :CHUNK_BYTES] = raw
    chunks = _from_wire(wide.data)
    bindings.secagg_memzero(wide)
    return chunks


def _decode_secret(chunks: np.ndarray) -> bytes:
    """CHUNKS field elements → 32 bytes; anything out of range means inconsistent shares."""
    raw = np.frombuffer(_to_wire(chunks), dtype=np.uint8).reshape(CHUNKS, 8)
    ensure(
        not raw[:, CHUNK_BYTES:].any(),
        "shares are inconsistent: the interpolated secret is out of range",
        raising=InvalidShareError,
    )
    padded = raw[:, :CHUNK_BYTES].tobytes()
    ensure(
        not any(padded[SECRET_BYTES:]),
        "shares are inconsistent: the interpolated secret has nonzero padding",
        raising=InvalidShareError,
    )
    return padded[:SECRET_BYTES]


def _ensure_xs(xs: object) -> np.ndarray:
    """Check x-coordinates (ints, nonzero, < PRIME, distinct) and return them as uint64."""
    ensure(
        isinstance(xs, Sequence) or isinstance(xs, np.ndarray),
        f"xs must be a sequence of ints, got {type(xs).__name__}",
        raising=SecAggTypeError,
    )
    assert isinstance(xs, (Sequence, np.ndarray))  # for the type checker: ensured above
    values = [_ensure_int(int(x) if isinstance(x, np.integer) else x, "x", 1, PRIME - 1)
              for x in xs]
    ensure(len(set(values)) == len(values), "xs must be distinct")
    return np.array(values, dtype=_U64)


def _parse_shares(shares: object, count: int) -> np.ndarray:
    """Concatenate ``count`` received shares into one uint64 array, checking each."""
    ensure(
        isinstance(shares, Sequence) and not isinstance(shares, (bytes, str)),
        f"shares must be a sequence of bytes, got {type(shares).__name__}",
        raising=SecAggTypeError,
    )
    assert isinstance(shares, Sequence)  # for the type checker: ensured above
    ensure(len(shares) == count, f"expected {count} shares, got {len(shares)}")
    parts = []
    for i, share in enumerate(shares):
        ensure(
            isinstance(share, (bytes, bytearray, memoryview)),
            f"share {i} must be bytes, got {type(share).__name__}",
            raising=SecAggTypeError,
        )
        ensure(
            len(share) == SHARE_BYTES,
            f"share {i} must be {SHARE_BYTES} bytes, got {len(share)}",
            raising=InvalidShareError,
        )
        parts.append(bytes(share))
    arr = _from_wire(b"".join(parts))
    bad = np.flatnonzero(arr >= PRIME)
    ensure(
        len(bad) == 0,
        f"share {int(bad[0]) // CHUNKS if len(bad) else 0} has an element >= the prime 2^61-1",
        raising=InvalidShareError,
    )
    return arr


def check_share(share: bytes) -> None:
    """Raise ``InvalidShareError`` unless ``share`` is SHARE_BYTES bytes of field elements."""
    bindings.secagg_memzero(_parse_shares([share], 1))  # the parsed copy: wiped, not kept


def split(secret: bytes, xs: Sequence[int], t: int) -> list[bytes]:
    """Share a 32-byte ``secret`` t-of-len(xs); element i is the share for point ``xs[i]``."""
    secret = _ensure_bytes(secret, "secret", SECRET_BYTES)
    points = _ensure_xs(xs)
    ensure(len(points) >= 1, "xs must not be empty")
    t = _ensure_int(t, "t", 1, len(points))
    coeffs = _random_field_elements((t - 1) * CHUNKS)
    chunks = _encode_secret(secret)
    out = np.empty(len(points) * CHUNKS, dtype=_U64)
    try:
        bindings.secagg_shamir_split(out, chunks, coeffs, points, t)
        buf = _to_wire(out)
    finally:  # the polynomial (t-1 coefficients and the secret's chunks), and the shares
        for arr in (coeffs, chunks, out):
            bindings.secagg_memzero(arr)
    return [buf[i : i + SHARE_BYTES] for i in range(0, len(buf), SHARE_BYTES)]


class Reconstructor:
    """Interpolation at 0 from a fixed set of points, reused for many secrets.

    The Lagrange coefficients are computed once (O(len(xs)^2)); each
    ``reconstruct`` is then O(len(xs)). Pass exactly t points (more also works
    if every share is honest; fewer than t give a wrong secret or an error).
    """

    def __init__(self, xs: Sequence[int]) -> None:
        """Compute the Lagrange coefficients at 0 for the points ``xs``."""
        points = _ensure_xs(xs)
        ensure(len(points) >= 1, "xs must not be empty")
        self._xs = tuple(int(x) for x in points)
        self._lagrange = np.empty(len(points), dtype=_U64)
        bindings.secagg_shamir_lagrange(self._lagrange, points)

    @property
    def xs(self) -> tuple[int, ...]:
        """The interpolation points, in the order shares must be given."""
        return self._xs

    def reconstruct(self, shares: Sequence[bytes]) -> bytes:
        """The 32-byte secret from the shares at ``xs`` (same order)."""
        arr = _parse_shares(shares, len(self._xs))
        out = np.empty(CHUNKS, dtype=_U64)
        try:
            bindings.secagg_shamir_combine(out, arr, self._lagrange)
            return _decode_secret(out)
        finally:
            bindings.secagg_memzero(arr)
            bindings.secagg_memzero(out)


def reconstruct(xs: Sequence[int], shares: Sequence[bytes], t: int) -> bytes:
    """The secret from the first ``t`` of ``shares`` (share i at point ``xs[i]``)."""
    t = _ensure_int(t, "t", 1, 2**31)
    ensure(
        isinstance(shares, Sequence) and not isinstance(shares, (bytes, str)),
        f"shares must be a sequence of bytes, got {type(shares).__name__}",
        raising=SecAggTypeError,
    )
    ensure(
        isinstance(xs, (Sequence, np.ndarray)),
        f"xs must be a sequence of ints, got {type(xs).__name__}",
        raising=SecAggTypeError,
    )
    ensure(len(xs) == len(shares), f"got {len(xs)} points but {len(shares)} shares")
    if len(shares) < t:
        raise SecAggValueError(f"need at least t = {t} shares to reconstruct, got {len(shares)}")
    return Reconstructor(list(xs)[:t]).reconstruct(list(shares)[:t])
