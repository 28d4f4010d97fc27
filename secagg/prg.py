"""Pseudorandom generation: ChaCha20 and AES-256-CTR keystreams and mask expansion.

The mask of a 32-byte key is fixed, so that every client and the server derive
the same one: take the keystream of the chosen cipher with that key, the
all-zero 12-byte nonce ``MASK_NONCE`` and block counter 0. Element i of the mask
is the i-th little-endian 32-bit word of the stream if ``bits`` <= 32 (uint32
storage), or the i-th little-endian 64-bit word if 33 <= ``bits`` <= 64 (uint64
storage), reduced mod 2^bits.

Two ciphers, the same interface (32-byte key, 12-byte nonce, 32-bit block
counter that may not wrap):

- ``"chacha20"`` (the default): RFC 8439, 64-byte blocks, so one key gives at
  most 2^36 (uint32) or 2^35 (uint64) elements. Runs everywhere.
- ``"aes256ctr"``: AES-256 in counter mode, 16-byte blocks, counter block
  ``nonce || counter`` (32-bit big-endian), as in GCM and RFC 3686; one key gives
  at most 2^34 (uint32) or 2^33 (uint64) elements. Only where the CPU has AES-NI
  (there is no portable, constant-time software AES here); ``ciphers()`` says
  whether it is available, and asking for it elsewhere raises SecAggValueError.

The two ciphers give different masks: every party of a session must use the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from secagg import bindings

__all__ = [
    "MASK_NONCE",
    "keystream",
    "accumulate_masks",
    "expand_mask",
    "implementations",
    "ciphers",
    "CIPHERS",
]

MASK_NONCE: bytes = bytes(bindings.CHACHA20_NONCEBYTES)
_KEYSTREAMS = {
    "chacha20": bindings.secagg_chacha20_keystream,
    "aes256ctr": bindings.secagg_aes256ctr_keystream,
}
#: Every cipher secagg knows; ``ciphers()`` says which this CPU can run.
CIPHERS: tuple[str, ...] = tuple(_KEYSTREAMS)


def keystream(
    key: bytes,
    nonce: bytes,
    length: int,
    counter: int = 0,
    *,
    impl: str | None = None,
    cipher: str = "chacha20",
) -> bytes:
    """Return ``length`` bytes of keystream of ``cipher`` from block ``counter``.

    ``key`` is 32 bytes, ``nonce`` 12 bytes, ``counter`` the first 32-bit block
    counter. ChaCha20 is byte-identical to any RFC 8439 implementation; AES-256-CTR
    to any CTR mode whose initial counter block is ``nonce || counter`` (32-bit
    big-endian), so other suites can cross-check both. ``impl`` forces one
    implementation (see ``implementations``).
    """
    bindings._ensure_cipher_name(cipher)
    return _KEYSTREAMS[cipher](key, nonce, length, counter, impl=impl)


def accumulate_masks(
    acc: np.ndarray,
    keys: Sequence[bytes],
    signs: Sequence[int],
    bits: int,
    *,
    threads: int = 1,
    impl: str | None = None,
    cipher: str = "chacha20",
) -> None:
    """In place, acc = (acc + sum_k signs[k] * mask(keys[k])) mod 2^bits.

    ``acc`` is a 1-D C-contiguous writable array of ``storage_dtype(bits)`` whose
    values are already reduced; each sign is +1 or -1. One fused pass over
    cache-sized tiles: no vector per key. ``threads`` > 1 splits ``acc`` over
    that many threads; ``impl`` forces one implementation (all give equal
    results); ``cipher`` picks the keystream the masks come from.
    """
    bindings.secagg_mask_accumulate(
        acc, keys, signs, bits, threads=threads, impl=impl, cipher=cipher
    )


def expand_mask(key: bytes, m: int, bits: int, *, cipher: str = "chacha20") -> np.ndarray:
    """The first ``m`` elements of the mask of ``key``, in ``storage_dtype(bits)``."""
    m = bindings._ensure_int(m, "m", 0, 2**40)
    acc = np.zeros(m, dtype=bindings.storage_dtype(bits))
    accumulate_masks(acc, [key], [1], bits, cipher=cipher)
    return acc


def implementations(cipher: str = "chacha20") -> list[str]:
    """Names of ``cipher``'s implementations this CPU can run, fastest first."""
    return bindings.secagg_runtime_implementations(cipher)


def ciphers() -> list[str]:
    """Names of the ciphers this CPU can run: "chacha20", and "aes256ctr" with AES-NI."""
    return bindings.secagg_runtime_ciphers()
