"""The examples/flower app (ServerApp and ClientApp code) over the in-process grid: both modes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib

pytest.importorskip("flwr")
pytest.importorskip("torch")

from flwr.app import Context, RecordDict  # noqa: E402

from secagg import identity  # noqa: E402
from secagg.flower.testing import InProcessGrid  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flower"
sys.path.insert(0, str(EXAMPLE))

from secagg_example import client_app, server_app  # noqa: E402


def _federation(tmp_path: Path, n: int, overrides: dict) -> tuple[InProcessGrid, dict]:
    """n nodes provisioned as a simulation would be: keys-dir/<partition-id>.json and roster.json."""
    keys = {}
    for i in range(n):
        keys[i] = identity.generate_key()
        identity.save_key(tmp_path / f"{i}.json", keys[i])
    identity.Roster({i: k.public for i, k in keys.items()}).save(tmp_path / "roster.json")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    run_config = dict(project["tool"]["flwr"]["app"]["config"])
    run_config.update(keys_dir=str(tmp_path), **overrides)
    run_config = {k.replace("_", "-"): v for k, v in run_config.items()}
    nodes = {100 + i: {"partition-id": i, "num-partitions": n} for i in range(n)}
    grid = InProcessGrid(client_app.app, nodes)
    for context in grid.contexts.values():
        context.run_config = run_config
    return grid, run_config


def test_the_example_trains_hospitals_through_secure_aggregation(tmp_path, caplog):
    grid, cfg = _federation(tmp_path, 4, {"num_server_rounds": 2, "num_partitions": 4, "local_epochs": 1})
    server = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config=cfg)
    server_app.main(grid, server)
    trained = [sent for sent, _, reply in grid.log if sent is not None and sent.value == "masked"
               and not reply.has_error()]
    assert len(trained) == 2 * 4  # every node trained in every round, through the masked stage
    accuracy = [float(line.split("'accuracy': ")[1].split(",")[0]) for line in caplog.messages
                if line.startswith("round ")]
    assert len(accuracy) == 3 and accuracy[-1] > accuracy[0] and accuracy[-1] > 0.8


def test_the_example_verify_mode_sums_known_vectors_exactly(tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    grid, cfg = _federation(tmp_path, 6, {"mode": "verify", "num_server_rounds": 2, "verify_length": 50,
                                          "control_dir": str(control)})
    grid.vanish[103] = server_app.Stage.MASKED
    server = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config=cfg)
    server_app.main(grid, server)
    result = json.loads((control / "result.json").read_text())
    assert [r["completed"] for r in result["rounds"]] == [True, True]
    assert all(r["max_abs_error"] == 0.0 and r["weight_error"] == 0.0 for r in result["rounds"])
    assert "3" not in result["rounds"][0]["survivors"] and len(result["rounds"][0]["survivors"]) == 5
    assert np.isfinite(result["rounds"][1]["stage_seconds"]["unmask"])
