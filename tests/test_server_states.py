"""The server's states: misbehaving clients are dropped with a reason, never raised.

Each test makes one or more clients misbehave through the Cohort's ``up`` hook
(replays, duplicates, malformed bytes, messages out of turn or of another
session) and checks the ``DropReason``, that the session still ends with the
exact sum of the counted inputs when enough clients remain, and that it aborts,
revealing nothing, when too few do.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import Cohort, make_config, reencode

from secagg import crypto, shamir, wire
from secagg import messages as msg
from secagg.errors import AbortedError, LocalProtocolError, SecAggTypeError, SecAggValueError
from secagg.rounds import Round
from secagg.server import DropReason

ROUNDS = [Round.ADVERTISE_KEYS, Round.SHARE_KEYS, Round.MASKED_INPUT,
          Round.CONSISTENCY_CHECK, Round.UNMASKING]


def _replace_up(kind: type[msg.Message], client: int, make):
    """An ``up`` hook that replaces ``client``'s ``kind`` message by ``make(message)``."""
    def hook(i, m):
        return make(m) if i == client and isinstance(m, kind) else m
    return hook


def _send_twice(cohort: Cohort, kind: type[msg.Message], client: int, second=None) -> None:
    """Make ``client`` send its ``kind`` message a second time, right after the first.

    The second copy is byte-identical unless ``second(message)`` makes another one.
    """
    def hook(i, m):
        if i == client and isinstance(m, kind):
            cohort.server.receive(i, wire.encode(m))  # the first copy, honest
            return m if second is None else second(m)
        return m
    cohort.up = hook


def _other_bytes(message: msg.Message, field: str) -> msg.Message:
    """The same message with one bytes field (or the first of a tuple of bytes) altered."""
    value = getattr(message, field)
    if isinstance(value, tuple):
        return dataclasses.replace(message, **{field: (_flip(value[0]), *value[1:])})
    return dataclasses.replace(message, **{field: _flip(value)})


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


#: For each client -> server message, a field whose change makes a conflicting second message.
_CONFLICT_FIELD = {
    msg.AdvertiseKeys: "signature",
    msg.ShareKeys: "ciphertexts",
    msg.MaskedInput: "masked",
    msg.ConsistencySignature: "signature",
    msg.UnmaskResponse: "seed_shares",
}


class TestRedelivery:
    """At-least-once transports: a byte-identical resend is ignored, a different one is refused."""

    @pytest.mark.parametrize("kind", list(_CONFLICT_FIELD))
    def test_a_byte_identical_resend_is_ignored_and_counted_once(self, kind):
        cohort = Cohort()
        _send_twice(cohort, kind, 2)
        cohort.run()
        assert cohort.server.dropped == {}
        assert cohort.check_result().survivors == (0, 1, 2, 3, 4, 5)

    @pytest.mark.parametrize("kind", [k for k in _CONFLICT_FIELD if k is not msg.UnmaskResponse])
    def test_a_conflicting_second_message_drops_the_sender(self, kind):
        cohort = Cohort()
        _send_twice(cohort, kind, 2, lambda m: _other_bytes(m, _CONFLICT_FIELD[kind]))
        cohort.run()
        assert cohort.server.dropped == {2: DropReason.UNEXPECTED}
        result = cohort.check_result()
        assert (2 in result.survivors) == (kind not in (msg.AdvertiseKeys, msg.ShareKeys))

    def test_a_conflicting_second_unmask_response_drops_the_sender_and_the_sum_stays_exact(self):
        cohort = Cohort(make_config(n=7, threshold=4))
        _send_twice(cohort, msg.UnmaskResponse, 2, lambda m: _other_bytes(m, "seed_shares"))
        cohort.run()
        assert cohort.server.dropped == {2: DropReason.UNEXPECTED}
        assert cohort.check_result().survivors == tuple(range(7))

    def test_a_resend_of_an_earlier_rounds_message_is_ignored(self):
        cohort = Cohort()
        cohort.run_until(Round.MASKED_INPUT)
        cohort.server.receive(3, cohort.last("up", msg.AdvertiseKeys, 3))
        cohort.server.receive(3, cohort.last("up", msg.ShareKeys, 3))
        cohort.run()
        assert cohort.server.dropped == {}
        cohort.check_result()

    def test_a_resend_after_completion_is_ignored_but_anything_new_is_refused(self):
        cohort = Cohort()
        cohort.run()
        cohort.server.receive(1, cohort.last("up", msg.UnmaskResponse, 1))
        with pytest.raises(LocalProtocolError, match="receives nothing more"):
            cohort.server.receive(1, cohort.last("up", msg.UnmaskResponse, 2))

    def test_numpy_integer_sender_ids_are_accepted(self):
        cohort = Cohort()
        cohort.run()
        cohort.server.receive(np.int64(1), cohort.last("up", msg.UnmaskResponse, 1))
        with pytest.raises(TypeError):
            cohort.server.receive(True, b"")


def _assert_aborted_cleanly(cohort: Cohort) -> None:
    """The server aborted; no client revealed any share; result() raises."""
    assert cohort.server.round is Round.ABORTED and cohort.server.abort_reason
    assert not cohort.sent("up", msg.UnmaskResponse)
    with pytest.raises(AbortedError):
        cohort.server.result()
    with pytest.raises(LocalProtocolError):
        cohort.server.receive(0, b"")
    for i, c in enumerate(cohort.clients):
        if i not in cohort.server.dropped:
            assert c.state_name == "Aborted"


class TestCollectAdvertisements:
    def test_drops_an_advert_replayed_from_another_session(self):
        other = Cohort(make_config())
        other.begin()
        cohort = Cohort()
        cohort.up = _replace_up(msg.AdvertiseKeys, 2, lambda m: other.last("up", msg.AdvertiseKeys, 2))
        cohort.run()
        assert cohort.server.dropped == {2: DropReason.SESSION_MISMATCH}
        assert 2 not in cohort.check_result().survivors

    @pytest.mark.parametrize("junk", [b"", b"\xc1", b"\x93\xa6secagg\x01\x01"])
    def test_drops_malformed_bytes(self, junk):
        cohort = Cohort()
        cohort.up = _replace_up(msg.AdvertiseKeys, 3, lambda m: junk)
        cohort.run()
        assert cohort.server.dropped == {3: DropReason.MALFORMED}
        assert cohort.check_result().survivors == (0, 1, 2, 4, 5)

    def test_drops_a_message_that_names_another_sender(self):
        cohort = Cohort()
        cohort.up = _replace_up(msg.AdvertiseKeys, 3, lambda m: dataclasses.replace(m, sender=4))
        cohort.run()
        assert cohort.server.dropped[3] is DropReason.PROTOCOL_VIOLATION
        assert 3 not in cohort.check_result().survivors

    def test_drops_a_message_of_a_later_round(self):
        cohort = Cohort()
        early = msg.MaskedInput(0, bytes(32), b"", b"", bytes(64))
        cohort.up = _replace_up(msg.AdvertiseKeys, 0, lambda m: early)
        cohort.run()
        assert cohort.server.dropped == {0: DropReason.UNEXPECTED}
        cohort.check_result()

    def test_drops_a_client_that_aborts(self):
        cohort = Cohort()
        cohort.up = _replace_up(msg.AdvertiseKeys, 5, lambda m: msg.Abort("bye"))
        cohort.run()
        assert cohort.server.dropped == {5: DropReason.CLIENT_ABORTED}
        cohort.check_result()

    def test_ignores_everything_from_a_dropped_client(self):
        cohort = Cohort()
        cohort.begin()
        cohort.server.drop(4)
        cohort.server.receive(4, b"junk")
        assert cohort.server.dropped == {4: DropReason.TIMEOUT}
        assert 4 not in cohort.server.waiting_for

    @pytest.mark.parametrize("client", [-1, 6, 2**40, "3", 2.0])
    def test_drop_refuses_an_unknown_id(self, client):
        cohort = Cohort()
        cohort.begin()
        with pytest.raises((SecAggValueError, SecAggTypeError)):
            cohort.server.drop(client)
        assert cohort.server.dropped == {}

    def test_aborts_when_fewer_than_t_clients_advertise(self):
        cohort = Cohort(vanish={i: Round.ADVERTISE_KEYS for i in (0, 1, 2, 3)})
        cohort.run()
        _assert_aborted_cleanly(cohort)
        assert not cohort.sent("down", msg.KeyDirectory)
        assert cohort.server.dropped == dict.fromkeys((0, 1, 2, 3), DropReason.TIMEOUT)


class TestCollectShares:
    def test_drops_shares_replayed_from_another_session(self):
        other = Cohort(make_config())
        other.run_until(Round.MASKED_INPUT)
        cohort = Cohort()
        cohort.up = _replace_up(msg.ShareKeys, 2, lambda m: other.last("up", msg.ShareKeys, 2))
        cohort.run()
        assert cohort.server.dropped == {2: DropReason.SESSION_MISMATCH}
        assert cohort.check_result().survivors == (0, 1, 3, 4, 5)

    def test_drops_shares_not_addressed_to_exactly_its_neighbours(self):
        cohort = Cohort()

        def fewer(m):
            return dataclasses.replace(m, receivers=m.receivers[1:], ciphertexts=m.ciphertexts[1:])

        cohort.up = _replace_up(msg.ShareKeys, 1, fewer)
        cohort.run()
        assert cohort.server.dropped == {1: DropReason.PROTOCOL_VIOLATION}
        cohort.check_result()

    def test_drops_shares_with_a_wrong_field_type(self):
        cohort = Cohort()
        cohort.up = _replace_up(msg.ShareKeys, 0, lambda m: reencode(wire.encode(m), receivers=[1.5]))
        cohort.run()
        assert cohort.server.dropped == {0: DropReason.MALFORMED}
        cohort.check_result()


class TestCollectMaskedInputs:
    def test_drops_a_truncated_masked_input_and_leaves_it_out(self):
        cohort = Cohort()
        cohort.up = _replace_up(msg.MaskedInput, 4,
                                lambda m: dataclasses.replace(m, masked=m.masked[:-1]))
        cohort.run()
        assert cohort.server.dropped == {4: DropReason.MALFORMED}
        assert cohort.check_result().survivors == (0, 1, 2, 3, 5)

    def test_drops_a_masked_input_replayed_from_another_session(self):
        other = Cohort(make_config())
        other.run_until(Round.CONSISTENCY_CHECK)
        cohort = Cohort()
        cohort.up = _replace_up(msg.MaskedInput, 1, lambda m: other.last("up", msg.MaskedInput, 1))
        cohort.run()
        assert cohort.server.dropped == {1: DropReason.SESSION_MISMATCH}
        assert cohort.check_result().survivors == (0, 2, 3, 4, 5)

    def test_ignores_a_masked_input_from_a_client_that_never_shared(self):
        cohort = Cohort(vanish={5: Round.SHARE_KEYS})
        cohort.run_until(Round.MASKED_INPUT)
        late = msg.MaskedInput(5, cohort.session_id, b"\x00" * 8, b"", bytes(64))
        cohort.server.receive(5, wire.encode(late))
        cohort.run()
        assert cohort.server.dropped[5] is DropReason.TIMEOUT  # and it stays ignored
        assert cohort.check_result().survivors == (0, 1, 2, 3, 4)

    def test_aborts_and_reveals_nothing_when_too_few_inputs_arrive(self):
        cohort = Cohort(vanish={i: Round.MASKED_INPUT for i in (0, 1, 2)})
        cohort.run()
        _assert_aborted_cleanly(cohort)
        assert not cohort.sent("down", msg.ConsistencyRequest)


class TestCollectConsistency:
    def test_drops_a_signature_of_another_session(self):
        cohort = Cohort()
        cohort.up = _replace_up(msg.ConsistencySignature, 3,
                                lambda m: dataclasses.replace(m, session_id=crypto.random_bytes(32)))
        cohort.run()
        assert cohort.server.dropped == {3: DropReason.SESSION_MISMATCH}
        cohort.check_result()

    def test_aborts_and_reveals_nothing_when_too_few_sign(self):
        cohort = Cohort(vanish={i: Round.CONSISTENCY_CHECK for i in (1, 2, 3)})
        cohort.run()
        _assert_aborted_cleanly(cohort)
        assert not cohort.sent("down", msg.UnmaskRequest)


class TestCollectUnmasking:
    @staticmethod
    def _cohort_with_response(client: int, make) -> Cohort:
        cohort = Cohort(vanish={4: Round.MASKED_INPUT})
        cohort.up = _replace_up(msg.UnmaskResponse, client, make)
        cohort.run()
        return cohort

    def test_drops_a_response_with_seed_shares_of_a_dropped_client(self):
        def leak(m):
            return dataclasses.replace(m, seed_owners=m.seed_owners + m.key_owners,
                                       seed_shares=m.seed_shares + m.key_shares,
                                       key_owners=(), key_shares=())
        cohort = self._cohort_with_response(0, leak)
        assert cohort.server.dropped == {4: DropReason.TIMEOUT, 0: DropReason.PROTOCOL_VIOLATION}
        assert cohort.check_result().survivors == (0, 1, 2, 3, 5)

    def test_drops_a_response_with_key_shares_of_a_survivor(self):
        def leak(m):
            return dataclasses.replace(m, key_owners=m.key_owners + m.seed_owners[:1],
                                       key_shares=m.key_shares + m.seed_shares[:1],
                                       seed_owners=m.seed_owners[1:], seed_shares=m.seed_shares[1:])
        cohort = self._cohort_with_response(1, leak)
        assert cohort.server.dropped[1] is DropReason.PROTOCOL_VIOLATION
        cohort.check_result()

    def test_drops_a_response_with_wrongly_sized_shares(self):
        def short(m):
            return dataclasses.replace(m, seed_shares=tuple(s[:-1] for s in m.seed_shares))
        cohort = self._cohort_with_response(2, short)
        assert cohort.server.dropped[2] is DropReason.MALFORMED
        cohort.check_result()

    def test_a_corrupt_share_aborts_the_session_instead_of_escaping(self):
        # Client 0 sends a share value outside the field: the server must not raise it
        # from close_round; it either drops client 0 or aborts with a reason.
        def corrupt(m):
            bad = b"\xff" * shamir.SHARE_BYTES
            return dataclasses.replace(m, seed_shares=(bad, *m.seed_shares[1:]))
        cohort = self._cohort_with_response(0, corrupt)
        assert cohort.server.round in (Round.COMPLETED, Round.ABORTED)
        if cohort.server.round is Round.COMPLETED:
            assert cohort.server.dropped[0] in (DropReason.MALFORMED, DropReason.PROTOCOL_VIOLATION)
            cohort.check_result()
        else:
            with pytest.raises(AbortedError):
                cohort.server.result()

    def test_aborts_when_too_few_answer(self):
        cohort = Cohort(vanish={i: Round.UNMASKING for i in (0, 1, 2)})
        cohort.run()
        assert cohort.server.round is Round.ABORTED
        with pytest.raises(AbortedError):
            cohort.server.result()


class TestCompleted:
    def test_receives_nothing_and_has_no_round_to_close(self):
        cohort = Cohort()
        cohort.run()
        cohort.check_result()
        with pytest.raises(LocalProtocolError):
            cohort.server.receive(0, wire.encode(msg.Abort("late")))
        with pytest.raises(LocalProtocolError):
            cohort.server.close_round()

    def test_result_is_not_available_before_the_end(self):
        cohort = Cohort()
        cohort.run_until(Round.MASKED_INPUT)
        with pytest.raises(LocalProtocolError):
            cohort.server.result()


CASES = [
    ("complete", 6, 3, 0),
    ("harary", 10, 3, 4),
]


class TestSumUnderDropouts:
    @pytest.mark.parametrize("graph,n,t,k", CASES)
    @pytest.mark.parametrize("stage", ROUNDS, ids=lambda r: r.name.lower())
    def test_sum_is_exact_when_one_client_vanishes_at_each_stage(self, graph, n, t, k, stage):
        cohort = Cohort(n=n, threshold=t, graph=graph, degree=k, vanish={1: stage})
        cohort.run()
        result = cohort.check_result()
        counted = stage.value > Round.MASKED_INPUT.value
        assert (1 in result.survivors) is counted
        assert len(result.survivors) == n - (not counted)

    def test_sum_is_exact_with_dropouts_at_several_stages_at_once(self):
        vanish = {0: Round.ADVERTISE_KEYS, 3: Round.SHARE_KEYS, 5: Round.MASKED_INPUT,
                  7: Round.CONSISTENCY_CHECK, 9: Round.UNMASKING}
        cohort = Cohort(n=12, threshold=6, vanish=vanish, bits=20, length=5)
        cohort.run()
        assert cohort.check_result().survivors == (1, 2, 4, 6, 7, 8, 9, 10, 11)

    def test_sum_is_exact_without_the_consistency_check(self):
        cohort = Cohort(consistency_check=False, vanish={2: Round.MASKED_INPUT})
        cohort.run()
        assert cohort.check_result().survivors == (0, 1, 3, 4, 5)
        assert not cohort.sent("down", msg.ConsistencyRequest)

    def test_weights_and_values_decode_to_the_float_sum(self):
        cohort = Cohort(bits=32)
        x = np.linspace(-0.5, 0.5, cohort.config.vector_length * 6).reshape(6, -1)
        cohort.begin(inputs=False)
        for i, c in enumerate(cohort.clients):
            cohort.send_up(i, c.set_input(x[i], weight=1.0))
        cohort.run()
        result = cohort.server.result()
        assert result.weight_sum == pytest.approx(6.0, abs=1e-6)
        np.testing.assert_allclose(result.sum, x.sum(axis=0), atol=6 / cohort.config.scale)

