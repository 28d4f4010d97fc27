"""ChaCha20 keystream: RFC 8439 vectors, libsodium, OpenSSL, every implementation alike."""

from __future__ import annotations

from pathlib import Path

import nacl.bindings
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.errors import SecAggTypeError, SecAggValueError
from secagg.prg import implementations, keystream
from secagg.reference import reference_chacha20_blocks

VECTORS = Path(__file__).parent / "vectors" / "chacha20_rfc8439.txt"
IMPLS = implementations()
LENGTHS = st.integers(0, 3000)


def _read_vectors(path: Path) -> list[dict[str, str]]:
    """Records of ``field = value`` lines, each named by the ``# ...`` line before it."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in path.read_text().splitlines() + [""]:
        line = line.strip()
        if not line:
            if "key" in current:
                records.append(current)
            current = {}
        elif line.startswith("#"):
            current["name"] = line[1:].strip()
        else:
            field, value = (part.strip() for part in line.split("=", 1))
            current[field] = value
    return records


RFC_VECTORS = _read_vectors(VECTORS)


def _openssl(key: bytes, nonce: bytes, length: int, counter: int) -> bytes:
    """OpenSSL's ChaCha20 (through cryptography): its 16-byte nonce is counter (LE) || nonce."""
    cipher = Cipher(algorithms.ChaCha20(key, counter.to_bytes(4, "little") + nonce), mode=None)
    return cipher.encryptor().update(bytes(length))


def _expected_keystream(vector: dict[str, str]) -> bytes:
    if "keystream" in vector:
        return bytes.fromhex(vector["keystream"])
    pt, ct = bytes.fromhex(vector["plaintext"]), bytes.fromhex(vector["ciphertext"])
    return bytes(a ^ b for a, b in zip(pt, ct, strict=True))


def test_vector_file_has_every_rfc_case():
    assert len(RFC_VECTORS) == 7
    assert sum("plaintext" in v for v in RFC_VECTORS) == 1


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("vector", RFC_VECTORS, ids=[v["name"] for v in RFC_VECTORS])
def test_rfc8439_vectors(vector: dict[str, str], impl: str):
    want = _expected_keystream(vector)
    key, nonce = bytes.fromhex(vector["key"]), bytes.fromhex(vector["nonce"])
    got = keystream(key, nonce, len(want), int(vector["counter"]), impl=impl)
    assert got == want


@pytest.mark.parametrize("vector", RFC_VECTORS, ids=[v["name"] for v in RFC_VECTORS])
def test_numpy_oracle_matches_rfc8439_vectors(vector: dict[str, str]):
    """The numpy ChaCha20 that the mask tests trust is itself right."""
    want = _expected_keystream(vector)
    nblocks = -(-len(want) // 64)
    key, nonce = bytes.fromhex(vector["key"]), bytes.fromhex(vector["nonce"])
    blocks = reference_chacha20_blocks(key, nonce, int(vector["counter"]), nblocks)
    assert blocks.astype("<u4").tobytes()[: len(want)] == want


def test_implementations_best_first_and_scalar_always_there():
    assert IMPLS[-1] == "scalar"
    assert set(IMPLS) <= {"avx512", "avx2", "sse2", "scalar"}
    assert len(IMPLS) == len(set(IMPLS))


@settings(max_examples=60, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), length=LENGTHS)
@example(seed=bytes(32), length=0)
@example(seed=bytes(32), length=1)
@example(seed=bytes(32), length=63)
@example(seed=bytes(32), length=64)
@example(seed=bytes(32), length=65)
@example(seed=bytes(32), length=16 * 64 + 8 * 64 + 4 * 64 + 3 * 64 + 17)
def test_equals_libsodium(seed: bytes, length: int):
    """libsodium's deterministic randombytes is ChaCha20-IETF with nonce "LibsodiumDRG"."""
    want = nacl.bindings.randombytes_buf_deterministic(length, seed)
    assert keystream(seed, b"LibsodiumDRG", length) == want


@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    counter=st.integers(0, 2**32 - 100),
    length=LENGTHS,
)
@example(key=bytes(32), nonce=bytes(12), counter=0, length=1)
@example(key=bytes(32), nonce=bytes(12), counter=2**32 - 100, length=99 * 64 + 33)
def test_equals_openssl(key: bytes, nonce: bytes, counter: int, length: int):
    assert keystream(key, nonce, length, counter) == _openssl(key, nonce, length, counter)


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    counter=st.integers(0, 2**32 - 1),
    nblocks=st.integers(0, 70),
    tail=st.integers(0, 63),
)
def test_every_impl_equals_scalar(key: bytes, nonce: bytes, counter: int, nblocks: int, tail: int):
    length = 64 * nblocks + tail
    counter = min(counter, 2**32 - max(1, -(-length // 64)))
    want = keystream(key, nonce, length, counter, impl="scalar")
    for impl in IMPLS:
        assert keystream(key, nonce, length, counter, impl=impl) == want, impl


@pytest.mark.parametrize("impl", IMPLS)
def test_last_block_of_the_counter_range(impl: str):
    key, nonce = bytes(range(32)), bytes(range(12))
    got = keystream(key, nonce, 64, 2**32 - 1, impl=impl)
    assert got == _openssl(key, nonce, 64, 2**32 - 1)
    # 17 blocks ending exactly at 2^32 - 1 fill a SIMD group and its remainder.
    got = keystream(key, nonce, 17 * 64, 2**32 - 17, impl=impl)
    assert got[-64:] == _openssl(key, nonce, 64, 2**32 - 1)


@pytest.mark.parametrize(
    ("length", "counter"), [(65, 2**32 - 1), (2 * 64 + 1, 2**32 - 2), (2**38 + 1, 0)]
)
def test_counter_overflow_refused(length: int, counter: int):
    with pytest.raises(SecAggValueError, match="overflow"):
        keystream(bytes(32), bytes(12), length, counter)


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((bytes(31), bytes(12), 10), {}, SecAggValueError),
        ((bytes(33), bytes(12), 10), {}, SecAggValueError),
        (("k" * 32, bytes(12), 10), {}, SecAggTypeError),
        ((bytes(32), bytes(8), 10), {}, SecAggValueError),
        ((bytes(32), None, 10), {}, SecAggTypeError),
        ((bytes(32), bytes(12), -1), {}, SecAggValueError),
        ((bytes(32), bytes(12), 1.5), {}, SecAggTypeError),
        ((bytes(32), bytes(12), True), {}, SecAggTypeError),
        ((bytes(32), bytes(12), 10, -1), {}, SecAggValueError),
        ((bytes(32), bytes(12), 10, 2**32), {}, SecAggValueError),
        ((bytes(32), bytes(12), 10), {"impl": "neon-but-not-here"}, SecAggValueError),
        ((bytes(32), bytes(12), 10), {"impl": 2}, SecAggTypeError),
    ],
)
def test_bad_arguments_refused(args: tuple, kwargs: dict, error: type[Exception]):
    with pytest.raises(error):
        keystream(*args, **kwargs)
