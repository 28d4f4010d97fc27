"""The cost model: operation counts, formulas on small cases, unit-cost files, ``secagg plan``."""

from __future__ import annotations

import dataclasses
import json

import pytest

from secagg import costmodel as cm
from secagg.bench_protocol import SweepPoint, run_point
from secagg.cli import main
from secagg.config import SecAggConfig
from secagg.errors import SecAggValueError

# Round unit costs so that the formulas can be checked by hand.
UNITS = dataclasses.replace(
    cm.DEFAULT_UNIT_COSTS,
    keystream_gbps={"chacha20": 1.0, "aes256ctr": 2.0},
    kx_keygen_s=1.0, kx_agree_s=2.0, sign_s=3.0, verify_s=5.0, kdf_s=7.0,
    aead_encrypt_s=11.0, aead_decrypt_s=13.0, shamir_split_s=17.0, shamir_split_product_s=0.5,
    lagrange_s=0.25, reconstruct_share_s=0.125, encode_element_s=1e-3,
    pack_element_s={"byte": 2e-3, "odd": 4e-3}, unpack_add_element_s={"byte": 3e-3, "odd": 5e-3},
    decode_element_s=1e-4, threads_efficiency=0.5, lagrange_fixed_s=1.5, reconstruct_fixed_s=0.75,
    directory_record_s=0.0,  # falls back to verify_s: one verification per directory record
    digest_byte_s=0.0, idset_element_s=0.0,
    client_overhead={s: (0.0, 0.0, 0.0, 0.0) for s in cm.STAGES}, stretch_s=0.0,
    server_overhead={s: (0.0, 0.0) for s in cm.STAGES},
    memory=(100.0, 8.0, 2.0, 10.0),
)


class TestWorkload:
    @pytest.mark.parametrize("stage, adv, share, counted, signers, dropped", [
        ("advertise", 8, 8, 8, 8, 0),
        ("share", 10, 8, 8, 8, 0),
        ("masked", 10, 10, 8, 8, 2),
        ("consistency", 10, 10, 10, 8, 0),
        ("unmask", 10, 10, 10, 10, 0),
    ])
    def test_who_is_left_at_each_stage(self, stage, adv, share, counted, signers, dropped) -> None:
        w = cm.workload(10, 100, 9, 6, graph="complete", dropout=0.2, stage=stage)
        assert (w.advertisers, w.sharers, w.counted, w.signers) == (adv, share, counted, signers)
        assert w.unmasked_dropped == dropped and w.responders == 8

    def test_expected_neighbours(self) -> None:
        w = cm.workload(101, 10, 20, 12, dropout=0.1)
        assert w.neighbours(101) == 20  # everyone: all k
        assert w.neighbours(91) == pytest.approx(20 * 90 / 100)

    def test_refuses_impossible_parameters(self) -> None:
        with pytest.raises(SecAggValueError):
            cm.workload(10, 10, 10, 5)
        with pytest.raises(SecAggValueError):
            cm.workload(10, 10, 4, 2, stage="never")


class TestFormulas:
    def test_client_stages_without_dropout(self) -> None:
        n, m, k, t = 11, 1000, 10, 6
        p = cm.predict(cm.workload(n, m, k, t, graph="complete"), UNITS)
        split = 17.0 + 0.5 * k * t
        mask = 4 * (m + 1) / 1e9
        assert p.client_stage_s["advertise"] == pytest.approx(2 * 1.0 + 3.0)
        # Every directory record verified, two agreements, two derivations and one AEAD per
        # neighbour, two Shamir splits.
        assert p.client_stage_s["share"] == pytest.approx(n * 5 + k * (2 * 2 + 2 * 7 + 11) + 2 * split)
        assert p.client_stage_s["masked"] == pytest.approx(
            m * 1e-3 + k * 13 + (k + 1) * mask + m * 2e-3 + 3.0)
        assert p.client_stage_s["consistency"] == pytest.approx(3.0)
        # n consistency signatures (everyone is within three hops) and k partner sets.
        assert p.client_stage_s["unmask"] == pytest.approx((n + k) * 5.0)

    def test_simulation_pays_the_directory_once_and_harary_stretches_the_seed(self) -> None:
        units = dataclasses.replace(UNITS, stretch_s=100.0)
        n, k, t = 101, 20, 12
        deployed = cm.predict(cm.workload(n, 10, k, t, graph="harary"), units)
        simulated = cm.predict(cm.workload(n, 10, k, t, graph="harary", simulated=True), units)
        assert deployed.client_stage_s["share"] - simulated.client_stage_s["share"] == pytest.approx(
            n * 5.0 + 100.0)
        assert deployed.server_stage_s["advertise"] == simulated.server_stage_s["advertise"] == 100.0
        # Signatures within three hops: 3k + 1 ring positions on the Harary graph.
        assert deployed.client_stage_s["unmask"] == pytest.approx((3 * k + 1 + k) * 5.0)

    def test_server_unmasking_with_dropouts_and_threads(self) -> None:
        n, m, k, t = 11, 1000, 10, 6
        w = cm.workload(n, m, k, t, graph="complete", dropout=2 / 11, stage="masked", threads=3)
        p = cm.predict(w, UNITS)
        counted, dropped = 9, 2
        partners = k * counted / (n - 1)
        mask = 4 * (m + 1) / 1e9 / (1 + 2 * 0.5)
        expected = ((t + 1) * (1.5 + 0.25 * t * t) + (counted + dropped) * (0.75 + t * 0.125) + counted * 7.0
                    + dropped * (1.0 + partners * (2.0 + 7.0)) + (counted + dropped * partners) * mask
                    + m * 1e-4)
        assert p.server_stage_s["unmask"] == pytest.approx(expected)
        assert p.server_stage_s["masked"] == pytest.approx(counted * m * 3e-3)

    def test_harary_graph_computes_lagrange_per_secret(self) -> None:
        complete = cm.predict(cm.workload(100, 10, 20, 12, graph="complete"), UNITS)
        harary = cm.predict(cm.workload(100, 10, 20, 12, graph="harary"), UNITS)
        extra = (100 - 13) * (1.5 + 0.25 * 12 ** 2)
        assert harary.server_stage_s["unmask"] - complete.server_stage_s["unmask"] == pytest.approx(extra)

    def test_odd_bits_and_aes_change_the_right_terms(self) -> None:
        base = cm.predict(cm.workload(11, 1000, 10, 6), UNITS)
        odd = cm.predict(cm.workload(11, 1000, 10, 6, bits=20), UNITS)
        aes = cm.predict(cm.workload(11, 1000, 10, 6, cipher="aes256ctr"), UNITS)
        assert odd.client_stage_s["masked"] - base.client_stage_s["masked"] == pytest.approx(1000 * 2e-3)
        assert base.client_stage_s["masked"] - aes.client_stage_s["masked"] == pytest.approx(
            11 * 4 * 1001 / 2e9)

    def test_fitted_overheads_and_memory_are_linear_in_their_features(self) -> None:
        units = dataclasses.replace(UNITS, client_overhead={"share": (1.0, 2.0, 3.0, 4.0)},
                                    server_overhead={"share": (5.0, 7.0)})
        w = cm.workload(11, 1000, 10, 6)
        plain, more = cm.predict(w, UNITS), cm.predict(w, units)
        added = more.client_stage_s["share"] - plain.client_stage_s["share"]
        assert added == pytest.approx(1 + 2 * 10 + 3 * 11)  # the k^2 term is the unmasking round's
        assert more.server_stage_s["share"] - plain.server_stage_s["share"] == pytest.approx(5 * 11 + 7 * 110)
        assert plain.server_peak_bytes == pytest.approx(100 + 8 * 1001 + 2 * 110 + 10 * 11)
        assert plain.wall_s(11) == pytest.approx(11 * plain.client_s + plain.server_s)
        assert (plain.client_messages, plain.server_broadcasts) == (5, 4)


class TestIssue7Terms:
    """The work issue 7 added: three-hop signers (H), partner sets, the directory check."""

    OVERHEAD = {s: (1.0, 2.0, 3.0, 4.0, 5.0, 6.0) for s in cm.STAGES}

    def _added(self, w: cm.Workload, **units: object) -> tuple[cm.Prediction, cm.Prediction]:
        more = dataclasses.replace(UNITS, **units)
        return cm.predict(w, UNITS), cm.predict(w, more)

    def test_client_unmasking_pays_per_three_hop_signer_and_per_squared_degree(self) -> None:
        n, k = 101, 20
        h = cm.workload(n, 10, k, 12, graph="harary")
        c = cm.workload(n, 10, n - 1, 53, graph="complete")
        for w, signers, k2h, k2c in ((h, 3 * k + 1, k * k, 0), (c, n, 0, (n - 1) ** 2)):
            plain, more = self._added(w, client_overhead=self.OVERHEAD)
            added = more.client_stage_s["unmask"] - plain.client_stage_s["unmask"]
            assert added == pytest.approx(1 + 2 * w.k + 4 * k2h + 5 * signers + 6 * k2c)
            # The other rounds use (1, k), and the directory round n as well.
            for s in ("advertise", "share", "masked", "consistency"):
                per_record = 3 * n if s == "share" else 0
                assert more.client_stage_s[s] - plain.client_stage_s[s] == pytest.approx(
                    1 + 2 * w.k + per_record)

    def test_three_hop_signers_follow_dropouts(self) -> None:
        w = cm.workload(101, 10, 20, 12, graph="harary", dropout=0.1, stage="consistency")
        assert w.signers == 91
        assert w.within_three_hops(w.signers) == pytest.approx(61 * 91 / 101)
        assert cm.workload(101, 10, 20, 12, graph="complete").within_three_hops(101) == 101

    def test_server_pairs_cost_more_on_a_harary_graph(self) -> None:
        n, k = 101, 20
        units = {"server_overhead": {s: (1.0, 2.0, 3.0) for s in cm.STAGES}}
        harary = cm.workload(n, 10, k, 12, graph="harary")
        complete = cm.workload(n, 10, n - 1, 53, graph="complete")
        for w, extra in ((harary, 3 * n * k), (complete, 0)):
            plain, more = self._added(w, **units)
            for s in cm.STAGES:
                assert more.server_stage_s[s] - plain.server_stage_s[s] == pytest.approx(
                    n + 2 * n * w.k + extra)

    def test_server_names_each_masked_input_by_its_hash(self) -> None:
        n, m, k = 101, 1000, 20
        for bits, packed in ((32, 4 * (m + 1)), (20, -(-20 * (m + 1) // 8))):
            w = cm.workload(n, m, k, 12, bits=bits, dropout=0.1, stage="masked")
            plain, more = self._added(w, digest_byte_s=0.5)
            assert more.server_stage_s["masked"] - plain.server_stage_s["masked"] == pytest.approx(
                w.counted * packed * 0.5)

    def test_every_unmasking_request_carries_the_survivor_set(self) -> None:
        n, k = 101, 20
        w = cm.workload(n, 10, k, 12, dropout=0.1, stage="masked")  # 91 counted, all sign
        plain, more = self._added(w, idset_element_s=0.5)
        assert more.server_stage_s["consistency"] - plain.server_stage_s["consistency"] == pytest.approx(
            91 * 91 * 0.5)  # O(n^2): one request per signer, each with all survivors
        for s in ("consistency", "unmask"):
            assert more.client_stage_s[s] - plain.client_stage_s[s] == pytest.approx(91 * 0.5)
        # Without the consistency check the requests are built when the masked round closes.
        w = cm.workload(n, 10, k, 12, dropout=0.1, stage="masked", consistency_check=False)
        plain, more = self._added(w, idset_element_s=0.5)
        assert more.server_stage_s["masked"] - plain.server_stage_s["masked"] == pytest.approx(91 * 91 * 0.5)
        assert more.server_stage_s["consistency"] == more.client_stage_s["consistency"] == 0.0

    def test_heap_grows_with_signatures_held_for_the_requests(self) -> None:
        n, k = 101, 20
        w = cm.workload(n, 1000, k, 12, graph="harary")
        p = cm.predict(w, dataclasses.replace(UNITS, memory=(100.0, 8.0, 2.0, 10.0, 0.5)))
        held = n * (3 * k + 1)  # each of n requests: the signers within three hops
        assert p.server_peak_bytes == pytest.approx(100 + 8 * 1001 + 2 * n * k + 10 * n + 0.5 * held)

    def test_deployed_client_checks_each_directory_record_at_the_measured_price(self) -> None:
        n, k, t = 101, 20, 12
        units = dataclasses.replace(UNITS, directory_record_s=9.0, stretch_s=100.0)
        deployed = cm.predict(cm.workload(n, 10, k, t, dropout=0.1, stage="share"), units)
        simulated = cm.predict(cm.workload(n, 10, k, t, dropout=0.1, stage="share", simulated=True), units)
        # Everyone advertised (they vanish at the share stage): 101 records.
        assert deployed.client_stage_s["share"] - simulated.client_stage_s["share"] == pytest.approx(
            n * 9.0 + 100.0)

    def test_unit_cost_files_without_the_new_terms_still_load(self, tmp_path) -> None:
        data = cm.DEFAULT_UNIT_COSTS.to_json()
        del data["directory_record_s"], data["digest_byte_s"], data["idset_element_s"]
        data["client_overhead"] = {s: [1.0, 2.0, 3.0, 4.0] for s in cm.STAGES}
        data["server_overhead"] = {s: [1.0, 2.0] for s in cm.STAGES}
        data["memory"] = [1.0, 2.0, 3.0, 4.0]
        path = tmp_path / "old.json"
        path.write_text(json.dumps(data))
        old, _ = cm.load_unit_costs(path)
        assert old.directory_record_s == old.digest_byte_s == 0.0 and old.memory == (1.0, 2.0, 3.0, 4.0)
        w = cm.workload(101, 10, 20, 12)
        # Missing terms are left out; the directory check falls back to one verification a record.
        legacy = cm.predict(w, old)
        assert legacy.server_peak_bytes == pytest.approx(1 + 2 * 11 + 3 * 101 * 20 + 4 * 101)
        simulated = cm.predict(dataclasses.replace(w, simulated=True), old)
        assert legacy.client_stage_s["share"] - simulated.client_stage_s["share"] == pytest.approx(
            101 * old.verify_s + old.stretch_s)


class TestMessageBytes:
    @pytest.mark.parametrize("point", [
        SweepPoint(8, 100, "complete"),
        SweepPoint(20, 300, "complete", 0.2, "masked"),
        SweepPoint(20, 300, "complete", 0.2, "consistency"),
        SweepPoint(12, 50, "complete", 0.25, "share", bits=20),
    ])
    def test_match_a_real_session_exactly(self, point) -> None:
        r = run_point(point, memory=False)
        w = cm.workload(point.clients, point.length, r["k"], r["t"], bits=point.bits, graph="complete",
                        dropout=point.dropout, stage=point.dropout_stage)
        sizes = cm.message_bytes(w)
        assert sizes["upload"] == r["upload_bytes_median"]
        assert sizes["download"] == r["download_bytes_median"]

    def test_harary_within_one_percent(self) -> None:
        r = run_point(SweepPoint(140, 100, "harary", 0.1, "masked"), memory=False)  # ids past 127
        assert r["graph_used"] == "harary"
        w = cm.workload(140, 100, r["k"], r["t"], dropout=0.1, stage="masked")
        sizes = cm.message_bytes(w)
        assert sizes["upload"] == pytest.approx(r["upload_bytes_median"], rel=0.01)
        assert sizes["download"] == pytest.approx(r["download_bytes_median"], rel=0.01)


class TestUnitCostFiles:
    def test_defaults_without_a_cache(self, tmp_path, monkeypatch) -> None:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        costs, source = cm.load_unit_costs()
        assert costs == cm.DEFAULT_UNIT_COSTS and "defaults" in source
        assert cm.cache_path() == tmp_path / "secagg" / "unit-costs.json"

    def test_round_trip_through_the_cache(self, tmp_path, monkeypatch) -> None:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        path = cm.save_unit_costs(UNITS)
        costs, source = cm.load_unit_costs()
        assert costs == UNITS and source == str(path)

    @pytest.mark.parametrize("text", ["not json", "[]", json.dumps({"format": 99}),
                                      json.dumps({"format": 1, "kx_agree_s": 1.0})])
    def test_bad_file_is_a_clear_error(self, tmp_path, text) -> None:
        path = tmp_path / "costs.json"
        path.write_text(text)
        with pytest.raises(SecAggValueError, match="unit costs"):
            cm.load_unit_costs(path)

    def test_nonnegative_fit_recovers_coefficients_and_drops_negative_ones(self) -> None:
        rows = [[1.0, x, x * x] for x in (1.0, 2.0, 3.0, 5.0, 8.0)]
        coef = cm._fit_nonnegative(rows, [2 + 3 * x for x in (1.0, 2.0, 3.0, 5.0, 8.0)])
        assert coef == pytest.approx([2, 3, 0], abs=1e-9)
        coef = cm._fit_nonnegative([[1.0, x] for x in (1.0, 2.0, 3.0)], [5 - x for x in (1.0, 2.0, 3.0)])
        assert all(c >= 0 for c in coef)
        # A feature a stage does not use (an all-zero column) gets exactly 0.
        coef = cm._fit_nonnegative([[1.0, 0.0, x] for x in (1.0, 2.0, 3.0)], [2 + x for x in (1.0, 2.0, 3.0)])
        assert coef[1] == 0.0 and coef == pytest.approx([2, 0, 1], abs=1e-9)


class TestPlanCommand:
    def test_reports_the_planners_parameters_and_a_prediction(self, tmp_path, monkeypatch, capsys) -> None:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        assert main(["plan", "--clients", "1000", "--length", "100000", "--dropout", "0.1", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        config = SecAggConfig.plan(1000, 100000, clip=1.0, graph="harary", dropout_rate=0.1,
                                   corrupt_fraction=0.05)
        assert (out["k"], out["t"], out["bits"]) == (config.degree, config.threshold, config.bits)
        assert out["graph_used"] == "harary" and not out["extrapolated"]
        w = cm.workload(1000, 100000, config.degree, config.threshold, dropout=0.1)
        expected = cm.predict(w, cm.DEFAULT_UNIT_COSTS)
        assert out["client_total_s"] == pytest.approx(expected.client_s)
        assert out["server_peak_bytes"] == pytest.approx(expected.server_peak_bytes)
        assert out["upload_bytes"] > 100000 * 4 and out["client_messages"] == 5
        assert "defaults" in out["unit_costs"]

    def test_large_deployments_are_marked_as_extrapolations(self, tmp_path, monkeypatch, capsys) -> None:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        assert main(["plan", "--clients", "100000", "--length", "1000"]) == 0
        out = capsys.readouterr().out
        assert "planner: harary graph" in out and "extrapolation" in out

    @pytest.mark.parametrize("argv, message", [
        (["--clients", "2", "--length", "10"], "--clients must be >= 3"),
        (["--clients", "10", "--length", "0"], "--length must be >= 1"),
        (["--clients", "10", "--length", "5", "--graph", "complete", "--dropout", "0.6"], "security needs"),
        (["--clients", "10", "--length", "5", "--dropout", "1.5"], "dropout"),
        (["--clients", "x", "--length", "5"], "invalid int value"),
        (["--clients", "10", "--length", "5", "--unit-costs", "/nonexistent/x.json"], "no unit costs"),
    ])
    def test_bad_input_is_one_line_and_exit_2(self, argv, message, capsys) -> None:
        code = main(["plan", *argv])
        captured = capsys.readouterr()
        assert code == 2 and captured.err.startswith("secagg: error: ") and message in captured.err
        assert captured.err.count("\n") == 1
