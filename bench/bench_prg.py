"""ChaCha20 and AES-256-CTR keystreams and fused mask accumulation, per implementation, beside OpenSSL.

Run: .venv/bin/pytest bench/bench_prg.py --benchmark-only --benchmark-group-by=group
Throughput is bytes of keystream per second: 4 MB per key here (m = 1e6, b = 32).
"""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secagg.prg import MASK_NONCE, accumulate_masks, ciphers, implementations, keystream

M = 1_000_000
NKEYS = 10
KEYS = [bytes([i]) * 32 for i in range(NKEYS)]
SIGNS = [1, -1] * (NKEYS // 2)
IMPLS = implementations()
AES_IMPLS = implementations("aes256ctr") if "aes256ctr" in ciphers() else []
CHUNK = 64 << 10


def _openssl_keystream(nbytes: int, nkeys: int, out: bytearray) -> None:
    """nkeys * nbytes of OpenSSL ChaCha20 keystream, in cache-sized update_into calls."""
    zeros = bytes(CHUNK)
    for i in range(nkeys):
        enc = Cipher(algorithms.ChaCha20(KEYS[i], bytes(16)), mode=None).encryptor()
        for _ in range(nbytes // CHUNK):
            enc.update_into(zeros, out)
        enc.update_into(zeros[: nbytes % CHUNK], out)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.benchmark(group="keystream 4 MB, returned as new bytes")
def test_keystream(benchmark, impl: str):
    out = benchmark(keystream, KEYS[0], MASK_NONCE, 4 * M, impl=impl)
    assert out[:64] == keystream(KEYS[0], MASK_NONCE, 64, impl="scalar")


def _openssl_update(data: bytes) -> bytes:
    return Cipher(algorithms.ChaCha20(KEYS[0], bytes(16)), mode=None).encryptor().update(data)


@pytest.mark.benchmark(group="keystream 4 MB, returned as new bytes")
def test_keystream_openssl(benchmark):
    out = benchmark(_openssl_update, bytes(4 * M))
    assert len(out) == 4 * M


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.benchmark(group="accumulate m=1e6, 10 keys, b=32 (40 MB keystream)")
def test_accumulate_u32(benchmark, impl: str):
    acc = np.zeros(M, dtype=np.uint32)
    benchmark(accumulate_masks, acc, KEYS, SIGNS, 32, impl=impl)
    assert acc.any()


@pytest.mark.benchmark(group="accumulate m=1e6, 10 keys, b=32 (40 MB keystream)")
def test_accumulate_u32_two_threads(benchmark):
    acc = np.zeros(M, dtype=np.uint32)
    benchmark(accumulate_masks, acc, KEYS, SIGNS, 32, threads=2)
    assert acc.any()


@pytest.mark.benchmark(group="accumulate m=1e6, 10 keys, b=32 (40 MB keystream)")
def test_openssl_same_keystream(benchmark):
    out = bytearray(CHUNK + 64)
    benchmark(_openssl_keystream, 4 * M, NKEYS, out)


@pytest.mark.benchmark(group="accumulate m=5e5, 10 keys, b=64 (40 MB keystream)")
def test_accumulate_u64(benchmark):
    acc = np.zeros(M // 2, dtype=np.uint64)
    benchmark(accumulate_masks, acc, KEYS, SIGNS, 64)
    assert acc.any()


# --- AES-256-CTR (only where the CPU has AES-NI) ---------------------------------


def _openssl_aes_keystream(nbytes: int, nkeys: int, out: bytearray) -> None:
    """nkeys * nbytes of OpenSSL AES-256-CTR keystream, in cache-sized update_into calls."""
    zeros = bytes(CHUNK)
    for i in range(nkeys):
        enc = Cipher(algorithms.AES(KEYS[i]), modes.CTR(bytes(16))).encryptor()
        for _ in range(nbytes // CHUNK):
            enc.update_into(zeros, out)
        enc.update_into(zeros[: nbytes % CHUNK], out)


@pytest.mark.parametrize("impl", AES_IMPLS)
@pytest.mark.benchmark(group="aes256ctr keystream 4 MB, returned as new bytes")
def test_aes_keystream(benchmark, impl: str):
    out = benchmark(keystream, KEYS[0], MASK_NONCE, 4 * M, impl=impl, cipher="aes256ctr")
    assert out[:16] == keystream(KEYS[0], MASK_NONCE, 16, impl=AES_IMPLS[-1], cipher="aes256ctr")


@pytest.mark.skipif(not AES_IMPLS, reason="no AES-NI")
@pytest.mark.benchmark(group="aes256ctr keystream 4 MB, returned as new bytes")
def test_aes_keystream_openssl(benchmark):
    def update(data: bytes) -> bytes:
        return Cipher(algorithms.AES(KEYS[0]), modes.CTR(bytes(16))).encryptor().update(data)

    out = benchmark(update, bytes(4 * M))
    assert len(out) == 4 * M


@pytest.mark.parametrize("impl", AES_IMPLS)
@pytest.mark.benchmark(group="aes256ctr accumulate m=1e6, 10 keys, b=32 (40 MB keystream)")
def test_aes_accumulate_u32(benchmark, impl: str):
    acc = np.zeros(M, dtype=np.uint32)
    benchmark(accumulate_masks, acc, KEYS, SIGNS, 32, impl=impl, cipher="aes256ctr")
    assert acc.any()


@pytest.mark.skipif(not AES_IMPLS, reason="no AES-NI")
@pytest.mark.benchmark(group="aes256ctr accumulate m=1e6, 10 keys, b=32 (40 MB keystream)")
def test_aes_openssl_same_keystream(benchmark):
    out = bytearray(CHUNK + 64)
    benchmark(_openssl_aes_keystream, 4 * M, NKEYS, out)


@pytest.mark.skipif(not AES_IMPLS, reason="no AES-NI")
@pytest.mark.benchmark(group="aes256ctr accumulate m=1e6, 10 keys, b=32 (40 MB keystream)")
def test_aes_accumulate_u32_two_threads(benchmark):
    acc = np.zeros(M, dtype=np.uint32)
    benchmark(accumulate_masks, acc, KEYS, SIGNS, 32, threads=2, cipher="aes256ctr")
    assert acc.any()


@pytest.mark.skipif(not AES_IMPLS, reason="no AES-NI")
@pytest.mark.benchmark(group="aes256ctr accumulate m=5e5, 10 keys, b=64 (40 MB keystream)")
def test_aes_accumulate_u64(benchmark):
    acc = np.zeros(M // 2, dtype=np.uint64)
    benchmark(accumulate_masks, acc, KEYS, SIGNS, 64, cipher="aes256ctr")
    assert acc.any()
