"""Node keys and the roster: the application's trust anchor, and the errors a wrong entry gives."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import Cohort, make_config

from secagg import crypto
from secagg.client import Client
from secagg.errors import BadSignatureError, IdentityError, SecAggTypeError, SecAggValueError
from secagg.identity import (
    IdMap,
    Roster,
    fingerprint,
    generate_key,
    load_key,
    save_key,
    verify_key_of,
)
from secagg.rounds import Round

# 32 bytes that are not the encoding of any Ed25519 point (y = 2 has no x on the curve).
_NOT_A_POINT = (2).to_bytes(32, "little")


def _roster(ids) -> tuple[Roster, dict]:
    keys = {a: generate_key() for a in ids}
    return Roster({a: k.public for a, k in keys.items()}), keys


class TestKeyFiles:
    def test_a_saved_key_loads_back(self, tmp_path):
        key = generate_key()
        save_key(tmp_path / "node.key", key)
        assert os.stat(tmp_path / "node.key").st_mode & 0o777 == 0o600
        assert load_key(tmp_path / "node.key") == key
        assert verify_key_of(key.secret) == key.public

    def test_an_existing_key_file_is_never_overwritten(self, tmp_path):
        save_key(tmp_path / "node.key", generate_key())
        with pytest.raises(FileExistsError):
            save_key(tmp_path / "node.key", generate_key())

    def test_a_key_file_others_can_read_is_refused(self, tmp_path):
        save_key(tmp_path / "node.key", generate_key())
        os.chmod(tmp_path / "node.key", 0o644)
        with pytest.raises(IdentityError, match="chmod 600"):
            load_key(tmp_path / "node.key")

    def test_a_key_file_whose_verify_key_is_not_its_seeds_is_refused(self, tmp_path):
        key, other = generate_key(), generate_key()
        path = tmp_path / "node.key"
        save_key(path, key)
        path.write_text(path.read_text().replace(key.public.hex(), other.public.hex()))
        with pytest.raises(IdentityError, match="not that of the seed"):
            load_key(path)

    def test_garbage_is_not_a_key_file(self, tmp_path):
        path = tmp_path / "node.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"hello")
        os.close(fd)
        with pytest.raises(IdentityError, match="not a secagg-ed25519-key-v1 file"):
            load_key(path)


class TestRoster:
    def test_json_round_trip_keeps_every_entry(self, tmp_path):
        roster, _ = _roster([5, 17, 2**63 + 1])
        roster.save(tmp_path / "roster.json")
        again = Roster.load(tmp_path / "roster.json")
        assert dict(again) == dict(roster)

    def test_a_key_that_is_not_an_ed25519_point_is_refused_naming_the_entry(self):
        with pytest.raises(IdentityError, match="'bob'.*not a valid Ed25519 key"):
            Roster({"alice": generate_key().public, "bob": _NOT_A_POINT})

    def test_a_small_order_key_is_refused(self):
        with pytest.raises(IdentityError, match="not a valid Ed25519 key"):
            Roster({1: bytes(32), 2: generate_key().public})

    def test_one_key_under_two_ids_is_refused(self):
        key = generate_key().public
        with pytest.raises(IdentityError, match="share the verify key"):
            Roster({1: key, 2: key})

    @pytest.mark.parametrize("text, match", [
        ("nope", "not JSON"),
        ('{"format": "other"}', "not a secagg-roster-v1"),
        ('{"format": "secagg-roster-v1", "members": {}}', "must be a list"),
        ('{"format": "secagg-roster-v1", "members": [{"id": 1}]}', "each member"),
        ('{"format": "secagg-roster-v1", "members": [{"id": 1, "verify_key": "zz"}]}', "not hex"),
        ('{"format": "secagg-roster-v1", "members": [{"id": true, "verify_key": "00"}]}', "ints or strings"),
    ])
    def test_a_malformed_roster_document_raises_identity_error(self, text, match):
        with pytest.raises(IdentityError, match=match):
            Roster.from_json(text)

    def test_a_member_outside_the_roster_is_named(self):
        roster, _ = _roster([1, 2, 3])
        with pytest.raises(IdentityError, match="4 is not in the roster"):
            roster.session([1, 2, 4])

    def test_check_own_key_names_both_fingerprints_when_rotated(self):
        roster, keys = _roster([1, 2])
        rotated = generate_key()
        roster.check_own_key(1, keys[1])
        with pytest.raises(IdentityError) as info:
            roster.check_own_key(1, rotated)
        assert fingerprint(keys[1].public) in str(info.value)
        assert fingerprint(rotated.public) in str(info.value)


class TestIdMap:
    def test_every_party_numbers_the_same_set_the_same_way(self):
        a = IdMap([30, 10, 20])
        b = IdMap([20, 30, 10])
        assert a.app_ids == b.app_ids == (10, 20, 30)
        assert [a.index(x) for x in (10, 20, 30)] == [0, 1, 2]
        assert a.app_id(2) == 30

    def test_numpy_integer_ids_are_plain_ids(self):
        ids = IdMap(np.array([7, 3, 2**40], dtype=np.uint64))
        assert ids.index(np.int64(7)) == 1 and type(ids.app_id(0)) is int
        assert np.uint64(3) in ids

    @pytest.mark.parametrize("ids, error", [
        ([1, "a"], SecAggTypeError),
        ([1, 1], SecAggValueError),
        ([1], SecAggValueError),
        ([1.0, 2.0], SecAggTypeError),
        ([True, False], SecAggTypeError),
    ])
    def test_bad_id_sets_are_refused(self, ids, error):
        with pytest.raises(error):
            IdMap(ids)

    def test_an_unknown_id_is_named(self):
        with pytest.raises(SecAggValueError, match="'x' is not a member"):
            IdMap(["a", "b"]).index("x")


class TestClientIdentity:
    def test_a_session_over_application_ids_sums_exactly(self):
        """Flower-style 64-bit node ids, mapped by the roster; numpy ids given to Client."""
        node_ids = np.array([2**63 + 5, 12, 99, 2**40, 7], dtype=np.uint64)
        roster, keys = _roster(node_ids.tolist())
        session = roster.session(node_ids)
        cohort = Cohort(make_config(n=5, threshold=3))
        cohort.clients = [
            Client(cohort.config, session.ids.index(a), keys[int(a)].secret, session)
            for a in session.ids.app_ids
        ]
        cohort.run()
        result = cohort.check_result()
        assert result.survivors == (0, 1, 2, 3, 4)

    def test_a_numpy_integer_client_id_is_accepted(self):
        cohort = Cohort()
        client = Client(cohort.config, np.int32(2), cohort.identities[2].secret, cohort.public)
        assert client.round is Round.ADVERTISE_KEYS

    @pytest.mark.parametrize("bad", [True, 2.0, "2"])
    def test_a_client_id_that_is_not_an_integer_is_a_type_error(self, bad):
        cohort = Cohort()
        with pytest.raises(SecAggTypeError, match="IdMap"):
            Client(cohort.config, bad, cohort.identities[2].secret, cohort.public)

    def test_a_stale_roster_entry_for_oneself_is_named_at_construction(self):
        cohort = Cohort()
        stale = list(cohort.public)
        stale[2] = generate_key().public
        with pytest.raises(IdentityError) as info:
            Client(cohort.config, 2, cohort.identities[2].secret, stale)
        message = str(info.value)
        assert fingerprint(stale[2]) in message and fingerprint(cohort.public[2]) in message
        assert "rotated" in message

    def test_a_peer_whose_key_was_rotated_is_named_in_the_signature_error(self):
        cohort = Cohort()
        rotated = crypto.generate_signing_keypair()
        cohort.identities[4] = rotated  # client 4 now signs with a key the roster does not list
        roster = list(cohort.public)
        roster[4] = rotated.public
        cohort.clients[4] = Client(cohort.config, 4, rotated.secret, roster)
        cohort.run_until(Round.MASKED_INPUT)
        error = cohort.errors[0]
        assert isinstance(error, BadSignatureError)
        assert "client 4" in str(error) and fingerprint(cohort.public[4]) in str(error)
        assert cohort.clients[0].round is Round.ABORTED

    @pytest.mark.parametrize("lookup", [
        lambda i: {0: b"x"}[i],          # KeyError from the application
        lambda i: [b"y" * 32][i + 10],    # IndexError
        lambda i: "not bytes",            # garbage
        lambda i: None,
    ])
    def test_a_failing_identity_lookup_aborts_the_client_with_a_typed_error(self, lookup):
        cohort = Cohort()
        honest = list(cohort.public)

        def table(i: int) -> bytes:
            return honest[i] if i == 1 else lookup(i)

        cohort.clients[1] = Client(cohort.config, 1, cohort.identities[1].secret, table)
        cohort.run_until(Round.MASKED_INPUT)
        assert isinstance(cohort.errors[1], IdentityError)
        assert "client" in str(cohort.errors[1])
        assert cohort.clients[1].round is Round.ABORTED
        assert cohort.clients[1].abort_reason
