"""The server side for Message-API ServerApps: one secure-aggregation round over a Flower ``Grid``.

``secure_round`` drives a ``secagg.Server`` across Flower messages for a set of
nodes: it learns each node's roster id (``NodeDirectory``, cached), numbers the
members in the canonical order of their roster ids, plans a ``SecAggConfig``
with a fresh session nonce, sends every stage as ``TRAIN`` messages, closes each
stage at its timeout (a node that stays silent, or answers with an error, is
dropped), hands the training task to the nodes with the masked stage, and
returns the aggregate with the round's figures (``RoundReport``).

``SecureAggregation`` wraps a Flower strategy (``FedAvg`` and the strategies
built on its weighted average) so that its training rounds go through
``secure_round``: ``SecureAggregation(FedAvg(...)).start(grid=grid, ...)``.
The wrapped strategy sees one reply per round, holding the weighted mean of the
survivors' arrays and their total weight, plus the round's secagg metrics.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    ConfigRecordValues,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy
from flwr.serverapp.strategy.result import Result

from secagg import crypto, identity
from secagg.config import GRAPHS, SecAggConfig
from secagg.errors import SecAggError, SecAggTypeError, SecAggValueError, ensure
from secagg.flower._records import CONFIG_RECORD, PAYLOAD_RECORD, Manifest, Stage, get_payload, put_payload
from secagg.rounds import Round
from secagg.server import DropReason, Server

__all__ = ["NodeDirectory", "RoundReport", "SecAggParams", "SecureAggregation", "secure_round"]

_log = logging.getLogger("secagg.flower")

#: The stage in which the server sends the messages of each of its rounds.
_STAGE_OF_ROUND = {
    Round.SHARE_KEYS: Stage.SHARE,
    Round.MASKED_INPUT: Stage.MASKED,
    Round.CONSISTENCY_CHECK: Stage.CONSISTENCY,
    Round.UNMASKING: Stage.UNMASK,
}


@dataclass(frozen=True)
class SecAggParams:
    """The server's choices for each round; what is left unset is planned per round.

    ``clipping_range`` bounds every parameter of an update (as in Flower's
    SecAgg+), ``max_weight`` every weight (the example count); the session clips
    ``weight * x`` to ``clipping_range * max_weight``. ``degree`` / ``threshold``
    fix the graph degree and the reconstruction threshold; otherwise the planner
    picks them for ``dropout_rate`` and ``corrupt_fraction``. ``scale`` fixes the
    fixed-point scale (a power of two makes sums of dyadic inputs exact).
    ``timeout`` closes every stage but the training one, ``train_timeout`` (by
    default ``timeout``) the masked stage, in which nodes train.
    """

    clipping_range: float = 8.0
    max_weight: float = 1000.0
    graph: str = "harary"
    bits: int | None = None
    scale: float | None = None
    degree: int | None = None
    threshold: int | None = None
    dropout_rate: float = 0.05
    corrupt_fraction: float = 0.05
    consistency_check: bool = True
    cipher: str = "chacha20"
    min_clients: int = 3
    timeout: float = 60.0
    train_timeout: float | None = None
    server_threads: int | None = None

    def __post_init__(self) -> None:
        ensure(self.graph in GRAPHS, f"graph must be one of {GRAPHS}, got {self.graph!r}")
        for name in ("clipping_range", "max_weight", "timeout"):
            value = getattr(self, name)
            ensure(isinstance(value, (int, float)) and value > 0,
                   f"{name} must be a number > 0, got {value!r}")
        ensure(self.train_timeout is None or self.train_timeout > 0, "train_timeout must be > 0")
        ensure(type(self.min_clients) is int and self.min_clients >= 2, "min_clients must be an int >= 2")

    def config_for(self, num_clients: int, vector_length: int) -> SecAggConfig:
        """A config for this round, with a fresh session nonce (``SecAggConfig.plan`` + overrides)."""
        config = SecAggConfig.plan(
            num_clients, vector_length, clip=self.clipping_range * self.max_weight, graph=self.graph,
            bits=self.bits, scale=self.scale, dropout_rate=self.dropout_rate,
            corrupt_fraction=self.corrupt_fraction, max_weight=float(self.max_weight),
            consistency_check=self.consistency_check, session_nonce=crypto.random_bytes(32),
            cipher=self.cipher,
        )
        if self.degree is None and self.threshold is None:
            return config
        degree = config.degree if self.degree is None else min(self.degree, num_clients - 1)
        graph = "complete" if degree >= num_clients - 1 else "harary"
        degree = num_clients - 1 if graph == "complete" else degree
        threshold = self.threshold if self.threshold is not None else degree // 2 + 1
        return dataclasses.replace(config, graph=graph, degree=degree, threshold=min(threshold, degree))


@dataclass
class RoundReport:
    """What one secure-aggregation round did (node ids are Flower node ids)."""

    group_id: str
    members: tuple[int, ...] = ()
    survivors: tuple[int, ...] = ()  #: nodes whose update is in the sum
    dropped: dict[int, str] = field(default_factory=dict)  #: node -> "stage: reason"
    stage_seconds: dict[str, float] = field(default_factory=dict)  #: wall time of each stage
    server_seconds: float = 0.0  #: CPU-bound work of the secagg server (receive + close)
    upload_bytes: dict[int, int] = field(default_factory=dict)  #: secagg payload bytes sent by each node
    config: SecAggConfig | None = None
    aborted: str | None = None
    sum: np.ndarray | None = None  #: sum of weight * update over the survivors (flat)
    weight_sum: float = 0.0
    arrays: ArrayRecord | None = None  #: the weighted mean, as the model's arrays

    @property
    def completed(self) -> bool:
        return self.aborted is None and self.sum is not None

    def metrics(self, weight_key: str = "num-examples") -> MetricRecord:
        """The round's figures as a Flower ``MetricRecord`` (the total weight under ``weight_key``)."""
        record: dict[str, int | float | list[int] | list[float]] = {
            weight_key: float(self.weight_sum),
            "secagg-members": len(self.members),
            "secagg-survivors": len(self.survivors),
            "secagg-dropped": len(self.dropped),
            "secagg-aborted": int(self.aborted is not None),
            "secagg-server-seconds": float(self.server_seconds),
        }
        for stage, seconds in self.stage_seconds.items():
            record[f"secagg-seconds-{stage}"] = float(seconds)
        if self.upload_bytes:
            record["secagg-upload-bytes-median"] = int(statistics.median(self.upload_bytes.values()))
        return MetricRecord(record)


class NodeDirectory:
    """Flower node id -> roster id, learnt by asking each node once (``identify``).

    The answer only routes messages: a node that claims another's roster id
    cannot sign for it, so its peers refuse the session. Two nodes claiming the
    same roster id are both left out.
    """

    def __init__(self) -> None:
        self._ids: dict[int, identity.AppId] = {}

    def get(self, node_id: int) -> identity.AppId | None:
        return self._ids.get(node_id)

    def resolve(
        self, grid: Grid, node_ids: Iterable[int], timeout: float, group_id: str
    ) -> dict[int, identity.AppId]:
        """The roster ids of ``node_ids``, asking the nodes not yet known; silent nodes are left out."""
        nodes = list(node_ids)
        unknown = [n for n in nodes if n not in self._ids]
        if unknown:
            messages = [_message(n, Stage.IDENTIFY, {}, None, group_id) for n in unknown]
            for reply in grid.send_and_receive(messages, timeout=timeout):
                node = reply.metadata.src_node_id
                if reply.has_error() or node not in unknown:
                    continue
                record = reply.content.config_records.get(CONFIG_RECORD + ".id")
                app_id = record.get("id") if record is not None else None
                if isinstance(app_id, (int, str)) and not isinstance(app_id, bool):
                    self._ids[node] = app_id
        known = {n: self._ids[n] for n in nodes if n in self._ids}
        counts: dict[identity.AppId, int] = {}
        for app_id in known.values():
            counts[app_id] = counts.get(app_id, 0) + 1
        return {n: a for n, a in known.items() if counts[a] == 1}

    def forget(self, node_id: int) -> None:
        self._ids.pop(node_id, None)


def secure_round(
    grid: Grid,
    contents: Mapping[int, RecordDict],
    *,
    params: SecAggParams | None = None,
    arrays_key: str = "arrays",
    weight_key: str = "num-examples",
    group_id: str = "",
    directory: NodeDirectory | None = None,
    on_stage: Callable[[Stage, list[int]], None] | None = None,
) -> RoundReport:
    """Securely aggregate one round of training over ``grid``.

    ``contents`` maps each node id to the training task for it (the model under
    ``arrays_key``, plus the strategy's config); each node trains when its
    masked input is due and weighs its update by the metric ``weight_key`` of its
    training reply. Returns a ``RoundReport``; if the round aborted,
    ``report.aborted`` says why and no aggregate is given (nothing about any
    update was revealed). ``on_stage(stage, node_ids)`` is called before each
    stage's messages go out (tests and the deployment script kill nodes there).
    """
    params = params or SecAggParams()
    ensure(isinstance(params, SecAggParams), "params must be a SecAggParams", raising=SecAggTypeError)
    directory = directory if directory is not None else NodeDirectory()
    report = RoundReport(group_id=group_id)
    nodes = sorted(contents)
    report.members = tuple(nodes)

    started = time.perf_counter()
    if on_stage is not None:
        on_stage(Stage.IDENTIFY, nodes)
    roster_ids = directory.resolve(grid, nodes, params.timeout, group_id)
    report.stage_seconds[Stage.IDENTIFY.value] = time.perf_counter() - started
    for node in nodes:
        if node not in roster_ids:
            report.dropped[node] = f"{Stage.IDENTIFY.value}: no unique roster id"
    members = sorted(roster_ids)
    if len(members) < params.min_clients:
        report.aborted = f"only {len(members)} nodes identified; need at least {params.min_clients}"
        return report

    manifest = Manifest.of(_model(contents[members[0]], arrays_key))
    for node in members[1:]:
        ensure(Manifest.of(_model(contents[node], arrays_key)) == manifest,
               f"node {node} is sent a model of another shape than node {members[0]}")
    try:
        config = params.config_for(len(members), manifest.size)
    except SecAggValueError as exc:  # e.g. too few nodes for the threshold security needs
        report.aborted = f"no safe session for {len(members)} nodes: {exc}"
        _log.warning("secure aggregation round %s not started: %s", group_id, report.aborted)
        return report
    report.config = config
    ids = identity.IdMap(roster_ids[n] for n in members)
    node_of = {ids.index(roster_ids[n]): n for n in members}
    server = Server(config, threads=params.server_threads)

    def run_stage(stage: Stage, payloads: Mapping[int, bytes | None], timeout: float) -> None:
        """Send one stage, feed the replies to the server, and close the stage."""
        begin = time.perf_counter()
        targets = [node_of[i] for i in payloads]
        if on_stage is not None:
            on_stage(stage, targets)
        fields: dict[str, ConfigRecordValues] = {}
        if stage is Stage.ADVERTISE:
            members: list[Any] = list(ids.app_ids)  # all ints or all strings (IdMap checks)
            fields = {"config": config.to_bytes(), "members": members}
        elif stage is Stage.MASKED:
            fields = {"arrays-key": arrays_key, "weight-key": weight_key}
        messages = []
        for index, payload in payloads.items():
            node = node_of[index]
            base = contents[node] if stage is Stage.MASKED else None
            messages.append(_message(node, stage, fields, payload, group_id, base))
        replies = list(grid.send_and_receive(messages, timeout=timeout))
        cpu = time.perf_counter()
        # A reply is matched to the message it answers (the grid set each message's id when it
        # pushed it): the SuperLink itself answers for a node it knows is gone (NODE_UNAVAILABLE).
        sent = {m.metadata.message_id: index for m, index in zip(messages, payloads, strict=True)}
        answered: set[int] = set()
        for reply in replies:
            who = sent.get(reply.metadata.reply_to_message_id)
            if who is None or who in answered:
                continue
            index = who
            if not reply.has_error() and reply.metadata.src_node_id != node_of[index]:
                continue  # content must come from the node itself
            answered.add(index)
            if reply.has_error():
                server.drop(index, DropReason.CLIENT_ABORTED, reply.error.reason or "error reply")
                report.dropped[node_of[index]] = f"{stage.value}: {reply.error.reason}"
                continue
            try:
                data = get_payload(reply.content)
            except SecAggError as exc:
                server.drop(index, DropReason.MALFORMED, str(exc))
                report.dropped[node_of[index]] = f"{stage.value}: {exc}"
                continue
            report.upload_bytes[node_of[index]] = report.upload_bytes.get(node_of[index], 0) + len(data)
            server.receive(index, data)
        silent = server.waiting_for
        outgoing = server.close_round()
        report.server_seconds += time.perf_counter() - cpu
        for index in silent:
            report.dropped.setdefault(node_of[index], f"{stage.value}: no reply within {timeout:g} s")
        for index, reason in server.dropped.items():
            report.dropped.setdefault(node_of[index], f"{stage.value}: {reason.value}")
        report.stage_seconds[stage.value] = time.perf_counter() - begin
        pending.clear()
        pending.update(outgoing)

    pending: dict[int, bytes] = {}
    run_stage(Stage.ADVERTISE, dict.fromkeys(node_of, None), params.timeout)
    while server.round in _STAGE_OF_ROUND:
        stage = _STAGE_OF_ROUND[server.round]
        timeout = (params.train_timeout or params.timeout) if stage is Stage.MASKED else params.timeout
        run_stage(stage, dict(pending), timeout)

    if server.round is not Round.COMPLETED:
        report.aborted = server.abort_reason or f"the server stopped in {server.state_name}"
        _log.warning("secure aggregation round %s aborted: %s", group_id, report.aborted)
        return report
    result = server.result()
    report.survivors = tuple(node_of[i] for i in result.survivors)
    report.sum = result.sum
    report.weight_sum = float(result.weight_sum)
    if report.weight_sum > 0:
        report.arrays = manifest.restore(result.sum / report.weight_sum)
    return report


def _model(content: RecordDict, arrays_key: str) -> ArrayRecord:
    record = content.array_records.get(arrays_key)
    if record is None:
        raise SecAggValueError(f"the training task carries no ArrayRecord {arrays_key!r}")
    return record


def _message(
    node: int, stage: Stage, fields: Mapping[str, ConfigRecordValues], payload: bytes | None, group_id: str,
    base: RecordDict | None = None,
) -> Message:
    """A TRAIN message to ``node`` for ``stage`` (on top of a copy of ``base``, if given)."""
    content = RecordDict(dict(base.items())) if base is not None else RecordDict()
    content.config_records[CONFIG_RECORD] = ConfigRecord({"stage": stage.value, **fields})
    if payload is not None:
        put_payload(content, payload)
    elif PAYLOAD_RECORD in content:
        del content[PAYLOAD_RECORD]
    return Message(content=content, dst_node_id=node, message_type=MessageType.TRAIN, group_id=group_id)


# --- the strategy wrapper ------------------------------------------------------------------


class SecureAggregation(Strategy):
    """A Flower strategy whose training rounds are aggregated securely.

    Wraps a strategy that averages (``FedAvg``, ``FedAvgM``, ``FedAdam``,
    ``FedProx`` ...): its ``configure_train`` picks the nodes and the task, the
    round runs through ``secure_round``, and its ``aggregate_train`` receives a
    single reply holding the survivors' weighted mean under its
    ``arrayrecord_key`` and their total weight under its ``weighted_by_key``.
    Robust aggregators that need each update (median, Krum) cannot work on a
    secure sum by design. Evaluation rounds pass through unchanged.

    ``reports`` keeps the ``RoundReport`` of every training round.
    """

    def __init__(self, strategy: Strategy, params: SecAggParams | None = None) -> None:
        ensure(isinstance(strategy, Strategy), "strategy must be a flwr.serverapp.strategy.Strategy",
               raising=SecAggTypeError)
        self.strategy = strategy
        self.params = params or SecAggParams()
        self.directory = NodeDirectory()
        self.reports: list[RoundReport] = []
        self.on_stage: Callable[[Stage, list[int]], None] | None = None

    @property
    def arrays_key(self) -> str:
        return getattr(self.strategy, "arrayrecord_key", "arrays")

    @property
    def weight_key(self) -> str:
        return getattr(self.strategy, "weighted_by_key", "num-examples")

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        return self.strategy.aggregate_train(server_round, replies)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return self.strategy.aggregate_evaluate(server_round, replies)

    def summary(self) -> None:
        self.strategy.summary()

    def start(self, grid: Grid, initial_arrays: ArrayRecord, num_rounds: int = 3, timeout: float = 3600,
              train_config: ConfigRecord | None = None, evaluate_config: ConfigRecord | None = None,
              evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None) -> Result:
        """Run the wrapped strategy, with every training round aggregated securely."""
        return Strategy.start(self, _SecureTrainGrid(grid, self), initial_arrays, num_rounds, timeout,
                              train_config, evaluate_config, evaluate_fn)

    def train_round(self, grid: Grid, messages: list[Message]) -> list[Message]:
        """Run one secure round for the strategy's training messages; the single reply (or none)."""
        contents = {m.metadata.dst_node_id: m.content for m in messages}
        group_id = str(len(self.reports) + 1)
        report = secure_round(grid, contents, params=self.params, arrays_key=self.arrays_key,
                              weight_key=self.weight_key, group_id=group_id, directory=self.directory,
                              on_stage=self.on_stage)
        self.reports.append(report)
        if not report.completed or report.arrays is None:
            _log.warning("round %s: no aggregate (%s)", group_id, report.aborted or "zero total weight")
            return []
        content = RecordDict({self.arrays_key: report.arrays, "metrics": report.metrics(self.weight_key)})
        return [Message(content, reply_to=messages[0])]


class _SecureTrainGrid(Grid):
    """A Grid that runs the strategy's training messages through ``SecureAggregation.train_round``."""

    def __init__(self, grid: Grid, owner: SecureAggregation) -> None:
        self._grid = grid
        self._owner = owner

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        messages = list(messages)
        if messages and all(m.metadata.message_type.split(".")[0] == MessageType.TRAIN for m in messages):
            return self._owner.train_round(self._grid, messages)
        return self._grid.send_and_receive(messages, timeout=timeout)

    def set_run(self, run):  # type: ignore[no-untyped-def]
        self._grid.set_run(run)

    @property
    def run(self):  # type: ignore[no-untyped-def]
        return self._grid.run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):  # type: ignore[no-untyped-def]
        return self._grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self._grid.get_node_ids()

    def get_nodes(self):  # type: ignore[no-untyped-def]
        return self._grid.get_nodes()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._grid.pull_messages(message_ids)
