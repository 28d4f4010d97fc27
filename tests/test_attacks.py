"""A malicious server with colluding clients tries to unmask one honest client alone.

Each test plays the partner-pruning attack of issue 7 (tests/attacker.py) and asserts
on the server's *view*: the victim's input cannot be rebuilt from what the server and
its colluders hold, whatever the clients raised. A control run, in which the clients'
shares are handed over as an implementation without the unmasking rules would, shows
that the same harness does recover the input when nothing stops it.
"""

from __future__ import annotations

import numpy as np
import pytest
from attacker import PruningAttack, fabricated_directory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg import crypto
from secagg.client import Client
from secagg.config import SecAggConfig
from secagg.errors import BadSignatureError, MalformedMessageError, MaliciousServerError, ProtocolError


def _planned(n: int) -> SecAggConfig:
    return SecAggConfig.plan(n, 6, clip=1.0, graph="harary", bits=32)


def _colluder_bound(config: SecAggConfig) -> int:
    """The most corrupt neighbours the unmasking rules are argued for: 2t > k + c."""
    return 2 * config.threshold - config.degree - 1


def test_the_planned_configs_are_the_ones_of_the_issue():
    assert (_planned(20).degree, _planned(20).threshold) == (4, 3)
    assert (_planned(100).degree, _planned(100).threshold) == (16, 11)


@pytest.mark.parametrize("split_view", [False, True])
def test_control_without_the_rules_the_harness_recovers_the_victim(split_view):
    config = _planned(20)
    out = PruningAttack(config, seed=3).run(colluders=1, reveal_all=True, split_view=split_view)
    assert out.recovered is not None
    assert np.array_equal(out.recovered, out.truth)


@pytest.mark.parametrize("n", [20, 100])
@pytest.mark.parametrize("split_view", [False, True])
def test_pruning_to_t_partners_with_the_most_colluders_fails(n, split_view):
    config = _planned(n)
    c = _colluder_bound(config)
    out = PruningAttack(config, seed=n).run(colluders=c, split_view=split_view)
    assert out.recovered is None, f"victim {out.victim} unmasked; missing nothing"
    assert out.missing
    # The victim's neighbours refused with a typed protocol error, not silently.
    assert out.errors and all(isinstance(e, ProtocolError) for e in out.errors.values())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.sampled_from([20, 30, 100]), split_view=st.booleans(),
       ground=st.booleans())
def test_no_pruning_and_no_colluder_count_within_the_bound_unmasks_the_victim(
    data, n, split_view, ground
):
    """Any partner count in [t, k], any colluder count within the bound, next to the
    victim (a ground graph) or anywhere (no grinding), one view or split views."""
    config = _planned(n)
    k, t = config.degree, config.threshold
    c = data.draw(st.integers(0, _colluder_bound(config)), label="colluders")
    size = data.draw(st.integers(t, k), label="partners")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    out = PruningAttack(config, seed=seed).run(partners=size, colluders=c, split_view=split_view,
                                               adjacent=ground)
    assert out.recovered is None, f"victim {out.victim} unmasked"
    assert out.missing


@pytest.mark.parametrize("how", ["out_of_range", "unsigned"])
def test_fabricated_directory_records_are_refused_by_every_client(how):
    config = SecAggConfig.plan(12, 4, clip=1.0, graph="harary", bits=32)
    keys = [crypto.generate_signing_keypair() for _ in range(12)]
    clients = [Client(config, i, keys[i].secret, [k.public for k in keys]) for i in range(12)]
    directory, _ = fabricated_directory(config, clients, how)
    for i, client in enumerate(clients):
        with pytest.raises((MalformedMessageError, BadSignatureError, MaliciousServerError)):
            client.handle(directory)
        assert client.state_name == "Aborted", i
