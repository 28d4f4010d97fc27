"""The C API's own contract, called through cffi's raw ``lib`` functions.

The Python wrappers check their arguments first and would hide a C function
that trusts its caller, so these tests skip them: each one passes what a C
caller could pass and asserts the function refuses it without writing.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from secagg._csecagg import ffi, lib

from secagg import _csecagg, bindings, shamir
from secagg.config import SecAggConfig
from secagg.errors import SecAggValueError
from secagg.fixedpoint import FixedPoint, encode

SIZE_MAX = 2 ** (8 * ffi.sizeof("size_t")) - 1
P = (1 << 61) - 1


def _u64(values) -> tuple[np.ndarray, object]:
    arr = np.array(values, dtype=np.uint64)
    return arr, ffi.cast("uint64_t *", ffi.from_buffer(arr))


# --- pack ---------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 7, 8, 16, 31, 32])
def test_pack_decode_u32_refuses_m_above_the_maximum_even_when_nbytes_says_size_max(bits):
    # Before: secagg_pack_size(2^60, bits) returned SIZE_MAX, which equals nbytes,
    # so the decoder went on and wrote 2^60 elements into a 4-element buffer.
    out = np.full(4, 0xA5A5A5A5, dtype=np.uint32)
    src = bytes(16)
    rc = lib.secagg_pack_decode_u32(ffi.cast("uint32_t *", ffi.from_buffer(out)), src,
                                    SIZE_MAX, 2**60, bits)
    assert rc == -1
    assert (out == 0xA5A5A5A5).all()


@pytest.mark.parametrize("bits", [33, 48, 63, 64])
def test_pack_decode_u64_refuses_m_above_the_maximum_even_when_nbytes_says_size_max(bits):
    out = np.full(4, 0xA5, dtype=np.uint64)
    rc = lib.secagg_pack_decode_u64(ffi.cast("uint64_t *", ffi.from_buffer(out)), bytes(32),
                                    SIZE_MAX, 2**60, bits)
    assert rc == -1
    assert (out == 0xA5).all()


def test_pack_limits_come_from_c_and_out_of_range_sizes_are_size_max():
    assert bindings.PACK_MAX_LENGTH == lib.secagg_pack_max_length() == 2**56
    assert lib.secagg_pack_size(2**56, 64) == 2**59
    assert lib.secagg_pack_size(2**56 + 1, 1) == SIZE_MAX
    assert lib.secagg_pack_size(10, 0) == SIZE_MAX
    out = np.zeros(1, dtype=np.uint8)
    v = np.zeros(1, dtype=np.uint32)
    assert lib.secagg_pack_encode_u32(ffi.cast("uint8_t *", ffi.from_buffer(out)),
                                      ffi.cast("uint32_t *", ffi.from_buffer(v)), 2**56 + 1, 8) == -1


def test_pack_decode_at_the_maximum_length_still_checks_nbytes():
    out = np.zeros(1, dtype=np.uint32)
    rc = lib.secagg_pack_decode_u32(ffi.cast("uint32_t *", ffi.from_buffer(out)), bytes(1),
                                    1, 2**56, 8)
    assert rc == -1


# --- shamir -------------------------------------------------------------------


def test_lagrange_refuses_its_output_aliasing_the_points():
    xs, p = _u64([1, 2, 3, 4])
    assert lib.secagg_shamir_lagrange(p, p, 4) == -1
    assert xs.tolist() == [1, 2, 3, 4]  # nothing written


def test_lagrange_refuses_a_partial_overlap_in_either_direction():
    buf, p = _u64([1, 2, 3, 4, 5, 6])
    assert lib.secagg_shamir_lagrange(p + 2, p, 4) == -1
    assert lib.secagg_shamir_lagrange(p, p + 2, 4) == -1
    assert buf.tolist() == [1, 2, 3, 4, 5, 6]
    # Adjacent, not overlapping: accepted, and the result interpolates at 0.
    assert lib.secagg_shamir_lagrange(p + 3, p, 3) == 0
    assert buf[:3].tolist() == [1, 2, 3]
    assert sum(int(v) for v in buf[3:]) % P == 1  # sum of Lagrange coefficients at 0 is 1


def test_combine_and_split_refuse_outputs_overlapping_inputs():
    shares, ps = _u64([5, 6, 7, 8])
    lag, pl = _u64([1, 1])
    assert lib.secagg_shamir_combine(ps, ps, pl, 2, 2) == -1
    assert lib.secagg_shamir_combine(pl, ps, pl, 2, 1) == -1
    assert shares.tolist() == [5, 6, 7, 8] and lag.tolist() == [1, 1]
    buf, pb = _u64([9, 1, 2, 0, 0])  # secret 9, xs (1, 2), room for two shares
    assert lib.secagg_shamir_split(pb + 1, pb, ffi.NULL, pb + 1, 2, 1, 1) == -1  # shares over xs
    assert lib.secagg_shamir_split(pb, pb, ffi.NULL, pb + 1, 2, 1, 1) == -1  # shares over secret
    assert buf.tolist() == [9, 1, 2, 0, 0]
    assert lib.secagg_shamir_split(pb + 3, pb, ffi.NULL, pb + 1, 2, 1, 1) == 0
    assert buf[3:].tolist() == [9, 9]  # t = 1: every share is the secret


def test_shamir_limits_come_from_c():
    assert bindings.SHAMIR_MAX_CHUNKS == lib.secagg_shamir_max_chunks() == 16
    with pytest.raises(SecAggValueError, match="1 to 16 chunks"):
        bindings.secagg_shamir_split(np.zeros(17, dtype=np.uint64), np.zeros(17, dtype=np.uint64),
                                     np.zeros(0, dtype=np.uint64), np.ones(1, dtype=np.uint64), 1)


def test_shamir_uses_native_uint64_for_the_core_and_little_endian_bytes_on_the_wire():
    # A big-endian host is simulated by a byte-swapped array: the wire bytes must not change.
    values = np.array([1, 2**60 + 3, P - 1], dtype=np.uint64)
    swapped = values.astype(">u8")
    assert shamir._to_wire(swapped) == shamir._to_wire(values)
    assert shamir._to_wire(values) == b"".join(int(v).to_bytes(8, "little") for v in values)
    back = shamir._from_wire(shamir._to_wire(swapped))
    assert back.dtype == np.dtype(np.uint64) and back.dtype.isnative
    assert back.tolist() == values.tolist()
    # t = 1: every share is the secret's chunks, 7 little-endian bytes each plus a zero byte.
    secret = bytes(range(1, 33))
    share = shamir.split(secret, [1], 1)[0]
    padded = secret + bytes(shamir.CHUNKS * 7 - 32)
    assert share == b"".join(padded[7 * c : 7 * c + 7] + b"\0" for c in range(shamir.CHUNKS))
    assert shamir._encode_secret(secret).dtype.isnative


# --- fixed point and the other limits -------------------------------------------


def test_fixedpoint_and_mask_limits_come_from_c():
    assert bindings.FIXEDPOINT_MAX_LENGTH == lib.secagg_fixedpoint_max_length() == 2**36
    assert bindings.MASK_MAX_BLOCKS == lib.secagg_mask_max_blocks() == 2**32


@pytest.mark.parametrize("name", ["clip", "scale"])
def test_a_huge_int_clip_or_scale_is_a_value_error_not_an_overflow_error(name):
    params = {"clip": 1.0, "scale": 2.0**10, name: 10**400}
    with pytest.raises(SecAggValueError, match=f"{name} must be finite"):
        FixedPoint(bits=32, **params)
    with pytest.raises(SecAggValueError, match=f"{name} must be finite"):
        encode(np.zeros(3), bits=32, **params)
    with pytest.raises(SecAggValueError, match=f"{name} must be finite"):
        SecAggConfig(num_clients=4, vector_length=3, threshold=3, bits=32, **params)


def test_a_huge_int_clip_is_refused_by_the_planner_too():
    with pytest.raises(SecAggValueError):
        SecAggConfig.plan(4, 3, clip=10**400)


def test_the_build_flag_says_whether_the_simd_paths_exist():
    assert bindings.SIMD_BUILT in (True, False)
    if not bindings.SIMD_BUILT:
        assert bindings.secagg_runtime_implementations() == ["scalar"]
        assert bindings.secagg_runtime_ciphers() == ["chacha20"]


def test_the_core_loaded_is_the_one_the_run_asked_for():
    # scripts/sanitize.sh sets SECAGG_EXPECT_CORE: a run that silently loaded the
    # normal build would check nothing.
    expected = os.environ.get("SECAGG_EXPECT_CORE")
    if expected is None:
        pytest.skip("SECAGG_EXPECT_CORE is not set (only scripts/sanitize.sh sets it)")
    assert os.path.realpath(_csecagg.__file__) == os.path.realpath(expected)
