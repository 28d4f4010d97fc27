"""secagg.flower through Flower's real message types, ClientApp and strategies, in one process.

Every test runs real ``flwr.clientapp.ClientApp``s carrying the ``SecAggMod``
behind ``InProcessGrid`` (one persistent Flower ``Context`` per node, as a
SuperNode keeps), drives them with ``secure_round`` or ``SecureAggregation``,
and checks the exact weighted sum of the nodes whose update was counted. The
updates are multiples of 1/64 and the scale is 2^10, so the fixed-point sums are
exact. Attack tests play the server through the grid's ``down`` hook.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

flwr = pytest.importorskip("flwr")

from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402

from secagg import identity, wire  # noqa: E402
from secagg import messages as msg  # noqa: E402
from secagg.config import ConfigPolicy  # noqa: E402
from secagg.errors import SecAggValueError  # noqa: E402
from secagg.flower import (  # noqa: E402
    Manifest,
    NodeIdentity,
    SecAggMod,
    SecAggParams,
    SecureAggregation,
    Stage,
    secure_round,
)
from secagg.flower._records import CONFIG_RECORD, get_payload, put_payload, stage_of  # noqa: E402
from secagg.flower.testing import InProcessGrid  # noqa: E402

SHAPES = {"w": ((2, 3), np.float32), "b": ((2,), np.float64)}
SIZE = 8


class Federation:
    """n nodes with provisioned keys and a roster, a ClientApp with the mod, known updates."""

    def __init__(self, n: int = 6, *, seed: int = 0, policy: ConfigPolicy | None = None,
                 extra_node: bool = False, node_configs: dict[int, dict] | None = None) -> None:
        rng = np.random.default_rng(seed)  # test data only
        self.nodes = [10_000 + 37 * i for i in range(n)]
        self.name = {node: f"site-{i}" for i, node in enumerate(self.nodes)}
        self.keys = {self.name[node]: identity.generate_key() for node in self.nodes}
        self.roster = identity.Roster({name: key.public for name, key in self.keys.items()})
        if extra_node:  # a node with a key of its own that the operator never put in the roster
            node = 10_000 + 37 * n
            self.nodes.append(node)
            self.name[node] = "intruder"
            self.keys["intruder"] = identity.generate_key()
        self.updates = {node: rng.integers(-64, 65, size=SIZE) / 64.0 for node in self.nodes}
        self.weights = {node: int(rng.integers(1, 9)) for node in self.nodes}
        self.trained: list[int] = []
        mod = SecAggMod(identity=None if node_configs else self._identity, policy=policy)
        app = ClientApp(mods=[mod])

        @app.train()
        def train(message: Message, context) -> Message:
            self.trained.append(context.node_id)
            assert CONFIG_RECORD not in message.content  # the app sees only what the strategy sent
            flat = self.updates[context.node_id]
            arrays, at = {}, 0
            for key, (shape, dtype) in SHAPES.items():
                count = int(np.prod(shape))
                arrays[key] = Array(flat[at : at + count].reshape(shape).astype(dtype))
                at += count
            metrics = MetricRecord({"num-examples": self.weights[context.node_id], "loss": 0.5})
            return Message(RecordDict({"arrays": ArrayRecord(arrays), "metrics": metrics}), reply_to=message)

        self.app = app
        configs = node_configs or {node: {"secagg-id": self.name[node]} for node in self.nodes}
        self.grid = InProcessGrid(app, configs)

    def _identity(self, context) -> NodeIdentity:
        name = context.node_config["secagg-id"]
        roster = self.roster
        if name == "intruder":  # the intruder's own copy of the roster lists itself
            roster = identity.Roster({**dict(self.roster), name: self.keys[name].public})
        return NodeIdentity(name, self.keys[name], roster)

    def model(self) -> ArrayRecord:
        return ArrayRecord({k: Array(np.zeros(shape, dtype)) for k, (shape, dtype) in SHAPES.items()})

    def contents(self, nodes=None) -> dict[int, RecordDict]:
        task = RecordDict({"arrays": self.model(), "config": ConfigRecord({"lr": 0.1})})
        return {node: task for node in (nodes or self.nodes)}

    def expected(self, survivors) -> tuple[np.ndarray, float]:
        total = sum(self.weights[s] * self.updates[s] for s in survivors)
        return total, float(sum(self.weights[s] for s in survivors))


PARAMS = SecAggParams(clipping_range=1.0, max_weight=8.0, scale=2.0**10, graph="complete", min_clients=3)


def _errors(grid: InProcessGrid, stage: Stage) -> list[str]:
    return [reply.error.reason for sent, _, reply in grid.log if reply.has_error() and sent is stage]


# --- rounds that complete ---------------------------------------------------------------------


def test_round_gives_the_exact_weighted_sum_and_restores_shapes_and_dtypes():
    fed = Federation()
    report = secure_round(fed.grid, fed.contents(), params=PARAMS, group_id="1")
    assert report.completed and report.dropped == {}
    assert report.survivors == tuple(sorted(fed.nodes))
    total, weight = fed.expected(fed.nodes)
    np.testing.assert_array_equal(report.sum, total)
    assert report.weight_sum == weight
    for key, (shape, dtype) in SHAPES.items():
        assert report.arrays[key].numpy().shape == shape and report.arrays[key].numpy().dtype == dtype
    mean = np.concatenate([report.arrays[k].numpy().astype(np.float64).ravel() for k in SHAPES])
    np.testing.assert_allclose(mean, total / weight, rtol=1e-6)
    assert sorted(fed.trained) == sorted(fed.nodes)  # each node trained once, in the masked stage
    metrics = report.metrics()
    assert metrics["secagg-survivors"] == len(fed.nodes) and metrics["num-examples"] == weight
    assert {f"secagg-seconds-{s.value}" for s in Stage} <= set(metrics)


@pytest.mark.parametrize("stage", list(Stage))
def test_a_node_vanishing_at_any_stage_is_dropped_and_the_sum_is_that_of_the_others(stage):
    fed = Federation(n=6, seed=1)
    gone = fed.nodes[2]
    fed.grid.vanish[gone] = stage
    report = secure_round(fed.grid, fed.contents(), params=PARAMS, group_id="1")
    assert report.completed, report.aborted
    assert gone in report.dropped and report.dropped[gone].startswith(stage.value)
    # A node that sent its masked update before vanishing is still in the sum.
    counted = stage in (Stage.CONSISTENCY, Stage.UNMASK)
    assert (gone in report.survivors) == counted
    total, weight = fed.expected(report.survivors)
    np.testing.assert_array_equal(report.sum, total)
    assert report.weight_sum == weight


def test_too_many_silent_nodes_abort_the_round_and_the_next_round_completes():
    fed = Federation(n=6, seed=2)
    for node in fed.nodes[:4]:
        fed.grid.vanish[node] = Stage.MASKED
    report = secure_round(fed.grid, fed.contents(), params=PARAMS, group_id="1")
    assert not report.completed and report.arrays is None and report.sum is None
    assert "need at least" in report.aborted or "fewer than" in report.aborted
    fed.grid.vanish.clear()  # the nodes come back (restarted SuperNodes keep their roster id)
    again = secure_round(fed.grid, fed.contents(), params=PARAMS, group_id="2")
    assert again.completed and again.survivors == tuple(sorted(fed.nodes))
    assert again.config.session_nonce != report.config.session_nonce  # a fresh session per round
    np.testing.assert_array_equal(again.sum, fed.expected(fed.nodes)[0])


# --- the server and the network misbehave --------------------------------------------------


def _rewrite_unmask(fed: Federation, victim: int, targets: set[int]):
    """A server that tells ``targets`` the victim dropped, to get its mask key as well as its seed."""
    victim_index = sorted(fed.name[n] for n in fed.nodes).index(fed.name[victim])

    def down(message: Message):
        parsed = stage_of(message.content)
        if parsed is None or parsed[0] is not Stage.UNMASK or message.metadata.dst_node_id not in targets:
            return message
        request = wire.decode(get_payload(message.content))
        survivors = [s for s in msg.decode_ids(request.survivors).tolist() if s != victim_index]
        dropped = sorted(set(msg.decode_ids(request.dropped).tolist()) | {victim_index})
        forged = dataclasses.replace(request, survivors=msg.encode_ids(survivors),
                                     dropped=msg.encode_ids(dropped))
        put_payload(message.content, wire.encode(forged))
        return message

    return down, victim_index


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_a_server_claiming_a_live_node_dropped_cannot_get_its_mask_key(share):
    fed = Federation(n=7, seed=3)
    victim = fed.nodes[0]
    others = fed.nodes[1:]
    targets = set(others[: int(len(others) * share)])
    fed.grid.down, victim_index = _rewrite_unmask(fed, victim, targets)
    report = secure_round(fed.grid, fed.contents(), params=PARAMS, group_id="1")
    t = report.config.threshold
    # What the server saw: every unmask reply. It may learn the victim's seed or its key, never both.
    key_shares = seed_shares = 0
    for sent, _, reply in fed.grid.log:
        if sent is Stage.UNMASK and not reply.has_error():
            response = wire.decode(get_payload(reply.content))
            key_shares += victim_index in response.key_owners
            seed_shares += victim_index in response.seed_owners
    assert key_shares < t
    assert not (key_shares >= t and seed_shares >= t)
    assert len(_errors(fed.grid, Stage.UNMASK)) == len(targets)
    assert all("MaliciousServerError" in e for e in _errors(fed.grid, Stage.UNMASK))


def test_a_cohort_too_small_for_a_safe_threshold_is_not_started():
    fed = Federation(n=3)
    report = secure_round(fed.grid, fed.contents(), params=PARAMS, group_id="1")
    assert not report.completed and "no safe session for 3 nodes" in report.aborted
    assert all(sent is Stage.IDENTIFY for sent, _, _ in fed.grid.log) and fed.trained == []


def test_nodes_refuse_a_config_their_policy_does_not_allow():
    fed = Federation(n=5)
    weak = SecAggParams(clipping_range=1.0, max_weight=8.0, scale=2.0**10, graph="complete",
                        consistency_check=False)
    report = secure_round(fed.grid, fed.contents(), params=weak, group_id="1")
    assert not report.completed
    errors = _errors(fed.grid, Stage.ADVERTISE)
    assert len(errors) == 5 and all("PolicyError" in e and "consistency_check" in e for e in errors)
    assert fed.trained == []


def test_a_member_outside_the_operators_roster_makes_the_others_refuse():
    fed = Federation(n=5, extra_node=True)
    report = secure_round(fed.grid, fed.contents(), params=PARAMS, group_id="1")
    assert not report.completed
    errors = _errors(fed.grid, Stage.ADVERTISE)
    assert len(errors) == 5 and all("IdentityError" in e and "intruder" in e for e in errors)


def test_a_replayed_session_is_refused():
    fed = Federation(n=5)
    first = secure_round(fed.grid, fed.contents(), params=PARAMS, group_id="1")
    assert first.completed
    old = [message for sent, message, _ in fed.grid.log if sent is Stage.ADVERTISE]

    def replay(message: Message):
        parsed = stage_of(message.content)
        if parsed is not None and parsed[0] is Stage.ADVERTISE:
            fields = old[0].content.config_records[CONFIG_RECORD]
            message.content.config_records[CONFIG_RECORD] = fields
        return message

    fed.grid.down = replay
    second = secure_round(fed.grid, fed.contents(), params=PARAMS, group_id="2")
    assert not second.completed
    assert all("nonce" in e for e in _errors(fed.grid, Stage.ADVERTISE))


def test_a_plain_train_message_is_refused_without_training():
    fed = Federation(n=3)
    node = fed.nodes[0]
    plain = Message(RecordDict({"arrays": fed.model()}), node, MessageType.TRAIN)
    (reply,) = fed.grid.send_and_receive([plain])
    assert reply.has_error() and "plain TRAIN" in reply.error.reason
    assert fed.trained == []
    lenient = Federation(n=3)
    lenient.app._mods[0].require_secure = False
    (reply,) = lenient.grid.send_and_receive(
        [Message(RecordDict({"arrays": lenient.model()}), lenient.nodes[0], MessageType.TRAIN)])
    assert not reply.has_error() and lenient.trained == [lenient.nodes[0]]


def test_an_unknown_stage_is_an_error_reply():
    fed = Federation(n=3)
    content = RecordDict({CONFIG_RECORD: ConfigRecord({"stage": "gossip"})})
    odd = Message(content, fed.nodes[0], MessageType.TRAIN)
    (reply,) = fed.grid.send_and_receive([odd])
    assert reply.has_error() and "unknown secagg stage 'gossip'" in reply.error.reason


def test_an_out_of_order_stage_aborts_the_node():
    fed = Federation(n=4)

    def skip_share(message: Message):
        parsed = stage_of(message.content)
        if parsed is not None and parsed[0] is Stage.SHARE:
            message.content.config_records[CONFIG_RECORD] = ConfigRecord({"stage": "consistency"})
        return message

    fed.grid.down = skip_share
    report = secure_round(fed.grid, fed.contents(), params=PARAMS, group_id="1")
    assert not report.completed
    assert all("while the client is in ShareKeys" in e for e in _errors(fed.grid, Stage.CONSISTENCY))


# --- the strategy wrapper ---------------------------------------------------------------------


def test_secure_aggregation_wraps_fedavg_in_one_line():
    fed = Federation(n=5, seed=4)
    strategy = SecureAggregation(FedAvg(fraction_evaluate=0.0), PARAMS)
    result = strategy.start(grid=fed.grid, initial_arrays=fed.model(), num_rounds=2)
    assert [r.completed for r in strategy.reports] == [True, True]
    total, weight = fed.expected(fed.nodes)
    mean = np.concatenate([result.arrays[k].numpy().astype(np.float64).ravel() for k in SHAPES])
    np.testing.assert_allclose(mean, total / weight, rtol=1e-6)
    metrics = result.train_metrics_clientapp[2]
    assert metrics["secagg-survivors"] == 5 and metrics["secagg-aborted"] == 0
    assert "loss" not in metrics  # per-node training metrics never leave the nodes in clear
    assert len(strategy.directory._ids) == 5  # nodes were identified once, in round 1
    identify = [s for s, _, _ in fed.grid.log if s is Stage.IDENTIFY]
    assert len(identify) == 5


def test_secure_aggregation_keeps_the_model_when_a_round_aborts():
    fed = Federation(n=5, seed=5)
    strategy = SecureAggregation(FedAvg(fraction_evaluate=0.0), PARAMS)
    hits = {"n": 0}

    def kill_three_in_round_one(stage, nodes):
        if stage is Stage.MASKED and hits["n"] == 0:
            hits["n"] += 1
            for node in nodes[:3]:
                fed.grid.vanish[node] = Stage.MASKED
        elif stage is Stage.IDENTIFY and hits["n"]:
            fed.grid.vanish.clear()

    strategy.on_stage = kill_three_in_round_one
    result = strategy.start(grid=fed.grid, initial_arrays=fed.model(), num_rounds=2)
    assert [r.completed for r in strategy.reports] == [False, True]
    assert 1 not in result.train_metrics_clientapp
    assert result.train_metrics_clientapp[2]["secagg-survivors"] == 5


def test_the_default_mod_reads_keys_and_roster_provisioned_with_the_command(tmp_path, capsys):
    from secagg.flower.__main__ import main

    for i in range(5):
        assert main(["keygen", "--id", f"site-{i}", "--out", str(tmp_path / f"site-{i}.json")]) == 0
    (tmp_path / "entries.jsonl").write_text(capsys.readouterr().out)
    assert main(["roster", "--out", str(tmp_path / "roster.json"), str(tmp_path / "entries.jsonl")]) == 0
    assert main(["keygen", "--id", "site-0", "--out", str(tmp_path / "site-0.json")]) == 2  # no overwrite
    configs = {10_000 + 37 * i: {"secagg-id": f"site-{i}", "secagg-key": str(tmp_path / f"site-{i}.json"),
                                 "secagg-roster": str(tmp_path / "roster.json")} for i in range(5)}
    fed = Federation(n=5, seed=7, node_configs=configs)
    report = secure_round(fed.grid, fed.contents(), params=PARAMS, group_id="1")
    assert report.completed
    np.testing.assert_array_equal(report.sum, fed.expected(fed.nodes)[0])
    del configs[10_000]["secagg-roster"]
    broken = Federation(n=5, node_configs=configs)
    report = secure_round(broken.grid, broken.contents(), params=PARAMS, group_id="1")
    assert report.survivors == (10_037, 10_074, 10_111, 10_148)
    assert report.dropped[10_000].startswith("identify")
    assert any("lacks secagg-roster" in reply.error.reason for _, _, reply in broken.grid.log
               if reply.has_error())


# --- pieces -------------------------------------------------------------------------------


def test_manifest_round_trips_and_refuses_another_shape():
    fed = Federation(n=3)
    manifest = Manifest.of(fed.model())
    assert manifest.size == SIZE
    vector = np.arange(SIZE, dtype=np.float64) / 4
    restored = manifest.restore(vector)
    np.testing.assert_array_equal(manifest.flatten(restored), vector)
    other = ArrayRecord({"w": Array(np.zeros((3, 2), np.float32)), "b": Array(np.zeros(2))})
    with pytest.raises(SecAggValueError, match="do not match"):
        manifest.flatten(other)
    ints = Manifest.of(ArrayRecord({"n": Array(np.zeros(2, np.int64))}))
    assert ints.restore(np.array([1.6, -2.4]))["n"].numpy().tolist() == [2, -2]


def test_importing_secagg_does_not_import_flwr():
    code = "import sys, secagg; assert 'flwr' not in sys.modules, 'secagg imported flwr'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the legacy workflow ----------------------------------------------------------------------


def test_secagg_workflow_is_a_drop_in_for_secaggplus_in_the_default_workflow():
    from flwr.app import Context
    from flwr.client import NumPyClient
    from flwr.common import ndarrays_to_parameters
    from flwr.server import LegacyContext, ServerConfig
    from flwr.server.strategy import FedAvg as LegacyFedAvg
    from flwr.server.workflow import DefaultWorkflow

    from secagg.flower.workflow import SecAggWorkflow

    fed = Federation(n=6, seed=6)
    shapes = [shape for shape, _ in SHAPES.values()]

    class Node(NumPyClient):
        def __init__(self, node_id: int) -> None:
            self.node_id = node_id

        def fit(self, parameters, config):
            flat, at, out = fed.updates[self.node_id], 0, []
            for shape in shapes:
                count = int(np.prod(shape))
                out.append(flat[at : at + count].reshape(shape).astype(np.float32))
                at += count
            return out, fed.weights[self.node_id], {"loss": 0.5}

    legacy = ClientApp(client_fn=lambda context: Node(context.node_id).to_client(),
                       mods=[SecAggMod(identity=fed._identity)])
    fed.grid.app = legacy
    initial = ndarrays_to_parameters([np.zeros(shape, np.float32) for shape in shapes])
    strategy = LegacyFedAvg(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=6,
                            min_available_clients=6, initial_parameters=initial)
    workflow = SecAggWorkflow(num_shares=5, reconstruction_threshold=3, clipping_range=1.0, max_weight=8.0,
                              params=SecAggParams(scale=2.0**10))
    context = LegacyContext(Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}),
                            config=ServerConfig(num_rounds=2), strategy=strategy)
    fed.grid.vanish[fed.nodes[1]] = Stage.MASKED  # a node that vanishes before its input in round 1
    DefaultWorkflow(fit_workflow=workflow)(fed.grid, context)

    assert [r.completed for r in workflow.reports] == [True, True]
    first = workflow.reports[0]
    assert first.config.graph == "harary" and first.config.degree == 4 and first.config.threshold == 3
    assert fed.nodes[1] not in first.survivors
    total, weight = fed.expected(first.survivors)
    np.testing.assert_array_equal(first.sum, total)
    assert first.weight_sum == weight
    final = [a.numpy().astype(np.float64).ravel() for a in context.state.array_records["parameters"].values()]
    np.testing.assert_allclose(np.concatenate(final), total / weight, rtol=1e-6)


def test_secagg_workflow_refuses_parameters_without_a_counterpart():
    from secagg.flower.workflow import SecAggWorkflow

    with pytest.raises(SecAggValueError, match="planned"):
        SecAggWorkflow(num_shares=5, reconstruction_threshold=3, modulus_range=2**32)
    with pytest.raises(SecAggValueError, match="at least 4"):
        SecAggWorkflow(num_shares=7, reconstruction_threshold=2).params_for(20)
