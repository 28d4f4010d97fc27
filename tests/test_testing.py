"""secagg.testing checked against itself: the oracle against real sessions, the strategies' reach."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg import SecAggConfig, SecAggError
from secagg.rounds import Round
from secagg.testing import (
    STAGES,
    AbortKind,
    Cohort,
    DeliveryPlan,
    Fault,
    Schedule,
    effective_schedule,
    expected_outcome,
    make_config,
    run_schedule,
)
from secagg.testing import strategies as sst
from secagg.testing.attacks import SplitView, exposed_clients


def _oracle_only(case: dict) -> object:
    """The oracle's verdict on a generated case, with a fixed relabelling of the graph (no crypto)."""
    config = case["config"]
    graph = config.build_graph(bytes([7]) * 32)  # any relabelling will do (and is cached)
    return expected_outcome(config, case["inputs"], case["weights"],
                            effective_schedule(config, case["schedule"], case["plan"]), graph,
                            encoded=case["encoded"])


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_the_oracle_predicts_aborts_on_the_sparse_graph(data):
    config = data.draw(sst.configs(max_clients=14, graphs=("harary",)).filter(lambda c: c.graph == "harary"))
    x, w = data.draw(sst.inputs(config))
    schedule = data.draw(sst.vanish_schedules(config, beyond_threshold=True))
    verdict = run_schedule(config, x, w, schedule)
    verdict.check(expected_outcome(config, x, w, schedule, verdict.graph))


#: Every outcome an honest session can have: (abort kind, round) or completion (None, None).
_OUTCOMES = {
    (AbortKind.QUORUM, Round.ADVERTISE_KEYS),
    (AbortKind.QUORUM, Round.SHARE_KEYS),
    (AbortKind.QUORUM, Round.MASKED_INPUT),
    (AbortKind.UNRECOVERABLE, Round.MASKED_INPUT),
    (AbortKind.UNRECOVERABLE, Round.CONSISTENCY_CHECK),
    (AbortKind.TOO_FEW_SHARES, Round.UNMASKING),
    (None, None),
}


def test_the_strategies_reach_every_outcome_stage_fault_and_invalid_config():
    """A fixed-seed pass over the strategies, judged by the oracle alone, hits every case."""
    seen: set[tuple[str, object]] = set()

    @settings(max_examples=300, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(sst.sessions(max_clients=10), sst.invalid_configs())
    def collect(case, invalid):
        expected = _oracle_only(case)
        seen.add(("outcome", (expected.abort_kind, expected.abort_round)))
        seen.update(("stage", stage) for stage in case["schedule"].vanish.values())
        seen.update(("fault", fault) for fault in case["plan"].faults.values())
        seen.add(("invalid", invalid[0]))

    collect()
    wanted = ({("outcome", o) for o in _OUTCOMES} | {("stage", s) for s in STAGES}
              | {("fault", f) for f in Fault} | {("invalid", how) for how in sst._BREAKS})
    assert wanted - seen == set()


@settings(max_examples=60, deadline=None)
@given(sst.configs(invalid=True))
def test_invalid_configs_are_always_refused(kwargs):
    with pytest.raises(SecAggError):
        SecAggConfig(**kwargs)


@settings(max_examples=30, deadline=None)
@given(st.from_type(SecAggConfig))
def test_from_type_draws_valid_configs_that_round_trip_as_bytes(config):
    assert isinstance(config, SecAggConfig)
    assert SecAggConfig.from_bytes(config.to_bytes()) == config


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_malicious_server_never_exposes_an_input(data):
    config = data.draw(sst.configs(max_clients=10, consistency_check=True))
    attack = data.draw(sst.server_attacks(config))
    cohort = Cohort(config, vanish={})
    attack.install(cohort)
    cohort.run()
    attack.check(cohort)


def test_without_the_consistency_check_a_split_view_does_expose_an_input():
    """The negative control: the attack is real, and exposed_clients sees it."""
    cohort = Cohort(make_config(n=6, threshold=2, consistency_check=False))
    SplitView(victims=(0, 1, 2), hidden=5).install(cohort)
    cohort.run()
    assert exposed_clients(cohort) == {5}
    with pytest.raises(AssertionError, match="could unmask the inputs of clients \\[5\\]"):
        SplitView(victims=(0, 1, 2), hidden=5).check(cohort)


def test_the_verdict_check_fails_on_a_wrong_prediction():
    config = make_config(n=5, threshold=3)
    x = np.zeros((5, config.vector_length))
    verdict = run_schedule(config, x, None, {4: "masked"})
    verdict.check(expected_outcome(config, x, None, {4: "masked"}))
    with pytest.raises(AssertionError, match="survivors were \\[0, 1, 2, 3\\]"):
        verdict.check(expected_outcome(config, x, None, {}))
    with pytest.raises(AssertionError, match="it completed"):
        verdict.check(expected_outcome(config, x, None, {0: "advertise", 1: "advertise", 2: "advertise"}))


def test_duplicates_and_reordering_change_nothing():
    config = make_config(n=6, threshold=4)
    x = np.random.default_rng(1).uniform(-1, 1, size=(6, config.vector_length))
    faults = {(c, s): Fault.DUPLICATE for c in range(6) for s in STAGES}
    verdict = run_schedule(config, x, None, Schedule(), plan=DeliveryPlan(faults, order_seed=7))
    assert verdict.dropped == {}
    verdict.check(expected_outcome(config, x))


def test_the_package_works_without_hypothesis_and_says_what_is_missing():
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import secagg.testing\n"
        "try:\n"
        "    import secagg.testing.strategies\n"
        "except ImportError as e:\n"
        "    print('MSG', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "MSG secagg.testing.strategies needs hypothesis" in out and "secagg[test]" in out


def test_importing_secagg_imports_no_test_dependency():
    code = "import sys, secagg, secagg.testing; print(sorted(m for m in sys.modules if m.split('.')[0] " \
           "in ('hypothesis', 'torch', 'flwr', 'pytest')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_hypothesis_finds_the_config_strategy_through_its_entry_point():
    """Without importing secagg.testing: the installed ``hypothesis`` entry point registers it."""
    code = ("from hypothesis import strategies as st\n"
            "from secagg import SecAggConfig\n"
            "print(type(st.from_type(SecAggConfig).example()).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "SecAggConfig"
