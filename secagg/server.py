"""The server side of SecAgg / SecAgg+, as a sans-I/O state machine.

``Server`` holds one state object per round (after Google's federated-compute
SecAgg server). The caller delivers client messages with ``receive`` and ends a
round with ``close_round`` (its deadline): clients that did not answer are
dropped as timed out. A client that misbehaves is dropped with a ``DropReason``
rather than raised, and the session aborts, revealing nothing, only when too
few clients remain for some neighbourhood to be unmasked.

Memory stays O(m + n*k): masked inputs are folded into one running sum mod 2^b
as they arrive, and the masks of the dropped are regenerated on several cores.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Set
from dataclasses import dataclass, field

import numpy as np

from secagg import crypto, derivation, packing, prg, shamir, wire
from secagg import messages as msg
from secagg.bindings import storage_dtype
from secagg.config import SecAggConfig
from secagg.errors import (
    AbortedError,
    LocalProtocolError,
    RemoteProtocolError,
    SecAggTypeError,
    ensure,
)
from secagg.graph import Graph
from secagg.identity import session_index
from secagg.rounds import Round, check_transition

__all__ = ["Server", "DropReason", "AggregationResult"]


class DropReason(enum.Enum):
    """Why the server stopped listening to a client."""

    TIMEOUT = "timed out"
    MALFORMED = "sent malformed bytes"
    UNEXPECTED = "sent a message out of turn"
    SESSION_MISMATCH = "sent a message of another session"
    PROTOCOL_VIOLATION = "broke the protocol"
    CLIENT_ABORTED = "aborted"


@dataclass(frozen=True)
class AggregationResult:
    """The outcome of a completed session.

    ``sum`` is decoded from ``raw``: each survivor's ``weight * input`` was clipped to
    ``[-clip, clip]`` and stochastically rounded, so each coordinate is within
    ``len(survivors) / scale`` of the exact clipped sum (``secagg.testing`` checks this).
    """

    sum: np.ndarray  #: float64 (m,): sum of clip(weight * input) over the survivors
    weight_sum: float  #: sum of the survivors' weights
    survivors: tuple[int, ...]  #: clients whose masked input is in the sum
    raw: np.ndarray  #: the unmasked integer sum mod 2^bits, weight element last


class _Drop(Exception):
    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class _ServerData:
    """Everything the server carries from round to round."""

    config: SecAggConfig
    config_digest: bytes
    threads: int
    dropped: dict[int, tuple[DropReason, str]] = field(default_factory=dict)
    adverts: dict[int, msg.AdvertiseKeys] = field(default_factory=dict)  # U1
    session_id: bytes = b""
    graph: Graph | None = None
    sharers: dict[int, msg.ShareKeys] = field(default_factory=dict)  # U2
    forwarded: dict[int, tuple[int, ...]] = field(default_factory=dict)  # whose shares each got
    attestations: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # (excluded, signature)
    total: np.ndarray | None = None
    survivors: list[int] = field(default_factory=list)  # U3: inputs in the sum, sorted
    counted: frozenset[int] = frozenset()  # U3 again, for membership tests
    survivors_wire: bytes = b""  # U3 as the IdSet that clients sign
    signatures: dict[int, bytes] = field(default_factory=dict)  # U4
    responses: dict[int, msg.UnmaskResponse] = field(default_factory=dict)  # U5
    result: AggregationResult | None = None

    def neighbours_in(self, client: int, group: Iterable[int]) -> list[int]:
        """The neighbours of ``client`` that are in ``group`` (sorted)."""
        members = group if isinstance(group, (set, dict, frozenset)) else set(group)
        assert self.graph is not None  # built when round 0 closes
        return [v for v in self.graph.neighbours(client) if v in members]

    def check_session(self, session_id: bytes) -> None:
        if session_id != self.session_id:
            raise _Drop(DropReason.SESSION_MISMATCH, "message of another session")


# --- states ---------------------------------------------------------------------


class ServerState:
    """Base state: receives nothing, cannot be closed."""

    round: Round

    def __init__(self, data: _ServerData) -> None:
        self.data = data

    @property
    def name(self) -> str:
        return type(self).__name__

    def expected(self) -> set[int]:
        """Clients from which a message is still awaited in this round."""
        return set()

    def receive(self, sender: int, message: msg.Message) -> None:
        raise _Drop(DropReason.UNEXPECTED, f"{type(message).__name__} in state {self.name}")

    def close(self) -> tuple[ServerState, dict[int, msg.Message]]:
        raise LocalProtocolError(f"no round to close in state {self.name}")


class CollectAdvertisements(ServerState):
    """Round 0: collect signed public keys."""

    round = Round.ADVERTISE_KEYS

    def expected(self) -> set[int]:
        return set(range(self.data.config.num_clients)) - set(self.data.adverts)

    def receive(self, sender: int, message: msg.Message) -> None:
        if not isinstance(message, msg.AdvertiseKeys) or sender in self.data.adverts:
            return super().receive(sender, message)
        if message.config_digest != self.data.config_digest:
            raise _Drop(DropReason.SESSION_MISMATCH, "advertisement for another configuration")
        self.data.adverts[sender] = message

    def close(self) -> tuple[ServerState, dict[int, msg.Message]]:
        d = self.data
        _require_quorum(d, len(d.adverts), "clients advertised keys")
        records = b"".join(d.adverts[u].record() for u in sorted(d.adverts))
        d.session_id = derivation.session_id(d.config_digest, records)
        d.graph = d.config.build_graph(d.session_id)
        directory = msg.KeyDirectory(d.config_digest, records)
        return CollectShares(d), {u: directory for u in d.adverts}


class CollectShares(ServerState):
    """Round 1: collect each client's encrypted shares, one per neighbour."""

    round = Round.SHARE_KEYS

    def expected(self) -> set[int]:
        return set(self.data.adverts) - set(self.data.sharers)

    def receive(self, sender: int, message: msg.Message) -> None:
        d = self.data
        if not isinstance(message, msg.ShareKeys) or sender in d.sharers or sender not in d.adverts:
            return super().receive(sender, message)
        d.check_session(message.session_id)
        if list(message.receivers) != d.neighbours_in(sender, d.adverts):
            raise _Drop(DropReason.PROTOCOL_VIOLATION, "shares not addressed to exactly its neighbours")
        d.sharers[sender] = message

    def close(self) -> tuple[ServerState, dict[int, msg.Message]]:
        d = self.data
        _require_quorum(d, len(d.sharers), "clients shared keys")
        inbox: dict[int, tuple[list[int], list[bytes]]] = {v: ([], []) for v in d.sharers}
        for u in sorted(d.sharers):
            share = d.sharers[u]
            for v, ciphertext in zip(share.receivers, share.ciphertexts, strict=True):
                if v in inbox:
                    inbox[v][0].append(u)
                    inbox[v][1].append(ciphertext)
        d.total = np.zeros(d.config.encoded_length, dtype=storage_dtype(d.config.bits))
        d.forwarded = {v: tuple(senders) for v, (senders, _) in inbox.items()}
        out: dict[int, msg.Message] = {
            v: msg.EncryptedShares(d.session_id, tuple(senders), tuple(cts))
            for v, (senders, cts) in inbox.items()
        }
        return CollectMaskedInputs(d), out


class CollectMaskedInputs(ServerState):
    """Round 2: fold each masked input into the running sum as it arrives."""

    round = Round.MASKED_INPUT

    def __init__(self, data: _ServerData) -> None:
        super().__init__(data)
        self._received: set[int] = set()
        self._mask = (1 << data.config.bits) - 1

    def expected(self) -> set[int]:
        return set(self.data.sharers) - self._received

    def receive(self, sender: int, message: msg.Message) -> None:
        d, cfg = self.data, self.data.config
        if not isinstance(message, msg.MaskedInput) or sender in self._received or sender not in d.sharers:
            return super().receive(sender, message)
        d.check_session(message.session_id)
        partners = set(d.forwarded[sender])
        assert d.graph is not None  # built when round 0 closes
        excluded = [v for v in d.graph.neighbours(sender) if v not in partners]
        if message.excluded != msg.encode_ids(excluded):
            raise _Drop(DropReason.PROTOCOL_VIOLATION, "masked with other partners than it was sent")
        try:
            vector = packing.unpack(message.masked, cfg.encoded_length, cfg.bits)
        except (ValueError, TypeError) as exc:
            raise _Drop(DropReason.MALFORMED, f"masked input: {exc}") from None
        d.attestations[sender] = (message.excluded, message.partner_signature)
        d.total += vector
        if cfg.bits not in (32, 64):
            d.total &= d.total.dtype.type(self._mask)
        self._received.add(sender)

    def close(self) -> tuple[ServerState, dict[int, msg.Message]]:
        d = self.data
        d.survivors = sorted(self._received)
        _require_quorum(d, len(d.survivors), "masked inputs arrived")
        d.counted = frozenset(d.survivors)
        d.survivors_wire = msg.encode_ids(d.survivors)
        _check_recoverable(d, d.counted)
        if d.config.consistency_check:
            request = msg.ConsistencyRequest(d.session_id, d.survivors_wire)
            return CollectConsistency(d), {u: request for u in d.survivors}
        return CollectUnmasking(d, d.counted), _unmask_requests(d, d.survivors, {})


class CollectConsistency(ServerState):
    """Round 3: collect signatures over the survivor set and pass them on."""

    round = Round.CONSISTENCY_CHECK

    def expected(self) -> set[int]:
        return set(self.data.survivors) - set(self.data.signatures)

    def receive(self, sender: int, message: msg.Message) -> None:
        d = self.data
        if (not isinstance(message, msg.ConsistencySignature) or sender in d.signatures
                or sender not in d.counted):
            return super().receive(sender, message)
        d.check_session(message.session_id)
        d.signatures[sender] = message.signature

    def close(self) -> tuple[ServerState, dict[int, msg.Message]]:
        d = self.data
        signers = set(d.signatures)
        _check_recoverable(d, signers)
        return CollectUnmasking(d, signers), _unmask_requests(d, sorted(signers), d.signatures)


class CollectUnmasking(ServerState):
    """Round 4: collect shares, reconstruct secrets, remove the masks, decode."""

    round = Round.UNMASKING

    def __init__(self, data: _ServerData, asked: Set[int]) -> None:
        super().__init__(data)
        self._asked = asked
        self._survivors = data.counted
        self._dropped = set(data.sharers) - self._survivors

    def expected(self) -> set[int]:
        return set(self._asked) - set(self.data.responses)

    def receive(self, sender: int, message: msg.Message) -> None:
        d = self.data
        if (not isinstance(message, msg.UnmaskResponse) or sender in d.responses
                or sender not in self._asked):
            return super().receive(sender, message)
        d.check_session(message.session_id)
        holders_of = set(d.neighbours_in(sender, d.sharers))
        if not set(message.seed_owners) <= (self._survivors & holders_of):
            raise _Drop(DropReason.PROTOCOL_VIOLATION, "seed shares of clients that did not survive")
        if not set(message.key_owners) <= (self._dropped & holders_of):
            raise _Drop(DropReason.PROTOCOL_VIOLATION, "key shares of clients that did not drop")
        if any(len(s) != shamir.SHARE_BYTES for s in message.seed_shares + message.key_shares):
            raise _Drop(DropReason.MALFORMED, f"shares must be {shamir.SHARE_BYTES} bytes")
        d.responses[sender] = message

    def close(self) -> tuple[ServerState, dict[int, msg.Message]]:
        d, cfg = self.data, self.data.config
        seed_shares: dict[int, dict[int, bytes]] = {v: {} for v in self._survivors}
        key_shares: dict[int, dict[int, bytes]] = {v: {} for v in self._dropped}
        for u, response in d.responses.items():
            for v, share in zip(response.seed_owners, response.seed_shares, strict=True):
                seed_shares[v][u + 1] = share
            for v, share in zip(response.key_owners, response.key_shares, strict=True):
                key_shares[v][u + 1] = share
        assert d.total is not None  # made when round 1 closes
        reconstruct = _Reconstruction(cfg.threshold)
        keys: list[bytes] = []
        signs: list[int] = []
        for v in sorted(self._survivors):
            seed = reconstruct(seed_shares[v], f"the self-mask seed of client {v}")
            keys.append(derivation.self_mask_key(seed, d.session_id))
            signs.append(-1)
        for v in sorted(self._dropped):
            partners = d.neighbours_in(v, self._survivors)
            if not partners:
                continue  # nobody counted masked with v
            secret = reconstruct(key_shares[v], f"the mask key of dropped client {v}")
            if crypto.kx_public_key(secret) != d.adverts[v].mask_public_key:
                raise AbortedError(f"shares of client {v}'s mask key are inconsistent")
            for u in partners:
                shared = crypto.kx_agree(secret, d.adverts[u].mask_public_key)
                keys.append(derivation.pair_mask_key(shared, d.session_id, u, v))
                signs.append(-derivation.pair_sign(u, v))
        prg.accumulate_masks(d.total, keys, signs, cfg.bits, threads=d.threads, cipher=cfg.cipher)
        values, weight = derivation.decode_sum(cfg, d.total)
        d.result = AggregationResult(values, weight, tuple(d.survivors), d.total)
        return Completed(d), {}


class Completed(ServerState):
    """The sum is known."""

    round = Round.COMPLETED


class Aborted(ServerState):
    """The session failed; nothing about any input was revealed."""

    round = Round.ABORTED

    def __init__(self, data: _ServerData, reason: str) -> None:
        super().__init__(data)
        self.reason = reason


class _Reconstruction:
    """Shamir reconstruction from the first t shares, sharing Lagrange coefficients per x-set."""

    def __init__(self, threshold: int) -> None:
        self._t = threshold
        self._cache: dict[tuple[int, ...], shamir.Reconstructor] = {}

    def __call__(self, shares: dict[int, bytes], what: str) -> bytes:
        if len(shares) < self._t:
            raise AbortedError(f"only {len(shares)} shares of {what}; need t={self._t}")
        xs = tuple(sorted(shares)[: self._t])
        if xs not in self._cache:
            self._cache[xs] = shamir.Reconstructor(xs)
        try:
            return self._cache[xs].reconstruct([shares[x] for x in xs])
        except shamir.InvalidShareError as exc:  # a client sent a bad share: abort, don't escape
            raise AbortedError(f"shares of {what} are inconsistent: {exc}") from None


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise AbortedError(reason)


def _require_quorum(d: _ServerData, count: int, what: str) -> None:
    """At least t clients must remain: the same rule as the planner's and each client's."""
    t = d.config.threshold
    _require(count >= t, f"only {count} {what}; need at least t={t}")


def _check_recoverable(d: _ServerData, helpers: Set[int]) -> None:
    """Abort early, revealing nothing, unless every client would answer the unmasking.

    Mirrors the clients' rules (``client.Unmasking``): every needed secret of u needs t
    of u's neighbours among ``helpers`` (the signers, or the survivors before they
    sign); a survivor's seed also needs t partners that survived and are so covered.
    """
    t = d.config.threshold
    survivors = d.counted
    covered: dict[int, bool] = {}

    def endorsed(u: int) -> bool:
        if u not in covered:
            covered[u] = len(d.neighbours_in(u, helpers)) >= t
        return covered[u]

    for v in sorted(d.sharers):
        if v in survivors:
            good = sum(1 for p in d.forwarded.get(v, ()) if p in survivors and endorsed(p))
            if not endorsed(v) or good < t:
                raise AbortedError(
                    f"client {v} has fewer than t={t} neighbours or partners left to unmask it; aborting"
                )
        elif d.neighbours_in(v, survivors) and not endorsed(v):
            raise AbortedError(
                f"client {v} has fewer than t={t} neighbours left to unmask it; aborting"
            )


def _unmask_requests(
    d: _ServerData, asked: list[int], signatures: dict[int, bytes]
) -> dict[int, msg.Message]:
    """Each asked client's request: the sets, signatures within 3 hops, partner attestations."""
    dropped = msg.encode_ids(sorted(set(d.sharers) - d.counted))
    out: dict[int, msg.Message] = {}
    assert d.graph is not None  # built when round 0 closes
    for u in asked:
        signers = tuple(v for v in d.graph.ball(u, 3) if v in signatures) if signatures else ()
        attested = tuple(v for v in d.forwarded[u] if v in d.counted)
        out[u] = msg.UnmaskRequest(
            d.session_id, d.survivors_wire, dropped, signers, tuple(signatures[s] for s in signers),
            attested,
            tuple(d.attestations[v][0] for v in attested),
            tuple(d.attestations[v][1] for v in attested),
        )
    return out


# --- facade -------------------------------------------------------------------


class Server:
    """The server of one secure-aggregation session.

    Deliver each client's bytes with ``receive(sender, data)``, then call
    ``close_round()`` at the round's deadline (or once ``waiting_for`` is empty)
    and send each returned message to its client. After the last round,
    ``result()`` gives the sum; if the session aborted it raises ``AbortedError``.

    ``threads`` is how many threads regenerate the masks of the unmasking round
    (default: every CPU); it changes the speed only, never the result.
    """

    def __init__(self, config: SecAggConfig, *, threads: int | None = None) -> None:
        ensure(isinstance(config, SecAggConfig), "config must be a SecAggConfig",
               raising=SecAggTypeError)
        threads = threads if threads is not None else (os.cpu_count() or 1)
        ensure(type(threads) is int and threads >= 1, "threads must be a positive int")
        self._state: ServerState = CollectAdvertisements(_ServerData(config, config.digest(), threads))
        #: client -> digests of the messages accepted from it (to ignore redeliveries).
        self._accepted: dict[int, set[bytes]] = {}

    @property
    def state_name(self) -> str:
        """The name of the current state class (``CollectAdvertisements`` ... ``Completed``, ``Aborted``)."""
        return self._state.name

    @property
    def round(self) -> Round:
        """The round being collected, or ``COMPLETED`` / ``ABORTED``."""
        return self._state.round

    @property
    def dropped(self) -> dict[int, DropReason]:
        """Clients the server no longer listens to, with the reason."""
        return {c: reason for c, (reason, _) in self._state.data.dropped.items()}

    @property
    def waiting_for(self) -> set[int]:
        """Clients whose message for the current round has not arrived."""
        return self._state.expected() - set(self._state.data.dropped)

    @property
    def abort_reason(self) -> str | None:
        """Why the session aborted (also sent to every live client); None unless it did."""
        return self._state.reason if isinstance(self._state, Aborted) else None

    def receive(self, sender: int, data: bytes) -> None:
        """Take one message from client ``sender`` (as authenticated by the transport).

        A byte-identical copy of a message already accepted from ``sender`` (in
        this round or an earlier one) is ignored, so an at-least-once transport
        may deliver twice; a *different* second message for a round drops the
        sender (``DropReason.UNEXPECTED``). Messages from a dropped client are
        ignored. After the session completed or aborted only such duplicates are
        accepted; anything else raises ``LocalProtocolError``.
        """
        cfg = self._state.data.config
        sender = session_index(sender, cfg.num_clients, "sender")
        digest = wire.message_digest(data)
        if digest is not None and digest in self._accepted.get(sender, ()):
            return  # a redelivery of what was already processed: idempotent
        if isinstance(self._state, (Completed, Aborted)):
            raise LocalProtocolError(f"the server is {self.state_name}: it receives nothing more")
        if sender in self._state.data.dropped:
            return
        try:
            message = wire.decode(data)
            if isinstance(message, msg.Abort):
                raise _Drop(DropReason.CLIENT_ABORTED, message.reason)
            if getattr(message, "sender", sender) != sender:
                raise _Drop(DropReason.PROTOCOL_VIOLATION, "message names another sender")
            self._state.receive(sender, message)
        except _Drop as drop:
            self.drop(sender, drop.reason, str(drop))
        except RemoteProtocolError as exc:
            self.drop(sender, DropReason.MALFORMED, str(exc))
        else:
            if digest is not None:
                self._accepted.setdefault(sender, set()).add(digest)

    def drop(self, client: int, reason: DropReason = DropReason.TIMEOUT, detail: str = "") -> None:
        """Stop listening to ``client``: the caller's transport saw it vanish.

        Optional: ``close_round`` drops every client that has not answered. Call it
        when the transport knows earlier (connection closed, worker killed), so that
        ``waiting_for`` empties and the round can close before its deadline. A
        dropped client's later messages are ignored; the first reason is kept.
        """
        client = session_index(client, self._state.data.config.num_clients, "client")
        ensure(isinstance(reason, DropReason), f"reason must be a DropReason, got {reason!r}",
               raising=SecAggTypeError)
        self._state.data.dropped.setdefault(client, (reason, detail))

    def close_round(self) -> dict[int, bytes]:
        """End the current round; returns the messages to send, by client id."""
        for client in self.waiting_for:
            self.drop(client, DropReason.TIMEOUT)
        data = self._state.data
        try:
            state, out = self._state.close()
        except AbortedError as exc:
            state, out = Aborted(data, str(exc)), {}
            alive = set(range(data.config.num_clients)) - set(data.dropped)
            out = dict.fromkeys(alive, msg.Abort(str(exc)[:1000]))
        check_transition(self._state.round, state.round)
        self._state = state
        live = {c: m for c, m in out.items() if c not in data.dropped}
        encoded: dict[int, bytes] = {}
        cache: dict[int, bytes] = {}
        for client, message in live.items():
            key = id(message)
            if key not in cache:
                cache[key] = wire.encode(message)
            encoded[client] = cache[key]
        return encoded

    def result(self) -> AggregationResult:
        """The aggregate; raises ``AbortedError`` if the session aborted."""
        if isinstance(self._state, Aborted):
            raise AbortedError(self._state.reason)
        if not isinstance(self._state, Completed):
            raise LocalProtocolError(f"no result yet: the server is in state {self.state_name}")
        assert self._state.data.result is not None  # set on entering Completed
        return self._state.data.result
