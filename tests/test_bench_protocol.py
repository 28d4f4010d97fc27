"""``secagg bench protocol``: the sweep's records, its budget, its outputs and its errors."""

from __future__ import annotations

import csv
import json
import math

import pytest

from secagg.bench_protocol import (
    RECORD_KEYS,
    SCHEMA,
    SweepPoint,
    run_point,
    run_sweep,
    sweep_points,
    write_csv,
)
from secagg.cli import main
from secagg.errors import SecAggValueError
from secagg.simulation import STAGES


@pytest.fixture(scope="module")
def dropped_record() -> dict:
    return run_point(SweepPoint(12, 64, "complete", 0.25, "masked"), seed=3)


class TestRecord:
    def test_has_exactly_the_documented_keys_in_order(self, dropped_record) -> None:
        assert tuple(dropped_record) == RECORD_KEYS
        assert dropped_record["schema"] == SCHEMA
        json.dumps(dropped_record)  # every value is JSON-friendly

    def test_session_really_ran_and_summed_correctly(self, dropped_record) -> None:
        r = dropped_record
        assert r["status"] == "ok" and r["error"] is None
        assert r["vanished"] == 3 and r["survivors"] == 9
        assert r["max_abs_error"] < 1e-3  # the secure sum matches the plaintext sum
        assert r["graph_used"] == "complete" and r["k"] == 11 and 1 <= r["t"] <= 11

    def test_stage_times_are_spreads_that_add_up(self, dropped_record) -> None:
        r = dropped_record
        for stage in (*STAGES, "total"):
            p10, median, p90 = (r[f"client_{stage}_s_{q}"] for q in ("p10", "median", "p90"))
            assert 0 <= p10 <= median <= p90
        assert r["client_masked_s_median"] > 0 and r["client_share_s_median"] > 0
        assert math.isclose(r["server_total_s"], sum(r[f"server_{s}_s"] for s in STAGES))
        assert r["server_unmask_s"] > 0  # the dropped clients' masks were regenerated

    def test_bytes_and_memory(self, dropped_record) -> None:
        r = dropped_record
        # The masked input alone is (m + 1) * 4 bytes; the directory carries every client.
        assert r["upload_bytes_median"] > 65 * 4 and r["upload_bytes_max"] >= r["upload_bytes_median"]
        assert r["download_bytes_median"] > 12 * 132
        assert r["server_peak_bytes"] > 65 * 4 and r["memory_method"] == "tracemalloc-server-calls"

    def test_without_memory_run_the_bound_is_null(self) -> None:
        r = run_point(SweepPoint(5, 16, "complete"), memory=False)
        assert r["server_peak_bytes"] is None and r["memory_method"] is None

    def test_refused_when_the_planner_finds_no_parameters(self) -> None:
        r = run_point(SweepPoint(10, 16, "complete", 0.6, "masked"), memory=False)
        assert r["status"] == "refused" and "security needs" in r["error"]
        assert tuple(r) == RECORD_KEYS

    def test_aborted_when_too_many_vanish_at_unmasking(self) -> None:
        r = run_point(SweepPoint(10, 16, "complete", 0.5, "share"), memory=False)
        assert r["status"] in ("aborted", "refused") and r["error"]


class TestPoints:
    def test_product_without_duplicate_zero_dropout_points(self) -> None:
        points = sweep_points([10, 20], [100], ["complete", "harary"], [0, 0.1], ["share", "masked"])
        assert len(points) == 2 * 2 * (1 + 2)
        assert len(set(points)) == len(points)

    @pytest.mark.parametrize("kwargs, word", [
        ({"clients": 2}, "clients"), ({"dropout": 1.0}, "dropout"), ({"graph": "ring"}, "graph"),
        ({"dropout_stage": "never"}, "stage"), ({"bits": 65}, "bits"), ({"cipher": "rc4"}, "cipher"),
    ])
    def test_bad_point_is_refused(self, kwargs, word) -> None:
        with pytest.raises(SecAggValueError, match=word):
            SweepPoint(**{"clients": 10, "length": 10, **kwargs})


class TestSweep:
    def test_cheapest_first_and_budget_skips_what_would_not_fit(self) -> None:
        small, big = SweepPoint(5, 16, "complete"), SweepPoint(6, 16, "complete")
        predicted = {small: 0.01, big: 1e6}
        result = run_sweep([big, small], budget=60, predict=predicted.__getitem__, memory=False)
        assert [r["clients"] for r in result.records] == [5]
        assert result.skipped == [big]

    def test_budget_spent_skips_the_rest(self) -> None:
        points = [SweepPoint(5, 16, "complete"), SweepPoint(5, 32, "complete")]
        result = run_sweep(points, budget=1e-9, memory=False)
        assert result.records == [] and result.skipped == points

    def test_streams_records(self) -> None:
        seen = []
        result = run_sweep([SweepPoint(5, 16, "complete")], memory=False, on_record=seen.append)
        assert seen == result.records and len(seen) == 1

    def test_csv_has_the_record_keys_as_columns(self, tmp_path, dropped_record) -> None:
        path = tmp_path / "out.csv"
        write_csv(path, [dropped_record])
        rows = list(csv.DictReader(path.open()))
        assert tuple(rows[0]) == RECORD_KEYS and rows[0]["clients"] == "12"


class TestCommand:
    def test_json_lines_csv_and_plots(self, tmp_path, capsys) -> None:
        pytest.importorskip("matplotlib")
        code = main(["bench", "protocol", "--clients", "5,6", "--length", "16", "--graph", "complete",
                     "--no-memory", "--json", "--csv", str(tmp_path / "r.csv"),
                     "--plots", str(tmp_path / "fig")])
        assert code == 0
        lines = capsys.readouterr().out.strip().splitlines()
        records = [json.loads(line) for line in lines]
        assert [r["clients"] for r in records] == [5, 6]
        assert all(tuple(r) == RECORD_KEYS for r in records)
        assert (tmp_path / "r.csv").exists()
        pngs = sorted(p.name for p in (tmp_path / "fig").iterdir())
        assert pngs == ["bytes_per_client_vs_clients.png", "client_time_vs_clients.png",
                        "secagg_vs_secaggplus.png", "server_time_vs_clients.png"]
        assert all((tmp_path / "fig" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)

    def test_budget_reports_what_was_skipped(self, capsys, tmp_path, monkeypatch) -> None:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the shipped unit costs
        code = main(["bench", "protocol", "--clients", "5,3e3", "--length", "16",
                     "--graph", "complete", "--no-memory", "--budget", "20"])
        assert code == 0
        captured = capsys.readouterr()
        assert "n=5 m=16 " in captured.out and "n=3000" not in captured.out
        assert "skipped 1 of 2 points" in captured.err and "n=3000 m=16" in captured.err

    @pytest.mark.parametrize("argv, message", [
        (["--clients", "ten"], "--clients: cannot read 'ten'"),
        (["--clients", "2"], "clients must be"),
        (["--dropout", "1.5"], "dropout must be in [0, 1)"),
        (["--dropout-stage", "later"], "--dropout-stage: cannot read 'later'"),
        (["--graph", "ring"], "--graph: cannot read 'ring'"),
        (["--bits", "99"], "bits must be in [2, 64]"),
        (["--cipher", "rc4"], "cipher must be one of"),
        (["--budget", "-1"], "--budget must be a positive"),
        (["--server-threads", "0"], "--server-threads must be >= 1"),
    ])
    def test_bad_input_is_one_line_and_exit_2(self, argv, message, capsys) -> None:
        assert main(["bench", "protocol", "--length", "8", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("secagg: error: ") and message in err
        assert err.count("\n") == 1
