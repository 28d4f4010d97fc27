"""Checked wrappers over the compiled core ``secagg._csecagg``.

This is the only module that imports the extension. Each wrapper has the name of
its C function, checks every argument (type, dtype, contiguity, length, range)
before the call, and turns a -1 return into an exception: nothing Python passes
can reach C unchecked. Sizes come from C so the two sides cannot drift.

Sections are grouped by C module, in the order of ``csrc/cdef/``.
"""

from __future__ import annotations

import numpy as np

from secagg._csecagg import ffi, lib
from secagg.errors import SecAggTypeError, SecAggValueError, ensure

__all__ = [
    "storage_dtype",
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


def storage_dtype(bits: int) -> np.dtype:
    """The array dtype holding integers mod 2^bits: uint32 up to 32 bits, uint64 above."""
    bits = _ensure_int(bits, "bits", 1, 64)
    return np.dtype(np.uint32) if bits <= 32 else np.dtype(np.uint64)


def _ensure_array(arr: object, name: str, dtype: np.dtype, *, writable: bool = False) -> np.ndarray:
    """Check that ``arr`` is a 1-D C-contiguous ndarray of ``dtype`` (writable if asked)."""
    ensure(
        isinstance(arr, np.ndarray),
        f"{name} must be a numpy.ndarray, got {type(arr).__name__}",
        raising=SecAggTypeError,
    )
    ensure(arr.dtype == dtype, f"{name} must have dtype {dtype}, got {arr.dtype}", raising=SecAggTypeError)
    ensure(arr.ndim == 1, f"{name} must be 1-D, got shape {arr.shape}")
    ensure(arr.flags.c_contiguous, f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if writable:
        ensure(arr.flags.writeable, f"{name} must be writable")
    return arr


def _ensure_vector(arr: object, name: str, bits: int, *, writable: bool = False) -> np.ndarray:
    """Check that ``arr`` is a 1-D C-contiguous vector in the storage dtype for ``bits``."""
    return _ensure_array(arr, name, storage_dtype(bits), writable=writable)


def _ptr(arr: np.ndarray, ctype: str):
    """A cffi pointer to the data of an array already checked by ``_ensure_array``."""
    return ffi.cast(ctype, ffi.from_buffer(arr, require_writable=arr.flags.writeable))


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
