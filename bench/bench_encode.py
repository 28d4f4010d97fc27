"""Encoding and packing speed at m = 1e6, each beside a numpy baseline in the same run.

Run: .venv/bin/pytest bench/bench_encode.py --benchmark-only --benchmark-group-by=group
"""

from __future__ import annotations

import numpy as np
import pytest

from secagg.fixedpoint import decode, encode
from secagg.packing import pack, unpack
from secagg.reference import reference_decode, reference_encode, reference_pack

M = 1_000_000
CLIP, SCALE, BITS = 4.0, 2.0**24, 32


@pytest.fixture(scope="module")
def x32() -> np.ndarray:
    return np.random.default_rng(0).normal(size=M).astype(np.float32)


@pytest.fixture(scope="module")
def encoded(x32) -> np.ndarray:
    return encode(x32, clip=CLIP, scale=SCALE, bits=BITS)[0]


def _numpy_encode(x: np.ndarray) -> tuple[np.ndarray, int]:
    # Same steps in numpy, with numpy's generator for the rounding words (baseline only).
    words = np.random.default_rng().integers(0, 2**32, size=len(x), dtype=np.uint32)
    return reference_encode(x, CLIP, SCALE, BITS, words)


@pytest.mark.benchmark(group="encode f32->u32, m=1e6")
def test_encode_c(benchmark, x32):
    v, _ = benchmark(encode, x32, clip=CLIP, scale=SCALE, bits=BITS)
    assert v.dtype == np.uint32 and len(v) == M


@pytest.mark.benchmark(group="encode f32->u32, m=1e6")
def test_encode_numpy(benchmark, x32):
    v, _ = benchmark(_numpy_encode, x32)
    assert len(v) == M


@pytest.mark.benchmark(group="decode u32->f64, m=1e6")
def test_decode_c(benchmark, encoded):
    out = benchmark(decode, encoded, scale=SCALE, bits=BITS)
    assert out.dtype == np.float64


@pytest.mark.benchmark(group="decode u32->f64, m=1e6")
def test_decode_numpy(benchmark, encoded):
    out = benchmark(reference_decode, encoded, SCALE, BITS)
    assert out.dtype == np.float64


def _vector(bits: int) -> np.ndarray:
    return np.random.default_rng(bits).integers(0, 2**bits, size=M, dtype=np.uint64).astype(
        np.uint32
    )


# numpy's best for whole-byte widths: a little-endian cast and a copy.
_NUMPY_PACK = {
    16: lambda v: v.astype("<u2").tobytes(),
    32: lambda v: v.astype("<u4").tobytes(),
}
_NUMPY_UNPACK = {
    16: lambda d: np.frombuffer(d, dtype="<u2").astype(np.uint32),
    32: lambda d: np.frombuffer(d, dtype="<u4").astype(np.uint32),
}


@pytest.mark.parametrize("bits", [16, 32])
@pytest.mark.parametrize("impl", ["c", "numpy"])
def test_pack(benchmark, bits, impl):
    benchmark.group = f"pack b={bits}, m=1e6"
    v = _vector(bits)
    data = benchmark(pack if impl == "c" else lambda v, _b: _NUMPY_PACK[bits](v), v, bits)
    assert data == _NUMPY_PACK[bits](v)


@pytest.mark.parametrize("bits", [16, 32])
@pytest.mark.parametrize("impl", ["c", "numpy"])
def test_unpack(benchmark, bits, impl):
    benchmark.group = f"unpack b={bits}, m=1e6"
    v = _vector(bits)
    data = pack(v, bits)
    fn = (lambda d: unpack(d, M, bits)) if impl == "c" else _NUMPY_UNPACK[bits]
    np.testing.assert_array_equal(benchmark(fn, data), v)


@pytest.mark.parametrize("impl", ["c", "numpy"])
def test_pack_b20(benchmark, impl):
    # An odd width: the general bit-stream path against numpy's packbits.
    benchmark.group = "pack b=20, m=1e6"
    v = _vector(20)
    data = benchmark(pack if impl == "c" else reference_pack, v, 20)
    assert len(data) == M * 20 // 8


@pytest.mark.parametrize("impl", ["c"])
def test_unpack_b20(benchmark, impl):
    benchmark.group = "unpack b=20, m=1e6"
    v = _vector(20)
    data = pack(v, 20)
    np.testing.assert_array_equal(benchmark(unpack, data, M, 20), v)
