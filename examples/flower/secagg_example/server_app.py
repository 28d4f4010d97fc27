"""The ServerApp: FedAvg whose training rounds are aggregated with secagg.

Train mode is the one-line switch: ``SecureAggregation(FedAvg(...), params)``.
Verify mode runs ``secure_round`` directly on known vectors and checks that each
completed round's sum is exactly the weighted sum of its survivors' vectors; the
deployment script reads its result file (``control-dir/result.json``) and asks it,
through ``kill-plan``, to have SuperNodes killed at chosen protocol stages.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from secagg.flower import NodeDirectory, SecAggParams, SecureAggregation, Stage, secure_round
from secagg_example.task import VERIFY_MAX_WEIGHT, VERIFY_SCALE, hospitals, known_update, zero_model

app = ServerApp()
log = logging.getLogger("secagg_example")


def _params(cfg: dict) -> SecAggParams:
    return SecAggParams(clipping_range=float(cfg["clipping-range"]), max_weight=float(cfg["max-weight"]),
                        graph=str(cfg["graph"]), timeout=float(cfg["timeout"]),
                        train_timeout=float(cfg["train-timeout"]))


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = dict(context.run_config)
    if cfg["mode"] == "verify":
        verify(grid, cfg)
        return
    data = hospitals(int(cfg["num-partitions"]), float(cfg["alpha"]))
    import torch

    torch.manual_seed(0)
    model = data.make_model()

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model.load_state_dict(arrays.to_torch_state_dict())
        return MetricRecord(data.evaluate(model))

    strategy = SecureAggregation(  # the one line that differs from a plaintext FedAvg app
        FedAvg(fraction_train=float(cfg["fraction-train"]), fraction_evaluate=0.0), _params(cfg))
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(model.state_dict()),
                            num_rounds=int(cfg["num-server-rounds"]), evaluate_fn=evaluate)
    for rnd, metrics in sorted(result.evaluate_metrics_serverapp.items()):
        log.warning("round %d: %s", rnd, dict(metrics))


def _kill_plan(text: str) -> dict[tuple[int, Stage], str]:
    """'1:share:1,1:consistency:1,2:masked:abort' -> {(1, SHARE): '1', ...}."""
    plan = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        rnd, stage, count = item.split(":")
        plan[(int(rnd), Stage(stage))] = count
    return plan


class _Killer:
    """Asks the deployment script to SIGKILL SuperNodes at chosen stages, and waits until they are dead."""

    def __init__(self, control: Path, plan: dict[tuple[int, Stage], str], directory: NodeDirectory,
                 params: SecAggParams, length: int) -> None:
        self.control, self.plan, self.directory = control, plan, directory
        self.params, self.length = params, length
        self.killed: list[str] = []
        self.members = 0

    def hook(self, server_round: int):  # noqa: ANN201
        def on_stage(stage: Stage, nodes: list[int]) -> None:
            if stage is Stage.ADVERTISE:
                self.members = len(nodes)
            count = self.plan.get((server_round, stage))
            if count is None:
                return
            if count == "abort":  # just enough that fewer than t masked inputs can arrive
                t = self.params.config_for(self.members, self.length).threshold
                count = str(max(len(nodes) - t + 1, 0))
            for node in sorted(nodes)[: int(count)]:
                self._kill(str(self.directory.get(node)))
        return on_stage

    def _kill(self, roster_id: str) -> None:
        request, done = self.control / f"kill-{roster_id}.req", self.control / f"kill-{roster_id}.done"
        request.write_text(roster_id)
        deadline = time.monotonic() + 60
        while not done.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the deployment script did not kill {roster_id} within 60 s")
            time.sleep(0.05)
        self.killed.append(roster_id)


def _name(directory: NodeDirectory, node: int) -> str:
    app_id = directory.get(node)
    return f"node {node}" if app_id is None else str(app_id)


def verify(grid: Grid, cfg: dict) -> None:
    """Rounds of known vectors; each completed round must give the survivors' exact weighted sum."""
    length = int(cfg["verify-length"])
    params = SecAggParams(clipping_range=1.0, max_weight=VERIFY_MAX_WEIGHT, scale=VERIFY_SCALE,
                          graph="complete", timeout=float(cfg["timeout"]),
                          train_timeout=float(cfg["train-timeout"]))
    control = Path(str(cfg["control-dir"])) if cfg["control-dir"] else None
    directory = NodeDirectory()
    plan = _kill_plan(str(cfg["kill-plan"]))
    killer = _Killer(control, plan, directory, params, length) if control else None
    rounds = []
    for rnd in range(1, int(cfg["num-server-rounds"]) + 1):
        nodes = sorted(grid.get_node_ids())
        task = RecordDict({"arrays": zero_model(length), "config": ConfigRecord({"server-round": rnd})})
        report = secure_round(grid, dict.fromkeys(nodes, task), params=params, group_id=str(rnd),
                              directory=directory, on_stage=killer.hook(rnd) if killer else None)
        entry = {"round": rnd, "members": len(report.members), "completed": report.completed,
                 "aborted": report.aborted, "dropped": {_name(directory, n): why for n, why in
                                                        report.dropped.items()},
                 "stage_seconds": report.stage_seconds}
        if report.completed:
            expected = np.zeros(length)
            weight = 0.0
            for node in report.survivors:
                x, w = known_update(directory.get(node), rnd, length)
                expected += w * x
                weight += w
            entry.update(survivors=sorted(str(directory.get(n)) for n in report.survivors),
                         max_abs_error=float(np.max(np.abs(report.sum - expected))),
                         weight_error=abs(report.weight_sum - weight))
        log.warning("verify round %d: %s", rnd, {k: v for k, v in entry.items() if k != "stage_seconds"})
        rounds.append(entry)
    if control is not None:
        result = {"rounds": rounds, "killed": killer.killed if killer else []}
        (control / "result.json").write_text(json.dumps(result))
