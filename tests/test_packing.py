"""Bit packing: exact sizes, the documented bit order, round trips and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.bindings import storage_dtype
from secagg.errors import SecAggTypeError, SecAggValueError
from secagg.packing import pack, packed_size, unpack
from secagg.reference import reference_pack, reference_unpack

ALL_BITS = range(1, 65)


def _random_vector(rng: np.random.Generator, m: int, bits: int) -> np.ndarray:
    hi = np.uint64(2**64 - 1) if bits == 64 else np.uint64(2**bits - 1)
    v = rng.integers(0, hi, size=m, dtype=np.uint64, endpoint=True)
    # Make the extremes appear: 0 and 2^bits - 1 catch masking and carry mistakes.
    if m >= 2:
        v[0], v[-1] = hi, 0
    return v.astype(storage_dtype(bits))


@st.composite
def vectors(draw, max_m: int = 300):
    bits = draw(st.integers(1, 64))
    m = draw(st.integers(0, max_m))
    seed = draw(st.integers(0, 2**32 - 1))
    return _random_vector(np.random.default_rng(seed), m, bits), bits


class TestFormat:
    def test_documented_bit_order(self):
        # 1, 2, 3 as 3-bit values: stream bits 100 010 110 (LSB first) -> 0xD1, then pad.
        assert pack(np.array([1, 2, 3], dtype=np.uint32), 3) == b"\xd1\x00"

    def test_whole_bytes_are_little_endian(self):
        assert pack(np.array([0xABCD, 0x0102], dtype=np.uint32), 16) == b"\xcd\xab\x02\x01"
        assert pack(np.array([0x0102030405060708], dtype=np.uint64), 64) == bytes(range(8, 0, -1))

    def test_values_straddle_word_boundaries(self):
        # 33-bit values: the second starts at bit 33, inside byte 4.
        v = np.array([2**33 - 1, 1], dtype=np.uint64)
        assert pack(v, 33) == b"\xff\xff\xff\xff\x03\x00\x00\x00\x00"

    @pytest.mark.parametrize("bits", ALL_BITS)
    @pytest.mark.parametrize("m", [0, 1, 3, 7, 8, 9, 33])
    def test_every_width_round_trips_with_exact_size(self, bits, m):
        v = _random_vector(np.random.default_rng(bits * 100 + m), m, bits)
        data = pack(v, bits)
        assert len(data) == packed_size(m, bits) == -(-m * bits // 8)
        assert data == reference_pack(v, bits)
        out = unpack(data, m, bits)
        assert out.dtype == storage_dtype(bits)
        np.testing.assert_array_equal(out, v)

    @pytest.mark.parametrize("bits", [7, 8, 16, 31, 32, 33, 48, 63, 64])
    def test_long_vectors_use_the_fast_paths_correctly(self, bits):
        v = _random_vector(np.random.default_rng(bits), 10_001, bits)
        data = pack(v, bits)
        assert data == reference_pack(v, bits)
        np.testing.assert_array_equal(unpack(data, len(v), bits), v)

    @settings(max_examples=150, deadline=None)
    @given(vectors())
    def test_pack_matches_reference_and_round_trips(self, case):
        v, bits = case
        data = pack(v, bits)
        assert data == reference_pack(v, bits)
        np.testing.assert_array_equal(unpack(data, len(v), bits), v)

    @settings(max_examples=100, deadline=None)
    @given(st.integers(1, 64), st.integers(0, 100), st.binary(min_size=800, max_size=800))
    def test_unpack_matches_reference_on_arbitrary_bytes(self, bits, m, raw):
        size = packed_size(m, bits)
        data = bytearray(raw[:size])
        if m * bits % 8:
            data[-1] &= (1 << (m * bits % 8)) - 1  # clear the pad bits
        np.testing.assert_array_equal(unpack(bytes(data), m, bits), reference_unpack(data, m, bits))

    def test_unpack_accepts_bytearray_and_memoryview(self):
        v = np.arange(10, dtype=np.uint32)
        data = pack(v, 5)
        np.testing.assert_array_equal(unpack(bytearray(data), 10, 5), v)
        np.testing.assert_array_equal(unpack(memoryview(data), 10, 5), v)


class TestPackRefuses:
    @pytest.mark.parametrize("bits", [1, 5, 8, 16, 31, 33, 40, 63])
    @pytest.mark.parametrize("where", [0, 5, -1])
    def test_values_with_bits_above_b(self, bits, where):
        v = np.zeros(11, dtype=storage_dtype(bits))
        v[where] = 2**bits
        with pytest.raises(SecAggValueError, match=f">= 2\\^{bits}"):
            pack(v, bits)

    def test_top_bit_of_storage(self):
        v = np.array([0, 2**31], dtype=np.uint32)
        with pytest.raises(SecAggValueError):
            pack(v, 31)
        v = np.array([2**63], dtype=np.uint64)
        with pytest.raises(SecAggValueError):
            pack(v, 63)

    @pytest.mark.parametrize(
        "v, bits",
        [
            (np.zeros(4, dtype=np.uint64), 16),  # uint32 storage expected
            (np.zeros(4, dtype=np.uint32), 40),  # uint64 storage expected
            (np.zeros(4, dtype=np.int32), 16),
            (np.zeros(4, dtype=np.float64), 16),
            ([0, 1, 2], 16),
            (b"\x00\x01", 8),
        ],
    )
    def test_wrong_types(self, v, bits):
        with pytest.raises(SecAggTypeError):
            pack(v, bits)

    def test_two_dimensional(self):
        with pytest.raises(SecAggValueError, match="1-D"):
            pack(np.zeros((2, 3), dtype=np.uint32), 16)

    def test_non_contiguous(self):
        with pytest.raises(SecAggValueError, match="contiguous"):
            pack(np.zeros(10, dtype=np.uint32)[::2], 16)

    def test_misaligned(self):
        raw = np.zeros(4 * 8 + 1, dtype=np.uint8)
        v = raw[1:].view(np.uint32)
        assert not v.flags.aligned
        with pytest.raises(SecAggValueError, match="aligned"):
            pack(v, 16)

    @pytest.mark.parametrize("bits", [0, 65, -1])
    def test_bits_out_of_range(self, bits):
        with pytest.raises(SecAggValueError):
            pack(np.zeros(3, dtype=np.uint32), bits)

    @pytest.mark.parametrize("bits", [True, 8.0, "8"])
    def test_bits_not_an_int(self, bits):
        with pytest.raises(SecAggTypeError):
            pack(np.zeros(3, dtype=np.uint32), bits)


class TestUnpackRefuses:
    @pytest.mark.parametrize("bits", [1, 3, 8, 16, 32, 37, 64])
    @pytest.mark.parametrize("delta", [-1, 1, 8])
    def test_wrong_length_names_expected_and_got(self, bits, delta):
        m = 9
        size = packed_size(m, bits)
        data = bytes(max(size + delta, 0))
        with pytest.raises(SecAggValueError, match=f"must be {size} bytes.*got {len(data)}"):
            unpack(data, m, bits)

    def test_empty_vector_needs_empty_bytes(self):
        assert len(unpack(b"", 0, 12)) == 0
        with pytest.raises(SecAggValueError):
            unpack(b"\x00", 0, 12)

    @pytest.mark.parametrize("bits, m", [(1, 1), (3, 3), (5, 7), (12, 1), (33, 1), (63, 5)])
    def test_every_non_zero_pad_bit(self, bits, m):
        used = m * bits % 8
        assert used
        data = pack(np.zeros(m, dtype=storage_dtype(bits)), bits)
        for pad_bit in range(used, 8):
            bad = bytearray(data)
            bad[-1] |= 1 << pad_bit
            with pytest.raises(SecAggValueError, match="pad"):
                unpack(bytes(bad), m, bits)

    @pytest.mark.parametrize("data", ["abc", [0, 1, 2], 3, None, np.zeros(3, dtype=np.uint8)])
    def test_non_bytes(self, data):
        with pytest.raises(SecAggTypeError, match="bytes"):
            unpack(data, 3, 8)

    @pytest.mark.parametrize("m", [-1, 2**57])
    def test_m_out_of_range(self, m):
        with pytest.raises(SecAggValueError):
            unpack(b"", m, 8)


class TestPackedSize:
    @given(st.integers(0, 2**40), st.integers(1, 64))
    def test_is_ceil_of_bits_over_eight(self, m, bits):
        assert packed_size(m, bits) == (m * bits + 7) // 8

    def test_refuses_bad_arguments(self):
        with pytest.raises(SecAggValueError):
            packed_size(-1, 8)
        with pytest.raises(SecAggValueError):
            packed_size(10, 0)
        with pytest.raises(SecAggTypeError):
            packed_size(10.0, 8)
