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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from secagg import crypto, derivation, packing, prg, shamir, wire
from secagg import messages as msg
from secagg.bindings import storage_dtype
from secagg.config import SecAggConfig
from secagg.errors import (
    AbortedError,
    LocalProtocolError,
    MaliciousServerError,
    ProtocolError,
    SecAggTypeError,
    SessionMismatchError,
    UnexpectedMessageError,
    ensure,
)
from secagg.graph import Graph
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
        """The application-given identity verify key of ``client``."""
        key = self.identities(client) if callable(self.identities) else self.identities[client]
        ensure(isinstance(key, bytes) and len(key) == crypto.SIGN_PUBLIC_BYTES,
               f"identity key of client {client} must be {crypto.SIGN_PUBLIC_BYTES} bytes",
               raising=SecAggTypeError)
        return key

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

    def handle(self, message: msg.Message) -> tuple[ClientState, msg.Message]:
        if not isinstance(message, msg.KeyDirectory):
            return super().handle(message)
        d, cfg = self.data, self.data.config
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

    def handle(self, message: msg.Message) -> tuple[ClientState, msg.Message]:
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

    def handle(self, message: msg.Message) -> tuple[ClientState, msg.Message]:
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
        reach = set(graph.ball(d.me, 3))
        payload = derivation.consistency_payload(d.session_id, d.survivors)
        for signer, signature in zip(message.signers, message.signatures, strict=True):
            if signer not in reach:
                raise MaliciousServerError(f"consistency signature from {signer}, more than 3 hops away")
            crypto.verify(d.identity(signer), payload, signature)
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
            crypto.verify(
                d.identity(v),
                derivation.partners_payload(d.session_id, v, msg.encode_ids(partners)),
                signature,
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
    return sorted_ids[at] == ids


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
    record would give the server a free re-roll of the graph.
    """
    directory.check_ids(d.config.num_clients)
    for row_id in directory.ids.tolist():
        entry = directory.entry(row_id)
        payload = derivation.advert_payload(
            d.config_digest, row_id, entry.mask_public_key, entry.enc_public_key
        )
        crypto.verify_cached(d.identity(row_id), payload, entry.signature)


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
        ensure(type(client_id) is int and 0 <= client_id < config.num_clients,
               f"client_id must be in [0, {config.num_clients}), got {client_id!r}")
        ensure(isinstance(identity_key, bytes) and len(identity_key) == crypto.SIGN_SECRET_BYTES,
               f"identity_key must be a {crypto.SIGN_SECRET_BYTES}-byte Ed25519 seed",
               raising=SecAggTypeError)
        data = _ClientData(config, config.digest(), client_id, identity_key, identities)
        self._state: ClientState = AdvertiseKeys(data)

    @property
    def state_name(self) -> str:
        return self._state.name

    @property
    def round(self) -> Round:
        return self._state.round

    @property
    def abort_reason(self) -> str | None:
        return self._state.reason if isinstance(self._state, Aborted) else None

    def start(self) -> bytes:
        """Begin the session: returns the round-0 message for the server."""
        return self._step(lambda s: s.start())

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
        """Process one message from the server; returns the reply, if any."""
        if isinstance(self._state, (Aborted, Completed)):
            raise LocalProtocolError(f"the client is {self.state_name}: it handles no more messages")
        try:
            message = wire.decode(data)
        except ProtocolError as exc:
            self._abort(str(exc))
            raise
        if isinstance(message, msg.Abort):
            self._abort(f"server aborted: {message.reason}")
            return None
        return self._step(lambda s: s.handle(message))

    def abort(self, reason: str = "aborted by the application") -> bytes:
        """Give up on the session; returns an ``Abort`` message for the server."""
        self._abort(reason)
        return wire.encode(msg.Abort(reason[:1000]))

    def _abort(self, reason: str) -> None:
        if not isinstance(self._state, Aborted):
            self._state = Aborted(self._state.data, reason)

    def _step(self, action) -> bytes | None:
        try:
            state, out = action(self._state)
        except ProtocolError as exc:
            self._abort(str(exc))
            raise
        check_transition(self._state.round, state.round)
        self._state = state
        return None if out is None else wire.encode(out)
