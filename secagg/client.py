"""The client side of SecAgg / SecAgg+, as a sans-I/O state machine.

``Client`` is a thin facade over one state object per round (after Google's
federated-compute SecAgg client): each state accepts only what is legal in its
round and returns ``(next_state, message_or_None)``; the base class refuses
everything else, naming the state. The facade swaps states, encodes messages
and, after any ``ProtocolError``, leaves the client ``Aborted``.

Nothing here touches sockets or clocks: ``start`` / ``set_input`` / ``handle``
take and return bytes addressed to the server.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import msgpack
import numpy as np

from secagg import crypto, derivation, packing, prg, shamir, wire
from secagg import messages as msg
from secagg.bindings import storage_dtype
from secagg.config import SecAggConfig
from secagg.errors import (
    AbortedError,
    BadSignatureError,
    DecryptionError,
    IdentityError,
    LocalProtocolError,
    MaliciousServerError,
    ProtocolError,
    SecAggTypeError,
    SecAggValueError,
    SessionMismatchError,
    UnexpectedMessageError,
    ensure,
)
from secagg.graph import Graph
from secagg.identity import fingerprint, session_index, verify_key_of
from secagg.rounds import Round, check_transition

__all__ = ["Client", "IdentityLookup"]

#: The application's source of truth for peers' long-term Ed25519 verify keys:
#: a sequence indexed by client id, or a function of the id.
IdentityLookup = Sequence[bytes] | Callable[[int], bytes]


@dataclass
class _Peer:
    """What a client knows of one neighbour that advertised keys."""

    share_key: bytes  # AEAD key for shares between us, derived from the enc key agreement
    mask_key: bytes  # ChaCha20 key of our pair mask, derived from the mask key agreement


@dataclass
class _ClientData:
    """Everything a client carries from round to round (handed from state to state)."""

    config: SecAggConfig
    config_digest: bytes
    me: int
    identity_key: bytes
    identities: IdentityLookup
    mask_keys: crypto.KeyPair | None = None
    enc_keys: crypto.KeyPair | None = None
    session_id: bytes = b""
    graph: Graph | None = None
    peers: dict[int, _Peer] = field(default_factory=dict)
    self_seed: bytes = b""
    held_shares: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    encoded_input: np.ndarray | None = None
    survivors: bytes | None = None  # the IdSet signed in the consistency check
    handled: set[bytes] = field(default_factory=set)  # digests of the server messages handled
    late_abort: str | None = None  # a server Abort received after completing

    @property
    def partners(self) -> set[int]:
        """The neighbours I masked with: exactly those whose shares I hold."""
        return set(self.held_shares)

    def wipe(self) -> None:
        """Forget every secret of the session (on completion or abort).

        Python ``bytes`` cannot be overwritten in place, so keys and shares are dropped
        (their last reference goes); the encoded input, a numpy buffer, is zeroed first.
        """
        if self.encoded_input is not None:
            self.encoded_input.fill(0)
        self.encoded_input = None
        self.mask_keys = self.enc_keys = None
        self.self_seed = b""
        self.peers.clear()
        self.held_shares.clear()

    def identity(self, client: int) -> bytes:
        """The application-given identity verify key of ``client``.

        Whatever goes wrong in the application's lookup (an exception, or not 32
        bytes back) becomes an ``IdentityError``, which aborts this client.
        """
        try:
            key = self.identities(client) if callable(self.identities) else self.identities[client]
        except IdentityError:
            raise
        except Exception as exc:  # the lookup is application code: any failure aborts, typed
            raise IdentityError(
                f"the identity lookup failed for client {client}: {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(key, bytes) or len(key) != crypto.SIGN_PUBLIC_BYTES:
            raise IdentityError(
                f"the identity lookup returned {type(key).__name__} for client {client}; "
                f"expected a {crypto.SIGN_PUBLIC_BYTES}-byte Ed25519 verify key"
            )
        return key

    def verify(self, client: int, payload: bytes, signature: bytes, what: str) -> None:
        """Check ``client``'s signature over ``payload`` against its roster key, naming both."""
        key = self.identity(client)
        try:
            crypto.verify(key, payload, signature)
        except BadSignatureError:
            raise BadSignatureError(
                f"{what} of client {client} does not verify under its roster key "
                f"{fingerprint(key)}… (forged, or the roster entry is stale)"
            ) from None

    def check_session(self, session_id: bytes) -> None:
        if session_id != self.session_id:
            raise SessionMismatchError("message belongs to another session")


# --- states ---------------------------------------------------------------------


class ClientState:
    """Base state: every operation is refused, naming the state."""

    round: Round

    def __init__(self, data: _ClientData) -> None:
        self.data = data

    @property
    def name(self) -> str:
        return type(self).__name__

    def start(self) -> tuple[ClientState, msg.Message | None]:
        raise LocalProtocolError(f"cannot start: the client is in state {self.name}")

    def set_input(self, encoded: np.ndarray) -> tuple[ClientState, msg.Message | None]:
        raise LocalProtocolError(f"cannot set the input in state {self.name}")

    def handle(self, message: msg.Message) -> tuple[ClientState, msg.Message | None]:
        raise UnexpectedMessageError(
            f"{type(message).__name__} is not expected in state {self.name}"
        )


class _AliveState(ClientState):
    """A state in which the session is still going: input may be set once."""

    def set_input(self, encoded: np.ndarray) -> tuple[ClientState, msg.Message | None]:
        if self.data.encoded_input is not None:
            raise LocalProtocolError("the input was already set")
        self.data.encoded_input = encoded
        return self, None


class AdvertiseKeys(_AliveState):
    """Round 0: make two fresh X25519 key pairs and advertise them, signed."""

    round = Round.ADVERTISE_KEYS

    def start(self) -> tuple[ClientState, msg.Message]:
        d = self.data
        d.mask_keys = crypto.generate_kx_keypair()
        d.enc_keys = crypto.generate_kx_keypair()
        payload = derivation.advert_payload(d.config_digest, d.me, d.mask_keys.public, d.enc_keys.public)
        advert = msg.AdvertiseKeys(
            sender=d.me,
            config_digest=d.config_digest,
            mask_public_key=d.mask_keys.public,
            enc_public_key=d.enc_keys.public,
            signature=crypto.sign(d.identity_key, payload),
        )
        return ShareKeys(d), advert


class ShareKeys(_AliveState):
    """Round 1: check the key directory, then send Shamir shares to each neighbour."""

    round = Round.SHARE_KEYS

    def handle(self, message: msg.Message) -> tuple[ClientState, msg.Message | None]:
        if not isinstance(message, msg.KeyDirectory):
            return super().handle(message)
        d, cfg = self.data, self.data.config
        assert d.mask_keys is not None and d.enc_keys is not None  # made by start()
        if message.config_digest != d.config_digest:
            raise SessionMismatchError("key directory is for another configuration or session")
        mine = message.entry(d.me)
        if mine is None or (mine.mask_public_key, mine.enc_public_key) != (
            d.mask_keys.public, d.enc_keys.public,
        ):
            raise MaliciousServerError("the key directory does not carry my own keys")
        _check_directory(d, message)
        d.session_id = derivation.session_id(d.config_digest, message.records)
        d.graph = cfg.build_graph(d.session_id)
        for v in d.graph.neighbours(d.me):
            entry = message.entry(v)
            if entry is None:
                continue  # v dropped out before advertising: left out, nothing to recover
            if {entry.mask_public_key, entry.enc_public_key} & {d.mask_keys.public, d.enc_keys.public}:
                raise MaliciousServerError(f"client {v} advertises my own public key")
            # Both agreements now, so that a low-order or invalid key of either kind is
            # refused before any share leaves this client.
            share_secret = crypto.kx_agree(d.enc_keys.secret, entry.enc_public_key)
            mask_secret = crypto.kx_agree(d.mask_keys.secret, entry.mask_public_key)
            d.peers[v] = _Peer(
                share_key=derivation.share_key(share_secret, d.session_id),
                mask_key=derivation.pair_mask_key(mask_secret, d.session_id, d.me, v),
            )
        if len(d.peers) < cfg.threshold:
            raise AbortedError(
                f"only {len(d.peers)} neighbours advertised keys; threshold is {cfg.threshold}"
            )
        d.self_seed = crypto.random_bytes(shamir.SECRET_BYTES)
        holders = sorted(d.peers)
        xs = [v + 1 for v in holders]
        seed_shares = shamir.split(d.self_seed, xs, cfg.threshold)
        key_shares = shamir.split(d.mask_keys.secret, xs, cfg.threshold)
        ciphertexts = tuple(
            crypto.aead_encrypt(
                d.peers[v].share_key,
                derivation.pack_share_plaintext(d.me, v, s, k),
                derivation.share_associated_data(d.session_id, d.me, v),
            )
            for v, s, k in zip(holders, seed_shares, key_shares, strict=True)
        )
        out = msg.ShareKeys(d.me, d.session_id, tuple(holders), ciphertexts)
        # Both secret keys now live only as shares and derived keys: forget them.
        d.mask_keys = d.enc_keys = None
        return MaskedInput(d), out


class MaskedInput(_AliveState):
    """Round 2: keep the shares received, then send the masked input once it is set."""

    round = Round.MASKED_INPUT

    def __init__(self, data: _ClientData) -> None:
        super().__init__(data)
        self._shares_received = False

    def handle(self, message: msg.Message) -> tuple[ClientState, msg.Message | None]:
        if not isinstance(message, msg.EncryptedShares) or self._shares_received:
            return super().handle(message)
        d, cfg = self.data, self.data.config
        d.check_session(message.session_id)
        strangers = set(message.senders) - set(d.peers)
        if strangers:
            raise MaliciousServerError(f"shares from non-neighbours {sorted(strangers)[:5]}")
        if len(message.senders) < cfg.threshold:
            raise AbortedError(
                f"only {len(message.senders)} neighbours shared keys; threshold is {cfg.threshold}"
            )
        for v, ciphertext in zip(message.senders, message.ciphertexts, strict=True):
            plaintext = crypto.aead_decrypt(
                d.peers[v].share_key, ciphertext,
                derivation.share_associated_data(d.session_id, v, d.me),
            )
            seed_share, key_share = derivation.unpack_share_plaintext(plaintext, v, d.me)
            try:
                shamir.check_share(seed_share)
                shamir.check_share(key_share)
            except shamir.InvalidShareError as exc:
                raise shamir.InvalidShareError(f"shares from client {v}: {exc}") from None
            d.held_shares[v] = (seed_share, key_share)
        self._shares_received = True
        if d.encoded_input is None:
            return self, None
        return self._send()

    def set_input(self, encoded: np.ndarray) -> tuple[ClientState, msg.Message | None]:
        state, _ = super().set_input(encoded)
        if not self._shares_received:
            return state, None
        return self._send()

    def _send(self) -> tuple[ClientState, msg.Message]:
        d, cfg = self.data, self.data.config
        assert d.encoded_input is not None and d.graph is not None  # set_input and ShareKeys ran
        partners = sorted(d.partners)  # exactly the neighbours that shared with us
        keys = [derivation.self_mask_key(d.self_seed, d.session_id)]
        keys += [d.peers[v].mask_key for v in partners]
        signs = [1] + [derivation.pair_sign(d.me, v) for v in partners]
        masked = d.encoded_input.copy()
        prg.accumulate_masks(masked, keys, signs, cfg.bits, cipher=cfg.cipher)
        # Sign whom I masked with: peers reveal my self-mask seed only if enough of these
        # partners survive in a view the partners' own neighbourhoods endorsed.
        signature = crypto.sign(
            d.identity_key,
            derivation.partners_payload(d.session_id, d.me, msg.encode_ids(partners)),
        )
        excluded = msg.encode_ids(sorted(set(d.graph.neighbours(d.me)) - d.partners))
        out = msg.MaskedInput(d.me, d.session_id, packing.pack(masked, cfg.bits), excluded, signature)
        d.encoded_input.fill(0)  # the plaintext input is no longer needed
        d.encoded_input = None
        d.self_seed = b""  # its shares are with my neighbours; the seed itself is not needed
        for peer in d.peers.values():
            peer.mask_key = b""
        nxt = ConsistencyCheck(d) if cfg.consistency_check else Unmasking(d)
        return nxt, out


class ConsistencyCheck(ClientState):
    """Round 3: sign the set of clients whose masked input the server counted."""

    round = Round.CONSISTENCY_CHECK

    def handle(self, message: msg.Message) -> tuple[ClientState, msg.Message | None]:
        if not isinstance(message, msg.ConsistencyRequest):
            return super().handle(message)
        d = self.data
        d.check_session(message.session_id)
        listed = msg.decode_ids(message.survivors)
        _check_counted(d, listed)
        _check_enough(d, _among(listed, d.partners), "in the consistency check")
        d.survivors = message.survivors
        signature = crypto.sign(
            d.identity_key, derivation.consistency_payload(d.session_id, message.survivors)
        )
        return Unmasking(d), msg.ConsistencySignature(d.me, d.session_id, signature)


class Unmasking(ClientState):
    """Round 4: reveal seed shares of survivors and key shares of the dropped, never both.

    What each share needs before it leaves (docs/security.md, "Unmasking rules"):

    - every secret of owner u: the survivor set was *endorsed* for u, i.e. signed by at
      least t of u's neighbours (with the consistency check);
    - the self-mask seed of a survivor u, in addition: u's signed partner set (from its
      masked input) holds at least t survivors that are themselves endorsed. With fewer
      than t corrupt neighbours one of them is honest, and its mask key cannot be
      revealed in any other endorsed view, so u's input never stands alone.
    """

    round = Round.UNMASKING

    def handle(self, message: msg.Message) -> tuple[ClientState, msg.Message | None]:
        if not isinstance(message, msg.UnmaskRequest):
            return super().handle(message)
        d, cfg = self.data, self.data.config
        d.check_session(message.session_id)
        listed = msg.decode_ids(message.survivors)
        both = np.intersect1d(listed, msg.decode_ids(message.dropped), assume_unique=True)
        if both.size:
            raise MaliciousServerError(
                f"clients {both[:5].tolist()} are listed both as survivors and dropped"
            )
        if cfg.consistency_check and message.survivors != d.survivors:
            raise MaliciousServerError("the survivors differ from the set I signed")
        _check_counted(d, listed)
        survivors = _among(listed, d.held_shares)
        dropped = _among(msg.decode_ids(message.dropped), d.held_shares)
        _check_enough(d, _among(listed, d.partners), "among the survivors")
        endorsed = self._endorsement(message, listed)
        partners_of = self._attested_partners(message, survivors)
        for v in sorted(survivors):
            if not endorsed(np.array([v]))[0]:
                raise AbortedError(
                    f"fewer than t={cfg.threshold} of client {v}'s neighbours confirmed the survivors"
                )
            alive = partners_of[v][_member(listed, partners_of[v])]
            good = int(np.count_nonzero(endorsed(alive)))
            if good < cfg.threshold:
                raise AbortedError(
                    f"client {v} masked with only {good} confirmed survivors; "
                    f"revealing its seed needs t={cfg.threshold}"
                )
        seed_owners = sorted(survivors)
        gone = np.array(sorted(dropped), dtype=np.int64)
        key_owners = gone[endorsed(gone)].tolist()  # an honest server needs no others
        out = msg.UnmaskResponse(
            sender=d.me,
            session_id=d.session_id,
            seed_owners=tuple(seed_owners),
            seed_shares=tuple(d.held_shares[v][0] for v in seed_owners),
            key_owners=tuple(key_owners),
            key_shares=tuple(d.held_shares[v][1] for v in key_owners),
        )
        return Completed(d), out

    def _endorsement(
        self, message: msg.UnmaskRequest, listed: np.ndarray
    ) -> Callable[[np.ndarray], np.ndarray]:
        """Check the consistency signatures; return "was the survivor set endorsed for u?".

        The returned function maps an id array to a bool array. Without the consistency
        check nothing is signed and every client counts as endorsed: that mode defends
        only against an honest-but-curious server.
        """
        d = self.data
        t, graph = d.config.threshold, d.graph
        if not d.config.consistency_check:
            return lambda ids: np.ones(len(ids), dtype=bool)
        assert graph is not None and d.survivors is not None  # set in ShareKeys and ConsistencyCheck
        reach = set(graph.ball(d.me, 3))
        payload = derivation.consistency_payload(d.session_id, d.survivors)
        for signer, signature in zip(message.signers, message.signatures, strict=True):
            if signer not in reach:
                raise MaliciousServerError(f"consistency signature from {signer}, more than 3 hops away")
            d.verify(signer, payload, signature, "the consistency signature")
        signed = np.unique(np.array(message.signers, dtype=np.int64))
        if not _member(listed, signed).all():
            raise MaliciousServerError("a consistency signature from a client that did not survive")
        if graph.kind == "complete":  # u's neighbours are everyone else: O(1) per u
            return lambda ids: signed.size - _member(signed, ids) >= t
        signed_set = set(signed.tolist())
        cache: dict[int, bool] = {}

        def endorsed_one(u: int) -> bool:
            if u not in cache:
                cache[u] = sum(1 for v in graph.neighbours(u) if v in signed_set) >= t
            return cache[u]

        return lambda ids: np.array([endorsed_one(u) for u in ids.tolist()], dtype=bool)

    def _attested_partners(self, message: msg.UnmaskRequest, survivors: set[int]) -> dict[int, np.ndarray]:
        """Each surviving owner's partner set (sorted ids), as it signed it with its masked input."""
        d = self.data
        assert d.graph is not None  # set in ShareKeys
        given = dict(zip(message.attested, zip(message.exclusions, message.attestations, strict=True),
                         strict=True))
        out: dict[int, np.ndarray] = {}
        for v in survivors:
            if v not in given:
                raise MaliciousServerError(f"no signed partner set of survivor {v}")
            excluded, signature = given[v]
            neighbours = np.array(d.graph.neighbours(v), dtype=np.int64)
            excluded_ids = msg.decode_ids(excluded)
            if not _member(neighbours, excluded_ids).all():
                raise MaliciousServerError(f"client {v}'s excluded partners are not its neighbours")
            partners = neighbours[~_member(excluded_ids, neighbours)]
            d.verify(
                v, derivation.partners_payload(d.session_id, v, msg.encode_ids(partners)), signature,
                "the signed partner set",
            )
            out[v] = partners
        return out


class Completed(ClientState):
    """The client has done its part; the server can finish without it. Holds no secret."""

    round = Round.COMPLETED

    def __init__(self, data: _ClientData) -> None:
        super().__init__(data)
        data.wipe()


class Aborted(ClientState):
    """The session failed for this client; it will reveal nothing more."""

    round = Round.ABORTED

    def __init__(self, data: _ClientData, reason: str) -> None:
        super().__init__(data)
        self.reason = reason
        data.wipe()


def _among(ids: np.ndarray, clients: Iterable[int]) -> set[int]:
    """Those of ``clients`` listed in the sorted id array ``ids`` (O(k log n), not O(n))."""
    wanted = np.fromiter(clients, dtype=np.int64)
    return set(wanted[_member(ids, wanted)].tolist())


def _member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """For each of ``ids``, whether it is in the sorted array ``sorted_ids`` (vectorised)."""
    if not sorted_ids.size:
        return np.zeros(len(ids), dtype=bool)
    at = np.searchsorted(sorted_ids, ids).clip(max=sorted_ids.size - 1)
    hit: np.ndarray = sorted_ids[at] == ids
    return hit


def _check_enough(d: _ClientData, survivors: set[int], where: str) -> None:
    """Refuse to go on unless at least t of my partners survived (Bonawitz's |U| >= t).

    ``survivors`` holds only partners: the neighbours I masked with (see ``_among``).
    """
    alive = len(survivors)
    if alive < d.config.threshold:
        raise AbortedError(
            f"only {alive} of the neighbours I masked with are {where}; threshold is {d.config.threshold}"
        )


def _check_counted(d: _ClientData, survivors: np.ndarray) -> None:
    """A client the server counts as dropped has its mask key revealed: it must say nothing more."""
    if not _among(survivors, (d.me,)):
        raise MaliciousServerError("the server lists me as dropped but asks me to go on")


def _check_directory(d: _ClientData, directory: msg.KeyDirectory) -> None:
    """Every record must be a real round-0 advert of this session: ids in [0, n), signed.

    The session id (and so the SecAgg+ graph) hashes every record, so an unchecked
    record would give the server a free re-roll of the graph. Each record's id is
    looked up in the roster (a bad lookup is a typed error naming the id); the
    signatures are checked by ``_directory_verifies``, and on failure again one by
    one, so that the error names the forged record.
    """
    directory.check_ids(d.config.num_clients)
    ids = directory.ids.tolist()
    keys = b"".join(d.identity(row_id) for row_id in ids)
    if _directory_verifies(d.config_digest, directory.records, keys):
        return
    for row_id in ids:
        entry = directory.entry(row_id)
        assert entry is not None  # row_id is one of the directory's ids
        payload = derivation.advert_payload(
            d.config_digest, row_id, entry.mask_public_key, entry.enc_public_key
        )
        d.verify(row_id, payload, entry.signature, "the key advertisement")
    raise AssertionError("unreachable: some record failed to verify")  # pragma: no cover


@functools.lru_cache(maxsize=16)
def _directory_verifies(config_digest: bytes, records: bytes, keys: bytes) -> bool:
    """Whether every advert in ``records`` verifies under its key (``keys``, in record order).

    A pure function of its three byte strings, cached per process: every client of a
    session checks the same directory against the same roster, so a process running
    many clients (a simulation, a test suite) checks each record once, and the O(n)
    hashing is not repeated n times. A deployed client pays n verifications once.
    """
    table = np.frombuffer(records, dtype=msg.KEY_RECORD_DTYPE)
    for i, row in enumerate(table):
        payload = derivation.advert_payload(
            config_digest, int(row["id"]), row["mask_pk"].tobytes(), row["enc_pk"].tobytes()
        )
        try:
            crypto.verify(keys[32 * i : 32 * i + 32], payload, row["signature"].tobytes())
        except BadSignatureError:
            return False
    return True


# --- facade -------------------------------------------------------------------


class Client:
    """One client of a secure-aggregation session.

    ``identity_key`` is this client's long-term Ed25519 signing key (32-byte seed);
    ``identities`` gives every peer's verify key, from the application, so that
    the server cannot substitute keys.
    """

    def __init__(
        self,
        config: SecAggConfig,
        client_id: int,
        identity_key: bytes,
        identities: IdentityLookup,
    ) -> None:
        ensure(isinstance(config, SecAggConfig), "config must be a SecAggConfig",
               raising=SecAggTypeError)
        client_id = session_index(client_id, config.num_clients, "client_id")
        ensure(isinstance(identity_key, bytes) and len(identity_key) == crypto.SIGN_SECRET_BYTES,
               f"identity_key must be a {crypto.SIGN_SECRET_BYTES}-byte Ed25519 seed",
               raising=SecAggTypeError)
        ensure(callable(identities) or isinstance(identities, Sequence),
               "identities must be a sequence of verify keys or a function of the client id",
               raising=SecAggTypeError)
        data = _ClientData(config, config.digest(), client_id, identity_key, identities)
        _check_own_identity(data)
        self._state: ClientState = AdvertiseKeys(data)

    @property
    def state_name(self) -> str:
        """The name of the current state class (``AdvertiseKeys`` ... ``Completed``, ``Aborted``)."""
        return self._state.name

    @property
    def round(self) -> Round:
        """The round this client is in, or ``COMPLETED`` / ``ABORTED``."""
        return self._state.round

    @property
    def abort_reason(self) -> str | None:
        """Why this client aborted (its own check, the application, or the server); None if it did not."""
        return self._state.reason if isinstance(self._state, Aborted) else None

    @property
    def late_abort_reason(self) -> str | None:
        """The reason of a server ``Abort`` that reached this client after it completed, if any."""
        return self._state.data.late_abort

    def start(self) -> bytes:
        """Begin the session: returns the round-0 message for the server."""
        out = self._step(lambda s: s.start())
        assert out is not None  # AdvertiseKeys.start always answers
        return out

    def set_input(self, x: np.ndarray, weight: float = 1.0) -> bytes | None:
        """Give this client's vector and weight; returns the masked input if it is due now.

        ``weight * x`` is clipped to ``[-clip, clip]`` and encoded; ``weight`` must be
        in ``[0, max_weight]``.
        """
        cfg = self._state.data.config
        arr = np.asarray(x)
        ensure(arr.ndim == 1 and arr.shape[0] == cfg.vector_length,
               f"input must be a vector of length {cfg.vector_length}, got shape {arr.shape}")
        ensure(isinstance(weight, (int, float, np.floating)) and 0 <= weight <= cfg.max_weight,
               f"weight must be a number in [0, {cfg.max_weight}], got {weight!r}")
        encoded, _ = derivation.encode_input(cfg, arr, float(weight))
        return self._step(lambda s: s.set_input(encoded))

    def set_encoded_input(self, encoded: np.ndarray) -> bytes | None:
        """Give an already encoded input: integers mod 2^bits, the weight element last."""
        cfg = self._state.data.config
        ensure(isinstance(encoded, np.ndarray) and encoded.dtype == storage_dtype(cfg.bits),
               f"encoded input must be a {storage_dtype(cfg.bits)} array", raising=SecAggTypeError)
        ensure(encoded.shape == (cfg.encoded_length,),
               f"encoded input must have shape ({cfg.encoded_length},), got {encoded.shape}")
        ensure(cfg.bits == 64 or not np.any(encoded >> np.uint64(cfg.bits)),
               f"encoded input has values of {cfg.bits} bits or more")
        return self._step(lambda s: s.set_input(np.ascontiguousarray(encoded).copy()))

    def handle(self, data: bytes) -> bytes | None:
        """Process one message from the server; returns the reply to send, if any.

        - A byte-identical copy of a message already handled is ignored (returns
          None), so an at-least-once transport may deliver twice; a *different*
          message out of turn raises ``UnexpectedMessageError`` and aborts.
        - A server ``Abort`` moves a live client to ``Aborted`` (returns None;
          ``abort_reason`` says why). A ``Completed`` client has already sent all
          it will ever send; a late ``Abort`` leaves it ``Completed`` and is
          recorded in ``late_abort_reason`` (the server did not finish, but nothing
          more can be revealed). An ``Aborted`` client ignores further aborts.
        - Any ``ProtocolError`` raised here (bad bytes, bad signature, a failing
          identity lookup ...) has already moved the client to ``Aborted``; the
          caller may send ``abort()``'s bytes to tell the server at once.
        - Anything else sent to a ``Completed`` or ``Aborted`` client raises
          ``LocalProtocolError`` and changes nothing.
        """
        d = self._state.data
        digest = wire.message_digest(data)
        if digest is not None and digest in d.handled:
            return None  # a redelivery of what was already handled: idempotent
        if isinstance(self._state, (Aborted, Completed)):
            if _is_abort(data):
                if isinstance(self._state, Completed) and d.late_abort is None:
                    d.late_abort = wire.decode(data).reason  # type: ignore[attr-defined]
                return None
            raise LocalProtocolError(f"the client is {self.state_name}: it handles no more messages")
        try:
            message = wire.decode(data)
        except ProtocolError as exc:
            self._abort(str(exc))
            raise
        if isinstance(message, msg.Abort):
            self._abort(f"server aborted: {message.reason}")
            reply = None
        else:
            reply = self._step(lambda s: s.handle(message))
        if digest is not None:
            d.handled.add(digest)
        return reply

    def abort(self, reason: str = "aborted by the application") -> bytes:
        """Give up on the session; returns an ``Abort`` message for the server.

        On a client that has already aborted (for instance after ``handle`` raised),
        the message carries the first reason, and the client stays as it is.
        """
        self._abort(reason)
        return wire.encode(msg.Abort((self.abort_reason or reason)[:1000]))

    # --- persistence -------------------------------------------------------------------

    def to_bytes(self, *, include_secrets: bool) -> bytes:
        """This client's whole session state, sealed, for a worker that keeps no memory.

        A client in the middle of a session holds secrets (its X25519 keys, its
        self-mask seed, the Shamir shares its neighbours gave it, its encoded
        input until it is masked); resuming it needs them, so they are in the
        bytes, and the caller must say so with ``include_secrets=True``.

        The bytes are sealed (XChaCha20-Poly1305) under a key derived from this
        client's identity key, which they do not contain: ``from_bytes`` needs
        that identity key again, and a copy of the bytes alone reveals nothing but
        their length. Still keep them where only this node can read them, and
        resume each saved state at most once (replaying an old state makes the
        client answer the same round twice).
        """
        if include_secrets is not True:
            raise LocalProtocolError(
                "Client.to_bytes writes the session's secrets: pass include_secrets=True "
                "to confirm they go to storage only this node can read"
            )
        d = self._state.data
        return _seal_state(d.identity_key, _dump_state(self._state))

    @classmethod
    def from_bytes(cls, data: bytes, identity_key: bytes, identities: IdentityLookup) -> Client:
        """Resume a client saved by ``to_bytes``, with the same identity key and roster.

        Raises ``IdentityError`` if ``identity_key`` is not the one the state was
        saved under, ``SecAggValueError`` if the bytes are not a saved client.
        """
        ensure(isinstance(identity_key, bytes) and len(identity_key) == crypto.SIGN_SECRET_BYTES,
               f"identity_key must be a {crypto.SIGN_SECRET_BYTES}-byte Ed25519 seed",
               raising=SecAggTypeError)
        fields = _open_state(identity_key, data)
        client = cls.__new__(cls)
        client._state = _load_state(fields, identity_key, identities)
        _check_own_identity(client._state.data)
        return client

    def _abort(self, reason: str) -> None:
        """Move to ``Aborted`` unless the client is already final (``Completed`` stays so)."""
        if not isinstance(self._state, (Aborted, Completed)):
            self._state = Aborted(self._state.data, reason)

    def _step(
        self, action: Callable[[ClientState], tuple[ClientState, msg.Message | None]]
    ) -> bytes | None:
        try:
            state, out = action(self._state)
        except ProtocolError as exc:
            self._abort(str(exc))
            raise
        check_transition(self._state.round, state.round)
        self._state = state
        return None if out is None else wire.encode(out)


# --- ids, identity and persistence helpers ------------------------------------------


def _is_abort(data: object) -> bool:
    """Whether ``data`` is a well-formed ``Abort`` message (never raises)."""
    try:
        return isinstance(wire.decode(data), msg.Abort)  # type: ignore[arg-type]
    except ProtocolError:
        return False


def _check_own_identity(d: _ClientData) -> None:
    """Refuse to start unless the roster's entry for this client is this client's own key."""
    listed = d.identity(d.me)
    mine = verify_key_of(d.identity_key)
    if listed != mine:
        raise IdentityError(
            f"the roster lists {fingerprint(listed)}… for client {d.me} but this client's identity key "
            f"is {fingerprint(mine)}…: the roster is stale or the key was rotated"
        )


_STATE_MAGIC = "secagg-client"
_STATE_VERSION = 1
_STATE_AD = b"secagg-client-state-v1"
_STATES: dict[str, type[ClientState]] = {
    cls.__name__: cls
    for cls in (AdvertiseKeys, ShareKeys, MaskedInput, ConsistencyCheck, Unmasking, Completed, Aborted)
}
#: Attributes a state object holds besides ``data`` (plain values), by state class name.
_STATE_EXTRAS: dict[str, frozenset[str]] = {
    "MaskedInput": frozenset({"_shares_received"}),
    "Aborted": frozenset({"reason"}),
}
#: ``_ClientData`` fields: saved by ``_dump_state``, recomputed on load, or given again by the caller.
_SAVED_FIELDS = frozenset({
    "config", "me", "mask_keys", "enc_keys", "session_id", "peers", "self_seed", "held_shares",
    "encoded_input", "survivors", "handled", "late_abort",
})
_DERIVED_FIELDS = frozenset({"config_digest", "graph"})
_GIVEN_FIELDS = frozenset({"identity_key", "identities"})


def _state_key(identity_key: bytes) -> bytes:
    return crypto.derive_key(identity_key, b"client-state", _STATE_AD)


def _seal_state(identity_key: bytes, fields: dict[str, object]) -> bytes:
    plaintext = msgpack.packb(fields, use_bin_type=True)
    sealed = crypto.aead_encrypt(_state_key(identity_key), plaintext, _STATE_AD)
    return msgpack.packb([_STATE_MAGIC, _STATE_VERSION, sealed], use_bin_type=True)


def _bad_state(what: str) -> SecAggValueError:
    return SecAggValueError(f"saved client state: {what}")


def _open_state(identity_key: bytes, data: bytes) -> dict[str, object]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SecAggTypeError(f"saved client state must be bytes, got {type(data).__name__}")
    try:
        outer = msgpack.unpackb(bytes(data), use_list=False, raw=False, strict_map_key=True)
    except Exception:  # msgpack raises several unrelated types on bad input
        raise _bad_state("not msgpack") from None
    if type(outer) is not tuple or len(outer) != 3 or outer[0] != _STATE_MAGIC:
        raise _bad_state("not a saved secagg client")
    if type(outer[1]) is not int or outer[1] != _STATE_VERSION:
        raise _bad_state(f"unsupported version {outer[1]!r} (expected {_STATE_VERSION})")
    try:
        plaintext = crypto.aead_decrypt(_state_key(identity_key), outer[2], _STATE_AD)
    except (DecryptionError, SecAggTypeError):
        raise IdentityError(
            "saved client state does not open under this identity key "
            f"({fingerprint(verify_key_of(identity_key))}…): another node's state, or corrupted"
        ) from None
    fields = msgpack.unpackb(plaintext, use_list=False, raw=False, strict_map_key=True)
    if type(fields) is not dict:
        raise _bad_state("not a map of fields")
    return fields


def _dump_state(state: ClientState) -> dict[str, object]:
    d = state.data
    extras = {k: v for k, v in vars(state).items() if k != "data"}
    if set(extras) != _STATE_EXTRAS.get(state.name, frozenset()):
        raise LocalProtocolError(f"cannot save state {state.name}: unknown attributes {sorted(extras)}")
    return {
        "state": state.name,
        "extras": extras,
        "config": d.config.to_bytes(),
        "me": d.me,
        "identity": verify_key_of(d.identity_key),
        "mask_keys": None if d.mask_keys is None else (d.mask_keys.secret, d.mask_keys.public),
        "enc_keys": None if d.enc_keys is None else (d.enc_keys.secret, d.enc_keys.public),
        "session_id": d.session_id,
        "peers": [(v, p.share_key, p.mask_key) for v, p in sorted(d.peers.items())],
        "self_seed": d.self_seed,
        "held_shares": [(v, s, k) for v, (s, k) in sorted(d.held_shares.items())],
        "encoded_input": None if d.encoded_input is None else d.encoded_input.tobytes(),
        "survivors": d.survivors,
        "handled": sorted(d.handled),
        "late_abort": d.late_abort,
    }


_T = TypeVar("_T")


def _get(fields: dict[str, object], name: str, kind: type[_T]) -> _T:
    value = fields.get(name)
    if not isinstance(value, kind):
        raise _bad_state(f"field {name!r} is missing or of the wrong type")
    return value


def _keypair(value: object) -> crypto.KeyPair | None:
    if value is None:
        return None
    if type(value) is not tuple or len(value) != 2 or not all(type(x) is bytes for x in value):
        raise _bad_state("a key pair is (secret, public)")
    return crypto.KeyPair(secret=value[0], public=value[1])


def _triples(value: object, name: str) -> list[tuple[int, bytes, bytes]]:
    if type(value) is not tuple:
        raise _bad_state(f"{name} must be a list")
    out = []
    for item in value:
        if (type(item) is not tuple or len(item) != 3 or type(item[0]) is not int
                or type(item[1]) is not bytes or type(item[2]) is not bytes):
            raise _bad_state(f"{name} holds (id, bytes, bytes) entries")
        out.append(item)
    return out


def _load_state(fields: dict[str, object], identity_key: bytes, identities: IdentityLookup) -> ClientState:
    expected = {"state", "extras", "identity"} | _SAVED_FIELDS
    if set(fields) != expected:
        raise _bad_state(f"expected the fields {sorted(expected)}, got {sorted(fields)}")
    if _get(fields, "identity", bytes) != verify_key_of(identity_key):
        raise IdentityError("saved client state belongs to another identity key")
    name = _get(fields, "state", str)
    if name not in _STATES:
        raise _bad_state(f"unknown state {name!r}")
    extras: dict[str, object] = _get(fields, "extras", dict)
    if set(extras) != _STATE_EXTRAS.get(name, frozenset()):
        raise _bad_state(f"state {name} has attributes {sorted(extras)}")
    config = SecAggConfig.from_bytes(_get(fields, "config", bytes))
    me = session_index(_get(fields, "me", int), config.num_clients, "me")
    d = _ClientData(config, config.digest(), me, identity_key, identities)
    d.mask_keys = _keypair(fields["mask_keys"])
    d.enc_keys = _keypair(fields["enc_keys"])
    d.session_id = _get(fields, "session_id", bytes)
    if d.session_id:
        d.graph = config.build_graph(d.session_id)
    d.peers = {v: _Peer(share, mask) for v, share, mask in _triples(fields["peers"], "peers")}
    d.self_seed = _get(fields, "self_seed", bytes)
    d.held_shares = {v: (s, k) for v, s, k in _triples(fields["held_shares"], "held_shares")}
    raw_input = fields["encoded_input"]
    if raw_input is not None:
        dtype = storage_dtype(config.bits)
        if type(raw_input) is not bytes or len(raw_input) != config.encoded_length * dtype.itemsize:
            raise _bad_state("encoded_input has the wrong size")
        d.encoded_input = np.frombuffer(raw_input, dtype=dtype).copy()
    survivors = fields["survivors"]
    if survivors is not None and type(survivors) is not bytes:
        raise _bad_state("survivors must be bytes")
    d.survivors = survivors
    handled: tuple[object, ...] = _get(fields, "handled", tuple)
    if not all(type(h) is bytes for h in handled):
        raise _bad_state("handled holds message digests")
    d.handled = {h for h in handled if isinstance(h, bytes)}
    late_abort = fields["late_abort"]
    if late_abort is not None and type(late_abort) is not str:
        raise _bad_state("late_abort must be a string")
    d.late_abort = late_abort
    state = _STATES[name].__new__(_STATES[name])
    ClientState.__init__(state, d)
    for key, value in extras.items():
        if not isinstance(value, (bool, int, str, bytes)):
            raise _bad_state(f"state attribute {key} has type {type(value).__name__}")
        setattr(state, key, value)
    return state
