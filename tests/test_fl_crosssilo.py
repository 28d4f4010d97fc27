"""Cross-silo DP-SGD (``--level record``): record-level distributed DP across hospitals.

What a wrong implementation would break: the record unit's sensitivity under the rounding
coupling, the equality with pooled DP-SGD, the noise split between hospitals, colluders
that add no noise, aborted steps, and the server's view of a victim record.
"""

from __future__ import annotations

import dataclasses
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("dp_accounting")

from fl.aggregators import AggregationAborted, Aggregator, Block, PlaintextSum, RoundContext  # noqa: E402
from fl.cli import main  # noqa: E402
from fl.crosssilo import record_aggregator, run_cross_silo  # noqa: E402
from fl.distributed_dp import DistributedDpSum, accountant_for  # noqa: E402
from fl.dpsgd import ClippedGradients  # noqa: E402
from fl.fedavg import FLConfig  # noqa: E402
from fl.tasks import load_task  # noqa: E402
from secagg.ddp import DistributedDp, padded_dim  # noqa: E402
from secagg.errors import SecAggValueError  # noqa: E402

ROT = bytes(range(32))


def _record_ddp(**kw: object) -> DistributedDp:
    args: dict[str, object] = dict(mechanism="ddgauss", dim=12, clip=1.0, gamma=0.05, bits=24,
                                   noise=Fraction(4), max_clients=5, min_survivors=3,
                                   unit="record", max_records=40)
    args.update(kw)
    return DistributedDp(**args)  # type: ignore[arg-type]


def _signed(v: np.ndarray, bits: int) -> np.ndarray:
    t = v.astype(np.int64)
    return np.where(t >= 1 << (bits - 1), t - (1 << bits), t)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 39), st.floats(0.0, 1.0))
def test_one_record_moves_the_rounded_sum_by_at_most_the_stated_sensitivity(seed, count, scale):
    # Same rounding and noise randomness (the coupling of docs/ddp.md "Record level"):
    # adding one clipped record to a hospital's sum moves its encoding by <= l2_bound / l1_bound.
    p = _record_ddp()
    rng = np.random.default_rng(seed)
    records = rng.standard_normal((count, 12))
    records /= np.maximum(1.0, np.linalg.norm(records, axis=1, keepdims=True))
    extra = rng.standard_normal(12)
    extra *= scale / max(np.linalg.norm(extra), 1e-12)  # a record of norm <= clip
    base = records.sum(0)
    key = seed.to_bytes(4, "little") * 8
    a = p.encode(base, ROT, seed=key)
    b = p.encode(base + extra, ROT, seed=key)
    diff = _signed((b.astype(np.int64) - a.astype(np.int64)) % (1 << p.bits), p.bits)
    assert np.linalg.norm(diff) <= p.l2_bound + 1e-9
    assert np.abs(diff).sum() <= p.l1_bound + 1e-9


def test_record_unit_bounds_and_wrap_count_records_not_clients():
    p = _record_ddp()
    assert p.l2_bound == pytest.approx(1.0 / 0.05 + math.sqrt(padded_dim(12)))
    # 40 records of norm 1 at gamma 0.05: a field that holds 5 clients' vectors is too small.
    DistributedDp("ddgauss", dim=12, clip=1.0, gamma=0.05, bits=11, noise=Fraction(4),
                  max_clients=5, min_survivors=3)
    with pytest.raises(SecAggValueError, match="cannot hold"):
        _record_ddp(bits=11)
    with pytest.raises(SecAggValueError, match="max_records"):
        _record_ddp(max_records=None)
    with pytest.raises(SecAggValueError, match="norm"):
        p.encode(np.full(12, 100.0), ROT)  # more than 40 clipped records can add up to


def test_one_step_across_hospitals_is_pooled_clipped_gradient_descent():
    # q = 1 and no noise: every hospital sends the sum of its clipped per-example gradients,
    # so one round is exactly a full-batch clipped step on the pooled data.
    data = load_task("hospitals", 5, 1.0, 0)
    cfg = FLConfig(level="record", dp="none", secure=False, rounds=2, sample_rate=1.0, lr=0.3,
                   clip=0.5)
    hist = run_cross_silo(data, cfg)
    torch.manual_seed(cfg.seed)
    model = data.make_model()
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    grads = ClippedGradients(model, data.loss_fn, cfg.clip)
    n = data.pool[0].shape[0]
    for _ in range(2):
        g = grads.sum(params, *data.pool)
        params = {k: v - cfg.lr * g[k] / n for k, v in params.items()}
    got = dict(hist.model.named_parameters())
    for k, v in params.items():
        assert torch.allclose(got[k], v, atol=1e-5), k


def _noise_std(agg: Aggregator, rows: np.ndarray, trials: int) -> float:
    ctx = RoundContext(1, 40.0, (Block("update", rows.shape[1], 1.0),))
    errs = [agg.aggregate(rows, np.ones(rows.shape[0]), ctx).sum - rows.sum(0) for _ in range(trials)]
    return float(np.std(np.concatenate(errs)))


def test_the_server_sees_the_hospitals_noise_split_as_accounted():
    # 5 hospitals, noise for 3 honest survivors at z = 2: each adds 1/3 of the variance, so the
    # five shares give std z C sqrt(5/3) (plus rounding); a wrong split (each the full variance,
    # or 1/5) lands outside.
    cfg = FLConfig(level="record", dp="distributed", rounds=1, sample_rate=0.5, clip=1.0,
                   noise_multiplier=2.0, min_survivors=3, graph="complete")
    agg = record_aggregator(cfg, 12, 5, 40)
    rows = np.random.default_rng(0).standard_normal((5, 12))
    std = _noise_std(agg, rows, 40)
    assert 2.0 * math.sqrt(5 / 3) * 0.85 < std < 2.0 * math.sqrt(5 / 3) * 1.15, std


class _Colluding(DistributedDpSum):
    """Senders 0 and 1 side with the server: they round their rows but add no noise."""

    def encode_row(self, sender: int, row: np.ndarray, rotation_seed: bytes) -> np.ndarray:
        if sender >= 2:
            return super().encode_row(sender, row, rotation_seed)
        silent = dataclasses.replace(self.ddp, mechanism="skellam", noise=Fraction(0))
        return silent.encode(row, rotation_seed)


def test_colluders_adding_no_noise_leave_the_accounted_noise():
    # min_survivors 3 + 2 colluders: the 3 honest shares alone carry std z C, what epsilon counts.
    cfg = FLConfig(level="record", dp="distributed", rounds=1, sample_rate=0.5, clip=1.0,
                   noise_multiplier=2.0, min_survivors=3, max_colluders=2, graph="complete")
    inner = record_aggregator(cfg, 12, 5, 40)
    assert isinstance(inner, DistributedDpSum)
    agg = _Colluding(inner.ddp, "complete", 0.0, 0, 2)
    rows = np.random.default_rng(1).standard_normal((5, 12))
    std = _noise_std(agg, rows, 40)
    assert 2.0 * 0.85 < std < 2.0 * 1.2, std


def test_victim_record_membership_game_is_bounded_by_epsilon():
    # The server knows every record but one victim's and, with 2 colluding hospitals that add
    # no noise, tries to tell whether the victim's record was in its hospital's sum. Its best
    # test (threshold at half the shift along the record) stays within (eps, delta)-DP's bound
    # for one unsampled release; without the honest noise it always wins.
    cfg = FLConfig(level="record", dp="distributed", rounds=1, sample_rate=1.0, clip=1.0,
                   noise_multiplier=3.0, min_survivors=3, max_colluders=2, delta=1e-5)
    inner = record_aggregator(cfg, 12, 5, 40)
    assert isinstance(inner, DistributedDpSum)
    p = inner.ddp
    eps = accountant_for(p, delta=cfg.delta, sampling_rate=1.0).epsilon(1)
    silent = dataclasses.replace(p, mechanism="skellam", noise=Fraction(0))
    victim = np.zeros(12)
    victim[0] = 1.0
    rng = np.random.default_rng(2)  # the game's inputs and secret bits, not the noise

    def play(noisy: bool, trials: int) -> float:
        wins = 0
        for _ in range(trials):
            bit = int(rng.integers(2))
            rows = rng.standard_normal((5, 12)) * 0.3
            rows[0] += bit * victim
            total = np.zeros(p.d, dtype=np.uint64)
            for h in range(5):
                enc = (p if noisy and h >= 2 else silent).encode(rows[h], ROT)
                total += enc.astype(np.uint64)
            total &= np.uint64((1 << p.bits) - 1)
            residual = p.decode(total.astype(np.uint32), ROT) - rows.sum(0) + bit * victim
            wins += int(residual[0] > 0.5) == bit
        return wins / trials

    trials = 300
    bound = math.exp(eps) / (1 + math.exp(eps)) + cfg.delta
    assert play(True, trials) <= bound + 3 * math.sqrt(0.25 / trials), eps
    assert play(False, 40) == 1.0


class _AbortOddRounds(Aggregator):
    def __init__(self) -> None:
        self.inner = PlaintextSum()
        self.calls = 0

    def aggregate(self, rows, weights, ctx):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls % 2:
            raise AggregationAborted("too few survivors")
        return self.inner.aggregate(rows, weights, ctx)


def test_aborted_steps_release_nothing_and_spend_nothing():
    data = load_task("hospitals", 5, 1.0, 0)
    cfg = FLConfig(level="record", dp="central", secure=False, rounds=4, sample_rate=0.2,
                   noise_multiplier=2.0, clip=0.5, lr=0.3)
    hist = run_cross_silo(data, cfg, aggregator=_AbortOddRounds())
    assert hist.released == 2 and [r["released"] for r in hist.rounds] == [False, True] * 2
    assert hist.rounds[0]["epsilon"] == 0.0 and hist.rounds[0]["metric"] == hist.rounds[0]["metric"]
    two = run_cross_silo(data, dataclasses.replace(cfg, rounds=2))
    assert hist.epsilon == pytest.approx(two.epsilon)

    class _Never(Aggregator):
        def aggregate(self, rows, weights, ctx):  # type: ignore[no-untyped-def]
            raise AggregationAborted("no")

    with pytest.raises(SecAggValueError, match="every round aborted"):
        run_cross_silo(data, cfg, aggregator=_Never())


def test_cli_record_level_summary(tmp_path, capsys):
    code = main(["train", "--task", "hospitals", "--level", "record", "--dp", "distributed",
                 "--rounds", "3", "--max-colluders", "2", "--dropout", "0.1", "--no-baselines",
                 "--json", "--out", str(tmp_path)])
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["level"], s["mechanism"], s["accountant"], s["delta"]) == (
        "record", "ddgauss", "rdp", 1e-5)
    assert s["min_survivors"] == 16 and s["secagg_threshold"] == 17 and s["bits"] == 32
    assert s["rounds_released"] == 3 and 0 < s["epsilon"] < 1
    assert "no party" in s["trust"] and s["privacy"]["level"] == "record"
    assert "sampled_records" not in json.dumps(s["history"])  # data-dependent, withheld under DP


@pytest.mark.parametrize("argv, message", [
    (["--level", "record", "--dp", "local"], "--level record"),
    (["--level", "record", "--dp", "distributed", "--clients-per-round", "5"], "--level record"),
    (["--level", "record", "--dp", "distributed", "--max-colluders", "-1"], "--max-colluders"),
])
def test_cli_refuses_record_level_misuse(argv, message, capsys, tmp_path):
    assert main(["train", "--task", "hospitals", "--rounds", "1", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_the_field_is_sized_for_the_records_a_round_samples_except_with_tiny_probability():
    from scipy.stats import binom

    from fl.crosssilo import RECORDS_TAIL, sampled_records_bound

    k = sampled_records_bound(455, 0.1)
    assert binom.sf(k, 455, 0.1) <= RECORDS_TAIL < binom.sf(k - 1, 455, 0.1)
    assert sampled_records_bound(455, 1.0) == 455 and sampled_records_bound(3, 0.5) <= 3
