"""Checked wrappers over the compiled core ``secagg._csecagg``.

This is the only module that imports the extension. Each wrapper has the name of
its C function, checks every argument (type, dtype, contiguity, length, range)
before the call, and turns a -1 return into an exception: nothing Python passes
can reach C unchecked. Sizes come from C so the two sides cannot drift.

Sections are grouped by C module, in the order of ``csrc/cdef/``.
"""

from __future__ import annotations

from secagg._csecagg import ffi, lib
from secagg.errors import SecAggTypeError, SecAggValueError, ensure

__all__ = [
    "CHACHA20_KEYBYTES",
    "CHACHA20_NONCEBYTES",
    "CHACHA20_BLOCKBYTES",
    "secagg_chacha20_keystream",
]


def _ensure_bytes(value: object, name: str, length: int | None = None) -> bytes:
    ensure(
        isinstance(value, (bytes, bytearray, memoryview)),
        f"{name} must be bytes, got {type(value).__name__}",
        raising=SecAggTypeError,
    )
    value = bytes(value)
    if length is not None:
        ensure(len(value) == length, f"{name} must be {length} bytes, got {len(value)}")
    return value


def _ensure_int(value: object, name: str, lo: int, hi: int) -> int:
    ensure(
        isinstance(value, int) and not isinstance(value, bool),
        f"{name} must be an int, got {type(value).__name__}",
        raising=SecAggTypeError,
    )
    ensure(lo <= value <= hi, f"{name} must be in [{lo}, {hi}], got {value}")
    return value


# --- chacha20 -----------------------------------------------------------------

CHACHA20_KEYBYTES: int = lib.secagg_chacha20_keybytes()
CHACHA20_NONCEBYTES: int = lib.secagg_chacha20_noncebytes()
CHACHA20_BLOCKBYTES: int = lib.secagg_chacha20_blockbytes()


def secagg_chacha20_keystream(key: bytes, nonce: bytes, length: int, counter: int = 0) -> bytes:
    """``length`` bytes of RFC 8439 ChaCha20 keystream from block ``counter``."""
    key = _ensure_bytes(key, "key", CHACHA20_KEYBYTES)
    nonce = _ensure_bytes(nonce, "nonce", CHACHA20_NONCEBYTES)
    length = _ensure_int(length, "length", 0, 2**62)
    counter = _ensure_int(counter, "counter", 0, 2**32 - 1)
    nblocks = -(-length // CHACHA20_BLOCKBYTES)
    if nblocks and counter + nblocks - 1 > 2**32 - 1:
        raise SecAggValueError(
            f"{length} bytes from block {counter} would overflow the 32-bit block counter"
        )
    out = ffi.new("uint8_t[]", max(length, 1))
    rc = lib.secagg_chacha20_keystream(out, length, key, nonce, counter)
    ensure(rc == 0, "secagg_chacha20_keystream rejected its arguments")
    return ffi.buffer(out, length)[:]
