"""Fixed-point encoding: agreement with the numpy oracle, sums, unbiasedness, refusals."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.bindings import storage_dtype
from secagg.errors import SecAggTypeError, SecAggValueError
from secagg.fixedpoint import FixedPoint, decode, encode
from secagg.reference import reference_decode, reference_encode, reference_rounding_words

SEED = bytes(range(32))


def _fit(bits: int, clip: float, frac: float = 1.0) -> float:
    """A scale with ceil(clip * scale) <= 2^(bits-1) - 1 (the largest such times ~frac)."""
    limit = 2 ** (bits - 1) - 1
    scale = math.nextafter(limit / clip, 0.0) * frac
    while math.ceil(clip * scale) > limit:
        scale = math.nextafter(scale, 0.0)
    return scale


def _sum_mod(vs: list[np.ndarray], bits: int) -> np.ndarray:
    """Sum of vectors mod 2^bits, as the server computes it."""
    total = np.zeros(len(vs[0]), dtype=np.uint64)
    for v in vs:
        total += v.astype(np.uint64)  # wraps mod 2^64, fine for any bits <= 64
    if bits < 64:
        total &= np.uint64(2**bits - 1)
    return total.astype(storage_dtype(bits))


@st.composite
def encode_cases(draw):
    bits = draw(st.integers(2, 64))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    clip = draw(st.floats(1e-3, 1e3))
    scale = _fit(bits, clip, draw(st.floats(1e-6, 1.0)))
    width = 32 if dtype is np.float32 else 64
    bound = float(np.float32(2 * clip)) if width == 32 else 2 * clip
    elems = st.floats(-bound, bound, width=width) | st.floats(
        allow_nan=False, allow_infinity=False, width=width
    )
    x = np.array(draw(st.lists(elems, max_size=80)), dtype=dtype)
    seed = draw(st.binary(min_size=32, max_size=32))
    return x, clip, scale, bits, seed


class TestAgainstReference:
    @settings(max_examples=150, deadline=None)
    @given(encode_cases())
    def test_encode_and_decode_match_the_oracle(self, case):
        x, clip, scale, bits, seed = case
        v, n_clipped = encode(x, clip=clip, scale=scale, bits=bits, seed=seed)
        words = reference_rounding_words(seed, len(x))
        ref, ref_clipped = reference_encode(x, clip, scale, bits, words)
        assert v.dtype == storage_dtype(bits)
        np.testing.assert_array_equal(v, ref)
        assert n_clipped == ref_clipped
        got = decode(v, scale=scale, bits=bits)
        np.testing.assert_array_equal(got, reference_decode(v, scale, bits))

    def test_long_vector_spans_many_keystream_tiles(self):
        x = np.random.default_rng(0).normal(size=5000).astype(np.float32)
        v, _ = encode(x, clip=2.0, scale=1000.0, bits=24, seed=SEED)
        ref, _ = reference_encode(x, 2.0, 1000.0, 24, reference_rounding_words(SEED, 5000))
        np.testing.assert_array_equal(v, ref)

    def test_known_answer(self):
        # Pins the documented rounding stream: word i = LE uint32 i of ChaCha20(seed, zero
        # nonce), round up iff word < frac * 2^32. Checked by hand against these words.
        words = reference_rounding_words(SEED, 10)
        assert [int(w) for w in words[6:]] == [0x4C7DCCB2, 0x9224EAD8, 0xE7CC232B, 0xAB2360A2]
        x = np.array([0.5, -0.5, 0.25, -0.25, 1.0, -3.0, 0.1, 0.7, -0.7, 0.9])
        v, n = encode(x, clip=1.0, scale=2.0, bits=8, seed=SEED)
        np.testing.assert_array_equal(v, [1, 255, 1, 0, 2, 254, 0, 1, 254, 2])
        assert n == 1


class TestSums:
    @settings(max_examples=60, deadline=None)
    @given(
        n=st.integers(1, 8),
        m=st.integers(0, 40),
        bits=st.integers(8, 64),
        log_scale=st.integers(-4, 20),
        data=st.data(),
    )
    def test_decoded_sum_is_within_n_over_scale(self, n, m, bits, log_scale, data):
        scale = 2.0**log_scale
        # n summands of magnitude <= ceil(clip * scale) must not wrap mod 2^bits.
        clip = ((2 ** (bits - 1) - 1) // n - 1) / scale
        if clip <= 0:
            return
        clip = min(clip, 1e6)
        elems = st.floats(-2 * clip, 2 * clip, allow_nan=False)
        xs = [np.array(data.draw(st.lists(elems, min_size=m, max_size=m))) for _ in range(n)]
        encoded = [encode(x, clip=clip, scale=scale, bits=bits)[0] for x in xs]
        got = decode(_sum_mod(encoded, bits), scale=scale, bits=bits)
        clipped = np.stack([np.clip(x, -clip, clip) for x in xs], axis=1)
        want = np.array([math.fsum(row) for row in clipped]).reshape(m)
        slack = n / scale + 4 * np.finfo(np.float64).eps * (np.abs(want) + n * clip)
        assert np.all(np.abs(got - want) <= slack)

    @settings(max_examples=60, deadline=None)
    @given(
        n=st.integers(1, 10),
        bits=st.integers(12, 53),
        log_scale=st.integers(0, 16),
        data=st.data(),
    )
    def test_multiples_of_one_over_scale_sum_exactly(self, n, bits, log_scale, data):
        scale = 2.0**log_scale
        top = (2 ** (bits - 1) - 1) // n
        ks = [data.draw(st.lists(st.integers(-top, top), min_size=5, max_size=5)) for _ in range(n)]
        xs = [np.array(k, dtype=np.float64) / scale for k in ks]
        encoded = [encode(x, clip=top / scale, scale=scale, bits=bits)[0] for x in xs]
        got = decode(_sum_mod(encoded, bits), scale=scale, bits=bits)
        np.testing.assert_array_equal(got, np.sum(ks, axis=0) / scale)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_negative_values_round_trip(self, dtype):
        x = -np.arange(1, 200, dtype=dtype) / 8
        v, n = encode(x, clip=100.0, scale=8.0, bits=16)
        assert n == 0
        assert np.all(v >= 2**15)  # two's complement: the sign bit is set
        np.testing.assert_array_equal(decode(v, scale=8.0, bits=16), x.astype(np.float64))


class TestRounding:
    @pytest.mark.parametrize("value", [0.3, -2.7, 0.001, 5.5, -0.999])
    def test_unbiased_on_average(self, value):
        # Every element gets its own rounding word, so one long vector is N trials.
        count = 200_000
        v, _ = encode(np.full(count, value), clip=10.0, scale=1.0, bits=8)
        got = decode(v, scale=1.0, bits=8)
        frac = value - math.floor(value)
        assert set(np.unique(got)) <= {math.floor(value), math.floor(value) + 1}
        sigma = math.sqrt(frac * (1 - frac) / count)
        assert abs(got.mean() - value) <= 6 * sigma + 1e-12

    def test_unbiased_across_calls_with_fresh_seeds(self):
        value, calls = 0.37, 400
        means = [decode(encode(np.full(100, value), clip=1.0, scale=1.0, bits=4)[0],
                        scale=1.0, bits=4).mean() for _ in range(calls)]
        sigma = math.sqrt(value * (1 - value) / (100 * calls))
        assert abs(np.mean(means) - value) <= 6 * sigma

    def test_fresh_seed_per_call(self):
        x = np.full(1000, 0.5)
        a, _ = encode(x, clip=1.0, scale=1.0, bits=8)
        b, _ = encode(x, clip=1.0, scale=1.0, bits=8)
        assert not np.array_equal(a, b)  # equal with probability 2^-1000

    def test_explicit_seed_is_reproducible(self):
        x = np.linspace(-1, 1, 101)
        a, _ = encode(x, clip=1.0, scale=10.0, bits=8, seed=SEED)
        b, _ = encode(x, clip=1.0, scale=10.0, bits=8, seed=SEED)
        c, _ = encode(x, clip=1.0, scale=10.0, bits=8, seed=bytes(32))
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)

    def test_float32_is_rounded_from_its_exact_value(self):
        x32 = np.array([0.1], dtype=np.float32)
        v32, _ = encode(x32, clip=1.0, scale=2.0**30, bits=32, seed=SEED)
        v64, _ = encode(x32.astype(np.float64), clip=1.0, scale=2.0**30, bits=32, seed=SEED)
        np.testing.assert_array_equal(v32, v64)


class TestClipping:
    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.floats(-100, 100), max_size=60), st.floats(0.01, 50))
    def test_count_and_clipped_values(self, values, clip):
        x = np.array(values, dtype=np.float64)
        scale = 2.0**20
        v, n = encode(x, clip=clip, scale=scale, bits=40, seed=SEED)
        assert n == int(np.count_nonzero(np.abs(x) > clip))
        got = decode(v, scale=scale, bits=40)
        assert np.all(np.abs(got) <= clip + 1 / scale)
        outside = np.abs(x) > clip
        assert np.all(np.abs(got[outside] - np.sign(x[outside]) * clip) <= 1 / scale)

    def test_values_on_the_bound_are_not_counted(self):
        _, n = encode(np.array([1.0, -1.0, 0.0]), clip=1.0, scale=1.0, bits=4)
        assert n == 0


class TestEveryWidth:
    @pytest.mark.parametrize("bits", range(2, 65))
    def test_extremes_fit_and_round_trip(self, bits):
        scale = _fit(bits, 1.0)
        x = np.array([1.0, -1.0, 5.0, -5.0, 0.0, 0.5, -0.25])
        v, n = encode(x, clip=1.0, scale=scale, bits=bits, seed=SEED)
        assert n == 2
        assert int(v.max()) < 2**bits
        got = decode(v, scale=scale, bits=bits)
        np.testing.assert_allclose(got[:4], [1.0, -1.0, 1.0, -1.0], rtol=1e-15, atol=0)
        assert np.all(np.abs(got - np.clip(x, -1, 1)) <= 1 / scale * (1 + 1e-12))

    @pytest.mark.parametrize("bits", range(1, 65))
    def test_guard_refuses_just_too_large(self, bits):
        scale = _fit(bits, 1.0) if bits >= 2 else 1.0
        too_big = math.nextafter(scale, math.inf)
        if bits >= 2:
            while math.ceil(too_big) <= 2 ** (bits - 1) - 1:
                too_big = math.nextafter(too_big, math.inf)
        with pytest.raises(SecAggValueError, match="clip\\*scale too large"):
            encode(np.zeros(3), clip=1.0, scale=too_big, bits=bits)
        with pytest.raises(SecAggValueError, match="clip\\*scale too large"):
            FixedPoint(clip=1.0, scale=too_big, bits=bits)

    @pytest.mark.parametrize("bits", range(1, 65))
    def test_decode_reads_signed(self, bits):
        top = 2 ** (bits - 1)  # the sign bit
        v = np.array([0, top - 1, top, 2**bits - 1], dtype=storage_dtype(bits))
        want = np.array([0.0, float(top - 1), -float(top), -1.0])
        np.testing.assert_array_equal(decode(v, scale=1.0, bits=bits), want)
        np.testing.assert_array_equal(decode(v, scale=4.0, bits=bits), want / 4)


class TestRefuses:
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    @pytest.mark.parametrize("where", [0, 7, 1500, 2999])
    def test_nan_and_inf_name_the_first_index(self, dtype, bad, where):
        x = np.zeros(3000, dtype=dtype)
        x[where] = bad
        x[-1] = np.nan
        with pytest.raises(SecAggValueError, match=f"x\\[{where}\\]"):
            encode(x, clip=1.0, scale=10.0, bits=16)

    @pytest.mark.parametrize(
        "x",
        [
            np.zeros(3, dtype=np.int64),
            np.zeros(3, dtype=np.float16),
            np.zeros(3, dtype=np.complex128),
            np.zeros(3, dtype=object),
            np.zeros(3, dtype=">f8"),
            [0.0, 1.0],
            1.0,
        ],
    )
    def test_wrong_types(self, x):
        with pytest.raises(SecAggTypeError):
            encode(x, clip=1.0, scale=10.0, bits=16)

    def test_not_one_dimensional(self):
        with pytest.raises(SecAggValueError, match="1-D"):
            encode(np.zeros((2, 2)), clip=1.0, scale=10.0, bits=16)
        with pytest.raises(SecAggValueError, match="1-D"):
            encode(np.zeros(()), clip=1.0, scale=10.0, bits=16)

    @pytest.mark.parametrize(
        "kwargs, exc",
        [
            ({"clip": 0.0}, SecAggValueError),
            ({"clip": -1.0}, SecAggValueError),
            ({"clip": math.nan}, SecAggValueError),
            ({"clip": math.inf}, SecAggValueError),
            ({"scale": 0.0}, SecAggValueError),
            ({"scale": math.inf}, SecAggValueError),
            ({"scale": math.nan}, SecAggValueError),
            ({"bits": 0}, SecAggValueError),
            ({"bits": 65}, SecAggValueError),
            ({"bits": 16.0}, SecAggTypeError),
            ({"bits": True}, SecAggTypeError),
            ({"clip": "1"}, SecAggTypeError),
            ({"scale": None}, SecAggTypeError),
            ({"seed": bytes(31)}, SecAggValueError),
            ({"seed": "x" * 32}, SecAggTypeError),
        ],
    )
    def test_bad_parameters(self, kwargs, exc):
        args = {"clip": 1.0, "scale": 10.0, "bits": 16, "seed": SEED} | kwargs
        with pytest.raises(exc):
            encode(np.zeros(3), **args)

    def test_decode_refuses_values_above_bits(self):
        with pytest.raises(SecAggValueError, match=">= 2\\^12"):
            decode(np.array([1, 2**12], dtype=np.uint32), scale=1.0, bits=12)

    @pytest.mark.parametrize(
        "v, exc",
        [
            (np.zeros(3, dtype=np.uint64), SecAggTypeError),
            (np.zeros(3, dtype=np.int32), SecAggTypeError),
            (np.zeros((2, 2), dtype=np.uint32), SecAggValueError),
            (np.zeros(6, dtype=np.uint32)[::2], SecAggValueError),
        ],
    )
    def test_decode_refuses_bad_vectors(self, v, exc):
        with pytest.raises(exc):
            decode(v, scale=1.0, bits=16)

    def test_decode_refuses_misaligned(self):
        v = np.zeros(4 * 5 + 1, dtype=np.uint8)[1:].view(np.uint32)
        assert not v.flags.aligned
        with pytest.raises(SecAggValueError, match="aligned"):
            decode(v, scale=1.0, bits=16)

    @pytest.mark.parametrize("scale", [0.0, -1.0, math.nan, math.inf])
    def test_decode_refuses_bad_scale(self, scale):
        with pytest.raises(SecAggValueError):
            decode(np.zeros(3, dtype=np.uint32), scale=scale, bits=16)


class TestLayouts:
    def test_non_contiguous_input_is_copied(self):
        x = np.linspace(-1, 1, 40)
        a, _ = encode(x[::2], clip=1.0, scale=100.0, bits=16, seed=SEED)
        b, _ = encode(x[::2].copy(), clip=1.0, scale=100.0, bits=16, seed=SEED)
        np.testing.assert_array_equal(a, b)

    def test_misaligned_input_is_copied(self):
        raw = np.zeros(8 * 10 + 1, dtype=np.uint8)
        x = raw[1:].view(np.float64)
        x[:] = np.linspace(-1, 1, 10)
        assert not x.flags.aligned
        a, _ = encode(x, clip=1.0, scale=100.0, bits=16, seed=SEED)
        b, _ = encode(x.copy(), clip=1.0, scale=100.0, bits=16, seed=SEED)
        np.testing.assert_array_equal(a, b)

    def test_empty(self):
        v, n = encode(np.zeros(0, dtype=np.float32), clip=1.0, scale=1.0, bits=8)
        assert v.shape == (0,) and v.dtype == np.uint32 and n == 0
        assert decode(v, scale=1.0, bits=8).shape == (0,)


class TestFixedPointClass:
    def test_delegates_and_is_frozen(self):
        fp = FixedPoint(clip=2, scale=256, bits=20)
        assert isinstance(fp.clip, float) and fp.scale == 256.0
        x = np.array([0.5, -3.0, 1.25])
        v, n = fp.encode(x, seed=SEED)
        w, m = encode(x, clip=2.0, scale=256.0, bits=20, seed=SEED)
        np.testing.assert_array_equal(v, w)
        assert n == m == 1
        np.testing.assert_array_equal(fp.decode(v), [0.5, -2.0, 1.25])
        with pytest.raises(dataclasses.FrozenInstanceError):
            fp.bits = 8  # type: ignore[misc]

    @pytest.mark.parametrize(
        "kwargs", [{"clip": -1.0}, {"scale": math.nan}, {"bits": 0}, {"bits": 1}]
    )
    def test_validates(self, kwargs):
        with pytest.raises(SecAggValueError):
            FixedPoint(**({"clip": 1.0, "scale": 2.0, "bits": 8} | kwargs))
