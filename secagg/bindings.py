"""Checked wrappers over the compiled core ``secagg._csecagg``.

This is the only module that imports the extension. Each wrapper has the name of
its C function, checks every argument (type, dtype, contiguity, length, range)
before the call, and turns a -1 return into an exception: nothing Python passes
can reach C unchecked. Sizes come from C so the two sides cannot drift.

Sections are grouped by C module, in the order of ``csrc/cdef/``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from secagg._csecagg import ffi, lib
from secagg.errors import SecAggTypeError, SecAggValueError, ensure

__all__ = [
    "storage_dtype",
    "AES256CTR_KEYBYTES",
    "AES256CTR_NONCEBYTES",
    "AES256CTR_BLOCKBYTES",
    "secagg_aes256ctr_keystream",
    "CHACHA20_KEYBYTES",
    "CHACHA20_NONCEBYTES",
    "CHACHA20_BLOCKBYTES",
    "secagg_chacha20_keystream",
    "MASK_MAX_BLOCKS",
    "secagg_mask_accumulate",
    "secagg_runtime_implementations",
    "secagg_runtime_ciphers",
    "secagg_memzero",
    "SIMD_BUILT",
    "FIXEDPOINT_MAX_LENGTH",
    "FIXEDPOINT_SEEDBYTES",
    "secagg_fixedpoint_encode",
    "secagg_fixedpoint_decode",
    "PACK_MAX_LENGTH",
    "secagg_pack_size",
    "secagg_pack_encode",
    "secagg_pack_decode",
    "SHAMIR_PRIME",
    "SHAMIR_MAX_CHUNKS",
    "secagg_shamir_split",
    "secagg_shamir_lagrange",
    "secagg_shamir_combine",
]


def _ensure_bytes(value: object, name: str, length: int | None = None) -> bytes:
    ensure(
        isinstance(value, (bytes, bytearray, memoryview)),
        f"{name} must be bytes, got {type(value).__name__}",
        raising=SecAggTypeError,
    )
    assert isinstance(value, (bytes, bytearray, memoryview))  # for the type checker: ensured above
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
    assert isinstance(value, int)  # for the type checker: ensured above
    ensure(lo <= value <= hi, f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def storage_dtype(bits: int) -> np.dtype:
    """The array dtype holding integers mod 2^bits: uint32 up to 32 bits, uint64 above."""
    bits = _ensure_int(bits, "bits", 1, 64)
    return np.dtype(np.uint32) if bits <= 32 else np.dtype(np.uint64)


def _ensure_array(arr: object, name: str, dtype: np.dtype, *, writable: bool = False) -> np.ndarray:
    """Check that ``arr`` is a 1-D, C-contiguous, aligned ndarray of ``dtype`` (writable if asked).

    Messages are built only on failure: this sits in front of every kernel call.
    """
    if not isinstance(arr, np.ndarray):
        raise SecAggTypeError(f"{name} must be a numpy.ndarray, got {type(arr).__name__}")
    if arr.dtype != dtype:
        raise SecAggTypeError(f"{name} must have dtype {dtype}, got {arr.dtype}")
    if arr.ndim != 1:
        raise SecAggValueError(f"{name} must be 1-D, got shape {arr.shape}")
    flags = arr.flags
    if not flags.c_contiguous:
        raise SecAggValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if not flags.aligned:
        raise SecAggValueError(f"{name} must be aligned for {arr.dtype} (use numpy.require)")
    if writable and not flags.writeable:
        raise SecAggValueError(f"{name} must be writable")
    return arr


def _ensure_vector(arr: object, name: str, bits: int, *, writable: bool = False) -> np.ndarray:
    """Check that ``arr`` is a 1-D C-contiguous vector in the storage dtype for ``bits``."""
    return _ensure_array(arr, name, storage_dtype(bits), writable=writable)


def _ptr(arr: np.ndarray, ctype: str) -> Any:
    """A cffi pointer to the data of an array already checked by ``_ensure_array``."""
    return ffi.cast(ctype, ffi.from_buffer(arr, require_writable=arr.flags.writeable))


# --- aes256ctr ----------------------------------------------------------------

AES256CTR_KEYBYTES: int = lib.secagg_aes256ctr_keybytes()
AES256CTR_NONCEBYTES: int = lib.secagg_aes256ctr_noncebytes()
AES256CTR_BLOCKBYTES: int = lib.secagg_aes256ctr_blockbytes()
_new_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


def _keystream(cipher: str, key: object, nonce: object, length: object, counter: object,
               impl: object) -> bytes:
    """Checked call of ``secagg_<cipher>_keystream_impl``: 32-bit block counter, no wrap."""
    impl_id = _impl_id(impl, cipher)
    key = _ensure_bytes(key, "key", _KEYBYTES[cipher])
    nonce = _ensure_bytes(nonce, "nonce", _NONCEBYTES[cipher])
    length = _ensure_int(length, "length", 0, 2**62)
    counter = _ensure_int(counter, "counter", 0, 2**32 - 1)
    nblocks = -(-length // _BLOCKBYTES[cipher])
    if nblocks and counter + nblocks - 1 > 2**32 - 1:
        raise SecAggValueError(
            f"{length} bytes from block {counter} would overflow the 32-bit block counter"
        )
    out = _new_uncleared("uint8_t[]", max(length, 1))  # C writes every byte
    fn = getattr(lib, f"secagg_{cipher}_keystream_impl")
    rc = fn(impl_id, out, length, key, nonce, counter)
    ensure(rc == 0, f"secagg_{cipher}_keystream rejected its arguments")
    stream: bytes = ffi.buffer(out, length)[:]
    lib.secagg_memzero(out, length)  # the caller gets its own copy; none is left behind here
    return stream


def secagg_aes256ctr_keystream(
    key: bytes, nonce: bytes, length: int, counter: int = 0, *, impl: str | None = None
) -> bytes:
    """``length`` bytes of AES-256-CTR keystream from block ``counter`` (layout in aes256ctr.h).

    Counter blocks are ``nonce`` (12 bytes) || ``counter`` + j (32-bit big-endian):
    the same bytes as any CTR mode given that initial counter block; a request
    that would wrap the 32-bit counter is refused. Needs AES-NI.
    """
    return _keystream("aes256ctr", key, nonce, length, counter, impl)


# --- chacha20 -----------------------------------------------------------------

CHACHA20_KEYBYTES: int = lib.secagg_chacha20_keybytes()
CHACHA20_NONCEBYTES: int = lib.secagg_chacha20_noncebytes()
CHACHA20_BLOCKBYTES: int = lib.secagg_chacha20_blockbytes()


def secagg_chacha20_keystream(
    key: bytes, nonce: bytes, length: int, counter: int = 0, *, impl: str | None = None
) -> bytes:
    """``length`` bytes of RFC 8439 ChaCha20 keystream from block ``counter``.

    ``impl`` names an implementation (see ``secagg_runtime_implementations``);
    None picks the fastest. All of them give the same bytes.
    """
    return _keystream("chacha20", key, nonce, length, counter, impl)


_KEYBYTES = {"aes256ctr": AES256CTR_KEYBYTES, "chacha20": CHACHA20_KEYBYTES}
_NONCEBYTES = {"aes256ctr": AES256CTR_NONCEBYTES, "chacha20": CHACHA20_NONCEBYTES}
_BLOCKBYTES = {"aes256ctr": AES256CTR_BLOCKBYTES, "chacha20": CHACHA20_BLOCKBYTES}


# --- fixedpoint ---------------------------------------------------------------

FIXEDPOINT_MAX_LENGTH: int = lib.secagg_fixedpoint_max_length()  # keystream words under one seed
FIXEDPOINT_SEEDBYTES: int = CHACHA20_KEYBYTES
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _ensure_real(value: object, name: str) -> float:
    """Check that ``value`` is a finite real number > 0 and return it as a float."""
    ensure(
        isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool),
        f"{name} must be a real number, got {type(value).__name__}",
        raising=SecAggTypeError,
    )
    assert isinstance(value, (int, float, np.floating, np.integer))  # ensured above
    try:
        value = float(value)
    except OverflowError:  # an int beyond the double range, e.g. 10**400
        raise SecAggValueError(f"{name} must be finite and > 0, got an int of "
                               f"{int(value).bit_length()} bits (too large for a float)") from None
    ensure(math.isfinite(value) and value > 0, f"{name} must be finite and > 0, got {value}")
    return value


def _ensure_fixedpoint_params(clip: float, scale: float, bits: int) -> tuple[float, float, int]:
    """Check clip, scale and bits for encoding: every rounded value must fit signed in bits.

    Rounded values lie in [-ceil(clip*scale), ceil(clip*scale)], so the exact condition is
    ceil(clip*scale) <= 2^(bits-1) - 1 (with clip*scale the float product C computes).
    """
    clip = _ensure_real(clip, "clip")
    scale = _ensure_real(scale, "scale")
    bits = _ensure_int(bits, "bits", 1, 64)
    top = clip * scale
    if not (math.isfinite(top) and math.ceil(top) <= 2 ** (bits - 1) - 1):
        raise SecAggValueError(
            f"clip*scale too large for {bits} bits: ceil({clip!r} * {scale!r}) = "
            f"{math.ceil(top) if math.isfinite(top) else top} must be <= 2^{bits - 1} - 1"
        )
    return clip, scale, bits


def secagg_fixedpoint_encode(
    x: np.ndarray, clip: float, scale: float, bits: int, seed: bytes
) -> tuple[np.ndarray, int]:
    """Encode a float32/float64 vector mod 2^bits; returns (encoded, number clipped)."""
    if not (isinstance(x, np.ndarray) and x.dtype in _FLOAT_DTYPES):
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise SecAggTypeError(f"x must be a numpy.ndarray of float32 or float64, got {got}")
    x = _ensure_array(x, "x", x.dtype)
    clip, scale, bits = _ensure_fixedpoint_params(clip, scale, bits)
    seed = _ensure_bytes(seed, "seed", FIXEDPOINT_SEEDBYTES)
    m = x.shape[0]
    ensure(m <= FIXEDPOINT_MAX_LENGTH, f"x may have at most {FIXEDPOINT_MAX_LENGTH} elements")
    dtype = storage_dtype(bits)
    out = np.empty(m, dtype=dtype)
    n_clipped = ffi.new("size_t *")
    first_bad = ffi.new("size_t *")
    in_t = "f32" if x.dtype == np.float32 else "f64"
    out_t = "u32" if dtype == np.uint32 else "u64"
    fn = getattr(lib, f"secagg_fixedpoint_encode_{in_t}_{out_t}")
    rc = fn(
        _ptr(out, f"uint{out_t[1:]}_t *"),
        _ptr(x, "float *" if in_t == "f32" else "double *"),
        m, clip, scale, bits, seed, n_clipped, first_bad,
    )
    if rc != 0:
        i = first_bad[0]
        ensure(i >= m, f"x[{i}] is {x[i]}: NaN and infinity cannot be encoded")
        raise SecAggValueError("secagg_fixedpoint_encode rejected its arguments")
    return out, int(n_clipped[0])


def secagg_fixedpoint_decode(v: np.ndarray, scale: float, bits: int) -> np.ndarray:
    """Decode integers mod 2^bits, read as signed bits-bit values, to float64 over scale."""
    bits = _ensure_int(bits, "bits", 1, 64)
    v = _ensure_vector(v, "v", bits)
    scale = _ensure_real(scale, "scale")
    out = np.empty(v.shape[0], dtype=np.float64)
    if bits <= 32:
        rc = lib.secagg_fixedpoint_decode_u32(
            _ptr(out, "double *"), _ptr(v, "uint32_t *"), v.shape[0], scale, bits
        )
    else:
        rc = lib.secagg_fixedpoint_decode_u64(
            _ptr(out, "double *"), _ptr(v, "uint64_t *"), v.shape[0], scale, bits
        )
    ensure(rc == 0, f"v has values >= 2^{bits}: expected integers mod 2^{bits}")
    return out


# --- pack ---------------------------------------------------------------------

PACK_MAX_LENGTH: int = lib.secagg_pack_max_length()


def secagg_pack_size(m: int, bits: int) -> int:
    """Bytes that m packed bits-bit values take: ceil(m * bits / 8)."""
    m = _ensure_int(m, "m", 0, PACK_MAX_LENGTH)
    bits = _ensure_int(bits, "bits", 1, 64)
    return int(lib.secagg_pack_size(m, bits))


def secagg_pack_encode(v: np.ndarray, bits: int) -> bytes:
    """Pack a vector of integers < 2^bits into a little-endian bit stream."""
    bits = _ensure_int(bits, "bits", 1, 64)
    v = _ensure_vector(v, "v", bits)
    m = v.shape[0]
    ensure(m <= PACK_MAX_LENGTH, f"v may have at most {PACK_MAX_LENGTH} elements")
    out = np.empty(secagg_pack_size(m, bits), dtype=np.uint8)
    if bits <= 32:
        rc = lib.secagg_pack_encode_u32(_ptr(out, "uint8_t *"), _ptr(v, "uint32_t *"), m, bits)
    else:
        rc = lib.secagg_pack_encode_u64(_ptr(out, "uint8_t *"), _ptr(v, "uint64_t *"), m, bits)
    ensure(rc == 0, f"v has values >= 2^{bits}: expected integers mod 2^{bits}")
    return out.tobytes()


def secagg_pack_decode(data: bytes, m: int, bits: int) -> np.ndarray:
    """Unpack m bits-bit values from ``data``; refuses a wrong length and non-zero pad bits."""
    data = _ensure_bytes(data, "data")
    size = secagg_pack_size(m, bits)
    if len(data) != size:
        raise SecAggValueError(
            f"data must be {size} bytes for {m} values of {bits} bits, got {len(data)}"
        )
    out = np.empty(m, dtype=storage_dtype(bits))
    src = ffi.cast("uint8_t *", ffi.from_buffer(data))
    if bits <= 32:
        rc = lib.secagg_pack_decode_u32(_ptr(out, "uint32_t *"), src, size, m, bits)
    else:
        rc = lib.secagg_pack_decode_u64(_ptr(out, "uint64_t *"), src, size, m, bits)
    ensure(rc == 0, "data has non-zero pad bits after the last value")
    return out


# --- shamir -------------------------------------------------------------------

SHAMIR_PRIME: int = lib.secagg_shamir_prime()
SHAMIR_MAX_CHUNKS: int = lib.secagg_shamir_max_chunks()
_U64 = np.dtype(np.uint64)


def secagg_shamir_split(
    shares: np.ndarray, secret: np.ndarray, coeffs: np.ndarray, xs: np.ndarray, t: int
) -> None:
    """Evaluate the sharing polynomials at ``xs`` into ``shares`` (len(xs) * chunks, row-major).

    ``secret`` holds the chunks, ``coeffs`` the (t-1) * chunks random coefficients
    (row j-1 multiplies x^j); all values < SHAMIR_PRIME, xs nonzero.
    """
    secret = _ensure_array(secret, "secret", _U64)
    xs = _ensure_array(xs, "xs", _U64)
    coeffs = _ensure_array(coeffs, "coeffs", _U64)
    shares = _ensure_array(shares, "shares", _U64, writable=True)
    chunks = len(secret)
    ensure(1 <= chunks <= SHAMIR_MAX_CHUNKS,
           f"secret must have 1 to {SHAMIR_MAX_CHUNKS} chunks, got {chunks}")
    t = _ensure_int(t, "t", 1, 2**31)
    ensure(len(coeffs) == (t - 1) * chunks,
           f"coeffs must have (t-1)*chunks = {(t - 1) * chunks} elements, got {len(coeffs)}")
    ensure(len(shares) == len(xs) * chunks,
           f"shares must have len(xs)*chunks = {len(xs) * chunks} elements, got {len(shares)}")
    if len(xs) == 0:
        return
    rc = lib.secagg_shamir_split(
        _ptr(shares, "uint64_t *"), _ptr(secret, "uint64_t *"),
        _ptr(coeffs, "uint64_t *") if t > 1 else ffi.NULL, _ptr(xs, "uint64_t *"),
        len(xs), t, chunks,
    )
    ensure(rc == 0, f"secagg_shamir_split: values must be < {SHAMIR_PRIME} and xs nonzero")


def secagg_shamir_lagrange(lagrange: np.ndarray, xs: np.ndarray) -> None:
    """Write into ``lagrange`` the coefficients interpolating at 0 from the points ``xs``."""
    xs = _ensure_array(xs, "xs", _U64)
    lagrange = _ensure_array(lagrange, "lagrange", _U64, writable=True)
    ensure(len(xs) >= 1, "xs must not be empty")
    ensure(len(lagrange) == len(xs), f"lagrange must have {len(xs)} elements, got {len(lagrange)}")
    rc = lib.secagg_shamir_lagrange(_ptr(lagrange, "uint64_t *"), _ptr(xs, "uint64_t *"), len(xs))
    ensure(rc == 0, f"secagg_shamir_lagrange: xs must be distinct, nonzero and < {SHAMIR_PRIME}")


def secagg_shamir_combine(secret: np.ndarray, shares: np.ndarray, lagrange: np.ndarray) -> None:
    """Write into ``secret`` (chunks) the sum of ``lagrange[i]`` times share row i."""
    secret = _ensure_array(secret, "secret", _U64, writable=True)
    shares = _ensure_array(shares, "shares", _U64)
    lagrange = _ensure_array(lagrange, "lagrange", _U64)
    chunks, t = len(secret), len(lagrange)
    ensure(chunks >= 1 and t >= 1, "secret and lagrange must not be empty")
    ensure(len(shares) == t * chunks,
           f"shares must have len(lagrange)*chunks = {t * chunks} elements, got {len(shares)}")
    rc = lib.secagg_shamir_combine(
        _ptr(secret, "uint64_t *"), _ptr(shares, "uint64_t *"), _ptr(lagrange, "uint64_t *"),
        t, chunks,
    )
    ensure(rc == 0, f"secagg_shamir_combine: values must be < {SHAMIR_PRIME}")


# --- mask ---------------------------------------------------------------------

MASK_MAX_BLOCKS: int = lib.secagg_mask_max_blocks()  # blocks in one mask stream, either cipher
_MIN_SLICE = 4096  # elements per thread below which threads cost more than they save
_SLICE_ALIGN = 16  # elements: whole ChaCha20 (and so AES) blocks for uint32 and uint64


def _ensure_mask_batch(keys: object, signs: object) -> tuple[bytearray, np.ndarray]:
    """Check keys (32-byte bytes) and signs (+1/-1 ints) and pack them for C."""
    ensure(
        not isinstance(keys, (bytes, bytearray, memoryview, str)),
        "keys must be a sequence of 32-byte keys, not one bytes object",
        raising=SecAggTypeError,
    )
    try:
        keys, signs = list(keys), list(signs)  # type: ignore[call-overload]
        assert isinstance(keys, list) and isinstance(signs, list)  # for the type checker
    except TypeError:
        raise SecAggTypeError("keys and signs must be sequences") from None
    ensure(len(keys) == len(signs), f"got {len(keys)} keys but {len(signs)} signs")
    blob = bytearray(CHACHA20_KEYBYTES * len(keys))  # mutable, so that it can be wiped after use
    for i, k in enumerate(keys):
        blob[CHACHA20_KEYBYTES * i : CHACHA20_KEYBYTES * (i + 1)] = _ensure_bytes(
            k, f"keys[{i}]", CHACHA20_KEYBYTES)
    for i, sign in enumerate(signs):
        ensure(
            isinstance(sign, (int, np.integer)) and not isinstance(sign, (bool, np.bool_)),
            f"signs[{i}] must be an int, got {type(sign).__name__}",
            raising=SecAggTypeError,
        )
        ensure(sign in (1, -1), f"signs[{i}] must be +1 or -1, got {sign}")
    return blob, np.array(signs, dtype=np.int8)


def secagg_mask_accumulate(
    acc: np.ndarray,
    keys: object,
    signs: object,
    bits: int,
    *,
    offset: int = 0,
    threads: int = 1,
    impl: str | None = None,
    cipher: str = "chacha20",
) -> None:
    """acc += sign * mask(key) mod 2^bits for every (key, sign), in place (semantics in mask.h).

    ``acc`` holds elements ``offset ..`` of the full vector. ``threads`` > 1 splits
    it into block-aligned slices run in parallel (the C call releases the GIL).
    ``cipher`` ("chacha20" or "aes256ctr") draws the masks; ``impl`` is one of its
    implementations. Calls secagg_mask_accumulate_cipher_u32 or _u64 as ``bits`` requires.
    """
    impl_id = _impl_id(impl, cipher)
    cipher_id = _CIPHER_IDS[cipher]
    bits = _ensure_int(bits, "bits", 1, 64)
    acc = _ensure_vector(acc, "acc", bits, writable=True)
    offset = _ensure_int(offset, "offset", 0, 2**64 - 1)
    threads = _ensure_int(threads, "threads", 1, 1024)
    blob, sign_arr = _ensure_mask_batch(keys, signs)
    m = len(acc)
    per_block = _BLOCKBYTES[cipher] // acc.itemsize
    ensure(
        offset + m <= MASK_MAX_BLOCKS * per_block,
        f"elements {offset}..{offset + m - 1} run past the {MASK_MAX_BLOCKS * per_block} "
        f"elements of one mask stream",
    )
    if m == 0 or not blob:
        secagg_memzero(blob)
        return
    fn, ctype = (
        (lib.secagg_mask_accumulate_cipher_u32, "uint32_t *")
        if bits <= 32
        else (lib.secagg_mask_accumulate_cipher_u64, "uint64_t *")
    )
    keys_c = ffi.from_buffer(blob)
    signs_c = ffi.cast("int8_t *", ffi.from_buffer(sign_arr))
    nkeys = len(sign_arr)

    def run(lo: int, hi: int) -> int:
        rc: int = fn(_ptr(acc[lo:hi], ctype), hi - lo, offset + lo, bits, keys_c, signs_c, nkeys,
                     cipher_id, impl_id)
        return rc

    nslices = max(1, min(threads, m // _MIN_SLICE))
    if nslices == 1:
        rcs = [run(0, m)]
    else:
        step = -(-m // nslices // _SLICE_ALIGN) * _SLICE_ALIGN
        # Keep slices starting on block boundaries of the full vector.
        first = (-offset) % _SLICE_ALIGN
        cuts = [0] + list(range(first + step, m, step)) + [m]
        with ThreadPoolExecutor(max_workers=len(cuts) - 1) as pool:
            rcs = list(pool.map(run, cuts[:-1], cuts[1:]))
    secagg_memzero(blob)  # the keys: wiped once every slice has run
    ensure(all(rc == 0 for rc in rcs), "secagg_mask_accumulate rejected its arguments")


# --- runtime ------------------------------------------------------------------

SIMD_BUILT: bool = bool(lib.secagg_runtime_simd_built())  # False: the portable -DSECAGG_NO_SIMD core

_CIPHER_IDS: dict[str, int] = {
    ffi.string(lib.secagg_runtime_cipher_name(c)).decode(): c
    for c in range(lib.secagg_runtime_cipher_count())
}
_IMPL_IDS: dict[str, dict[str, int]] = {
    cipher: {
        ffi.string(lib.secagg_runtime_cipher_impl_name(c, i)).decode(): i
        for i in range(lib.secagg_runtime_cipher_impl_count(c))
    }
    for cipher, c in _CIPHER_IDS.items()
}
# The CPU does not change under a running process: what runs here, fastest first.
_AVAILABLE: dict[str, tuple[str, ...]] = {
    cipher: tuple(
        name
        for name, i in sorted(_IMPL_IDS[cipher].items(), key=lambda item: -item[1])
        if lib.secagg_runtime_cipher_impl_available(c, i)
    )
    for cipher, c in _CIPHER_IDS.items()
}


def secagg_memzero(buf: object) -> None:
    """Overwrite a writable buffer (bytearray, numpy array, memoryview) with zeros, in C.

    The C function's stores cannot be optimised away, and nothing is copied: the
    bytes that held a secret are the ones zeroed. ``bytes`` are immutable and
    cannot be wiped (refused); keep secrets in mutable buffers to wipe them.
    """
    if isinstance(buf, np.ndarray):
        ensure(buf.flags.c_contiguous, "buf must be C-contiguous")
        ensure(buf.flags.writeable, "buf must be writable")
    else:
        ensure(isinstance(buf, (bytearray, memoryview)),
               f"buf must be a bytearray, memoryview or numpy.ndarray, got {type(buf).__name__}",
               raising=SecAggTypeError)
        ensure(not (isinstance(buf, memoryview) and buf.readonly), "buf must be writable")
    view = ffi.from_buffer(buf, require_writable=True)
    lib.secagg_memzero(view, len(view))


def secagg_runtime_ciphers() -> list[str]:
    """Names of the keystream ciphers with at least one implementation on this CPU."""
    return [name for name in _CIPHER_IDS if _AVAILABLE[name]]


def secagg_runtime_implementations(cipher: str = "chacha20") -> list[str]:
    """Names of ``cipher``'s implementations this CPU can run, fastest first (may be empty)."""
    return list(_AVAILABLE[_ensure_cipher_name(cipher)])


def _ensure_cipher_name(cipher: object) -> str:
    """Check that ``cipher`` names a cipher of this build (it may still not run here)."""
    if not isinstance(cipher, str):
        raise SecAggTypeError(f"cipher must be a str, got {type(cipher).__name__}")
    if cipher not in _CIPHER_IDS:
        raise SecAggValueError(f"cipher must be one of {sorted(_CIPHER_IDS)}, got {cipher!r}")
    return cipher


def _impl_id(impl: object, cipher: object = "chacha20") -> int:
    """The C id of ``cipher``'s implementation ``impl`` (a name, or None for the fastest)."""
    cipher = _ensure_cipher_name(cipher)
    if not _AVAILABLE[cipher]:
        raise SecAggValueError(
            f"cipher {cipher!r} has no implementation on this CPU"
            + ((" (AES-256-CTR needs AES-NI on x86-64)" if SIMD_BUILT else
                " (this core was built without SIMD, -DSECAGG_NO_SIMD: AES-256-CTR needs AES-NI)")
               if cipher == "aes256ctr" else "")
            + f"; available: {secagg_runtime_ciphers()}"
        )
    if impl is None:
        return int(lib.SECAGG_IMPL_BEST)
    ids = _IMPL_IDS[cipher]
    if not isinstance(impl, str):
        raise SecAggTypeError(f"impl must be a str or None, got {type(impl).__name__}")
    if impl not in ids:
        raise SecAggValueError(f"impl must be one of {sorted(ids)} for {cipher}, got {impl!r}")
    if impl not in _AVAILABLE[cipher]:
        raise SecAggValueError(
            f"impl {impl!r} does not run on this CPU; available: {list(_AVAILABLE[cipher])}"
        )
    return ids[impl]


# --- hadamard -----------------------------------------------------------------

__all__ += ["HADAMARD_MAX_LENGTH", "secagg_hadamard_fwht"]

HADAMARD_MAX_LENGTH: int = 2**40
_F64 = np.dtype(np.float64)


def secagg_hadamard_fwht(x: np.ndarray) -> None:
    """Unnormalised fast Walsh-Hadamard transform of ``x`` in place (length a power of two)."""
    x = _ensure_array(x, "x", _F64, writable=True)
    n = x.shape[0]
    ensure(n >= 1 and n & (n - 1) == 0 and n <= HADAMARD_MAX_LENGTH,
           f"x must have a power-of-two length in [1, 2^40], got {n}")
    rc = lib.secagg_hadamard_fwht(_ptr(x, "double *"), n)
    ensure(rc == 0, "secagg_hadamard_fwht rejected its arguments")


# --- noise --------------------------------------------------------------------

__all__ += [
    "NOISE_SEEDBYTES",
    "NOISE_MAX_LENGTH",
    "DGAUSS_MAX_DEN",
    "DGAUSS_MAX_VARIANCE",
    "POISSON_MAX_DEN",
    "POISSON_MAX_MU",
    "secagg_noise_bernoulli_exp",
    "secagg_noise_dlaplace",
    "secagg_noise_dgauss",
    "secagg_noise_poisson",
    "secagg_noise_skellam",
]

NOISE_SEEDBYTES: int = lib.secagg_noise_seedbytes()
NOISE_MAX_LENGTH: int = 2**32  # per call; far below what one seed's keystream allows
DGAUSS_MAX_DEN: int = lib.secagg_noise_dgauss_max_den()
DGAUSS_MAX_VARIANCE: int = lib.secagg_noise_dgauss_max_variance()
POISSON_MAX_DEN: int = lib.secagg_noise_skellam_max_den()
POISSON_MAX_MU: int = lib.secagg_noise_skellam_max_mu()
_I64 = np.dtype(np.int64)


def _noise_call(name: str, dtype: np.dtype, m: object, params: tuple[int, ...], seed: object
                ) -> np.ndarray:
    """Run ``secagg_noise_<name>`` into a new array of ``m`` values; refuses a spent keystream."""
    m = _ensure_int(m, "m", 0, NOISE_MAX_LENGTH)
    seed = _ensure_bytes(seed, "seed", NOISE_SEEDBYTES)
    out = np.empty(m, dtype=dtype)
    ctype = "uint8_t *" if dtype == np.uint8 else "int64_t *"
    rc = getattr(lib, f"secagg_noise_{name}")(_ptr(out, ctype), m, *params, seed)
    ensure(rc == 0, f"secagg_noise_{name}: the keystream of one seed ran out; draw fewer values per call")
    return out


def _ensure_rational(num: object, den: object, max_den: int, max_value: int, what: str,
                     *, positive: bool) -> tuple[int, int]:
    """Check an exact rational num/den: ints, 1 <= den <= max_den, 0 (<) num/den <= max_value."""
    num = _ensure_int(num, f"{what} numerator", 1 if positive else 0, 2**64 - 1)
    den = _ensure_int(den, f"{what} denominator", 1, max_den)
    ensure(num <= max_value * den, f"{what} must be <= {max_value}, got {num}/{den}")
    return num, den


def secagg_noise_bernoulli_exp(m: int, num: int, den: int, seed: bytes) -> np.ndarray:
    """``m`` exact Bernoulli(exp(-num/den)) bits as uint8 (CKS Algorithm 1); num, den <= 2^62."""
    num = _ensure_int(num, "num", 0, 2**62)
    den = _ensure_int(den, "den", 1, 2**62)
    return _noise_call("bernoulli_exp", np.dtype(np.uint8), m, (num, den), seed)


def secagg_noise_dlaplace(m: int, t: int, seed: bytes) -> np.ndarray:
    """``m`` exact discrete Laplace values, P(x) proportional to exp(-|x|/t), 1 <= t <= 2^32."""
    t = _ensure_int(t, "t", 1, 2**32)
    return _noise_call("dlaplace", _I64, m, (t,), seed)


def secagg_noise_dgauss(m: int, num: int, den: int, seed: bytes) -> np.ndarray:
    """``m`` exact discrete Gaussians with sigma^2 = num/den (den <= 2^16, sigma^2 <= 2^40)."""
    num, den = _ensure_rational(num, den, DGAUSS_MAX_DEN, DGAUSS_MAX_VARIANCE, "sigma^2",
                                positive=True)
    return _noise_call("dgauss", _I64, m, (num, den), seed)


def secagg_noise_poisson(m: int, num: int, den: int, seed: bytes) -> np.ndarray:
    """``m`` exact Poisson(num/den) values (den <= 2^32, mu <= 2^24; O(sqrt mu) work from mu = 6)."""
    num, den = _ensure_rational(num, den, POISSON_MAX_DEN, POISSON_MAX_MU, "mu", positive=False)
    return _noise_call("poisson", _I64, m, (num, den), seed)


def secagg_noise_skellam(m: int, num: int, den: int, seed: bytes) -> np.ndarray:
    """``m`` exact Skellam(mu, mu) values, mu = num/den (variance 2 mu); bounds as for Poisson."""
    num, den = _ensure_rational(num, den, POISSON_MAX_DEN, POISSON_MAX_MU, "mu", positive=False)
    return _noise_call("skellam", _I64, m, (num, den), seed)
