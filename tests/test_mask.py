"""Fused mask accumulation: fixed masks, the numpy oracle, algebra, slicing, threads, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.bindings import secagg_mask_accumulate, storage_dtype
from secagg.errors import SecAggTypeError, SecAggValueError
from secagg.prg import MASK_NONCE, accumulate_masks, expand_mask, implementations, keystream
from secagg.reference import reference_accumulate_masks

VECTORS = Path(__file__).parent / "vectors" / "masks.txt"
IMPLS = implementations()
KEY = bytes(range(32))
# Lengths around the edges: empty, one, a block (16 u32 / 8 u64 elements), a SIMD
# group (up to 16 blocks), a tile (128 blocks = 2048 u32 / 1024 u64 elements).
EDGE_LENGTHS = [0, 1, 2, 7, 8, 9, 15, 16, 17, 63, 129, 255, 256, 257, 1023, 1024, 1025, 2047,
                2048, 2049, 4096 + 16 * 5 + 3]
LENGTHS = st.one_of(st.sampled_from(EDGE_LENGTHS), st.integers(0, 5000))
KEYS = st.lists(st.binary(min_size=32, max_size=32), min_size=0, max_size=4)


def _read_masks(path: Path) -> list[tuple[bytes, int, list[int]]]:
    records, current = [], {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            field, value = (part.strip() for part in line.split("=", 1))
            current[field] = value
            if field == "mask":
                records.append((bytes.fromhex(current["key"]), int(current["bits"]),
                                [int(x) for x in value.split()]))
    return records


def _random_acc(rng: np.random.Generator, m: int, bits: int) -> np.ndarray:
    """Reduced test data (numpy's generator is fine: nothing secret here)."""
    return (rng.integers(0, 2**63, size=m, dtype=np.uint64, endpoint=False)
            >> np.uint64(63 - min(bits, 63))).astype(storage_dtype(bits)) & storage_dtype(
        bits).type(2**bits - 1)


@st.composite
def _batches(draw):
    keys = draw(KEYS)
    signs = draw(st.lists(st.sampled_from([1, -1]), min_size=len(keys), max_size=len(keys)))
    return keys, signs


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("record", _read_masks(VECTORS), ids=lambda r: f"b{r[1]}")
def test_fixed_masks(record: tuple[bytes, int, list[int]], impl: str):
    key, bits, want = record
    acc = np.zeros(len(want), dtype=storage_dtype(bits))
    accumulate_masks(acc, [key], [1], bits, impl=impl)
    assert acc.tolist() == want


def test_zero_key_mask_is_rfc8439_vector_1():
    """RFC 8439 A.1 #1 is the keystream of the zero key, zero nonce, counter 0."""
    block = bytes.fromhex(
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
    )
    assert expand_mask(bytes(32), 16, 32).tolist() == np.frombuffer(block, "<u4").tolist()
    assert expand_mask(bytes(32), 8, 64).tolist() == np.frombuffer(block, "<u8").tolist()


@pytest.mark.parametrize("bits", [5, 32, 40, 64])
def test_expand_mask_is_keystream_words(bits: int):
    m = 1000
    width = 4 if bits <= 32 else 8
    words = np.frombuffer(keystream(KEY, MASK_NONCE, width * m), f"<u{width}").astype(np.uint64)
    want = words & np.uint64(2**bits - 1)
    assert expand_mask(KEY, m, bits).tolist() == want.tolist()
    assert expand_mask(KEY, m, bits).dtype == storage_dtype(bits)


@pytest.mark.parametrize("bits", range(1, 65))
def test_every_bits_every_impl_equals_reference(bits: int):
    rng = np.random.default_rng(bits)
    keys = [rng.bytes(32) for _ in range(3)]
    signs = [1, -1, 1]
    m = 2 * 2048 + 37  # crosses tile boundaries in both storages, ends mid-block
    acc = _random_acc(rng, m, bits)
    want = reference_accumulate_masks(acc, keys, signs, bits)
    for impl in IMPLS:
        got = acc.copy()
        accumulate_masks(got, keys, signs, bits, impl=impl)
        assert np.array_equal(got, want), impl


@settings(max_examples=40, deadline=None)
@given(batch=_batches(), m=LENGTHS, bits=st.integers(1, 64), impl=st.sampled_from(IMPLS),
       seed=st.integers(0, 2**32))
def test_fused_equals_reference(batch, m: int, bits: int, impl: str, seed: int):
    keys, signs = batch
    acc = _random_acc(np.random.default_rng(seed), m, bits)
    want = reference_accumulate_masks(acc, keys, signs, bits)
    accumulate_masks(acc, keys, signs, bits, impl=impl)
    assert np.array_equal(acc, want)
    assert acc.dtype == storage_dtype(bits)


@settings(max_examples=30, deadline=None)
@given(batch=_batches(), m=LENGTHS, bits=st.integers(1, 64), seed=st.integers(0, 2**32))
def test_add_then_subtract_is_identity(batch, m: int, bits: int, seed: int):
    keys, signs = batch
    acc = _random_acc(np.random.default_rng(seed), m, bits)
    before = acc.copy()
    accumulate_masks(acc, keys, signs, bits)
    accumulate_masks(acc, keys, [-s for s in signs], bits)
    assert np.array_equal(acc, before)


@settings(max_examples=20, deadline=None)
@given(batch=_batches(), m=LENGTHS, bits=st.integers(1, 64), data=st.data())
def test_key_order_does_not_matter(batch, m: int, bits: int, data):
    keys, signs = batch
    order = data.draw(st.permutations(range(len(keys))))
    a = np.zeros(m, dtype=storage_dtype(bits))
    b = a.copy()
    accumulate_masks(a, keys, signs, bits)
    accumulate_masks(b, [keys[i] for i in order], [signs[i] for i in order], bits)
    assert np.array_equal(a, b)


@settings(max_examples=25, deadline=None)
@given(m=st.integers(0, 3000), bits=st.integers(1, 64), impl=st.sampled_from(IMPLS),
       cuts=st.lists(st.integers(0, 3000), max_size=4))
def test_slices_at_any_offset_equal_the_whole(m: int, bits: int, impl: str, cuts: list[int]):
    keys, signs = [KEY, bytes(32)], [1, -1]
    whole = np.zeros(m, dtype=storage_dtype(bits))
    secagg_mask_accumulate(whole, keys, signs, bits, impl=impl)
    pieces = np.zeros(m, dtype=storage_dtype(bits))
    bounds = sorted({0, m, *(c for c in cuts if c <= m)})
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        secagg_mask_accumulate(pieces[lo:hi], keys, signs, bits, offset=lo, impl=impl)
    assert np.array_equal(pieces, whole)


@pytest.mark.parametrize("bits", [32, 64])
def test_end_of_the_stream(bits: int):
    """The last element of a 2^32-block stream is allowed; one past it is refused."""
    per_block = 16 if bits <= 32 else 8
    end = 2**32 * per_block
    acc = np.zeros(per_block, dtype=storage_dtype(bits))
    secagg_mask_accumulate(acc, [KEY], [1], bits, offset=end - per_block)
    width = 4 if bits <= 32 else 8
    want = np.frombuffer(keystream(KEY, MASK_NONCE, 64, 2**32 - 1), f"<u{width}")
    assert acc.tolist() == want.tolist()
    with pytest.raises(SecAggValueError, match="mask stream"):
        secagg_mask_accumulate(acc, [KEY], [1], bits, offset=end - per_block + 1)


@pytest.mark.parametrize("bits", [20, 32, 33, 64])
@pytest.mark.parametrize("m", [5000, 2 * 4096 + 17, 40_000 + 5])
def test_threads_equal_one_thread(bits: int, m: int):
    rng = np.random.default_rng(m)
    keys = [rng.bytes(32) for _ in range(5)]
    signs = [1, 1, -1, 1, -1]
    acc = _random_acc(rng, m, bits)
    one, many = acc.copy(), acc.copy()
    accumulate_masks(one, keys, signs, bits)
    for threads in (2, 3, 7):
        many[:] = acc
        accumulate_masks(many, keys, signs, bits, threads=threads)
        assert np.array_equal(many, one), threads


def test_slices_of_arrays_work():
    """A contiguous view starting one element in is a vector of its own."""
    base = np.zeros(101, dtype=np.uint32)
    accumulate_masks(base[1:], [KEY], [1], 32)
    assert base[0] == 0
    assert base[1:].tolist() == expand_mask(KEY, 100, 32).tolist()


def test_no_keys_leaves_acc_alone():
    acc = np.arange(50, dtype=np.uint32)
    accumulate_masks(acc, [], [], 32)
    assert acc.tolist() == list(range(50))


def _misaligned_u32(m: int) -> np.ndarray:
    buf = bytearray(4 * m + 1)
    return np.frombuffer(memoryview(buf)[1:], dtype=np.uint32)


def _read_only(m: int) -> np.ndarray:
    acc = np.zeros(m, dtype=np.uint32)
    acc.flags.writeable = False
    return acc


@pytest.mark.parametrize(
    ("acc", "keys", "signs", "bits", "kwargs", "error"),
    [
        (np.zeros(10, np.uint64), [KEY], [1], 32, {}, SecAggTypeError),
        (np.zeros(10, np.uint32), [KEY], [1], 33, {}, SecAggTypeError),
        (np.zeros(10, np.int32), [KEY], [1], 32, {}, SecAggTypeError),
        (np.zeros(10, np.float64), [KEY], [1], 64, {}, SecAggTypeError),
        ([0] * 10, [KEY], [1], 32, {}, SecAggTypeError),
        (np.zeros((4, 4), np.uint32), [KEY], [1], 32, {}, SecAggValueError),
        (np.zeros(20, np.uint32)[::2], [KEY], [1], 32, {}, SecAggValueError),
        (_read_only(10), [KEY], [1], 32, {}, SecAggValueError),
        (_misaligned_u32(10), [KEY], [1], 32, {}, SecAggValueError),
        (np.zeros(10, np.uint32), [KEY[:31]], [1], 32, {}, SecAggValueError),
        (np.zeros(10, np.uint32), ["k" * 32], [1], 32, {}, SecAggTypeError),
        (np.zeros(10, np.uint32), KEY, [1], 32, {}, SecAggTypeError),
        (np.zeros(10, np.uint32), 5, [1], 32, {}, SecAggTypeError),
        (np.zeros(10, np.uint32), [KEY], [0], 32, {}, SecAggValueError),
        (np.zeros(10, np.uint32), [KEY], [2], 32, {}, SecAggValueError),
        (np.zeros(10, np.uint32), [KEY], [True], 32, {}, SecAggTypeError),
        (np.zeros(10, np.uint32), [KEY], [1.0], 32, {}, SecAggTypeError),
        (np.zeros(10, np.uint32), [KEY, KEY], [1], 32, {}, SecAggValueError),
        (np.zeros(10, np.uint32), [KEY], [1], 0, {}, SecAggValueError),
        (np.zeros(10, np.uint64), [KEY], [1], 65, {}, SecAggValueError),
        (np.zeros(10, np.uint32), [KEY], [1], True, {}, SecAggTypeError),
        (np.zeros(10, np.uint32), [KEY], [1], 32, {"threads": 0}, SecAggValueError),
        (np.zeros(10, np.uint32), [KEY], [1], 32, {"impl": "gpu"}, SecAggValueError),
    ],
)
def test_bad_arguments_refused(acc, keys, signs, bits, kwargs, error):
    before = np.array(acc, copy=True) if isinstance(acc, np.ndarray) else None
    with pytest.raises(error):
        accumulate_masks(acc, keys, signs, bits, **kwargs)
    if before is not None:
        assert np.array_equal(acc, before)


def test_bad_expand_mask_arguments_refused():
    with pytest.raises(SecAggValueError):
        expand_mask(KEY, -1, 32)
    with pytest.raises(SecAggValueError):
        expand_mask(KEY[:5], 10, 32)
    with pytest.raises(SecAggValueError):
        expand_mask(KEY, 10, 65)
