"""Coverage-guided fuzzing of the C core through its bindings, with atheris (not part of the suite).

Each input picks one kernel and its arguments: keystreams (every cipher and
implementation, any length and counter), fused mask accumulation (any offset,
length, bit width, keys, signs, threads), pack/unpack (round trips, and decoding of
arbitrary bytes), fixed-point encode/decode (any clip, scale, bits, floats
including NaN, infinities and huge values), and Shamir (split, reconstruct,
Lagrange on arbitrary points). A ``SecAggError`` is a refused input, fine; any
other exception, a wrong result (every kernel is checked against a reference or a
round trip) or a sanitizer report is a crash.

Run it through ``scripts/sanitize.sh`` (an ASan+UBSan build, a fixed time, new
inputs in a temporary directory), or by hand:
``.venv/bin/python tests/fuzz_core.py -max_total_time=60 $(mktemp -d) tests/corpus_core``.
The first directory receives new inputs, so never pass a checked-in one first.
The file is named so that pytest does not collect it.
"""

from __future__ import annotations

import sys
import tempfile

import atheris

with atheris.instrument_imports():
    import numpy as np

    from secagg import bindings, prg, shamir
    from secagg.errors import SecAggError
    from secagg.reference import reference_decode, reference_encode, reference_rounding_words

_OPS = ("keystream", "masks", "pack", "unpack", "fixedpoint", "shamir", "lagrange")
_CIPHERS = prg.ciphers()


def _keystream(fdp: atheris.FuzzedDataProvider) -> None:
    cipher = fdp.PickValueInList(_CIPHERS)
    key = fdp.ConsumeBytes(32)
    nonce = fdp.ConsumeBytes(12)
    length = fdp.ConsumeIntInRange(0, 5000)
    counter = fdp.PickValueInList([0, 1, 2**32 - 1, 2**32 - 2, fdp.ConsumeIntInRange(0, 2**32)])
    impls = prg.implementations(cipher)
    try:
        streams = [prg.keystream(key, nonce, length, counter, cipher=cipher, impl=i) for i in impls]
    except SecAggError:
        return
    assert all(s == streams[0] for s in streams), "implementations disagree"
    assert len(streams[0]) == length


def _masks(fdp: atheris.FuzzedDataProvider) -> None:
    cipher = fdp.PickValueInList(_CIPHERS)
    bits = fdp.ConsumeIntInRange(0, 65)
    m = fdp.ConsumeIntInRange(0, 3000)
    offset = fdp.PickValueInList([0, fdp.ConsumeIntInRange(0, 100),
                                  fdp.ConsumeIntInRange(0, 2**40), 2**36 - 1])
    nkeys = fdp.ConsumeIntInRange(0, 4)
    keys = [fdp.ConsumeBytes(32) for _ in range(nkeys)]
    signs = [fdp.PickValueInList([1, -1, 0, 2]) for _ in range(nkeys)]
    threads = fdp.ConsumeIntInRange(1, 3)
    try:
        dtype = bindings.storage_dtype(bits)
    except SecAggError:
        return
    acc = np.frombuffer(fdp.ConsumeBytes(m * dtype.itemsize).ljust(m * dtype.itemsize, b"\0"),
                        dtype=dtype).copy()
    acc &= dtype.type(2**bits - 1)
    results = []
    for impl in prg.implementations(cipher)[:2]:
        out = acc.copy()
        try:
            bindings.secagg_mask_accumulate(out, keys, signs, bits, offset=offset, threads=threads,
                                            impl=impl, cipher=cipher)
        except SecAggError:
            return
        results.append(out)
    if results and m and nkeys and offset < 2**20:
        # The slice equals the same elements of a whole-vector accumulation from 0.
        full = np.zeros(offset + m, dtype=dtype)
        full[offset:] = acc
        bindings.secagg_mask_accumulate(full, keys, signs, bits, cipher=cipher)
        assert (results[0] == full[offset:]).all(), "slice differs from the whole vector"
    assert all((r == results[0]).all() for r in results), "implementations disagree"


def _pack(fdp: atheris.FuzzedDataProvider) -> None:
    bits = fdp.ConsumeIntInRange(1, 64)
    m = fdp.ConsumeIntInRange(0, 2000)
    dtype = bindings.storage_dtype(bits)
    raw = fdp.ConsumeBytes(m * dtype.itemsize).ljust(m * dtype.itemsize, b"\0")
    v = np.frombuffer(raw, dtype=dtype).copy()
    if fdp.ConsumeBool():
        v &= dtype.type(2**bits - 1)
    try:
        data = bindings.secagg_pack_encode(v, bits)
    except SecAggError:
        assert (v >> np.uint64(bits) if bits < 64 else v * 0).any(), "refused a valid vector"
        return
    assert len(data) == bindings.secagg_pack_size(m, bits)
    assert (bindings.secagg_pack_decode(data, m, bits) == v).all(), "pack round trip"


def _unpack(fdp: atheris.FuzzedDataProvider) -> None:
    bits = fdp.ConsumeIntInRange(1, 64)
    m = fdp.ConsumeIntInRange(0, 2000)
    data = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 20000))
    try:
        v = bindings.secagg_pack_decode(data, m, bits)
    except SecAggError:
        return
    assert bindings.secagg_pack_encode(v, bits) == data, "decode is not the inverse of encode"


def _fixedpoint(fdp: atheris.FuzzedDataProvider) -> None:
    dtype = fdp.PickValueInList([np.float32, np.float64])
    m = fdp.ConsumeIntInRange(0, 2000)
    size = np.dtype(dtype).itemsize
    x = np.frombuffer(fdp.ConsumeBytes(m * size).ljust(m * size, b"\0"), dtype=dtype).copy()
    clip = fdp.PickValueInList([fdp.ConsumeRegularFloat(), 1.0, 1e-300, 1e300, float("inf"),
                                float("nan"), -1.0, 10**400])
    scale = fdp.PickValueInList([fdp.ConsumeRegularFloat(), 2.0**20, 1e-300, 2.0**62, 10**400])
    bits = fdp.ConsumeIntInRange(0, 65)
    seed = fdp.ConsumeBytes(32).ljust(32, b"\0")
    try:
        out, clipped = bindings.secagg_fixedpoint_encode(x, clip, scale, bits, seed)
    except SecAggError:
        return
    want, want_clipped = reference_encode(x, clip, scale, bits, reference_rounding_words(seed, m))
    assert (out == want).all() and clipped == want_clipped, "encode differs from the reference"
    dec = bindings.secagg_fixedpoint_decode(out, scale, bits)
    assert np.array_equal(dec, reference_decode(out, scale, bits)), "decode differs"


def _shamir(fdp: atheris.FuzzedDataProvider) -> None:
    secret = fdp.ConsumeBytes(32).ljust(32, b"\0")
    n = fdp.ConsumeIntInRange(1, 12)
    xs = sorted({fdp.ConsumeIntInRange(1, shamir.PRIME - 1) for _ in range(n)})
    t = fdp.ConsumeIntInRange(1, len(xs))
    shares = shamir.split(secret, xs, t)
    pick = sorted(set(fdp.ConsumeIntInRange(0, len(xs) - 1) for _ in range(t)))
    if len(pick) == t:
        got = shamir.reconstruct([xs[i] for i in pick], [shares[i] for i in pick], t)
        assert got == secret, "t shares did not give the secret back"
    # Tampered shares: refused or a different secret, never a crash.
    bad = [bytearray(s) for s in shares[:t]]
    if bad and fdp.ConsumeBool():
        bad[0][fdp.ConsumeIntInRange(0, len(bad[0]) - 1)] ^= 1 + fdp.ConsumeIntInRange(0, 254)
    try:
        shamir.reconstruct(xs[:t], [bytes(b) for b in bad], t)
    except SecAggError:
        pass


def _lagrange(fdp: atheris.FuzzedDataProvider) -> None:
    t = fdp.ConsumeIntInRange(0, 20)
    xs = np.array([fdp.ConsumeIntInRange(0, 2**64 - 1) for _ in range(t)], dtype=np.uint64)
    out = np.empty(t, dtype=np.uint64)
    try:
        bindings.secagg_shamir_lagrange(out, xs)
    except SecAggError:
        return
    p = shamir.PRIME
    assert sum(int(v) for v in out) % p == 1, "Lagrange coefficients at 0 must sum to 1"


_HANDLERS = {"keystream": _keystream, "masks": _masks, "pack": _pack, "unpack": _unpack,
             "fixedpoint": _fixedpoint, "shamir": _shamir, "lagrange": _lagrange}


def test_one_input(data: bytes) -> None:
    """One kernel call chosen and parameterised by ``data``."""
    fdp = atheris.FuzzedDataProvider(data)
    _HANDLERS[fdp.PickValueInList(list(_OPS))](fdp)


def main() -> None:
    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        # New inputs go to a temporary directory, never into the repository.
        args += [tempfile.mkdtemp(prefix="secagg-fuzz-"), str(_seed_dir())]
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


def _seed_dir():
    from pathlib import Path

    return Path(__file__).parent / "corpus_core"


if __name__ == "__main__":
    main()
