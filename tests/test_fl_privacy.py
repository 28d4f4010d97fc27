"""fl.privacy and fl.noise: clipping, accounting against dp-accounting, keystream noise."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from dp_accounting import NeighboringRelation, dp_event
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.pld import privacy_loss_distribution as pld_lib
from dp_accounting.rdp import rdp_privacy_accountant
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fl import noise
from fl.privacy import (
    AdaptiveClip,
    ClientAccountant,
    RecordAccountant,
    clip_l2,
    epsilon_of,
    membership_tpr_bound,
    record_steps_event,
    split_noise_multiplier,
)
from secagg.prg import keystream

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 64), elements=finite), st.floats(1e-3, 1e3))
def test_clipping_never_leaves_a_norm_above_c(vec: np.ndarray, clip: float) -> None:
    out, norm = clip_l2(vec, clip)
    assert np.linalg.norm(out) <= clip
    assert norm == pytest.approx(np.linalg.norm(vec))
    if norm <= clip:
        assert np.array_equal(out, vec)
    else:  # same direction, only shorter
        assert np.allclose(out * (norm / clip), vec, rtol=1e-9, atol=1e-9 * norm)


def _rdp(event: dp_event.DpEvent, delta: float,
         rel: NeighboringRelation = NeighboringRelation.ADD_OR_REMOVE_ONE) -> float:
    acc = rdp_privacy_accountant.RdpAccountant(neighboring_relation=rel)
    acc.compose(event)
    return acc.get_epsilon(delta)


def test_poisson_accountant_equals_dp_accounting() -> None:
    acc = ClientAccountant(1.1, "poisson", 1e-5, accountant="rdp", rate=0.01)
    expected = _rdp(dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(0.01, dp_event.GaussianDpEvent(1.1)), 1000), 1e-5)
    assert acc.epsilon(1000) == pytest.approx(expected, rel=1e-12)
    # Pinned: q=0.01, sigma=1.1, 1000 steps, delta=1e-5 gives 1.71 with RDP (and less with PLD).
    assert acc.epsilon(1000) == pytest.approx(1.7118, abs=1e-3)
    pld = ClientAccountant(1.1, "poisson", 1e-5, accountant="pld", rate=0.01)
    assert 1.0 < pld.epsilon(1000) < acc.epsilon(1000)
    assert acc.epsilon(0) == 0.0
    assert acc.epsilon(10) < acc.epsilon(20)


def test_pld_accountant_equals_dp_accounting() -> None:
    acc = ClientAccountant(1.0, "poisson", 1e-3, accountant="pld", rate=0.2)
    pld = pld_privacy_accountant.PLDAccountant()
    pld.compose(dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(0.2, dp_event.GaussianDpEvent(1.0)), 8))
    # Composed one round at a time, as the run charges them: the same PLD up to discretisation.
    for r in range(1, 8):
        acc.epsilon(r)
    assert acc.epsilon(8) == pytest.approx(pld.get_epsilon(1e-3), rel=1e-3)
    assert "PLD" in acc.describe() and "secret Poisson" in acc.describe()


def test_fixed_size_sampling_uses_replace_one_with_half_the_multiplier() -> None:
    acc = ClientAccountant(2.0, "fixed", 1e-3, accountant="rdp", population=100, sample_size=10)
    expected = _rdp(dp_event.SelfComposedDpEvent(dp_event.SampledWithoutReplacementDpEvent(
        100, 10, dp_event.GaussianDpEvent(1.0)), 30), 1e-3, NeighboringRelation.REPLACE_ONE)
    assert acc.epsilon(30) == pytest.approx(expected, rel=1e-12)
    assert "replace-one" in acc.describe() and "without replacement" in acc.describe()


def test_record_accountant_is_the_worst_clients_composition() -> None:
    acc = RecordAccountant(1.0, 1e-5, rates=(0.1, 0.5), steps_per_round=(10, 2), accountant="rdp")
    eps = acc.epsilon([3, 3])
    each = [_rdp(dp_event.SelfComposedDpEvent(dp_event.PoissonSampledDpEvent(
        q, dp_event.GaussianDpEvent(1.0)), s * 3), 1e-5) for q, s in ((0.1, 10), (0.5, 2))]
    assert eps == pytest.approx(max(each))
    assert acc.epsilon([0, 0]) == 0.0


def test_adaptive_clip_moves_towards_the_quantile() -> None:
    clip = AdaptiveClip(1.0, target_quantile=0.5, learning_rate=0.2)
    assert clip.updated(1.0).clip < 1.0  # everything unclipped: shrink
    assert clip.updated(0.0).clip > 1.0  # everything clipped: grow
    assert clip.updated(0.5).clip == pytest.approx(1.0)
    z = split_noise_multiplier(1.0, 2.0)
    assert z > 1.0 and (z ** -2 + 4.0 ** -2) ** -0.5 == pytest.approx(1.0)
    with pytest.raises(ValueError):
        split_noise_multiplier(1.0, 0.4)


def test_noise_has_the_requested_std() -> None:
    n, std = 200_000, 2.5
    x = noise.gaussian(n, std)
    # Sample std has relative sd 1/sqrt(2n) ~ 0.16%; 1% is a six-sigma bound.
    assert abs(x.std() / std - 1.0) < 0.01
    assert abs(x.mean()) < 5 * std / np.sqrt(n)
    # Tails: about 4.55% beyond 2 sigma (binomial sd ~0.05%).
    assert abs(np.mean(np.abs(x) > 2 * std) - 0.0455) < 0.003


def test_noise_comes_from_the_chacha20_keystream(monkeypatch: pytest.MonkeyPatch) -> None:
    key = bytes(range(32))
    words = np.frombuffer(keystream(key, bytes(12), 8 * 6), dtype="<u8")
    u = ((words >> np.uint64(11)).astype(np.float64) + 1.0) / 2.0 ** 53
    r, a = np.sqrt(-2 * np.log(u[:3])), 2 * np.pi * u[3:]
    expected = np.empty(6)
    expected[0::2], expected[1::2] = r * np.cos(a), r * np.sin(a)
    assert np.allclose(noise.gaussian_from_key(key, 5, 3.0), 3.0 * expected[:5], rtol=0, atol=0)
    # gaussian() keys the stream with os.urandom(32) on every call.
    calls: list[int] = []

    def fake_urandom(k: int) -> bytes:
        calls.append(k)
        return key

    monkeypatch.setattr(noise.os, "urandom", fake_urandom)
    assert np.array_equal(noise.gaussian(5, 3.0), noise.gaussian_from_key(key, 5, 3.0))
    assert calls == [32]


def test_dp_accounting_warnings_reach_the_user(caplog: pytest.LogCaptureFixture) -> None:
    # At z=0.7, q=0.5 RDP skips low orders that fail to converge and says so; we do not hide it.
    event = dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(0.5, dp_event.GaussianDpEvent(0.7)), 10)
    with caplog.at_level(logging.WARNING, logger="absl"):
        epsilon_of(event, 1e-3, "rdp")
    assert any("Excluding this order" in r.getMessage() for r in caplog.records)


def test_pld_is_the_default_and_tighter_than_rdp() -> None:
    pld = ClientAccountant(1.0, "poisson", 1e-3, rate=0.3)
    rdp = ClientAccountant(1.0, "poisson", 1e-3, accountant="rdp", rate=0.3)
    assert pld.accountant == "pld" and RecordAccountant(1.0, 1e-3, (0.1,), (1,)).accountant == "pld"
    assert pld.epsilon(3) < rdp.epsilon(3)


def test_record_level_pld_composes_incrementally(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[float] = []
    real = pld_lib.from_gaussian_mechanism

    def counting(*args, **kwargs):
        built.append(kwargs.get("sampling_prob", 1.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(pld_lib, "from_gaussian_mechanism", counting)
    acc = RecordAccountant(2.0, 1e-5, rates=(0.1, 0.1, 0.3), steps_per_round=(2, 2, 1))
    eps = [acc.epsilon([r, r, r]) for r in range(1, 5)]
    # One base PLD per (rate, steps) pair for the whole run, not one per client per round.
    assert len(built) == 2
    assert eps == sorted(eps) and eps[0] > 0
    full = pld_privacy_accountant.PLDAccountant()
    full.compose(record_steps_event(2.0, 0.1, 8))
    assert acc.epsilon([4, 4, 0]) == pytest.approx(full.get_epsilon(1e-5), rel=1e-3)


def test_membership_bound_follows_the_dp_hypothesis_region() -> None:
    assert membership_tpr_bound(0.0, 0.0, 1e-3) == pytest.approx(1e-3)  # no better than chance
    assert membership_tpr_bound(1.0, 1e-5, 1e-3) == pytest.approx(math.e * 1e-3 + 1e-5)
    assert membership_tpr_bound(50.0, 1e-5, 1e-3) == 1.0
    values = [membership_tpr_bound(e, 1e-3, 1e-3) for e in (0.5, 1, 2, 4, 8)]
    assert values == sorted(values)
