"""FedAvg (McMahan et al. 2017) over secure aggregation, with DP-FedAvg options.

One round: the server samples clients (Poisson with rate q, or a fixed number
without replacement), each trains a copy of the global model locally, its update
``trained - global`` (every floating-point state_dict entry, see ``fl.params``) is
checked for NaN/inf, clipped and noised as the DP mode asks, and the weighted
sum over survivors comes back from ``secagg`` (or a plaintext sum). The server
divides, optionally applies server momentum (FedAvgM) and a server learning rate.

Weights are w_i = min(n_i / n_cap, 1), so |w*x| <= |x| and one client moves the
weighted sum by at most C. Without client-level DP n_cap = max_j n_j (exact
example-weighted FedAvg); with it n_cap is the median client size (McMahan et
al. 2018 cap the weights at a fixed w_hat so that no client's weight, and so the
sensitivity, exceeds 1 while most clients keep full weight; this simulation picks
w_hat from the data for convenience, a deployment fixes it in advance). Without client-level DP the
average is sum / weight_sum (exact weighted FedAvg). With client-level DP
(``central``/``local``) the server divides by the fixed expected weight
D = (expected sample / N) * sum_j w_j * (1 - dropout) (McMahan et al. 2018's
fixed-denominator estimator): the realised weight sum depends on who took part,
so it is not used. In ``central`` mode the server adds N(0, (z C)^2) to each
coordinate of the sum; in ``local`` mode each client adds N(0, (z C)^2) to its
own clipped update before masking (so the sum carries at least as much noise as
central, and the central accounting is an upper bound on epsilon).

``run_fedavg`` is a short loop over parts that are tested alone: a secret
``fl.sampling.CohortSampler`` (OS CSPRNG; ``--seed`` fixes only the data split, the
initial model and local shuffles), a ``LocalTrainer``, an ``fl.encoding.ClipEncoder``, an
``fl.aggregators.Aggregator`` (plaintext, secure, central DP, and whatever else implements
it), an ``fl.privacy.Ledger`` that charges released rounds only, and ``round_record``
which publishes cohort sizes and other data-dependent figures only in runs without DP.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from fl.aggregators import (
    Aggregate,
    AggregationAborted,
    Aggregator,
    CentralGaussian,
    PlaintextSum,
    SecureSum,
)
from fl.dpsgd import dp_sgd_steps_per_epoch, local_dp_sgd, local_sgd
from fl.encoding import ClipEncoder
from fl.params import flatten_state, model_delta, state_spec, unflatten_state
from fl.privacy import (
    Accountant,
    AdaptiveClip,
    ClientAccountant,
    Ledger,
    RecordAccountant,
    split_noise_multiplier,
)
from fl.sampling import CohortSampler
from fl.tasks import TaskData
from secagg.errors import SecAggValueError, ensure

__all__ = ["FLConfig", "History", "run_fedavg", "train_centralised", "DP_MODES", "LocalTrainer",
           "client_weights", "make_accountant", "make_aggregator", "LEVELS", "round_record",
           "target_stop", "finish", "initial_model"]

DP_MODES = ("none", "central", "local", "record", "distributed")
LEVELS = ("client", "record")


@dataclass(frozen=True)
class FLConfig:
    """Everything a FedAvg run needs besides the data."""

    rounds: int = 40
    sample_rate: float = 0.5
    clients_per_round: int | None = None  # set: fixed-size sampling instead of Poisson
    local_epochs: int = 1
    max_local_steps: int | None = None  # cap on a client's SGD steps per round (not DP-SGD)
    batch_size: int = 16
    lr: float = 0.05
    server_lr: float = 1.0
    server_momentum: float = 0.0
    secure: bool = True
    graph: str = "harary"
    bits: int | None = 32
    coord_clip: float = 1.0  # secagg coordinate range when updates are not L2-clipped
    dp: str = "none"
    noise_multiplier: float = 0.0
    clip: float = 1.0
    delta: float = 1e-3
    target_epsilon: float | None = None
    accountant: str = "pld"
    adaptive_clip: bool = False
    target_quantile: float = 0.5
    clip_lr: float = 0.2
    dropout: float = 0.0
    seed: int = 0
    mechanism: str = "ddgauss"  # --dp distributed: ddgauss or skellam
    min_survivors: int | None = None  # --dp distributed: honest survivors the noise counts on
    max_colluders: int = 0  # --dp distributed: survivors that may side with the server (no noise)
    level: str = "client"  # "record": cross-silo DP-SGD over the union of the clients' records

    def __post_init__(self) -> None:
        """Refuse bad values with one-line messages naming the option."""
        _positive_int("rounds", self.rounds)
        _positive_int("local-epochs", self.local_epochs)
        _positive_int("batch-size", self.batch_size)
        if self.max_local_steps is not None:
            _positive_int("max-local-steps", self.max_local_steps)
        ensure(0 < self.sample_rate <= 1, f"--sample-rate must be in (0, 1], got {self.sample_rate}")
        if self.clients_per_round is not None:
            _positive_int("clients-per-round", self.clients_per_round)
        ensure(self.lr > 0 and math.isfinite(self.lr), f"--lr must be > 0, got {self.lr}")
        ensure(self.server_lr > 0, f"--server-lr must be > 0, got {self.server_lr}")
        ensure(0 <= self.server_momentum < 1,
               f"--server-momentum must be in [0, 1), got {self.server_momentum}")
        ensure(self.graph in ("harary", "complete"), "--graph must be harary or complete")
        ensure(self.coord_clip > 0 and math.isfinite(self.coord_clip),
               f"--coord-clip must be > 0, got {self.coord_clip}")
        ensure(self.dp in DP_MODES, f"--dp must be one of {', '.join(DP_MODES)}, got {self.dp!r}")
        ensure(self.clip > 0 and math.isfinite(self.clip), f"--clip must be > 0, got {self.clip}")
        ensure(self.noise_multiplier >= 0 and math.isfinite(self.noise_multiplier),
               f"--noise-multiplier must be >= 0, got {self.noise_multiplier}")
        if self.dp != "none":
            # z = 0 is allowed for central only: clipping without noise (no DP guarantee), the
            # reference row that separates the cost of clipping from the cost of noise.
            ensure(self.noise_multiplier > 0 or (self.dp == "central" and not self.adaptive_clip),
                   f"--dp {self.dp} needs --noise-multiplier > 0")
        ensure(0 < self.delta < 1, f"--target-delta must be in (0, 1), got {self.delta}")
        if self.target_epsilon is not None:
            ensure(self.target_epsilon > 0, f"--target-epsilon must be > 0, got {self.target_epsilon}")
        ensure(self.accountant in ("rdp", "pld"), "--accountant must be pld or rdp")
        ensure(not (self.accountant == "pld" and self.clients_per_round is not None
                    and self.dp in ("central", "local")),
               "--accountant pld supports Poisson sampling only (drop --clients-per-round or"
               " use --accountant rdp)")
        ensure(not self.adaptive_clip or self.dp == "central",
               "--adaptive-clip needs --dp central")
        ensure(0 < self.target_quantile < 1,
               f"--target-quantile must be in (0, 1), got {self.target_quantile}")
        ensure(0 <= self.dropout < 1, f"--dropout must be in [0, 1), got {self.dropout}")
        ensure(self.mechanism in ("ddgauss", "skellam"),
               f"--mechanism must be ddgauss or skellam, got {self.mechanism!r}")
        if self.min_survivors is not None:
            _positive_int("min-survivors", self.min_survivors)
        ensure(isinstance(self.max_colluders, int) and self.max_colluders >= 0,
               f"--max-colluders must be an integer >= 0, got {self.max_colluders!r}")
        ensure(self.level in LEVELS, f"--level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        if self.level == "record":
            ensure(self.dp in ("none", "central", "distributed"),
                   f"--level record runs DP-SGD across the clients with --dp distributed, central"
                   f" or none, not --dp {self.dp}")
            ensure(self.clients_per_round is None and not self.adaptive_clip,
                   "--level record samples records (Poisson, --sample-rate); drop"
                   " --clients-per-round and --adaptive-clip")
        if self.dp == "distributed":
            ensure(self.secure, "--dp distributed needs --secagg (the noise hides inside the secure sum)")
            ensure(self.clients_per_round is None,
                   "--dp distributed accounts Poisson sampling only (drop --clients-per-round)")
            ensure(self.bits is None or 2 <= self.bits <= 32, "--dp distributed needs --bits <= 32")

    def to_dict(self) -> dict[str, object]:
        """Plain dict for JSON output."""
        return asdict(self)


def _positive_int(name: str, value: object) -> None:
    ensure(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
           f"--{name} must be an integer >= 1, got {value!r}")


@dataclass
class History:
    """What a run produced: per-round records and the final state."""

    metric: str
    rounds: list[dict[str, object]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)
    epsilon: float | None = None
    accountant: str = "none"
    stopped: str = ""
    released: int = 0
    refused: list[tuple[int, int]] = field(default_factory=list)
    model: torch.nn.Module | None = None


def _client_generator(seed: int, rnd: int, client: int) -> torch.Generator:
    mixed = np.random.SeedSequence([seed, 11, rnd, client]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(mixed[0]) << 32 | int(mixed[1]))


def initial_model(data: TaskData, seed: int) -> torch.nn.Module:
    """The task's model with initial weights fixed by ``seed``."""
    torch.manual_seed(seed)
    return data.make_model()


def train_centralised(data: TaskData, epochs: int, batch_size: int, lr: float,
                      seed: int) -> tuple[torch.nn.Module, dict[str, float]]:
    """Train the task's model on the pooled training data (the non-federated baseline)."""
    model = initial_model(data, seed)
    local_sgd(model, data.loss_fn, data.pool[0], data.pool[1], epochs=epochs,
              batch_size=batch_size, lr=lr, generator=_client_generator(seed, 0, -1 & 0xFFFF))
    return model, data.evaluate(model)


def client_weights(sizes: np.ndarray, cfg: FLConfig, expected: float) -> tuple[np.ndarray, float]:
    """FedAvg weights w_i = min(n_i / n_cap, 1) and the fixed denominator D of client-level DP."""
    cap = (sizes.max() if cfg.dp not in ("central", "local", "distributed")
           else float(np.median(sizes)))
    weights = np.minimum(sizes / cap, 1.0)
    denominator = expected / sizes.size * weights.sum() * (1.0 - cfg.dropout)
    return weights, float(denominator)


@dataclass(frozen=True)
class LocalTrainer:
    """Trains a copy of the global model on one client's data and returns the flat update."""

    data: TaskData
    cfg: FLConfig

    def train(self, model: torch.nn.Module, client: int, rnd: int,
              global_state: dict[str, torch.Tensor]) -> np.ndarray:
        """``trained - global`` for ``client`` in round ``rnd`` (SGD, or DP-SGD in record mode)."""
        cfg = self.cfg
        local = copy.deepcopy(model)
        x, y = self.data.clients[client]
        if cfg.dp == "record":
            local_dp_sgd(local, self.data.loss_fn, x, y, epochs=cfg.local_epochs,
                         batch_size=cfg.batch_size, lr=cfg.lr, clip=cfg.clip,
                         noise_multiplier=cfg.noise_multiplier)
        else:
            # Local shuffles are not a privacy mechanism, so they may follow --seed.
            local_sgd(local, self.data.loss_fn, x, y, epochs=cfg.local_epochs,
                      batch_size=cfg.batch_size, lr=cfg.lr,
                      generator=_client_generator(cfg.seed, rnd, client),
                      max_steps=cfg.max_local_steps)
        return model_delta(local.state_dict(), global_state, state_spec(global_state))


def make_accountant(cfg: FLConfig, sizes: np.ndarray, aggregator: Aggregator | None = None
                    ) -> Accountant | None:
    """The accountant that matches ``cfg``'s DP mode and sampling (None without DP)."""
    if cfg.dp == "distributed":
        from fl.distributed_dp import DistributedDpSum, accountant_for

        ensure(isinstance(aggregator, DistributedDpSum),
               "--dp distributed needs the distributed-DP aggregator")
        return accountant_for(aggregator.ddp, delta=cfg.delta, sampling_rate=cfg.sample_rate)
    if cfg.dp in ("central", "local") and cfg.noise_multiplier > 0:
        fixed = cfg.clients_per_round is not None
        return ClientAccountant(cfg.noise_multiplier, "fixed" if fixed else "poisson", cfg.delta,
                                cfg.accountant, rate=cfg.sample_rate, population=int(sizes.size),
                                sample_size=cfg.clients_per_round)
    if cfg.dp == "record":
        return RecordAccountant(
            cfg.noise_multiplier, cfg.delta,
            tuple(min(1.0, cfg.batch_size / n) for n in sizes),
            tuple(cfg.local_epochs * dp_sgd_steps_per_epoch(int(n), cfg.batch_size)
                  for n in sizes), cfg.accountant)
    return None


def make_aggregator(cfg: FLConfig, expected: float, width: int | None = None,
                    population: int | None = None) -> Aggregator:
    """Plaintext or secure sum, wrapped in central DP noise when ``cfg.dp == "central"``;
    the distributed-DP secure sum (``width`` coordinates, up to ``population`` senders) when
    ``cfg.dp == "distributed"``."""
    if cfg.dp == "distributed":
        from fl.distributed_dp import DistributedDpSum, mechanism_for

        ensure(width is not None and population is not None, "distributed DP needs width and population")
        survivors = cfg.min_survivors or max(2, int(0.5 * expected))
        ddp = mechanism_for(cfg.mechanism, noise_multiplier=cfg.noise_multiplier, clip=cfg.clip,
                            width=width, max_clients=population, min_survivors=survivors,
                            bits=cfg.bits or 32)
        return DistributedDpSum(ddp, cfg.graph, cfg.dropout, cfg.seed, cfg.max_colluders)
    inner: Aggregator = (SecureSum(cfg.graph, cfg.bits, cfg.dropout, cfg.seed) if cfg.secure
                         else PlaintextSum(cfg.dropout, cfg.seed))
    if cfg.dp != "central" or cfg.noise_multiplier == 0:
        return inner
    multipliers = {"update": cfg.noise_multiplier}
    if cfg.adaptive_clip:
        # Andrew et al. use sigma_b = m/20; small cohorts need sigma_b > z/2, so take at least z.
        bit_std = max(expected / 20.0, cfg.noise_multiplier)
        multipliers = {"update": split_noise_multiplier(cfg.noise_multiplier, bit_std),
                       # the count coordinate is +-C (sensitivity C); its noise std is sigma_b * 2C
                       "unclipped_count": 2.0 * bit_std}
    return CentralGaussian(inner, multipliers)


def round_record(rnd: int, metrics: dict[str, float], metric: str, epsilon: float | None,
                  clip: float, seconds: float, agg: Aggregate | None, error: str,
                  cohort: dict[str, int] | None) -> dict[str, object]:
    """What a round publishes. ``cohort`` (sizes) and ``agg.private`` are data-dependent and
    appear only in runs without DP; with DP a round publishes the metric on held-out data, the
    epsilon, the (noise-derived) clip, timing, whether it was released, and public figures."""
    record: dict[str, object] = {
        "round": rnd, "metric": metrics.get(metric), "loss": metrics.get("loss"),
        "metrics": metrics, "epsilon": epsilon, "released": agg is not None, "clip": clip,
        "seconds": seconds, "error": error,
    }
    if agg is not None:
        record["secagg_seconds"] = agg.seconds
        record.update(agg.public)
    if cohort is not None:
        record.update(cohort)
        if agg is not None:
            record.update(agg.private)
    return record


def run_fedavg(data: TaskData, cfg: FLConfig,
               on_round: Callable[[dict[str, object]], None] | None = None,
               aggregator: Aggregator | None = None) -> History:
    """Run FedAvg rounds on ``data`` as ``cfg`` says; call ``on_round`` after each.

    A composition of: a secret ``CohortSampler``, a ``LocalTrainer``, a ``ClipEncoder``, an
    ``Aggregator`` (``make_aggregator(cfg)`` unless one is given), a ``Ledger`` and
    ``round_record``. A round whose aggregation aborts leaves the model (and server momentum)
    as it was and is not charged. Raises SecAggValueError if every round aborted.
    """
    population = len(data.clients)
    sampler = CohortSampler(population, rate=None if cfg.clients_per_round else cfg.sample_rate,
                            size=cfg.clients_per_round)
    model = initial_model(data, cfg.seed)
    spec = state_spec(model.state_dict())
    sizes = np.array([c[0].shape[0] for c in data.clients], dtype=np.float64)
    weights, denominator = client_weights(sizes, cfg, sampler.expected)
    clip = AdaptiveClip(cfg.clip, cfg.target_quantile, cfg.clip_lr)
    encoder = ClipEncoder(cfg.dp, spec.size, cfg.noise_multiplier, cfg.adaptive_clip,
                          cfg.coord_clip)
    aggregator = (make_aggregator(cfg, sampler.expected, spec.size, population)
                  if aggregator is None else aggregator)
    ledger = Ledger(make_accountant(cfg, sizes, aggregator), population)
    trainer = LocalTrainer(data, cfg)
    private = cfg.dp != "none"
    history = History(data.metric, accountant=ledger.describe())

    if cfg.target_epsilon is not None and private:
        first = ledger.peek(np.arange(population))
        if first is not None and first > cfg.target_epsilon:
            raise SecAggValueError(f"--target-epsilon {cfg.target_epsilon:g} is already exceeded by"
                                   f" one round (epsilon {first:.3g} at delta {cfg.delta:g})")

    velocity = np.zeros(spec.size, dtype=np.float64)
    first_error = ""
    for rnd in range(1, cfg.rounds + 1):
        start = time.perf_counter()
        cohort = sampler.draw()
        history.stopped = target_stop(cfg, ledger, cohort, rnd)
        if history.stopped:
            break
        global_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        current_clip = clip.clip
        ctx = encoder.context(rnd, current_clip)
        rows, senders = [], []
        for i in cohort.tolist():
            delta = trainer.train(model, i, rnd, global_state)
            if not np.all(np.isfinite(delta)):
                warnings.warn(f"round {rnd}: client {i} sent an update with NaN or infinity;"
                              f" {'zeroed' if private else 'refused'} before encoding",
                              RuntimeWarning, stacklevel=2)
                if not private:
                    history.refused.append((rnd, i))
                    continue
                # Under DP a refusal would be an un-noised statistic: the client sends zeros.
                delta = np.zeros_like(delta)
            rows.append(encoder.encode(delta, current_clip))
            senders.append(i)
        agg, error = None, ""
        try:
            agg = aggregator.aggregate(np.array(rows).reshape(len(rows), ctx.width),
                                       weights[senders], ctx)
        except AggregationAborted as exc:
            error = f"aggregation aborted: {exc}" if not private else "aggregation aborted"
            first_error = first_error or str(exc)
        # Charged once when released; an aborted round spends nothing (same epsilon as before).
        epsilon = ledger.epsilon if agg is None else ledger.charge(np.asarray(senders, dtype=np.int64))
        if agg is not None:
            total, fraction = encoder.decode(agg.sum, current_clip, denominator)
            if encoder.clips:
                update = total / denominator
            else:
                update = total / agg.weight_sum if agg.weight_sum > 0 else np.zeros_like(total)
            if fraction is not None:
                clip = clip.updated(fraction)
            velocity = cfg.server_momentum * velocity + update
            vec = flatten_state(global_state, spec) + cfg.server_lr * velocity
            model.load_state_dict(unflatten_state(vec, spec, global_state))
            history.released += 1
        metrics = data.evaluate(model)
        cohort_sizes = None if private else {
            "sampled": int(cohort.size), "refused": int(cohort.size - len(rows)),
            "took_part": len(agg.survivors) if agg is not None else 0,
            "dropped": len(rows) - len(agg.survivors) if agg is not None else 0}
        record = round_record(rnd, metrics, data.metric, epsilon, current_clip,
                               time.perf_counter() - start, agg, error, cohort_sizes)
        history.rounds.append(record)
        if on_round is not None:
            on_round(record)
    return finish(history, data, model, ledger, first_error, private)


def target_stop(cfg: FLConfig, ledger: Ledger, participants: np.ndarray, rnd: int) -> str:
    """Why training stops before round ``rnd`` (``--target-epsilon`` would be exceeded), or ""."""
    if cfg.target_epsilon is None or cfg.dp == "none":
        return ""
    would = ledger.peek(participants)
    if would is not None and would > cfg.target_epsilon:
        return (f"stopped before round {rnd}: epsilon would reach {would:.3f}"
                f" > target {cfg.target_epsilon:g}")
    return ""


def finish(history: History, data: TaskData, model: torch.nn.Module, ledger: Ledger,
           first_error: str, private: bool) -> History:
    """Final evaluation and epsilon; a run in which every round aborted is an error."""
    if history.rounds and history.released == 0:
        # Under DP the reason can name cohort sizes, which are not released.
        why = (first_error if not private else
               "reasons withheld under DP (they depend on cohort sizes); --dp none shows them")
        raise SecAggValueError(f"every round aborted ({len(history.rounds)} of"
                               f" {len(history.rounds)}), nothing was trained: {why}")
    history.final = data.evaluate(model)
    history.epsilon = ledger.epsilon
    history.model = model
    return history
