"""End-to-end properties of a session: exact sums under dropouts, clean failure below threshold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg import AbortedError, SecAggValueError
from secagg.bindings import storage_dtype
from secagg.config import SecAggConfig
from secagg.planner import max_scale
from secagg.prg import ciphers
from secagg.rounds import Round
from secagg.simulation import STAGES, SimulationConfig, run_session, simulate


@st.composite
def sessions(draw, enough: bool = True):
    """A config, encoded inputs and a dropout pattern (stage per vanishing client)."""
    n = draw(st.integers(2, 40))
    graph = draw(st.sampled_from(["complete", "harary"])) if n >= 5 else "complete"
    degree = n - 1 if graph == "complete" else draw(st.sampled_from(range(2, n - 1, 2)))
    consistency_check = draw(st.booleans())
    # The consistency check needs 2t > degree; without it any t in [1, degree] is allowed.
    threshold = draw(st.integers(degree // 2 + 1 if consistency_check else 1, degree))
    min_bits = (n + 1).bit_length() + 1  # room for n weights of 1 without wrapping
    bits = draw(st.integers(min_bits, 64))
    config = SecAggConfig(
        num_clients=n, vector_length=draw(st.integers(1, 40)), threshold=threshold, bits=bits,
        clip=1.0, scale=max_scale(n, 1.0, bits), graph=graph, degree=degree,
        consistency_check=consistency_check,
        session_nonce=draw(st.binary(min_size=32, max_size=32).filter(any)),
    )
    # Each client loses at most degree - threshold neighbours: every secret stays recoverable.
    most = degree - threshold if enough else n
    vanishing = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=most))
    vanish = {c: draw(st.sampled_from(STAGES)) for c in vanishing}
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    high = (1 << bits) - 1
    inputs = rng.integers(0, high, size=(n, config.encoded_length), dtype=np.uint64, endpoint=True)
    return config, inputs.astype(storage_dtype(bits)), vanish


def _sent_masked_input(vanish: dict[int, str], client: int) -> bool:
    return STAGES.index(vanish.get(client, "unmask")) > STAGES.index("masked") or client not in vanish


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions())
def test_sum_is_exact_modulo_2_to_the_b_for_the_survivors(session):
    config, inputs, vanish = session
    outcome = run_session(config, inputs, vanish=vanish, encoded=True, server_threads=1)
    result = outcome.server.result()
    expected_survivors = [c for c in range(config.num_clients) if _sent_masked_input(vanish, c)]
    assert list(result.survivors) == expected_survivors
    total = np.zeros(config.encoded_length, dtype=object)
    for c in expected_survivors:
        total += inputs[c].astype(object)
    expected = np.array([int(v) % (1 << config.bits) for v in total], dtype=np.uint64)
    np.testing.assert_array_equal(result.raw.astype(np.uint64), expected)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(3, 20), data=st.data())
def test_too_few_survivors_aborts_before_anything_is_revealed(n, data):
    config = SecAggConfig.plan(n, 8, clip=1.0, graph="complete", dropout_rate=0.1,
                               corrupt_fraction=0.0)
    survivors = data.draw(st.integers(0, config.threshold))  # t survivors have only t - 1 neighbours left
    vanish = {c: data.draw(st.sampled_from(STAGES[:3])) for c in range(survivors, n)}
    inputs = np.zeros((n, config.encoded_length), dtype=storage_dtype(config.bits))
    outcome = run_session(config, inputs, vanish=vanish, encoded=True, server_threads=1)
    assert outcome.result is None
    assert outcome.server.round is Round.ABORTED
    with pytest.raises(AbortedError):
        outcome.server.result()
    # No client got as far as revealing shares.
    assert all(c.round is not Round.COMPLETED for c in outcome.clients)


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
