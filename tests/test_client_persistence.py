"""Client.to_bytes / from_bytes: a client that lives in a stateless worker resumes exactly."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from helpers import Cohort, make_config

from secagg import client as client_module
from secagg import crypto
from secagg.client import Client
from secagg.errors import IdentityError, LocalProtocolError, SecAggTypeError, SecAggValueError
from secagg.rounds import Round


def _reload(cohort: Cohort) -> None:
    """Replace every client by one resumed from its saved bytes (as a stateless worker would)."""
    for i, c in enumerate(cohort.clients):
        saved = c.to_bytes(include_secrets=True)
        cohort.clients[i] = Client.from_bytes(saved, cohort.identities[i].secret, cohort.public)
        assert cohort.clients[i].state_name == c.state_name


@pytest.mark.parametrize("config_args", [
    dict(n=7, threshold=4),
    dict(n=6, threshold=3, consistency_check=False),
    dict(n=10, threshold=4, graph="harary", degree=6),
])
def test_a_session_whose_clients_are_saved_and_resumed_every_round_sums_exactly(config_args):
    cohort = Cohort(make_config(**config_args), vanish={1: Round.MASKED_INPUT, 5: Round.UNMASKING})
    _reload(cohort)  # before start: nothing in them yet
    cohort.begin()
    while not cohort.finished:
        _reload(cohort)
        cohort.step()
    result = cohort.check_result()
    assert 1 not in result.survivors and 5 in result.survivors


def test_a_client_resumed_after_its_shares_arrived_masks_once_its_input_is_set():
    cohort = Cohort(make_config(n=5, threshold=3))
    cohort.begin(inputs=False)
    cohort.step()  # key directory -> shares
    cohort.step()  # encrypted shares -> waiting for the input
    _reload(cohort)
    assert all(c.state_name == "MaskedInput" for c in cohort.clients)
    for i, c in enumerate(cohort.clients):
        cohort.send_up(i, c.set_encoded_input(cohort.inputs[i].copy()))
    cohort.run()
    assert cohort.check_result().survivors == (0, 1, 2, 3, 4)


def test_an_aborted_client_resumes_aborted_with_its_reason():
    cohort = Cohort()
    c = cohort.clients[0]
    c.start()
    c.abort("stopping")
    again = Client.from_bytes(c.to_bytes(include_secrets=True), cohort.identities[0].secret, cohort.public)
    assert again.round is Round.ABORTED and again.abort_reason == "stopping"


@pytest.mark.parametrize("flag", [False, None, 1])
def test_saving_needs_an_explicit_yes_to_writing_secrets(flag):
    cohort = Cohort()
    with pytest.raises(LocalProtocolError, match="include_secrets=True"):
        cohort.clients[0].to_bytes(include_secrets=flag)
    with pytest.raises(TypeError):
        cohort.clients[0].to_bytes()  # no default


def test_the_saved_bytes_hold_no_secret_in_the_clear():
    cohort = Cohort()
    cohort.begin()
    cohort.step()
    d = cohort.clients[0]._state.data
    saved = cohort.clients[0].to_bytes(include_secrets=True)
    secrets = [cohort.identities[0].secret, d.self_seed]
    secrets += [kp.secret for kp in (d.mask_keys, d.enc_keys) if kp is not None]
    secrets += [k for p in d.peers.values() for k in (p.share_key, p.mask_key)]
    assert len(secrets) > 2 + len(d.peers)
    for secret in secrets:
        assert secret not in saved
    assert d.encoded_input is None or d.encoded_input.tobytes() not in saved


def test_another_identity_key_cannot_open_the_saved_state():
    cohort = Cohort()
    cohort.clients[0].start()
    saved = cohort.clients[0].to_bytes(include_secrets=True)
    with pytest.raises(IdentityError, match="does not open under this identity key"):
        Client.from_bytes(saved, cohort.identities[1].secret, cohort.public)


def test_a_resumed_client_checks_its_roster_entry_again():
    cohort = Cohort()
    saved = cohort.clients[0].to_bytes(include_secrets=True)
    rotated = list(cohort.public)
    rotated[0] = crypto.generate_signing_keypair().public
    with pytest.raises(IdentityError, match="stale or the key was rotated"):
        Client.from_bytes(saved, cohort.identities[0].secret, rotated)


@pytest.mark.parametrize("data, error", [
    (b"\xc1", SecAggValueError),
    (msgpack.packb(["secagg-client", 2, b"x"]), SecAggValueError),
    (msgpack.packb(["other", 1, b"x"]), SecAggValueError),
    ("text", SecAggTypeError),
])
def test_bytes_that_are_not_a_saved_client_are_refused(data, error):
    cohort = Cohort()
    with pytest.raises(error):
        Client.from_bytes(data, cohort.identities[0].secret, cohort.public)


def test_a_truncated_saved_state_is_refused():
    cohort = Cohort()
    cohort.clients[0].start()
    saved = cohort.clients[0].to_bytes(include_secrets=True)
    with pytest.raises((SecAggValueError, IdentityError)):
        Client.from_bytes(saved[:-1], cohort.identities[0].secret, cohort.public)


def test_every_field_of_the_client_data_is_saved_derived_or_given():
    """A field added to _ClientData must be saved by to_bytes (or be listed as derived/given)."""
    names = {f.name for f in dataclasses.fields(client_module._ClientData)}
    covered = client_module._SAVED_FIELDS | client_module._DERIVED_FIELDS | client_module._GIVEN_FIELDS
    assert names == covered


def test_a_resumed_client_still_ignores_a_redelivery_of_what_it_handled_before_saving():
    cohort = Cohort()
    cohort.begin()
    cohort.step()  # key directories delivered
    directory = [s.data for s in cohort.log if s.direction == "down" and s.client == 0][-1]
    _reload(cohort)
    assert cohort.clients[0].handle(directory) is None
    assert cohort.clients[0].state_name == "MaskedInput"
