"""The client's states, each attacked by a malicious server built from a real Cohort.

Every test plays the server (or the network): it tampers with, re-routes, replays
or forges what an honest server would send, and checks that the client refuses
with the right ``ProtocolError`` and reveals nothing it must not.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import Cohort, make_config, reencode

from secagg import crypto, derivation, shamir, wire
from secagg import messages as msg
from secagg.errors import (
    AbortedError,
    BadSignatureError,
    DecryptionError,
    LocalProtocolError,
    MalformedMessageError,
    MaliciousServerError,
    SessionMismatchError,
    UnexpectedMessageError,
)
from secagg.rounds import Round


def _directory_with(directory: msg.KeyDirectory, client: int, **fields: bytes) -> msg.KeyDirectory:
    """A copy of ``directory`` with some fields of ``client``'s record replaced."""
    table = directory.table.copy()
    row = int(np.flatnonzero(table["id"] == client)[0])
    for name, value in fields.items():
        table[row][name] = np.void(value)
    return msg.KeyDirectory(directory.config_digest, table.tobytes())


def _directory_without(directory: msg.KeyDirectory, *clients: int) -> msg.KeyDirectory:
    table = directory.table
    keep = ~np.isin(table["id"], clients)
    return msg.KeyDirectory(directory.config_digest, table[keep].tobytes())


def _held(cohort: Cohort, client: int) -> msg.Message:
    return wire.decode(cohort.held[client])


def _unmask_responses(cohort: Cohort, client: int) -> list:
    return cohort.sent("up", msg.UnmaskResponse, client)


def _assert_aborted(cohort: Cohort, client: int) -> None:
    """The client is Aborted and refuses any further input."""
    c = cohort.clients[client]
    assert c.state_name == "Aborted" and c.round is Round.ABORTED and c.abort_reason
    reason = c.abort_reason
    assert c.handle(wire.encode(msg.Abort("late"))) is None  # a later abort changes nothing
    assert c.abort_reason == reason
    with pytest.raises(LocalProtocolError):
        c.handle(wire.encode(msg.ConsistencyRequest(bytes(32), b"")))
    with pytest.raises(LocalProtocolError):
        c.set_encoded_input(cohort.inputs[client].copy())
    with pytest.raises(LocalProtocolError):
        c.start()
    assert c.state_name == "Aborted"


class TestAdvertiseKeys:
    def test_start_signs_fresh_keys_bound_to_config_and_id(self):
        cohort = Cohort()
        advert = wire.decode(cohort.clients[2].start(), msg.AdvertiseKeys)
        assert advert.sender == 2 and advert.config_digest == cohort.config.digest()
        payload = derivation.advert_payload(
            advert.config_digest, 2, advert.mask_public_key, advert.enc_public_key
        )
        crypto.verify(cohort.public[2], payload, advert.signature)
        assert advert.mask_public_key != advert.enc_public_key

    def test_two_clients_never_advertise_the_same_keys(self):
        cohort = Cohort()
        a = wire.decode(cohort.clients[0].start())
        b = wire.decode(cohort.clients[1].start())
        keys_a = {a.mask_public_key, a.enc_public_key}
        assert keys_a.isdisjoint({b.mask_public_key, b.enc_public_key})

    def test_refuses_to_start_twice(self):
        cohort = Cohort()
        cohort.clients[0].start()
        with pytest.raises(LocalProtocolError):
            cohort.clients[0].start()

    def test_rejects_a_server_message_before_it_started(self):
        cohort = Cohort()
        cohort.run_until(Round.SHARE_KEYS)
        fresh = Cohort(cohort.config).clients[0]
        with pytest.raises(UnexpectedMessageError):
            fresh.handle(cohort.last("down", msg.KeyDirectory, 0))
        assert fresh.state_name == "Aborted"


class TestShareKeys:
    @pytest.fixture
    def held(self):
        """A cohort whose KeyDirectory to client 0 was held back by the network."""
        cohort = Cohort()
        cohort.hold(msg.KeyDirectory, 0)
        cohort.run_until(Round.SHARE_KEYS)
        return cohort, _held(cohort, 0)

    def test_accepts_the_honest_directory_and_shares_with_every_neighbour(self, held):
        cohort, directory = held
        out = wire.decode(cohort.deliver(0, directory), msg.ShareKeys)
        assert out.receivers == (1, 2, 3, 4, 5) and len(set(out.ciphertexts)) == 5

    @pytest.mark.parametrize("field", ["mask_pk", "enc_pk"])
    def test_rejects_a_peer_key_swapped_by_the_server(self, held, field):
        cohort, directory = held
        forged = _directory_with(directory, 3, **{field: crypto.generate_kx_keypair().public})
        with pytest.raises(BadSignatureError):
            cohort.deliver(0, forged)
        _assert_aborted(cohort, 0)

    def test_refuses_a_low_order_mask_key_before_sharing(self, held):
        # Colluding client 3 signs an advert whose mask key is the low-order point 0.
        cohort, directory = held
        entry = directory.entry(3)
        payload = derivation.advert_payload(directory.config_digest, 3, bytes(32), entry.enc_public_key)
        forged = _directory_with(directory, 3, mask_pk=bytes(32),
                                 signature=crypto.sign(cohort.identities[3].secret, payload))
        with pytest.raises(crypto.BadPublicKeyError):
            cohort.deliver(0, forged)
        assert not cohort.sent("up", msg.ShareKeys, 0)
        _assert_aborted(cohort, 0)

    @pytest.mark.parametrize("record", ["out_of_range", "foreign_signature"])
    def test_refuses_a_fabricated_record_of_a_non_neighbour(self, record):
        # Harary n = 12, k = 2: the fabricated record is not 0's neighbour, yet 0 refuses it.
        cohort = Cohort(n=12, threshold=2, graph="harary", degree=2)
        cohort.hold(msg.KeyDirectory, 0)
        cohort.run_until(Round.SHARE_KEYS)
        directory = _held(cohort, 0)
        kp = crypto.generate_kx_keypair()
        if record == "out_of_range":
            extra = (12).to_bytes(4, "little") + kp.public + kp.public + bytes(64)
            forged = msg.KeyDirectory(directory.config_digest, directory.records + extra)
            expected = MalformedMessageError
        else:
            payload = derivation.advert_payload(directory.config_digest, 11, kp.public, kp.public)
            forged = _directory_with(directory, 11, mask_pk=kp.public, enc_pk=kp.public,
                                     signature=crypto.sign(cohort.identities[10].secret, payload))
            expected = BadSignatureError
        with pytest.raises(expected):
            cohort.deliver(0, forged)
        _assert_aborted(cohort, 0)

    def test_rejects_a_peer_entry_re_signed_by_another_client(self, held):
        cohort, directory = held
        kp = crypto.generate_kx_keypair()
        payload = derivation.advert_payload(directory.config_digest, 3, kp.public, kp.public)
        signature = crypto.sign(cohort.identities[4].secret, payload)  # 4 signs for 3
        forged = _directory_with(directory, 3, mask_pk=kp.public, enc_pk=kp.public,
                                 signature=signature)
        with pytest.raises(BadSignatureError):
            cohort.deliver(0, forged)

    def test_rejects_a_directory_without_its_own_entry(self, held):
        cohort, directory = held
        with pytest.raises(MaliciousServerError):
            cohort.deliver(0, _directory_without(directory, 0))
        _assert_aborted(cohort, 0)

    @pytest.mark.parametrize("field", ["mask_pk", "enc_pk"])
    def test_rejects_a_directory_that_alters_its_own_entry(self, held, field):
        cohort, directory = held
        forged = _directory_with(directory, 0, **{field: crypto.generate_kx_keypair().public})
        with pytest.raises(MaliciousServerError):
            cohort.deliver(0, forged)

    def test_rejects_a_colluding_peer_that_advertises_its_own_public_key(self, held):
        cohort, directory = held
        mine = directory.entry(0)
        other = crypto.generate_kx_keypair().public
        payload = derivation.advert_payload(directory.config_digest, 3, mine.mask_public_key, other)
        forged = _directory_with(directory, 3, mask_pk=mine.mask_public_key, enc_pk=other,
                                 signature=crypto.sign(cohort.identities[3].secret, payload))
        with pytest.raises(MaliciousServerError):
            cohort.deliver(0, forged)

    def test_refuses_to_share_when_fewer_than_t_neighbours_advertised(self, held):
        cohort, directory = held
        with pytest.raises(AbortedError):
            cohort.deliver(0, _directory_without(directory, 2, 3, 4))  # 2 peers < t = 3
        _assert_aborted(cohort, 0)
        assert not cohort.sent("up", msg.ShareKeys, 0)

    def test_rejects_a_directory_replayed_from_another_session(self, held):
        cohort, _ = held
        other = Cohort(make_config(session_nonce=crypto.random_bytes(32)))
        other.run_until(Round.SHARE_KEYS)
        with pytest.raises(SessionMismatchError):
            cohort.deliver(0, other.last("down", msg.KeyDirectory, 0))
        _assert_aborted(cohort, 0)

    def test_rejects_a_directory_replayed_from_an_earlier_run_of_the_same_config(self, held):
        cohort, _ = held
        earlier = Cohort(cohort.config)
        earlier.run_until(Round.SHARE_KEYS)
        with pytest.raises(MaliciousServerError):  # it does not carry this run's fresh keys
            cohort.deliver(0, earlier.last("down", msg.KeyDirectory, 0))

    def test_rejects_a_round_two_message_delivered_in_round_one(self, held):
        cohort, _ = held
        early = msg.EncryptedShares(cohort.session_id, (), ())
        with pytest.raises(UnexpectedMessageError):
            cohort.deliver(0, early)
        _assert_aborted(cohort, 0)

    def test_rejects_truncated_bytes(self, held):
        cohort, directory = held
        with pytest.raises(MalformedMessageError):
            cohort.deliver(0, wire.encode(directory)[:-7])
        _assert_aborted(cohort, 0)


class TestMaskedInput:
    @pytest.fixture
    def held(self):
        """A cohort whose EncryptedShares to clients 0 and 1 were held back."""
        cohort = Cohort()
        cohort.hold(msg.EncryptedShares, 0, 1)
        cohort.run_until(Round.MASKED_INPUT)
        return cohort, _held(cohort, 0), _held(cohort, 1)

    def test_sends_the_masked_input_once_shares_and_input_are_both_there(self):
        cohort = Cohort()
        cohort.hold(msg.EncryptedShares, 0)
        cohort.begin(inputs=False)
        cohort.run_until(Round.MASKED_INPUT)
        assert cohort.deliver(0, cohort.held[0]) is None  # no input yet
        out = wire.decode(cohort.clients[0].set_encoded_input(cohort.inputs[0].copy()))
        assert isinstance(out, msg.MaskedInput) and out.sender == 0
        assert cohort.clients[0].round is Round.CONSISTENCY_CHECK

    def test_refuses_to_set_the_input_twice(self):
        cohort = Cohort()
        cohort.begin()
        with pytest.raises(LocalProtocolError):
            cohort.clients[0].set_encoded_input(cohort.inputs[0].copy())

    def test_a_share_rerouted_to_another_client_does_not_decrypt(self, held):
        cohort, to0, to1 = held
        # The server hands client 1 the ciphertext client 2 made for client 0, as from 2.
        j0, j1 = to0.senders.index(2), to1.senders.index(2)
        cts = list(to1.ciphertexts)
        cts[j1] = to0.ciphertexts[j0]
        with pytest.raises(DecryptionError):
            cohort.deliver(1, dataclasses.replace(to1, ciphertexts=tuple(cts)))
        _assert_aborted(cohort, 1)

    def test_a_share_relabelled_as_from_another_sender_does_not_decrypt(self, held):
        cohort, to0, _ = held
        senders = (to0.senders[1], to0.senders[0], *to0.senders[2:])
        swapped = dataclasses.replace(to0, senders=senders)
        with pytest.raises(DecryptionError):
            cohort.deliver(0, swapped)

    def test_refuses_a_share_out_of_the_field_naming_the_sender(self, held):
        # Colluding client 2 encrypts, properly, a seed share whose elements are >= 2^61 - 1.
        cohort, to0, _ = held
        key = cohort.clients[0]._state.data.peers[2].share_key
        bad = b"\xff" * shamir.SHARE_BYTES
        plaintext = derivation.pack_share_plaintext(2, 0, bad, bytes(shamir.SHARE_BYTES))
        ct = crypto.aead_encrypt(key, plaintext, derivation.share_associated_data(to0.session_id, 2, 0))
        j = to0.senders.index(2)
        cts = (*to0.ciphertexts[:j], ct, *to0.ciphertexts[j + 1:])
        with pytest.raises(shamir.InvalidShareError, match="client 2"):
            cohort.deliver(0, dataclasses.replace(to0, ciphertexts=cts))
        assert not cohort.sent("up", msg.MaskedInput, 0)
        _assert_aborted(cohort, 0)

    def test_a_tampered_ciphertext_does_not_decrypt(self, held):
        cohort, to0, _ = held
        bad = bytearray(to0.ciphertexts[0])
        bad[-1] ^= 1
        tampered = dataclasses.replace(to0, ciphertexts=(bytes(bad), *to0.ciphertexts[1:]))
        with pytest.raises(DecryptionError):
            cohort.deliver(0, tampered)

    def test_rejects_shares_claiming_to_come_from_a_non_neighbour(self, held):
        cohort, to0, _ = held
        forged = dataclasses.replace(to0, senders=(0, *to0.senders[1:]))  # itself
        with pytest.raises(MaliciousServerError):
            cohort.deliver(0, forged)

    def test_refuses_to_mask_with_fewer_than_t_neighbours_sharing(self, held):
        cohort, to0, _ = held
        with pytest.raises(AbortedError):
            cohort.deliver(0, dataclasses.replace(to0, senders=to0.senders[:2],
                                                  ciphertexts=to0.ciphertexts[:2]))
        assert not cohort.sent("up", msg.MaskedInput, 0)

    def test_rejects_shares_of_another_session(self, held):
        cohort, to0, _ = held
        with pytest.raises(SessionMismatchError):
            cohort.deliver(0, dataclasses.replace(to0, session_id=crypto.random_bytes(32)))

    def test_rejects_shares_replayed_from_another_session(self, held):
        cohort, _, _ = held
        other = Cohort(make_config())
        other.run_until(Round.MASKED_INPUT)
        with pytest.raises(SessionMismatchError):
            cohort.deliver(0, other.last("down", msg.EncryptedShares, 0))

    def test_ignores_the_same_shares_delivered_twice(self):
        cohort = Cohort()
        cohort.hold(msg.EncryptedShares, 0)
        cohort.begin(inputs=False)
        cohort.run_until(Round.MASKED_INPUT)
        assert cohort.deliver(0, cohort.held[0]) is None
        assert cohort.deliver(0, cohort.held[0]) is None  # an at-least-once redelivery
        assert cohort.clients[0].state_name == "MaskedInput"
        assert cohort.clients[0].set_encoded_input(cohort.inputs[0].copy()) is not None

    def test_rejects_different_shares_delivered_second(self):
        cohort = Cohort()
        cohort.hold(msg.EncryptedShares, 0)
        cohort.begin(inputs=False)
        cohort.run_until(Round.MASKED_INPUT)
        first = _held(cohort, 0)
        assert cohort.deliver(0, first) is None
        with pytest.raises(UnexpectedMessageError):
            cohort.deliver(0, dataclasses.replace(first, senders=first.senders[:-1],
                                                  ciphertexts=first.ciphertexts[:-1]))
        _assert_aborted(cohort, 0)

    def test_rejects_a_consistency_request_before_its_shares(self, held):
        cohort, _, _ = held
        request = msg.ConsistencyRequest(cohort.session_id, msg.encode_ids(range(6)))
        with pytest.raises(UnexpectedMessageError):
            cohort.deliver(0, request)


class TestConsistencyCheck:
    @pytest.fixture
    def held(self):
        cohort = Cohort()
        cohort.hold(msg.ConsistencyRequest, 0)
        cohort.run_until(Round.CONSISTENCY_CHECK)
        return cohort, _held(cohort, 0)

    def test_signs_exactly_the_survivor_set_it_was_shown(self, held):
        cohort, request = held
        out = wire.decode(cohort.deliver(0, request), msg.ConsistencySignature)
        payload = derivation.consistency_payload(request.session_id, request.survivors)
        crypto.verify(cohort.public[0], payload, out.signature)

    def test_refuses_to_sign_fewer_than_t_surviving_neighbours(self, held):
        cohort, request = held
        with pytest.raises(AbortedError):
            cohort.deliver(0, dataclasses.replace(request, survivors=msg.encode_ids([0, 1, 2])))
        assert not cohort.sent("up", msg.ConsistencySignature, 0)
        _assert_aborted(cohort, 0)

    def test_rejects_a_request_of_another_session(self, held):
        cohort, request = held
        with pytest.raises(SessionMismatchError):
            cohort.deliver(0, dataclasses.replace(request, session_id=crypto.random_bytes(32)))

    def test_rejects_an_unmask_request_before_it_signed(self, held):
        cohort, request = held
        early = msg.UnmaskRequest(request.session_id, request.survivors, b"", (), (), (), (), ())
        with pytest.raises(UnexpectedMessageError):
            cohort.deliver(0, early)
        assert not _unmask_responses(cohort, 0)


class TestUnmasking:
    @pytest.fixture
    def held(self):
        """Client 4 vanished before its masked input; UnmaskRequest to client 0 held back."""
        cohort = Cohort(vanish={4: Round.MASKED_INPUT})
        cohort.hold(msg.UnmaskRequest, 0)
        cohort.run_until(Round.UNMASKING)
        return cohort, _held(cohort, 0)

    def test_reveals_seed_shares_of_survivors_and_key_shares_of_the_dropped_only(self, held):
        cohort, request = held
        out = wire.decode(cohort.deliver(0, request), msg.UnmaskResponse)
        assert out.seed_owners == (1, 2, 3, 5) and out.key_owners == (4,)
        assert cohort.clients[0].state_name == "Completed"

    def test_refuses_to_reveal_both_shares_of_one_client(self, held):
        cohort, request = held
        both = dataclasses.replace(request, dropped=msg.encode_ids([2, 4]))  # 2 also survives
        with pytest.raises(MaliciousServerError):
            cohort.deliver(0, both)
        assert not _unmask_responses(cohort, 0)
        _assert_aborted(cohort, 0)

    def test_refuses_survivors_other_than_the_set_it_signed(self, held):
        cohort, request = held
        # Move 3 from the survivors to the dropped: disjoint, >= t, but not what 0 signed.
        moved = dataclasses.replace(request, survivors=msg.encode_ids([0, 1, 2, 5]),
                                    dropped=msg.encode_ids([3, 4]))
        with pytest.raises(MaliciousServerError):
            cohort.deliver(0, moved)
        assert not _unmask_responses(cohort, 0)

    def test_refuses_without_t_neighbour_signatures_over_its_set(self, held):
        cohort, request = held
        few = dataclasses.replace(request, signers=request.signers[:2],
                                  signatures=request.signatures[:2])
        with pytest.raises(AbortedError):
            cohort.deliver(0, few)
        assert not _unmask_responses(cohort, 0)

    def test_refuses_one_signature_repeated_to_reach_t(self, held):
        cohort, request = held
        repeated = reencode(cohort.held[0], signers=(request.signers[0],) * 3,
                            signatures=(request.signatures[0],) * 3)
        with pytest.raises(MalformedMessageError):
            cohort.deliver(0, repeated)
        assert not _unmask_responses(cohort, 0)

    def test_rejects_a_forged_consistency_signature(self, held):
        cohort, request = held
        bad = crypto.sign(cohort.identities[0].secret, b"x")
        forged = dataclasses.replace(request, signatures=(bad, *request.signatures[1:]))
        with pytest.raises(BadSignatureError):
            cohort.deliver(0, forged)

    def test_refuses_a_survivor_whose_signed_partner_set_is_missing(self, held):
        cohort, request = held
        j = request.attested.index(3)
        cut = {f: getattr(request, f)[:j] + getattr(request, f)[j + 1:]
               for f in ("attested", "exclusions", "attestations")}
        with pytest.raises(MaliciousServerError, match="partner set of survivor 3"):
            cohort.deliver(0, dataclasses.replace(request, **cut))
        assert not _unmask_responses(cohort, 0)

    def test_refuses_a_partner_set_the_survivor_did_not_sign(self, held):
        # The server claims 3 excluded partners 1 and 2 (say, to shrink its partner count).
        cohort, request = held
        j = request.attested.index(3)
        exclusions = list(request.exclusions)
        exclusions[j] = msg.encode_ids([1, 2])
        with pytest.raises(BadSignatureError):
            cohort.deliver(0, dataclasses.replace(request, exclusions=tuple(exclusions)))
        assert not _unmask_responses(cohort, 0)

    def test_refuses_a_survivor_whose_neighbourhood_did_not_confirm_the_set(self, held):
        # Signatures from 0, 1 and 3 only: each of them has just two signers among its
        # neighbours (n = 6, t = 3), so survivor 1's seed share must not leave.
        cohort, request = held
        keep = [i for i, s in enumerate(request.signers) if s in (0, 1, 3)]
        few = dataclasses.replace(request, signers=tuple(request.signers[i] for i in keep),
                                  signatures=tuple(request.signatures[i] for i in keep))
        with pytest.raises(AbortedError):
            cohort.deliver(0, few)
        assert not _unmask_responses(cohort, 0)

    def test_rejects_signatures_swapped_between_signers(self, held):
        cohort, request = held
        swapped = (request.signatures[1], request.signatures[0], *request.signatures[2:])
        with pytest.raises(BadSignatureError):
            cohort.deliver(0, dataclasses.replace(request, signatures=swapped))

    def test_rejects_a_signature_from_more_than_three_hops_away(self):
        # Harary, n = 12, k = 2: a client sees only signers within 3 hops (ring distance 3).
        cohort = Cohort(n=12, threshold=2, graph="harary", degree=2)
        cohort.hold(msg.UnmaskRequest, 0)
        cohort.run_until(Round.UNMASKING)
        request = _held(cohort, 0)
        graph = cohort.clients[0]._state.data.graph
        far = next(v for v in range(12) if v not in graph.ball(0, 3))
        with pytest.raises(MaliciousServerError, match="3 hops"):
            cohort.deliver(0, dataclasses.replace(
                request, signers=(*request.signers, far), signatures=(*request.signatures, bytes(64))
            ) if far not in request.signers else request)
        assert not _unmask_responses(cohort, 0)

    def test_rejects_an_unmask_request_of_another_session(self, held):
        cohort, request = held
        with pytest.raises(SessionMismatchError):
            cohort.deliver(0, dataclasses.replace(request, session_id=crypto.random_bytes(32)))

    def test_different_survivor_lists_to_different_clients_are_caught(self):
        # The server shows {0, 1, 2} the true survivors and {3, 4, 5} a set without 5,
        # hoping to get 5's self-seed shares from the first group and its mask-key
        # shares from the second. Each group has fewer than t = 3 neighbours of any of
        # its members, so the signatures cannot add up.
        cohort = Cohort()
        lie = msg.encode_ids([0, 1, 2, 3, 4])

        def split_view(i, m):
            if isinstance(m, msg.ConsistencyRequest) and i in (3, 4, 5):
                return dataclasses.replace(m, survivors=lie)
            if isinstance(m, msg.UnmaskRequest) and i in (3, 4, 5):
                return dataclasses.replace(m, survivors=lie, dropped=msg.encode_ids([5]))
            return m

        cohort.down = split_view
        cohort.run()
        assert not cohort.sent("up", msg.UnmaskResponse)
        for i in range(6):
            assert isinstance(cohort.errors[i], (BadSignatureError, MaliciousServerError))
            assert cohort.clients[i].state_name == "Aborted"
        assert cohort.server.round is Round.ABORTED

    def test_split_view_with_only_matching_signatures_is_refused_below_t(self):
        # A smarter server forwards each group only its own group's signatures.
        cohort = Cohort()
        groups = {i: (0, 1, 2) if i < 3 else (3, 4, 5) for i in range(6)}
        lie = msg.encode_ids([0, 1, 2, 3, 4])

        def split_view(i, m):
            if isinstance(m, msg.ConsistencyRequest) and i >= 3:
                return dataclasses.replace(m, survivors=lie)
            if isinstance(m, msg.UnmaskRequest):
                keep = [j for j, s in enumerate(m.signers) if s in groups[i]]
                m = dataclasses.replace(m, signers=tuple(m.signers[j] for j in keep),
                                        signatures=tuple(m.signatures[j] for j in keep))
                if i >= 3:
                    m = dataclasses.replace(m, survivors=lie, dropped=msg.encode_ids([5]))
            return m

        cohort.down = split_view
        cohort.run()
        assert not cohort.sent("up", msg.UnmaskResponse)
        assert all(isinstance(cohort.errors[i], AbortedError) for i in range(5))
        # 5 is shown a survivor set without itself: it refuses to sign it at all.
        assert isinstance(cohort.errors[5], MaliciousServerError)
        assert not cohort.sent("up", msg.ConsistencySignature, 5)

    def test_without_consistency_check_still_refuses_overlapping_sets(self):
        cohort = Cohort(consistency_check=False, vanish={4: Round.MASKED_INPUT})
        cohort.hold(msg.UnmaskRequest, 0)
        cohort.run_until(Round.UNMASKING)
        request = _held(cohort, 0)
        with pytest.raises(MaliciousServerError):
            cohort.deliver(0, dataclasses.replace(request, dropped=msg.encode_ids([3, 4])))
        assert not _unmask_responses(cohort, 0)

    def test_without_consistency_check_still_refuses_fewer_than_t_survivors(self):
        cohort = Cohort(consistency_check=False)
        cohort.hold(msg.UnmaskRequest, 0)
        cohort.run_until(Round.UNMASKING)
        request = _held(cohort, 0)
        few = dataclasses.replace(request, survivors=msg.encode_ids([0, 1, 2]),
                                  dropped=msg.encode_ids([3, 4, 5]))
        with pytest.raises(AbortedError):
            cohort.deliver(0, few)
        assert not _unmask_responses(cohort, 0)
        _assert_aborted(cohort, 0)

    def test_ignores_the_same_unmask_request_delivered_twice(self, held):
        cohort, request = held
        assert cohort.deliver(0, request) is not None
        assert cohort.deliver(0, request) is None  # a redelivery: nothing is revealed twice
        assert cohort.clients[0].state_name == "Completed"

    def test_refuses_a_different_second_unmask_request(self, held):
        cohort, request = held
        cohort.deliver(0, request)
        with pytest.raises(LocalProtocolError):
            cohort.deliver(0, dataclasses.replace(request, dropped=msg.encode_ids([5])))


class TestCompleted:
    def test_refuses_any_further_message(self):
        cohort = Cohort()
        cohort.run()
        cohort.check_result()
        for c in cohort.clients:
            assert c.state_name == "Completed"
            with pytest.raises(LocalProtocolError):
                c.handle(wire.encode(msg.ConsistencyRequest(cohort.session_id, b"")))
            with pytest.raises(LocalProtocolError):
                c.start()
            assert c.state_name == "Completed"

    def test_a_late_server_abort_is_recorded_and_the_client_stays_completed(self):
        cohort = Cohort()
        cohort.run()
        c = cohort.clients[3]
        assert c.late_abort_reason is None
        assert c.handle(wire.encode(msg.Abort("could not finish"))) is None
        assert c.handle(wire.encode(msg.Abort("again"))) is None
        assert c.state_name == "Completed" and c.abort_reason is None
        assert c.late_abort_reason == "could not finish"


def _assert_holds_no_secret(client) -> None:
    d = client._state.data
    assert d.mask_keys is None and d.enc_keys is None
    assert d.self_seed == b"" and not d.held_shares and not d.peers
    assert d.encoded_input is None


class TestSecretsDoNotOutliveTheSession:
    def test_a_completed_client_holds_no_secret(self):
        cohort = Cohort()
        cohort.run()
        cohort.check_result()
        for c in cohort.clients:
            assert c.state_name == "Completed"
            _assert_holds_no_secret(c)

    def test_an_aborted_client_holds_no_secret(self):
        cohort = Cohort()
        cohort.hold(msg.ConsistencyRequest, 0)
        cohort.run_until(Round.CONSISTENCY_CHECK)
        assert cohort.clients[0]._state.data.held_shares  # it held shares until now
        cohort.deliver(0, msg.Abort("bye"))
        _assert_holds_no_secret(cohort.clients[0])

    def test_keys_go_once_shared_and_the_input_buffer_is_zeroed_once_masked(self):
        cohort = Cohort()
        cohort.hold(msg.EncryptedShares, 0)
        cohort.run_until(Round.MASKED_INPUT)
        d = cohort.clients[0]._state.data
        assert d.mask_keys is None and d.enc_keys is None  # only shares and derived keys left
        buffer = d.encoded_input
        assert buffer is not None and buffer.any()
        cohort.deliver(0, cohort.held[0])
        assert not buffer.any() and d.encoded_input is None and d.self_seed == b""


class TestAborted:
    def test_a_server_abort_leaves_the_client_aborted_with_the_reason(self):
        cohort = Cohort()
        cohort.begin()
        assert cohort.deliver(0, msg.Abort("too few clients")) is None
        assert "too few clients" in cohort.clients[0].abort_reason
        _assert_aborted(cohort, 0)

    def test_the_application_can_abort_and_tell_the_server(self):
        cohort = Cohort()
        cohort.begin()
        out = wire.decode(cohort.clients[0].abort("shutting down"))
        assert out == msg.Abort("shutting down")
        _assert_aborted(cohort, 0)

    @pytest.mark.parametrize("junk", [b"", b"\x00", b"\x93\xa6secagg\x01", b"\xff" * 10])
    def test_malformed_bytes_abort_the_client(self, junk):
        cohort = Cohort()
        cohort.begin()
        with pytest.raises(MalformedMessageError):
            cohort.deliver(0, junk)
        _assert_aborted(cohort, 0)
