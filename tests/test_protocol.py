"""End-to-end properties of a session: exact sums under dropouts, clean failure below threshold."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg import SecAggValueError
from secagg.config import SecAggConfig
from secagg.prg import ciphers
from secagg.simulation import STAGES, SimulationConfig, simulate
from secagg.testing import Schedule, effective_schedule, expected_outcome, run_schedule
from secagg.testing import strategies as sst

# The protocol's end-to-end properties, written on secagg.testing (our own suite is its first user).

#: Sessions checked against the oracle per run (CI default; set higher for a long soak).
_EXAMPLES = int(os.environ.get("SECAGG_ORACLE_EXAMPLES", "150"))


@settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(sst.sessions(max_clients=10))
def test_every_session_ends_as_the_oracle_says_under_dropouts_and_faults(case):
    """Exact sum over the predicted survivors, or the predicted abort in the predicted round."""
    verdict = run_schedule(**case)
    schedule = effective_schedule(case["config"], case["schedule"], case["plan"])
    verdict.check(expected_outcome(case["config"], case["inputs"], case["weights"], schedule,
                                   verdict.graph, encoded=case["encoded"]))


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_within_the_threshold_the_complete_graph_always_gives_the_exact_sum(data):
    config = data.draw(sst.configs(max_clients=24, graphs=("complete",)))
    inputs = data.draw(sst.encoded_inputs(config))
    schedule = data.draw(sst.vanish_schedules(config, beyond_threshold=False))
    expected = expected_outcome(config, inputs, None, schedule, encoded=True)
    assert expected.completed
    survivors = [c for c in range(config.num_clients) if schedule.gone_at(c) > STAGES.index("masked")]
    assert list(expected.survivors) == survivors
    run_schedule(config, inputs, None, schedule, encoded=True).check(expected)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(3, 20), data=st.data())
def test_too_few_survivors_aborts_before_anything_is_revealed(n, data):
    config = SecAggConfig.plan(n, 8, clip=1.0, graph="complete", dropout_rate=0.1,
                               corrupt_fraction=0.0)
    survivors = data.draw(st.integers(0, config.threshold))  # t survivors have only t - 1 neighbours left
    schedule = Schedule({c: data.draw(st.sampled_from(STAGES[:3])) for c in range(survivors, n)})
    inputs = np.zeros((n, config.vector_length))
    expected = expected_outcome(config, inputs, None, schedule)
    assert not expected.completed and expected.responders == ()
    verdict = run_schedule(config, inputs, None, schedule)
    verdict.check(expected)
    assert verdict.responders == ()  # no client got as far as revealing shares


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("graph", ["complete", "harary"])
def test_simulate_weighted_float_sum_matches_plaintext(graph, stage):
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, size=(16, 300))
    w = rng.uniform(0.1, 1.0, size=16)
    result = simulate(x, w, SimulationConfig(graph=graph, dropout=0.125, dropout_stage=stage, seed=3))
    s = result.survivors
    assert len(s) == (16 if STAGES.index(stage) > 2 else 14)
    np.testing.assert_allclose(result.sum, (x[s] * w[s, None]).sum(axis=0), atol=len(s) / result.scale)
    assert result.weight_sum == pytest.approx(w[s].sum(), abs=1e-6)
    assert result.max_abs_error <= len(s) / result.scale


def test_simulate_upload_is_packed_vector_plus_small_constant():
    x = np.zeros((10, 1001))
    result = simulate(x, None, SimulationConfig(graph="complete", bits=20, seed=0))
    packed = -(-(1001 + 1) * 20 // 8)
    assert packed <= result.upload_bytes_per_client <= packed + 4096


def test_a_configuration_that_could_wrap_is_refused():
    with pytest.raises(SecAggValueError, match="wrap"):
        SecAggConfig(num_clients=100, vector_length=4, threshold=60, bits=8, clip=1.0, scale=2.0)


def test_a_consistency_check_that_two_disjoint_groups_could_pass_is_refused():
    with pytest.raises(SecAggValueError, match="2 \\* threshold > degree"):
        SecAggConfig(num_clients=10, vector_length=4, threshold=4, bits=32, clip=1.0, scale=2.0**20)
    SecAggConfig(num_clients=10, vector_length=4, threshold=4, bits=32, clip=1.0, scale=2.0**20,
                 consistency_check=False)


def test_a_config_refuses_an_all_zero_nonce_and_draws_a_fresh_one_when_omitted():
    base = dict(num_clients=10, vector_length=4, threshold=6, bits=32, clip=1.0, scale=2.0**20)
    with pytest.raises(SecAggValueError, match="session_nonce"):
        SecAggConfig(**base, session_nonce=bytes(32))
    a, b = SecAggConfig(**base), SecAggConfig(**base)
    assert any(a.session_nonce) and a.session_nonce != b.session_nonce
    assert a.digest() != b.digest()  # so adverts of one cannot verify in the other


@pytest.mark.parametrize("max_weight, bits", [(1e12, 32), (2.0**30, 32), (1e18, 64)])
def test_a_weight_scale_that_loses_whole_weights_is_refused(max_weight, bits):
    # At max_weight 1e12 and 32 bits a weight of 1 would encode as 2^-12 of a unit: the
    # weight sum of ordinary example counts would decode as about 0.
    with pytest.raises(SecAggValueError, match="max_weight"):
        SecAggConfig(num_clients=10, vector_length=4, threshold=6, bits=bits, clip=1.0,
                     scale=1.0, max_weight=max_weight)
    SecAggConfig(num_clients=10, vector_length=4, threshold=6, bits=64, clip=1.0, scale=1.0,
                 max_weight=1e12)


@pytest.mark.skipif("aes256ctr" not in ciphers(), reason="this CPU has no AES-NI")
def test_a_session_can_expand_its_masks_with_aes256ctr():
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(8, 200))
    config = SimulationConfig(graph="complete", dropout=0.25, seed=2, cipher="aes256ctr")
    result = simulate(x, None, config)
    s = result.survivors
    np.testing.assert_allclose(result.sum, x[s].sum(axis=0), atol=len(s) / result.scale)


def test_the_cipher_is_part_of_the_agreed_configuration():
    base = SecAggConfig.plan(10, 4, clip=1.0, graph="complete", session_nonce=bytes(31) + b"\x01")
    other = SecAggConfig.plan(10, 4, clip=1.0, graph="complete", session_nonce=bytes(31) + b"\x01",
                              cipher="aes256ctr")
    assert base.digest() != other.digest()
    with pytest.raises(SecAggValueError, match="cipher"):
        SecAggConfig.plan(10, 4, clip=1.0, graph="complete", cipher="rc4")
