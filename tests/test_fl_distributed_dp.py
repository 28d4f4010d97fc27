"""fl's distributed-DP aggregator: real SecAgg sessions over client-noised integer rows."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("torch")

from fl.aggregators import AggregationAborted, Block, RoundContext  # noqa: E402
from fl.distributed_dp import DistributedDpSum  # noqa: E402
from secagg.ddp import DistributedDp  # noqa: E402
from secagg.errors import SecAggValueError  # noqa: E402

N, DIM = 6, 50


def _ctx(rnd: int = 1) -> RoundContext:
    return RoundContext(rnd, 10.0, (Block("update", DIM, 1.0),))


def _ddp(noise: Fraction, min_survivors: int = 4) -> DistributedDp:
    return DistributedDp("ddgauss", dim=DIM, clip=1.0, gamma=1e-3, bits=20, noise=noise,
                         max_clients=N, min_survivors=min_survivors)


def test_sum_through_secagg_is_the_clipped_sum_plus_the_clients_noise():
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((N, DIM)) * 0.05
    agg = DistributedDpSum(_ddp(Fraction(25)), graph="complete").aggregate(rows, np.ones(N), _ctx())
    assert agg.survivors == tuple(range(N)) and agg.weight_sum == N
    err = (agg.sum - rows.sum(0)) / 1e-3
    # 6 shares of sigma^2 = 25 (integer units) plus rounding: std ~ 12.3 units
    assert 8 < err.std() < 17
    assert agg.public["mechanism"] == "ddgauss" and agg.private["threshold"] >= 4


def test_too_few_survivors_abort_and_release_nothing():
    # 10 senders, 3 drop: 7 survivors < min_survivors = 8 = the raised SecAgg threshold.
    ddp = DistributedDp("ddgauss", dim=DIM, clip=1.0, gamma=1e-3, bits=20, noise=Fraction(25),
                        max_clients=10, min_survivors=8)
    agg = DistributedDpSum(ddp, graph="complete", dropout=0.3)
    with pytest.raises(AggregationAborted):
        agg.aggregate(np.zeros((10, DIM)), np.ones(10), _ctx())


def test_weights_scale_the_rows_and_travel_in_the_weight_element():
    rng = np.random.default_rng(4)
    rows = rng.standard_normal((N, DIM)) * 0.05
    w = np.linspace(0.2, 1.0, N)
    agg = DistributedDpSum(_ddp(Fraction(1, 4)), graph="complete").aggregate(rows, w, _ctx())
    assert abs(agg.weight_sum - w.sum()) < 1e-3
    assert np.abs(agg.sum - (w[:, None] * rows).sum(0)).max() < 0.02


def test_refuses_too_many_senders():
    with pytest.raises(SecAggValueError, match="exceed"):
        DistributedDpSum(_ddp(Fraction(25))).aggregate(np.zeros((N + 1, DIM)), np.ones(N + 1), _ctx())


def test_colluders_raise_the_threshold():
    rows = np.random.default_rng(0).standard_normal((N, DIM)) * 0.05
    agg = DistributedDpSum(_ddp(Fraction(25), min_survivors=3), graph="complete",
                           max_colluders=2).aggregate(
        rows, np.ones(N), _ctx())
    assert agg.private["threshold"] >= 4  # 3 + 2 - 1: a released sum has threshold + 1 survivors
    assert math.isfinite(float(agg.sum.sum()))


@pytest.mark.parametrize("min_survivors, dropout, graph, degree", [
    (11, 0.0, "harary", 10), (11, 0.1, "complete", 11), (12, 0.0, "complete", 11)])
def test_sparse_graph_is_densified_until_the_threshold_fits(min_survivors, dropout, graph, degree):
    # 12 senders: the planned SecAgg+ degree is below the threshold min_survivors - 1 the noise
    # needs, so the degree is raised to hold it after the planned drop-outs (still a Harary
    # graph while it stays below n - 1, else complete).
    ddp = DistributedDp("ddgauss", dim=DIM, clip=1.0, gamma=1e-3, bits=20, noise=Fraction(25),
                        max_clients=12, min_survivors=min_survivors)
    agg = DistributedDpSum(ddp, dropout=dropout, cohort_public=True).aggregate(
        np.zeros((12, DIM)), np.ones(12), _ctx())
    assert (agg.public["graph"], agg.public["degree"], agg.public["threshold"]) == (
        graph, degree, min_survivors - 1)


def test_more_honest_survivors_than_senders_aborts():
    with pytest.raises(AggregationAborted, match="cannot give"):
        DistributedDpSum(_ddp(Fraction(25), min_survivors=4), max_colluders=3).aggregate(
            np.zeros((N, DIM)), np.ones(N), _ctx())


def test_fedavg_trains_through_the_distributed_dp_aggregator():
    # run_fedavg with the aggregator injected: central clipping (z = 0: the encoder clips,
    # nothing is added centrally), the noise comes from the hospitals themselves.
    from fl.fedavg import FLConfig, run_fedavg
    from fl.tasks import load_task

    data = load_task("hospitals", 10, 1.0, 0)
    cfg = FLConfig(rounds=4, sample_rate=1.0, local_epochs=1, batch_size=8, lr=0.05, secure=True,
                   dp="central", noise_multiplier=0.0, clip=0.5, graph="complete")
    width = sum(p.numel() for p in data.make_model().parameters())
    ddp = DistributedDp("ddgauss", dim=width, clip=0.5, gamma=1e-4, bits=24, noise=Fraction(100),
                        max_clients=10, min_survivors=8)
    hist = run_fedavg(data, cfg, aggregator=DistributedDpSum(ddp, graph="complete"))
    plain = run_fedavg(data, FLConfig(**{**cfg.to_dict(), "secure": False}))
    assert all(r["released"] and r["mechanism"] == "ddgauss" for r in hist.rounds)
    # Noise std 1e-4 * sqrt(8 * 100) ~ 3e-3 per coordinate: about the plaintext accuracy.
    assert hist.final["accuracy"] >= plain.final["accuracy"] - 0.05


def test_cli_distributed_run_reports_mechanism_bits_epsilon_and_survivors(tmp_path, capsys):
    import json

    from fl.cli import main

    code = main(["train", "--task", "hospitals", "--clients", "6", "--rounds", "2",
                 "--dp", "distributed", "--mechanism", "ddgauss", "--noise-multiplier", "1.0",
                 "--graph", "complete", "--min-survivors", "2", "--sample-rate", "1.0",
                 "--no-baselines", "--json",
                 "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mechanism"] == "ddgauss" and summary["bits"] == 32
    assert summary["min_survivors"] == 2 and summary["accountant"] == "rdp"
    assert summary["delta"] > 0 and (summary["epsilon"] is None or summary["epsilon"] > 0)
    assert ">= 2 honest surviving clients" in summary["accounting"]
    assert "before masking" in summary["privacy"]["noise_added_by"]


@pytest.mark.parametrize("argv,message", [
    (["--no-secagg"], "needs --secagg"),
    (["--clients-per-round", "3"], "Poisson sampling only"),
    (["--mechanism", "laplace"], "invalid choice"),
])
def test_cli_distributed_refusals_are_one_line(argv, message, tmp_path, capsys):
    from fl.cli import main

    code = main(["train", "--task", "hospitals", "--dp", "distributed", *argv,
                 "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_reported_epsilon_is_the_distributed_accountants():
    from fl.distributed_dp import accountant_for
    from fl.fedavg import FLConfig, make_aggregator, run_fedavg
    from fl.tasks import load_task

    data = load_task("hospitals", 6, 1.0, 0)
    cfg = FLConfig(rounds=2, sample_rate=1.0, local_epochs=1, batch_size=8, lr=0.05, secure=True,
                   dp="distributed", noise_multiplier=1.0, clip=0.5, graph="complete",
                   min_survivors=3, delta=1e-5)
    hist = run_fedavg(data, cfg)
    width = sum(p.numel() for p in data.make_model().parameters())
    ddp = make_aggregator(cfg, 6.0, width, 6).ddp
    acc = accountant_for(ddp, delta=1e-5, sampling_rate=1.0)
    released = np.cumsum([bool(r["released"]) for r in hist.rounds])
    assert [r["epsilon"] for r in hist.rounds] == [acc.epsilon(int(k)) for k in released]
    assert hist.epsilon == acc.epsilon(int(released[-1]))


def test_mechanism_for_refuses_bits_that_cannot_carry_the_sum():
    from fl.distributed_dp import mechanism_for

    with pytest.raises(SecAggValueError, match="raise --bits"):
        mechanism_for("ddgauss", noise_multiplier=1.0, clip=1.0, width=1000, max_clients=1000,
                      min_survivors=500, bits=6)


def test_the_planned_graph_is_private_when_the_cohort_is_secret():
    # (k, t) are planned from the number of senders: with secretly sampled cohorts they would
    # publish the cohort size, which DP runs withhold.
    rows = np.zeros((N, DIM))
    secret = DistributedDpSum(_ddp(Fraction(25)), graph="complete").aggregate(rows, np.ones(N), _ctx())
    assert not {"threshold", "graph", "degree"} & set(secret.public)
    assert secret.private["graph"] == "complete"
    public = DistributedDpSum(_ddp(Fraction(25)), graph="complete", cohort_public=True).aggregate(
        rows, np.ones(N), _ctx())
    assert public.public["threshold"] == secret.private["threshold"]
