"""python -m fl train: bad options give one line and exit 2; a tiny run writes its outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fl.cli import main

ROOT = Path(__file__).resolve().parents[1]

BAD = [
    (["train", "--task", "weather"], "invalid choice"),
    (["train", "--sample-rate", "0"], "--sample-rate must be in (0, 1]"),
    (["train", "--sample-rate", "1.5"], "--sample-rate must be in (0, 1]"),
    (["train", "--clip", "-1"], "--clip must be > 0"),
    (["train", "--clients", "0"], "--clients must be >= 1"),
    (["train", "--dropout", "1"], "--dropout must be in [0, 1)"),
    (["train", "--target-epsilon", "0.01"], "already exceeded by one round"),
    (["train", "--accountant", "pld", "--clients-per-round", "5"], "Poisson sampling only"),
]


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_option_is_one_line_and_exit_2(argv, message, capsys, tmp_path) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fl: error: ")
    assert message in err[0]
    assert "Traceback" not in err[0]


def test_process_exit_status_is_2_without_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "fl", "train", "--task", "hospitals",
                           "--sample-rate", "-0.5"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_tiny_run_writes_summary_and_plot(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["train", "--task", "hospitals", "--clients", "6", "--rounds", "2",
                 "--sample-rate", "1.0", "--dp", "central", "--noise-multiplier", "1.0",
                 "--adaptive-clip", "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    on_disk = json.loads((out / "summary.json").read_text())
    for key in ("task", "metric", "final", "epsilon", "delta", "baselines", "seconds"):
        assert key in summary and key in on_disk
    assert set(summary["baselines"]) == {"centralised", "plaintext_fedavg"}
    assert summary["metric"] == "accuracy" and summary["epsilon"] > 0
    assert summary["accountant"] == "pld" and "PLD" in summary["accounting"]
    assert summary["clients"] == 6 and summary["privacy"]["sampling"].startswith("secret")
    assert (out / "training.png").stat().st_size > 1000


def test_dp_summary_holds_no_unnoised_statistic_of_client_data(tmp_path, capsys) -> None:
    code = main(["train", "--task", "hospitals", "--clients", "6", "--rounds", "2",
                 "--sample-rate", "1.0", "--dp", "central", "--noise-multiplier", "1.0",
                 "--adaptive-clip", "--dropout", "0.2", "--no-baselines", "--out",
                 str(tmp_path), "--json"])
    assert code == 0
    text = capsys.readouterr()
    summary = json.loads(text.out)
    leaks = {"sampled", "took_part", "dropped", "refused", "unclipped_fraction_true", "k", "t",
             "quantisation_error", "clipped_coordinates", "upload_bytes_per_client"}
    for record in summary["history"]:
        assert not leaks & set(record), leaks & set(record)
    assert not {"refused_updates", "secagg", "max_quantisation_error"} & set(summary)
    assert "clients" not in text.err.replace("6 clients", "")  # no cohort size per round


@pytest.mark.parametrize("argv", [["--clients", "1"], ["--clients", "3", "--dropout", "0.9"]])
def test_every_round_aborted_exits_2(argv, capsys, tmp_path) -> None:
    code = main(["train", "--task", "hospitals", "--rounds", "2", "--no-baselines", "--dp", "none",
                 *argv, "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fl: error: every round aborted")
