"""The command-line contract, over a table of bad inputs (README, "Command-line contract").

Usage errors: exit 2, exactly one ``<prog>: error: ...`` line on stderr, nothing on
stdout, no traceback, and no work started (the run itself is replaced by a tripwire).
A protocol abort: exit 3, ``secagg: aborted: <reason>`` on stderr, and under
``--json`` a JSON object with the reason on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from secagg import cli

ROOT = Path(__file__).resolve().parents[1]
REASON = "only 5 masked inputs arrived; need more than t=6"


def _abort(*args, **kwargs):
    # The planner provisions for the dropout asked for, so an honest simulated run no
    # longer aborts; the abort a real deployment sees comes from the server like this.
    from secagg.errors import AbortedError

    raise AbortedError(REASON)


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    """Paths the table refers to by name."""
    good = tmp_path / "inputs.npy"
    np.save(good, np.zeros((4, 3)))
    nan = tmp_path / "nan.npy"
    np.save(nan, np.array([[0.0, np.nan], [1.0, 2.0]]))
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros(5))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    return {"GOOD": str(good), "NAN": str(nan), "FLAT": str(flat), "DIR": str(tmp_path),
            "FILE": str(a_file), "UNDER_FILE": str(a_file / "out.npy"),
            "MISSING_DIR": str(tmp_path / "no" / "such" / "out.npy"),
            "MISSING": str(tmp_path / "missing.npy")}


SIMULATE_BAD = [
    (["--clip", "inf"], "--clip must be finite and > 0"),
    (["--clip", "nan"], "--clip must be finite and > 0"),
    (["--clip", "-1"], "--clip must be finite and > 0"),
    (["--clip", "0"], "--clip must be finite and > 0"),
    (["--clip", "1e-300", "--bits", "64"], "too small"),
    (["--length", "100000000000"], "at most"),
    (["--length", "1e11"], "invalid int value"),
    (["--clients", "1"], "--clients must be >= 2"),
    (["--length", "0"], "--length >= 1"),
    (["--dropout", "1"], "--dropout must be in [0, 1)"),
    (["--dropout", "nan"], "--dropout must be in [0, 1)"),
    (["--dropout", "-0.1"], "--dropout must be in [0, 1)"),
    (["--seed", "-1"], "--seed must be in [0, 2^63)"),
    (["--bits", "0"], "bits"),
    (["--bits", "65"], "bits"),
    (["--cipher", "rot13"], "invalid choice"),
    (["--graph", "star"], "invalid choice"),
    (["--output", "DIR"], "is a directory"),
    (["--output", "UNDER_FILE"], "cannot be written"),
    (["--output", "MISSING_DIR"], "cannot be written"),
    (["--inputs", "GOOD", "--clients", "5"], "--inputs sets the clients and the length"),
    (["--inputs", "GOOD", "--length", "3"], "--inputs sets the clients and the length"),
    (["--inputs", "MISSING"], "cannot read --inputs"),
    (["--inputs", "NAN"], "NaN or infinite"),
    (["--inputs", "FLAT"], "2-D float array"),
    (["--inputs", "FILE"], "cannot read --inputs"),
    (["--bogus"], "unrecognized arguments"),
]
BENCH_BAD = [
    ([], "required"),
    (["nope"], "invalid choice"),
    (["prg", "--bogus"], "unrecognized arguments"),
]


def _resolve(argv: list[str], files: dict[str, str]) -> list[str]:
    return [files.get(a, a) for a in argv]


def _tripwire(monkeypatch) -> None:
    """Any call that would start the work fails the test: errors must come first."""
    import secagg.benchmarks
    import secagg.simulation

    def started(*args, **kwargs):
        raise AssertionError("the work started before the arguments were checked")

    monkeypatch.setattr(secagg.simulation, "run_session", started)  # simulate() plans, then this
    monkeypatch.setattr(secagg.benchmarks, "bench_prg", started)


def _assert_usage_error(code: int, out: str, err: str, prog: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    assert message in lines[0], lines[0]
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(("argv", "message"), SIMULATE_BAD, ids=[" ".join(a) for a, _ in SIMULATE_BAD])
def test_simulate_usage_errors(argv, message, files, monkeypatch, capsys):
    _tripwire(monkeypatch)
    for flag in ([], ["--json"]):
        code = cli.main(["simulate", *_resolve(argv, files), *flag])
        captured = capsys.readouterr()
        _assert_usage_error(code, captured.out, captured.err, "secagg", message)
    assert not Path(files["DIR"] + ".npy").exists()  # --output DIR never wrote DIR.npy


@pytest.mark.parametrize(("argv", "message"), BENCH_BAD, ids=[" ".join(a) or "none" for a, _ in BENCH_BAD])
def test_bench_usage_errors(argv, message, monkeypatch, capsys):
    _tripwire(monkeypatch)
    code = cli.main(["bench", *argv])
    captured = capsys.readouterr()
    _assert_usage_error(code, captured.out, captured.err, "secagg", message)


def test_a_protocol_abort_exits_3_with_the_reason_in_json(monkeypatch, capsys):
    import secagg.simulation

    monkeypatch.setattr(secagg.simulation, "simulate", _abort)
    assert cli.main(["simulate", "--clients", "10", "--length", "5", "--json"]) == cli.EXIT_ABORT == 3
    captured = capsys.readouterr()
    reply = json.loads(captured.out)
    assert reply == {"aborted": True, "reason": REASON}
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"secagg: aborted: {reply['reason']}"
    assert cli.main(["simulate", "--clients", "10", "--length", "5"]) == 3
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("secagg: aborted: ")


def test_clipping_is_reported_not_silent(tmp_path, capsys):
    x = np.zeros((4, 3))
    x[1, 2] = 1e30
    path = tmp_path / "big.npy"
    np.save(path, x)
    assert cli.main(["simulate", "--inputs", str(path), "--json", "--graph", "complete"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["clipped_values"] == 1
    assert summary["max_abs_error"] < 1e-3  # against the clipped inputs, as documented
    assert summary["max_abs_error_unclipped"] > 1e29  # and the inputs as given
    assert "1 input values were outside" in captured.err


def test_output_is_written_at_exactly_the_path_given(tmp_path, capsys):
    out = tmp_path / "sum.bin"
    assert cli.main(["simulate", "--clients", "4", "--length", "4", "--output", str(out)]) == 0
    assert np.load(out).shape == (4,)
    assert not Path(str(out) + ".npy").exists()


def test_an_unexpected_failure_is_one_line_and_exit_1(monkeypatch, capsys):
    import secagg.simulation

    def bug(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(secagg.simulation, "simulate", bug)
    monkeypatch.delenv("SECAGG_TRACEBACK", raising=False)
    assert cli.main(["simulate", "--clients", "3", "--length", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("secagg: internal error: KeyError")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root can write anywhere: no unwritable directory to test with")
def test_an_unwritable_output_directory_is_found_first(tmp_path, monkeypatch, capsys):
    _tripwire(monkeypatch)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code = cli.main(["simulate", "--output", str(locked / "x.npy")])
    _assert_usage_error(code, *capsys.readouterr(), "secagg", "permission denied")


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_the_processes_keep_the_contract():
    proc = _run(["-m", "secagg", "simulate", "--clip", "inf"])
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    # An abort, through sys.exit in a real process (the server's abort is simulated).
    proc = _run(["-c", "import sys, secagg.simulation as s, secagg.cli as c, tests.test_cli_contract as t; "
                 "s.simulate = t._abort; sys.exit(c.main(['simulate', '--json']))"])
    assert proc.returncode == 3 and json.loads(proc.stdout) == {"aborted": True, "reason": REASON}
    assert proc.stderr == f"secagg: aborted: {REASON}\n"


# --- python -m fl train ---------------------------------------------------------------

FL_BAD = [
    (["--out", "FILE"], "exists and is not a directory"),
    (["--out", "UNDER_FILE"], "cannot be written"),
    (["--seed", "-1"], "--seed must be in [0, 2^32)"),
    (["--clip", "-1"], "--clip must be > 0"),
    (["--clip", "nan"], "--clip must be finite"),
    (["--lr", "inf"], "--lr must be finite"),
    (["--clients", "0"], "--clients must be >= 1"),
    (["--task", "weather"], "invalid choice"),
]


@pytest.mark.parametrize(("argv", "message"), FL_BAD, ids=[" ".join(a) for a, _ in FL_BAD])
def test_fl_train_usage_errors(argv, message, files, monkeypatch, capsys):
    import fl.tasks
    from fl.cli import main

    def started(*args, **kwargs):
        raise AssertionError("training started before the arguments were checked")

    monkeypatch.setattr(fl.tasks, "load_task", started)
    argv = _resolve(argv, files)
    if "--out" not in argv:
        argv += ["--out", files["DIR"]]
    code = main(["train", *argv])
    captured = capsys.readouterr()
    _assert_usage_error(code, captured.out, captured.err, "fl", message)
