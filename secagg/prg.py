"""Pseudorandom generation: ChaCha20 keystream and mask expansion."""

from __future__ import annotations

from secagg import bindings

__all__ = ["keystream"]


def keystream(key: bytes, nonce: bytes, length: int, counter: int = 0) -> bytes:
    """Return ``length`` bytes of ChaCha20 (RFC 8439, IETF) keystream.

    ``key`` is 32 bytes, ``nonce`` 12 bytes, ``counter`` the first 32-bit block
    counter. Byte-identical to any RFC 8439 implementation, so other suites can
    cross-check it.
    """
    return bindings.secagg_chacha20_keystream(key, nonce, length, counter)
