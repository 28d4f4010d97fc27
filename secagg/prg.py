"""Pseudorandom generation: ChaCha20 keystream and mask expansion.

The mask of a 32-byte key is fixed, so that every client and the server derive
the same one: take the ChaCha20 keystream (RFC 8439) with that key, the all-zero
12-byte nonce ``MASK_NONCE`` and block counter 0. Element i of the mask is the
i-th little-endian 32-bit word of the stream if ``bits`` <= 32 (uint32 storage),
or the i-th little-endian 64-bit word if 33 <= ``bits`` <= 64 (uint64 storage),
reduced mod 2^bits. One key gives at most 2^36 (uint32) or 2^35 (uint64) elements.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from secagg import bindings

__all__ = ["MASK_NONCE", "keystream", "accumulate_masks", "expand_mask", "implementations"]

MASK_NONCE: bytes = bytes(bindings.CHACHA20_NONCEBYTES)


def keystream(
    key: bytes, nonce: bytes, length: int, counter: int = 0, *, impl: str | None = None
) -> bytes:
    """Return ``length`` bytes of ChaCha20 (RFC 8439, IETF) keystream.

    ``key`` is 32 bytes, ``nonce`` 12 bytes, ``counter`` the first 32-bit block
    counter. Byte-identical to any RFC 8439 implementation, so other suites can
    cross-check it. ``impl`` forces one implementation (see ``implementations``).
    """
    return bindings.secagg_chacha20_keystream(key, nonce, length, counter, impl=impl)


def accumulate_masks(
    acc: np.ndarray,
    keys: Sequence[bytes],
    signs: Sequence[int],
    bits: int,
    *,
    threads: int = 1,
    impl: str | None = None,
) -> None:
    """In place, acc = (acc + sum_k signs[k] * mask(keys[k])) mod 2^bits.

    ``acc`` is a 1-D C-contiguous writable array of ``storage_dtype(bits)`` whose
    values are already reduced; each sign is +1 or -1. One fused pass over
    cache-sized tiles: no vector per key. ``threads`` > 1 splits ``acc`` over
    that many threads; ``impl`` forces one implementation (all give equal results).
    """
    bindings.secagg_mask_accumulate(acc, keys, signs, bits, threads=threads, impl=impl)


def expand_mask(key: bytes, m: int, bits: int) -> np.ndarray:
    """The first ``m`` elements of the mask of ``key``, in ``storage_dtype(bits)``."""
    m = bindings._ensure_int(m, "m", 0, 2**40)
    acc = np.zeros(m, dtype=bindings.storage_dtype(bits))
    accumulate_masks(acc, [key], [1], bits)
    return acc


def implementations() -> list[str]:
    """Names of the ChaCha20 implementations this CPU can run, fastest first."""
    return bindings.secagg_runtime_implementations()
