"""Attacker games against distributed DP: the server (who also knows every other input)
tries to tell which of two inputs the victim held. With the planned noise its accuracy
stays within what (epsilon, delta)-DP allows; without noise it always wins."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from secagg.ddp import DistributedDp, padded_dim

pytest.importorskip("dp_accounting")

from secagg.ddp.planner import plan_ddp  # noqa: E402

N, DIM, TRIALS, ROT = 5, 8, 300, bytes(range(32))


def _game(p: DistributedDp, trials: int) -> float:
    """Fraction of trials in which the attacker guesses the victim's bit."""
    rng = np.random.default_rng(1)  # picks inputs and the secret bit: the game, not the noise
    x1 = np.zeros(DIM)
    x1[0] = p.clip
    wins = 0
    for _ in range(trials):
        bit = int(rng.integers(2))
        others = [rng.standard_normal(DIM) * 0.1 * p.clip / math.sqrt(DIM) for _ in range(N - 1)]
        victim = x1 if bit else np.zeros(DIM)
        total = np.zeros(padded_dim(DIM), dtype=np.uint64)
        for x in [victim, *others]:
            total += p.encode(x, ROT).astype(np.uint64)  # fresh os.urandom noise per client
        total &= np.uint64((1 << p.bits) - 1)
        # The attacker sees the released sum and knows every other client's input exactly.
        residual = p.decode(total.astype(np.uint32), ROT) - sum(others)
        guess = int(residual[0] > p.clip / 2)  # the likelihood-ratio test for this pair
        wins += guess == bit
    return wins / trials


# Skellam at 8 bits keeps each share small (mu ~ 18): the exact sampler is O(mu) per value.
@pytest.mark.parametrize("mechanism,bits", [("ddgauss", 20), ("skellam", 8)])
def test_attacker_accuracy_is_bounded_by_epsilon(mechanism, bits):
    eps, delta = 1.0, 1e-5
    plan = plan_ddp(mechanism, max_clients=N, min_survivors=N, epsilon=eps, delta=delta, rounds=1,
                    sampling_rate=1.0, dim=DIM, clip=1.0, bits=bits)
    acc = _game(plan.params, TRIALS)
    bound = math.exp(eps) / (1 + math.exp(eps)) + delta  # best accuracy any test can reach
    assert acc <= bound + 3 * math.sqrt(0.25 / TRIALS), acc


def test_without_noise_the_attacker_reconstructs_the_victim():
    p = DistributedDp("ddgauss", dim=DIM, clip=1.0, gamma=1e-4, bits=20, noise=Fraction(1, 4),
                      max_clients=N, min_survivors=N)
    assert _game(p, 50) == 1.0
