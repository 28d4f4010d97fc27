"""The parts run_fedavg is made of, alone: secret sampler, aggregators, encoder, ledger; and
what a run does with an aborted round."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fl import sampling
from fl.aggregators import (
    AggregationAborted,
    Aggregator,
    Block,
    CentralGaussian,
    PlaintextSum,
    RoundContext,
)
from fl.dpsgd import local_dp_sgd
from fl.encoding import ClipEncoder
from fl.fedavg import FLConfig, LocalTrainer, run_fedavg
from fl.privacy import ClientAccountant, Ledger
from fl.tasks import load_task
from secagg.errors import SecAggValueError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def hospitals():
    return load_task("hospitals", 10, 1.0, 0)


def _cohorts(monkeypatch: pytest.MonkeyPatch, data, cfg: FLConfig) -> list[tuple[int, ...]]:
    """Run ``cfg`` and return the clients trained in each round."""
    seen: dict[int, list[int]] = {}
    original = LocalTrainer.train

    def spy(self, model, client, rnd, global_state):
        seen.setdefault(rnd, []).append(client)
        return original(self, model, client, rnd, global_state)

    monkeypatch.setattr(LocalTrainer, "train", spy)
    run_fedavg(data, cfg)
    return [tuple(seen.get(r, ())) for r in range(1, cfg.rounds + 1)]


def test_same_seed_draws_different_cohorts(hospitals, monkeypatch) -> None:
    cfg = FLConfig(rounds=2, sample_rate=0.5, local_epochs=1, batch_size=64, secure=False, seed=4)
    a = _cohorts(monkeypatch, hospitals, cfg)
    b = _cohorts(monkeypatch, hospitals, cfg)
    # Same published seed; the cohorts agree by chance with probability 2^-20.
    assert a != b


def test_cohorts_come_from_os_urandom(hospitals, monkeypatch) -> None:
    monkeypatch.setattr(sampling.os, "urandom", lambda k: bytes(range(k)))
    cfg = FLConfig(rounds=2, sample_rate=0.5, local_epochs=1, batch_size=64, secure=False)
    a = _cohorts(monkeypatch, hospitals, cfg)
    b = _cohorts(monkeypatch, hospitals, replace_seed(cfg, 9))
    assert a == b  # a fixed OS stream fixes the cohorts, whatever --seed says


def replace_seed(cfg: FLConfig, seed: int) -> FLConfig:
    return FLConfig(**{**cfg.to_dict(), "seed": seed})


def test_poisson_and_fixed_size_samples_have_the_right_law() -> None:
    n, q = 20_000, 0.1
    sizes = [sampling.poisson_sample(n, q).size for _ in range(5)]
    # Binomial(20000, 0.1): sd 42; 6 sd bounds.
    assert all(abs(s - n * q) < 6 * 42.5 for s in sizes)
    counts = np.zeros(10)
    for _ in range(3000):
        pick = sampling.fixed_size_sample(10, 3)
        assert pick.size == 3 and np.unique(pick).size == 3
        counts[pick] += 1
    # Each index in 30% of draws: binomial sd 25 over 3000; 6 sd.
    assert np.all(np.abs(counts - 900) < 150)


def test_dp_sgd_batches_are_drawn_from_os_urandom(monkeypatch) -> None:
    calls: list[int] = []
    real = sampling.os.urandom

    def counting(k: int) -> bytes:
        calls.append(k)
        return real(k)

    monkeypatch.setattr(sampling.os, "urandom", counting)
    monkeypatch.setattr("fl.dpsgd.noise.gaussian", lambda count, std: np.zeros(count))
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(20, 3), torch.randn(20)
    steps = local_dp_sgd(model, lambda out, t: ((out.reshape(-1) - t) ** 2).mean(), x, y,
                         epochs=1, batch_size=5, lr=0.1, clip=1.0, noise_multiplier=1.0)
    assert calls.count(32) == steps  # one fresh 32-byte key per batch (others: torch internals)


class _FailOn(Aggregator):
    """Aborts in the rounds given, otherwise defers to a plaintext sum."""

    def __init__(self, rounds: set[int]) -> None:
        self.rounds = rounds
        self.inner = PlaintextSum()

    def aggregate(self, rows, weights, ctx):
        if ctx.round in self.rounds:
            raise AggregationAborted("test abort")
        return self.inner.aggregate(rows, weights, ctx)


def test_aborted_round_changes_nothing_and_spends_nothing(hospitals) -> None:
    cfg = FLConfig(rounds=3, sample_rate=1.0, local_epochs=1, batch_size=8, secure=False,
                   dp="central", noise_multiplier=1.0, clip=0.5, server_momentum=0.5)
    hist = run_fedavg(hospitals, cfg, aggregator=CentralGaussian(_FailOn({2}), {"update": 1.0}))
    r1, r2, r3 = hist.rounds
    assert not r2["released"] and r1["released"] and r3["released"]
    assert r2["metrics"] == r1["metrics"]  # the model did not move (no pure-noise step)
    acc = ClientAccountant(1.0, "poisson", cfg.delta, rate=1.0)
    assert r2["epsilon"] == r1["epsilon"] == acc.epsilon(1)
    assert r3["epsilon"] == hist.epsilon == acc.epsilon(2)
    assert hist.released == 2


def test_every_round_aborted_is_an_error(hospitals) -> None:
    cfg = FLConfig(rounds=2, sample_rate=1.0, local_epochs=1, batch_size=32, secure=False)
    with pytest.raises(SecAggValueError, match="every round aborted"):
        run_fedavg(hospitals, cfg, aggregator=_FailOn({1, 2}))


def test_central_gaussian_noises_every_block_or_refuses() -> None:
    ctx = RoundContext(1, 1.0, (Block("update", 4, 0.5), Block("unclipped_count", 1, 0.5)))
    rows, w = np.zeros((3, 5)), np.ones(3)
    with pytest.raises(SecAggValueError, match="unclipped_count"):
        CentralGaussian(PlaintextSum(), {"update": 1.0}).aggregate(rows, w, ctx)
    agg = CentralGaussian(PlaintextSum(), {"update": 1.0, "unclipped_count": 4.0})
    assert np.allclose(agg.stds(ctx), [0.5] * 4 + [2.0])
    outs = np.stack([agg.aggregate(rows, w, ctx).sum for _ in range(400)])
    # Sample std over 400 draws is within 20% of the true std with overwhelming probability.
    assert np.allclose(outs.std(0), agg.stds(ctx), rtol=0.2)
    unbounded = RoundContext(1, 1.0, (Block("update", 5, None),))
    with pytest.raises(SecAggValueError, match="without noise"):
        agg.aggregate(rows, w, unbounded)


def test_clip_encoder_bounds_rows_and_recovers_the_fraction() -> None:
    enc = ClipEncoder("central", 6, noise_multiplier=1.0, adaptive=True)
    ctx = enc.context(1, 0.5)
    assert ctx.width == 7 and ctx.bound == 0.5
    rows = np.stack([enc.encode(np.full(6, v), 0.5) for v in (0.01, 0.02, 3.0, 5.0)])
    assert np.all(np.linalg.norm(rows[:, :6], axis=1) <= 0.5 + 1e-12)
    total, fraction = enc.decode(rows.sum(0), 0.5, denominator=4.0)
    assert total.shape == (6,) and fraction == pytest.approx(0.5)


def test_ledger_charges_released_rounds_only() -> None:
    ledger = Ledger(ClientAccountant(1.0, "poisson", 1e-3, accountant="rdp", rate=0.5), 4)
    assert ledger.epsilon == 0.0
    peek = ledger.peek(np.array([0, 1]))
    assert ledger.epsilon == 0.0 and ledger.rounds == 0  # peeking spends nothing
    assert ledger.charge(np.array([0, 1])) == peek
    assert Ledger(None, 3).epsilon is None


def test_clip_only_row_claims_no_epsilon(hospitals) -> None:
    cfg = FLConfig(rounds=1, sample_rate=1.0, local_epochs=1, batch_size=64, secure=False,
                   dp="central", noise_multiplier=0.0, clip=0.5)
    hist = run_fedavg(hospitals, cfg)
    assert hist.epsilon is None and "no differential privacy" in hist.accountant
    assert "took_part" not in hist.rounds[0]  # still a DP-mode run: no cohort sizes
    with pytest.raises(SecAggValueError, match="noise-multiplier"):
        FLConfig(dp="local", noise_multiplier=0.0)
