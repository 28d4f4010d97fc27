"""AES-256-CTR: NIST vectors, cryptography (OpenSSL), every implementation alike, fused masks."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from helpers import NO_AES_REASON
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.bindings import secagg_mask_accumulate, storage_dtype
from secagg.errors import SecAggTypeError, SecAggValueError
from secagg.prg import (
    MASK_NONCE,
    accumulate_masks,
    ciphers,
    expand_mask,
    implementations,
    keystream,
)
from secagg.reference import reference_accumulate_masks

AES = "aes256ctr"
HAVE_AES = AES in ciphers()
IMPLS = implementations(AES)
needs_aes = pytest.mark.skipif(not HAVE_AES, reason=NO_AES_REASON)
KEY = bytes(range(32))
# Edges of the C paths: a block is 16 bytes (4 u32 / 2 u64 elements); AES-NI
# runs 8 blocks per step, VAES 16 (AVX2) or 32 (AVX-512); a mask tile is 8 KiB
# (512 blocks = 2048 u32 / 1024 u64 elements).
EDGE_BYTES = [0, 1, 15, 16, 17, 31, 33, 127, 128, 129, 255, 256, 257, 511, 512, 513, 8191, 8192,
              8193, 512 * 3 + 16 * 7 + 5]
EDGE_ELEMENTS = [0, 1, 2, 3, 4, 5, 31, 64, 127, 128, 129, 1023, 1024, 1025, 2047, 2048, 2049,
                 4096 + 128 + 4 * 7 + 1]
KEYS = st.lists(st.binary(min_size=32, max_size=32), min_size=0, max_size=4)


def _cryptography(key: bytes, nonce: bytes, length: int, counter: int = 0) -> bytes:
    """OpenSSL's AES-256-CTR (through cryptography) from the counter block nonce || BE32(counter)."""
    iv = nonce + counter.to_bytes(4, "big")
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update(bytes(length))


def _mask_stream(key: bytes, nbytes: int) -> bytes:
    return _cryptography(key, MASK_NONCE, nbytes)


def _random_acc(rng: np.random.Generator, m: int, bits: int) -> np.ndarray:
    """Reduced test data (numpy's generator is fine: nothing secret here)."""
    words = rng.integers(0, 2**64, size=m, dtype=np.uint64, endpoint=False)
    return (words & np.uint64(2**bits - 1)).astype(storage_dtype(bits))


@st.composite
def _batches(draw):
    keys = draw(KEYS)
    signs = draw(st.lists(st.sampled_from([1, -1]), min_size=len(keys), max_size=len(keys)))
    return keys, signs


# --- availability -----------------------------------------------------------


def test_ciphers_and_implementations_listed():
    assert ciphers()[0] == "chacha20"
    assert set(ciphers()) <= {"chacha20", AES}
    assert set(IMPLS) <= {"vaes-avx512", "vaes-avx2", "aesni"}
    assert HAVE_AES == bool(IMPLS)
    if IMPLS:
        assert IMPLS[-1] == "aesni"  # every AES path needs it, and it is the slowest


@pytest.mark.skipif(HAVE_AES, reason="this CPU has AES-NI")
def test_refused_where_aes_ni_is_missing():
    with pytest.raises(SecAggValueError, match="AES-NI"):
        keystream(KEY, bytes(12), 16, cipher=AES)
    with pytest.raises(SecAggValueError, match="AES-NI"):
        accumulate_masks(np.zeros(4, np.uint32), [KEY], [1], 32, cipher=AES)


# --- keystream ----------------------------------------------------------------


@needs_aes
@pytest.mark.parametrize("impl", IMPLS)
def test_nist_sp800_38a_f55_ctr_aes256(impl: str):
    """SP 800-38A F.5.5: initial counter block f0..ff is nonce f0..fb, counter 0xfcfdfeff."""
    key = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    nonce = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafb")
    pt = bytes.fromhex(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
    )
    ct = bytes.fromhex(
        "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
        "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
    )
    ks = keystream(key, nonce, len(pt), 0xFCFDFEFF, impl=impl, cipher=AES)
    assert bytes(a ^ b for a, b in zip(pt, ks, strict=True)) == ct


@needs_aes
@pytest.mark.parametrize("impl", IMPLS)
def test_fips197_c3_block(impl: str):
    """FIPS 197 C.3 (AES-256 of 00112233..ff) is the block at counter 0xccddeeff."""
    ks = keystream(KEY, bytes.fromhex("00112233445566778899aabb"), 16, 0xCCDDEEFF, impl=impl,
                   cipher=AES)
    assert ks == bytes.fromhex("8ea2b7ca516745bfeafc49904b496089")


@needs_aes
@settings(max_examples=200, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    counter=st.integers(0, 2**32 - 1),
    length=st.one_of(st.sampled_from(EDGE_BYTES), st.integers(0, 20_000)),
    impl=st.sampled_from(IMPLS or ["none"]),
)
@example(key=bytes(32), nonce=bytes(12), counter=0, length=0, impl="aesni")
@example(key=bytes(32), nonce=bytes(12), counter=2**32 - 1, length=16, impl="aesni")
def test_equals_cryptography(key: bytes, nonce: bytes, counter: int, length: int, impl: str):
    counter = min(counter, 2**32 - max(1, -(-length // 16)))
    got = keystream(key, nonce, length, counter, impl=impl, cipher=AES)
    assert got == _cryptography(key, nonce, length, counter)


@needs_aes
@settings(max_examples=100, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    counter=st.integers(0, 2**32 - 1),
    nblocks=st.integers(0, 200),
    tail=st.integers(0, 15),
)
def test_every_impl_equals_the_others(key: bytes, nonce: bytes, counter: int, nblocks: int,
                                      tail: int):
    length = 16 * nblocks + tail
    counter = min(counter, 2**32 - max(1, -(-length // 16)))
    outs = {impl: keystream(key, nonce, length, counter, impl=impl, cipher=AES) for impl in IMPLS}
    assert len(set(outs.values())) == 1, sorted(outs)


@needs_aes
@pytest.mark.parametrize("impl", IMPLS)
def test_last_blocks_of_the_counter_range(impl: str):
    nonce = bytes(range(12))
    # 45 blocks ending at 2^32 - 1: a VAES step of 32, then 8 and 5 on the AES-NI path.
    got = keystream(KEY, nonce, 45 * 16, 2**32 - 45, impl=impl, cipher=AES)
    assert got == _cryptography(KEY, nonce, 45 * 16, 2**32 - 45)


@needs_aes
@pytest.mark.parametrize(("length", "counter"), [(17, 2**32 - 1), (33, 2**32 - 2), (2**36 + 1, 0)])
def test_counter_wrap_refused(length: int, counter: int):
    """OpenSSL would carry into the nonce; the 32-bit counter here refuses to wrap."""
    with pytest.raises(SecAggValueError, match="overflow"):
        keystream(KEY, bytes(12), length, counter, cipher=AES)


def test_chacha20_stays_the_default():
    assert keystream(KEY, bytes(12), 100) == keystream(KEY, bytes(12), 100, cipher="chacha20")
    assert np.array_equal(expand_mask(KEY, 50, 32), expand_mask(KEY, 50, 32, cipher="chacha20"))


@needs_aes
def test_the_cipher_changes_the_mask():
    chacha, aes = expand_mask(KEY, 64, 32), expand_mask(KEY, 64, 32, cipher=AES)
    assert not np.array_equal(chacha, aes)


# --- fused masks --------------------------------------------------------------


@needs_aes
def test_zero_key_mask_is_aes256_of_the_zero_block():
    """Element 0..3 of the zero key's mask: AES-256_0(0^128), read as little-endian words."""
    block = bytes.fromhex("dc95c078a2408989ad48a21492842087")
    assert expand_mask(bytes(32), 4, 32, cipher=AES).tolist() == np.frombuffer(block, "<u4").tolist()
    assert expand_mask(bytes(32), 2, 64, cipher=AES).tolist() == np.frombuffer(block, "<u8").tolist()


@needs_aes
@pytest.mark.parametrize("bits", range(1, 65))
def test_every_bits_every_impl_equals_reference(bits: int):
    rng = np.random.default_rng(bits)
    keys = [rng.bytes(32) for _ in range(3)]
    signs = [1, -1, 1]
    for m in (1, 2 * 2048 + 37):  # one element; across tiles, ending mid-block
        acc = _random_acc(rng, m, bits)
        want = reference_accumulate_masks(acc, keys, signs, bits, stream=_mask_stream)
        for impl in IMPLS:
            got = acc.copy()
            accumulate_masks(got, keys, signs, bits, impl=impl, cipher=AES)
            assert np.array_equal(got, want), (impl, m)


@needs_aes
@settings(max_examples=150, deadline=None)
@given(batch=_batches(), m=st.one_of(st.sampled_from(EDGE_ELEMENTS), st.integers(0, 5000)),
       bits=st.integers(1, 64), impl=st.sampled_from(IMPLS or ["none"]),
       seed=st.integers(0, 2**32))
def test_fused_equals_reference(batch, m: int, bits: int, impl: str, seed: int):
    keys, signs = batch
    acc = _random_acc(np.random.default_rng(seed), m, bits)
    want = reference_accumulate_masks(acc, keys, signs, bits, stream=_mask_stream)
    accumulate_masks(acc, keys, signs, bits, impl=impl, cipher=AES)
    assert np.array_equal(acc, want)
    assert acc.dtype == storage_dtype(bits)


@needs_aes
@pytest.mark.parametrize("bits", [13, 32, 64])
def test_more_keys_than_one_batch(bits: int):
    """The C kernel expands AES keys 32 at a time; 70 keys cross two batch boundaries."""
    rng = np.random.default_rng(70)
    keys = [rng.bytes(32) for _ in range(70)]
    signs = [1 if b else -1 for b in rng.integers(0, 2, size=70)]
    acc = _random_acc(rng, 2048 + 129, bits)
    want = reference_accumulate_masks(acc, keys, signs, bits, stream=_mask_stream)
    for impl in IMPLS:
        got = acc.copy()
        accumulate_masks(got, keys, signs, bits, impl=impl, cipher=AES)
        assert np.array_equal(got, want), impl


@needs_aes
@settings(max_examples=60, deadline=None)
@given(batch=_batches(), m=st.integers(0, 5000), bits=st.integers(1, 64),
       seed=st.integers(0, 2**32))
def test_add_then_subtract_is_identity(batch, m: int, bits: int, seed: int):
    keys, signs = batch
    acc = _random_acc(np.random.default_rng(seed), m, bits)
    before = acc.copy()
    accumulate_masks(acc, keys, signs, bits, cipher=AES)
    accumulate_masks(acc, keys, [-s for s in signs], bits, cipher=AES)
    assert np.array_equal(acc, before)


@needs_aes
@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 3000), bits=st.integers(1, 64), impl=st.sampled_from(IMPLS or ["none"]),
       cuts=st.lists(st.integers(0, 3000), max_size=4))
def test_slices_at_any_offset_equal_the_whole(m: int, bits: int, impl: str, cuts: list[int]):
    keys, signs = [KEY, bytes(32)], [1, -1]
    whole = np.zeros(m, dtype=storage_dtype(bits))
    secagg_mask_accumulate(whole, keys, signs, bits, impl=impl, cipher=AES)
    pieces = np.zeros(m, dtype=storage_dtype(bits))
    bounds = sorted({0, m, *(c for c in cuts if c <= m)})
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        secagg_mask_accumulate(pieces[lo:hi], keys, signs, bits, offset=lo, impl=impl, cipher=AES)
    assert np.array_equal(pieces, whole)


@needs_aes
@pytest.mark.parametrize("bits", [20, 64])
def test_threads_equal_one_thread(bits: int):
    rng = np.random.default_rng(bits)
    keys = [rng.bytes(32) for _ in range(5)]
    signs = [1, 1, -1, 1, -1]
    acc = _random_acc(rng, 2 * 4096 + 17, bits)
    one, many = acc.copy(), acc.copy()
    accumulate_masks(one, keys, signs, bits, cipher=AES)
    accumulate_masks(many, keys, signs, bits, threads=3, cipher=AES)
    assert np.array_equal(many, one)


@needs_aes
@pytest.mark.parametrize("bits", [32, 64])
def test_end_of_the_stream(bits: int):
    """The last element of a 2^32-block stream is allowed; one past it is refused."""
    per_block = 4 if bits <= 32 else 2
    end = 2**32 * per_block
    acc = np.zeros(per_block, dtype=storage_dtype(bits))
    secagg_mask_accumulate(acc, [KEY], [1], bits, offset=end - per_block, cipher=AES)
    want = np.frombuffer(_cryptography(KEY, MASK_NONCE, 16, 2**32 - 1), f"<u{16 // per_block}")
    assert acc.tolist() == want.tolist()
    with pytest.raises(SecAggValueError, match="mask stream"):
        secagg_mask_accumulate(acc, [KEY], [1], bits, offset=end - per_block + 1, cipher=AES)


# --- refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"cipher": "aes128ctr"}, SecAggValueError),
        ({"cipher": "AES256CTR"}, SecAggValueError),
        ({"cipher": None}, SecAggTypeError),
        ({"cipher": b"aes256ctr"}, SecAggTypeError),
        ({"cipher": 1}, SecAggTypeError),
        ({"cipher": "chacha20", "impl": "aesni"}, SecAggValueError),
    ],
)
def test_bad_cipher_refused_everywhere(kwargs: dict, error: type[Exception]):
    with pytest.raises(error):
        keystream(KEY, bytes(12), 10, **kwargs)
    acc = np.arange(8, dtype=np.uint32)
    with pytest.raises(error):
        accumulate_masks(acc, [KEY], [1], 32, **kwargs)
    assert acc.tolist() == list(range(8))
    if "impl" not in kwargs:
        with pytest.raises(error):
            expand_mask(KEY, 8, 32, **kwargs)
        with pytest.raises(error):
            implementations(**kwargs)


@needs_aes
@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((bytes(16), bytes(12), 10), {}, SecAggValueError),  # AES-128 key
        ((bytes(31), bytes(12), 10), {}, SecAggValueError),
        (("k" * 32, bytes(12), 10), {}, SecAggTypeError),
        ((bytes(32), bytes(16), 10), {}, SecAggValueError),  # a whole counter block
        ((bytes(32), None, 10), {}, SecAggTypeError),
        ((bytes(32), bytes(12), -1), {}, SecAggValueError),
        ((bytes(32), bytes(12), 2.0), {}, SecAggTypeError),
        ((bytes(32), bytes(12), 10, 2**32), {}, SecAggValueError),
        ((bytes(32), bytes(12), 10, -1), {}, SecAggValueError),
        ((bytes(32), bytes(12), 10), {"impl": "avx2"}, SecAggValueError),  # a ChaCha20 impl
        ((bytes(32), bytes(12), 10), {"impl": 0}, SecAggTypeError),
    ],
)
def test_bad_keystream_arguments_refused(args: tuple, kwargs: dict, error: type[Exception]):
    with pytest.raises(error):
        keystream(*args, cipher=AES, **kwargs)


@needs_aes
@pytest.mark.parametrize(
    ("acc", "keys", "signs", "bits", "error"),
    [
        (np.zeros(10, np.uint64), [KEY], [1], 32, SecAggTypeError),
        (np.zeros(20, np.uint32)[::2], [KEY], [1], 32, SecAggValueError),
        (np.zeros(10, np.uint32), [KEY[:16]], [1], 32, SecAggValueError),
        (np.zeros(10, np.uint32), [KEY], [0], 32, SecAggValueError),
        (np.zeros(10, np.uint32), [KEY, KEY], [1], 32, SecAggValueError),
        (np.zeros(10, np.uint64), [KEY], [1], 65, SecAggValueError),
    ],
)
def test_bad_mask_arguments_refused(acc, keys, signs, bits, error):
    before = acc.copy()
    with pytest.raises(error):
        accumulate_masks(acc, keys, signs, bits, cipher=AES)
    assert np.array_equal(acc, before)
