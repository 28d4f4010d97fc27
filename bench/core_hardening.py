"""Cost of the C core's hardening (branch-free reductions, wipes, stack burns): a few calls timed.

Run it against two builds and compare, e.g. this tree and a copy of an older commit:
``.venv/bin/python bench/core_hardening.py`` and
``PYTHONPATH=/tmp/old .venv/bin/python bench/core_hardening.py`` (figures in docs/benchmarks.md).
Prints the best of 5 repeats per call, in microseconds, as Markdown table rows.
"""

from __future__ import annotations

import os
import timeit

import numpy as np

from secagg import fixedpoint, prg, shamir


def main() -> None:
    x = np.random.default_rng(0).uniform(-2, 2, 1_000_000)
    seed, key = bytes(32), bytes(range(32))
    xs, secret = list(range(1, 101)), os.urandom(32)
    v, _ = fixedpoint.encode(x, clip=1.0, scale=2.0**20, bits=32, seed=seed)
    shares = shamir.split(secret, xs, 51)
    rec = shamir.Reconstructor(xs[:51])
    acc = np.zeros(100_000, dtype=np.uint32)
    keys = [os.urandom(32) for _ in range(10)]
    cases = [
        ("fixedpoint.encode, m=1e6", lambda: fixedpoint.encode(x, clip=1.0, scale=2.0**20, bits=32,
                                                               seed=seed), 10),
        ("fixedpoint.decode, m=1e6", lambda: fixedpoint.decode(v, scale=2.0**20, bits=32), 10),
        ("shamir.split, n=100, t=51", lambda: shamir.split(secret, xs, 51), 100),
        ("Reconstructor.reconstruct, t=51", lambda: rec.reconstruct(shares[:51]), 1000),
        ("prg.keystream, 64 bytes", lambda: prg.keystream(key, bytes(12), 64), 5000),
        ("accumulate_masks, 10 keys, m=1e5", lambda: prg.accumulate_masks(acc, keys, [1] * 10, 32), 20),
    ]
    for name, fn, number in cases:
        best = min(timeit.repeat(fn, number=number, repeat=5)) / number
        print(f"| {name} | {best * 1e6:.1f} us |")


if __name__ == "__main__":
    main()
