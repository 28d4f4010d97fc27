"""Cross-silo DP-SGD: record-level (patient-level) DP over the union of the clients' records.

Every round each client (a hospital) draws a secret Poisson sample of its own records with
rate q (``fl.sampling.poisson_mask``, OS CSPRNG), computes the per-example gradients at the
current model, clips each to L2 norm C (``fl.dpsgd.ClippedGradients``) and sends their sum.
An ``fl.aggregators.Aggregator`` adds the clients' sums:

- ``DistributedDpSum`` with the record unit (``--dp distributed``): inside secure aggregation,
  each client having added its share of exact integer noise before masking, so no party, the
  server included, sees a gradient or a noiseless sum;
- ``CentralGaussian`` (``--dp central``): the centralised DP-SGD reference, the noise added
  where the pooled sum is visible;
- ``PlaintextSum`` / ``SecureSum`` (``--dp none``).

The server divides the released sum by the expected batch q * N and takes one SGD step
(server momentum is post-processing). This *is* DP-SGD on the pooled records: independent
Poisson samples of each client's records with rate q form a Poisson sample of the union with
rate q, the clients' clipped sums add to the pooled clipped sum, and one record moves one
client's sum by at most C. So each round releases what centralised DP-SGD releases at that
step, and the same accountant applies with the record as the unit. It holds for one local step
per round, not for several (docs/fl.md, "Record level across hospitals").
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from fl.aggregators import (
    AggregationAborted,
    Aggregator,
    Block,
    CentralGaussian,
    PlaintextSum,
    RoundContext,
    SecureSum,
)
from fl.dpsgd import ClippedGradients
from fl.fedavg import FLConfig, History, finish, initial_model, round_record, target_stop
from fl.privacy import Accountant, ClientAccountant, Ledger
from fl.sampling import poisson_mask
from fl.tasks import TaskData
from secagg.errors import ensure
from secagg.planner import planned_dropouts

__all__ = ["run_cross_silo", "record_aggregator", "sampled_records_bound", "RECORDS_TAIL",
           "record_accountant", "default_min_survivors", "matched_central_noise", "trust_model"]


def default_min_survivors(cfg: FLConfig, clients: int) -> int:
    """Honest survivors the noise counts on: all clients less planned drop-outs and colluders."""
    return cfg.min_survivors or max(1, clients - planned_dropouts(clients, cfg.dropout)
                                    - cfg.max_colluders)


# A round sums more than ``sampled_records_bound`` records with at most this probability.
RECORDS_TAIL = 1e-12


def sampled_records_bound(records: int, rate: float, tail: float = RECORDS_TAIL) -> int:
    """The least K with P(Binomial(records, rate) > K) <= tail: how many records one round's
    Poisson sample holds, except with probability ``tail``.

    The distributed-DP field is sized for K records instead of all of them (about 4.7 times
    fewer at q = 0.1 for the hospitals, two bits). A round that samples more can wrap (or, for
    the hospital holding them, exceed the encoder's norm check and abort): that costs accuracy
    or the round, never privacy, so the wrap bound simply grows by ``tail``.
    """
    from scipy.stats import binom

    ensure(records >= 1 and 0 < rate <= 1, "need records >= 1 and a rate in (0, 1]")
    k = min(records, max(0, int(binom.isf(tail, records, rate))))
    while k < records and binom.sf(k, records, rate) > tail:
        k += 1
    return max(k, 1)


def record_aggregator(cfg: FLConfig, width: int, clients: int, records: int) -> Aggregator:
    """The aggregator of a record-level run: distributed DP, central DP-SGD, or no noise."""
    if cfg.dp == "distributed":
        from fl.distributed_dp import DistributedDpSum, mechanism_for

        ddp = mechanism_for(cfg.mechanism, noise_multiplier=cfg.noise_multiplier, clip=cfg.clip,
                            width=width, max_clients=clients,
                            min_survivors=default_min_survivors(cfg, clients),
                            bits=cfg.bits or 32,
                            max_records=sampled_records_bound(records, cfg.sample_rate))
        return DistributedDpSum(ddp, cfg.graph, cfg.dropout, cfg.seed, cfg.max_colluders,
                                cohort_public=True)  # every hospital sends every round
    inner: Aggregator = (SecureSum(cfg.graph, cfg.bits, cfg.dropout, cfg.seed) if cfg.secure
                         else PlaintextSum(cfg.dropout, cfg.seed))
    if cfg.dp == "central":
        return CentralGaussian(inner, {"update": cfg.noise_multiplier})
    return inner


def record_accountant(cfg: FLConfig, aggregator: Aggregator, records: int
                      ) -> Accountant | None:
    """Record-level accountant: one Poisson-subsampled release of sensitivity C per round."""
    if cfg.dp == "distributed":
        from fl.distributed_dp import DistributedDpSum, accountant_for

        ensure(isinstance(aggregator, DistributedDpSum), "--dp distributed needs its aggregator")
        return accountant_for(aggregator.ddp, delta=cfg.delta, sampling_rate=cfg.sample_rate)
    if cfg.dp == "central":
        return ClientAccountant(cfg.noise_multiplier, "poisson", cfg.delta, cfg.accountant,
                                rate=cfg.sample_rate, population=records, unit="record")
    return None


def matched_central_noise(epsilon: float, cfg: FLConfig) -> float:
    """The smallest central noise multiplier whose PLD epsilon after ``cfg.rounds`` steps at
    ``cfg.sample_rate`` is at most ``epsilon``: centralised DP-SGD at the same epsilon."""
    from secagg.ddp.planner import smallest_noise

    def eps(z: float) -> float:
        return ClientAccountant(z, "poisson", cfg.delta, "pld",
                                rate=cfg.sample_rate).epsilon(cfg.rounds)

    return smallest_noise(eps, epsilon, 0.05, 1.0)


def trust_model(cfg: FLConfig, clients: int) -> str:
    """One line: who sees what, and the condition the reported epsilon rests on."""
    if cfg.dp == "distributed":
        honest = default_min_survivors(cfg, clients)
        return (f"each hospital adds 1/{honest} of the {cfg.mechanism} noise before masking, so no"
                f" party, the server included, sees a gradient or a noiseless sum; epsilon holds"
                f" while >= {honest} honest hospitals survive each step (up to"
                f" {cfg.max_colluders} survivors may collude with the server; the SecAgg"
                f" threshold {max(1, honest + cfg.max_colluders - 1)} makes steps with fewer than"
                f" {honest + cfg.max_colluders} survivors abort) against a server that deviates"
                f" from the protocol; each hospital runs its own sampling, clipping and noise")
    if cfg.dp == "central":
        return ("the server is trusted: it sees the noiseless sum of the hospitals' clipped"
                " gradients and adds the noise (centralised DP-SGD)")
    return "no differential privacy: the server sees the gradient sums (securely aggregated or not)"


def _flat(grads: dict[str, torch.Tensor]) -> np.ndarray:
    return torch.cat([g.reshape(-1) for g in grads.values()]).double().numpy()


def run_cross_silo(data: TaskData, cfg: FLConfig,
                   on_round: Callable[[dict[str, object]], None] | None = None,
                   aggregator: Aggregator | None = None) -> History:
    """DP-SGD across ``data.clients`` as the module docstring says; one step per round.

    A round whose aggregation aborts leaves the model as it was and is not charged; raises
    SecAggValueError if every round aborted.
    """
    ensure(cfg.level == "record", "run_cross_silo runs --level record")
    clients = len(data.clients)
    sizes = [int(c[0].shape[0]) for c in data.clients]
    records = sum(sizes)
    expected = cfg.sample_rate * records
    model = initial_model(data, cfg.seed)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    width = sum(p.numel() for p in params.values())
    clipped = ClippedGradients(model, data.loss_fn, cfg.clip)
    aggregator = (record_aggregator(cfg, width, clients, records) if aggregator is None
                  else aggregator)
    ledger = Ledger(record_accountant(cfg, aggregator, records), clients)
    private = cfg.dp != "none"
    history = History(data.metric, accountant=ledger.describe())
    everyone = np.arange(clients)
    velocity = np.zeros(width)
    first_error = ""
    for rnd in range(1, cfg.rounds + 1):
        history.stopped = target_stop(cfg, ledger, everyone, rnd)
        if history.stopped:
            break
        start = time.perf_counter()
        ctx = RoundContext(rnd, records * cfg.clip, (Block("update", width, cfg.clip),))
        rows, sampled = np.zeros((clients, width)), 0
        for h, (x, y) in enumerate(data.clients):
            idx = poisson_mask(x.shape[0], cfg.sample_rate).nonzero().flatten()
            sampled += int(idx.numel())
            rows[h] = _flat(clipped.sum(params, x[idx], y[idx]))
        agg, error = None, ""
        try:
            agg = aggregator.aggregate(rows, np.ones(clients), ctx)
        except AggregationAborted as exc:
            error = f"aggregation aborted: {exc}" if not private else "aggregation aborted"
            first_error = first_error or str(exc)
        # Charged once when released; an aborted round spends nothing (same epsilon as before).
        epsilon = ledger.epsilon if agg is None else ledger.charge(everyone)
        if agg is not None:
            velocity = cfg.server_momentum * velocity + agg.sum / expected
            offset = 0
            with torch.no_grad():
                for p in params.values():
                    step = velocity[offset:offset + p.numel()].reshape(p.shape)
                    p.sub_(cfg.lr * torch.from_numpy(step).to(p.dtype))
                    offset += p.numel()
            model.load_state_dict(params, strict=False)
            history.released += 1
        metrics = data.evaluate(model)
        cohort = None if private else {"sampled_records": sampled}
        record = round_record(rnd, metrics, data.metric, epsilon, cfg.clip,
                              time.perf_counter() - start, agg, error, cohort)
        history.rounds.append(record)
        if on_round is not None:
            on_round(record)
    return finish(history, data, model, ledger, first_error, private)
