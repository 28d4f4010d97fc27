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

from fl import noise
from fl.aggregate import DROPOUT_STAGES, aggregate
from fl.dpsgd import dp_sgd_steps_per_epoch, local_dp_sgd, local_sgd
from fl.params import flatten_state, model_delta, state_spec, unflatten_state
from fl.privacy import (
    AdaptiveClip,
    ClientAccountant,
    RecordAccountant,
    clip_l2,
    split_noise_multiplier,
)
from fl.tasks import TaskData
from secagg.errors import SecAggError, SecAggValueError, ensure

__all__ = ["FLConfig", "History", "run_fedavg", "train_centralised", "DP_MODES"]

DP_MODES = ("none", "central", "local", "record")
_LOCAL_NOISE_RANGE = 8.0  # secagg coordinate range in local mode: C * (1 + 8 z)


@dataclass(frozen=True)
class FLConfig:
    """Everything a FedAvg run needs besides the data."""

    rounds: int = 40
    sample_rate: float = 0.5
    clients_per_round: int | None = None  # set: fixed-size sampling instead of Poisson
    local_epochs: int = 1
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
    accountant: str = "rdp"
    adaptive_clip: bool = False
    target_quantile: float = 0.5
    clip_lr: float = 0.2
    dropout: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse bad values with one-line messages naming the option."""
        _positive_int("rounds", self.rounds)
        _positive_int("local-epochs", self.local_epochs)
        _positive_int("batch-size", self.batch_size)
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
            ensure(self.noise_multiplier > 0, f"--dp {self.dp} needs --noise-multiplier > 0")
        ensure(0 < self.delta < 1, f"--target-delta must be in (0, 1), got {self.delta}")
        if self.target_epsilon is not None:
            ensure(self.target_epsilon > 0, f"--target-epsilon must be > 0, got {self.target_epsilon}")
        ensure(self.accountant in ("rdp", "pld"), "--accountant must be rdp or pld")
        ensure(not (self.accountant == "pld" and self.clients_per_round is not None
                    and self.dp in ("central", "local")),
               "--accountant pld supports Poisson sampling only (drop --clients-per-round)")
        ensure(not self.adaptive_clip or self.dp == "central",
               "--adaptive-clip needs --dp central")
        ensure(0 < self.target_quantile < 1,
               f"--target-quantile must be in (0, 1), got {self.target_quantile}")
        ensure(0 <= self.dropout < 1, f"--dropout must be in [0, 1), got {self.dropout}")

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
    refused: list[tuple[int, int]] = field(default_factory=list)
    model: torch.nn.Module | None = None


def _client_generator(seed: int, rnd: int, client: int) -> torch.Generator:
    mixed = np.random.SeedSequence([seed, 11, rnd, client]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(mixed[0]) << 32 | int(mixed[1]))


def _make_global(data: TaskData, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return data.make_model()


def train_centralised(data: TaskData, epochs: int, batch_size: int, lr: float,
                      seed: int) -> tuple[torch.nn.Module, dict[str, float]]:
    """Train the task's model on the pooled training data (the non-federated baseline)."""
    model = _make_global(data, seed)
    local_sgd(model, data.loss_fn, data.pool[0], data.pool[1], epochs=epochs,
              batch_size=batch_size, lr=lr, generator=_client_generator(seed, 0, -1 & 0xFFFF))
    return model, data.evaluate(model)


def run_fedavg(data: TaskData, cfg: FLConfig,
               on_round: Callable[[dict[str, object]], None] | None = None) -> History:
    """Run FedAvg rounds on ``data`` as ``cfg`` says; call ``on_round`` after each."""
    population = len(data.clients)
    fixed = cfg.clients_per_round is not None
    if fixed:
        ensure(cfg.clients_per_round <= population,
               f"--clients-per-round {cfg.clients_per_round} exceeds --clients {population}")
    model = _make_global(data, cfg.seed)
    spec = state_spec(model.state_dict())
    sizes = np.array([c[0].shape[0] for c in data.clients], dtype=np.float64)
    cap = sizes.max() if cfg.dp not in ("central", "local") else float(np.median(sizes))
    weights = np.minimum(sizes / cap, 1.0)
    expected = cfg.clients_per_round if fixed else cfg.sample_rate * population
    denominator = expected / population * weights.sum() * (1.0 - cfg.dropout)
    clip = AdaptiveClip(cfg.clip, cfg.target_quantile, cfg.clip_lr)
    z_updates = cfg.noise_multiplier
    # Andrew et al. use sigma_b = m/20; small cohorts need sigma_b > z/2, so take at least z.
    bit_std = max(expected / 20.0, cfg.noise_multiplier)
    if cfg.adaptive_clip:
        z_updates = split_noise_multiplier(cfg.noise_multiplier, bit_std)

    client_acc = record_acc = None
    participations = np.zeros(population, dtype=np.int64)
    if cfg.dp in ("central", "local"):
        client_acc = ClientAccountant(cfg.noise_multiplier, "fixed" if fixed else "poisson",
                                      cfg.delta, cfg.accountant, rate=cfg.sample_rate,
                                      population=population, sample_size=cfg.clients_per_round)
    elif cfg.dp == "record":
        record_acc = RecordAccountant(
            cfg.noise_multiplier, cfg.delta,
            tuple(min(1.0, cfg.batch_size / n) for n in sizes),
            tuple(cfg.local_epochs * dp_sgd_steps_per_epoch(int(n), cfg.batch_size)
                  for n in sizes), cfg.accountant)
    history = History(data.metric)
    history.accountant = (client_acc or record_acc).describe() if (client_acc or record_acc) \
        else "no differential privacy"

    def epsilon_after(rnd: int, parts: np.ndarray) -> float | None:
        if client_acc is not None:
            return client_acc.epsilon(rnd)
        if record_acc is not None:
            return record_acc.epsilon(parts.tolist())
        return None

    if cfg.target_epsilon is not None and cfg.dp != "none":
        first = epsilon_after(1, np.ones(population, dtype=np.int64))
        if first is not None and first > cfg.target_epsilon:
            raise SecAggValueError(f"--target-epsilon {cfg.target_epsilon:g} is already exceeded by"
                                   f" one round (epsilon {first:.3g} at delta {cfg.delta:g})")

    velocity = np.zeros(spec.size, dtype=np.float64)
    epsilon = 0.0 if cfg.dp != "none" else None
    for rnd in range(1, cfg.rounds + 1):
        start = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, 7, rnd])
        if fixed:
            sampled = np.sort(rng.choice(population, size=cfg.clients_per_round, replace=False))
        else:
            sampled = np.flatnonzero(rng.random(population) < cfg.sample_rate)
        parts_next = participations.copy()
        parts_next[sampled] += 1
        if cfg.target_epsilon is not None and cfg.dp != "none":
            would = epsilon_after(rnd, parts_next)
            if would is not None and would > cfg.target_epsilon:
                history.stopped = (f"stopped before round {rnd}: epsilon would reach {would:.3f}"
                                   f" > target {cfg.target_epsilon:g}")
                break
        participations = parts_next
        global_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        global_vec = flatten_state(global_state, spec)
        current_clip = clip.clip
        rows, row_weights, senders, unclipped = [], [], [], 0
        for i in sampled.tolist():
            local = copy.deepcopy(model)
            x, y = data.clients[i]
            gen = _client_generator(cfg.seed, rnd, i)
            if cfg.dp == "record":
                local_dp_sgd(local, data.loss_fn, x, y, epochs=cfg.local_epochs,
                             batch_size=cfg.batch_size, lr=cfg.lr, clip=cfg.clip,
                             noise_multiplier=cfg.noise_multiplier, generator=gen)
            else:
                local_sgd(local, data.loss_fn, x, y, epochs=cfg.local_epochs,
                          batch_size=cfg.batch_size, lr=cfg.lr, generator=gen)
            delta = model_delta(local.state_dict(), global_state, spec)
            if not np.all(np.isfinite(delta)):
                warnings.warn(f"round {rnd}: client {i} sent an update with NaN or infinity;"
                              f" refused before encoding", RuntimeWarning, stacklevel=2)
                history.refused.append((rnd, i))
                continue
            if cfg.dp in ("central", "local"):
                delta, norm = clip_l2(delta, current_clip)
                unclipped += int(norm <= current_clip)
                if cfg.dp == "local":
                    delta = delta + noise.gaussian(delta.size, cfg.noise_multiplier * current_clip)
                if cfg.adaptive_clip:
                    bit = 1.0 if norm <= current_clip else 0.0
                    delta = np.append(delta, (bit - 0.5) * 2.0 * current_clip)
            rows.append(delta)
            row_weights.append(weights[i])
            senders.append(i)

        if cfg.dp == "central":
            coord = current_clip
        elif cfg.dp == "local":
            coord = current_clip * (1.0 + _LOCAL_NOISE_RANGE * cfg.noise_multiplier)
        else:
            coord = cfg.coord_clip
        width = spec.size + (1 if cfg.adaptive_clip else 0)
        stage = str(rng.choice(DROPOUT_STAGES)) if cfg.dropout > 0 else "masked"
        agg = None
        error = ""
        if rows:
            try:
                agg = aggregate(np.stack(rows), np.asarray(row_weights), secure=cfg.secure,
                                clip=coord, graph=cfg.graph, bits=cfg.bits, dropout=cfg.dropout,
                                dropout_stage=stage, seed=int(rng.integers(2**31)))
            except SecAggError as exc:  # the protocol aborted this round: carry on without it
                error = f"aggregation aborted: {exc}"
        total = agg.sum if agg is not None else np.zeros(width)
        survivors = [senders[j] for j in agg.survivors] if agg is not None else []
        update = None
        if cfg.dp in ("central", "local"):
            bits_sum = 0.0
            if cfg.adaptive_clip:
                bits_sum, total = float(total[-1]), total[:-1]
            if cfg.dp == "central":
                total = total + noise.gaussian(spec.size, z_updates * current_clip)
                if cfg.adaptive_clip:
                    bits_sum += float(noise.gaussian(1, bit_std * 2.0 * current_clip)[0])
            update = total / denominator
            if cfg.adaptive_clip:
                fraction = min(1.0, max(0.0, bits_sum / (2.0 * current_clip) / denominator + 0.5))
                clip = clip.updated(fraction)
        elif agg is not None and agg.weight_sum > 0:
            update = total / agg.weight_sum
        if update is not None:
            velocity = cfg.server_momentum * velocity + update
            new_state = unflatten_state(global_vec + cfg.server_lr * velocity, spec, global_state)
            model.load_state_dict(new_state)
        metrics = data.evaluate(model)
        epsilon = epsilon_after(rnd, participations)
        record = {
            "round": rnd, "metric": metrics.get(data.metric), "loss": metrics.get("loss"),
            "metrics": metrics, "epsilon": epsilon, "sampled": int(sampled.size),
            "refused": int(sampled.size - len(rows)), "took_part": len(survivors),
            "dropped": len(rows) - len(survivors), "clip": current_clip,
            "clipped_coordinates": agg.clipped if agg is not None else 0,
            "secagg_seconds": agg.seconds if agg is not None else 0.0,
            "seconds": time.perf_counter() - start, "error": error,
        }
        if agg is not None and agg.secure:
            record.update(k=agg.k, t=agg.t, bits=agg.bits, quantisation_error=agg.max_abs_error,
                          upload_bytes_per_client=agg.upload_bytes_per_client)
        if cfg.adaptive_clip:
            record["unclipped_fraction_true"] = unclipped / max(len(rows), 1)
        history.rounds.append(record)
        if on_round is not None:
            on_round(record)
    history.final = data.evaluate(model)
    history.epsilon = epsilon
    history.model = model
    return history
