"""Malicious-server behaviours, played on an in-memory ``Cohort``, and what they must not achieve.

Each ``Attack`` installs itself as the cohort's server -> client hook (the
server's code stays honest; the attack rewrites what reaches the clients, which
is exactly what a malicious server controls), then ``check`` asserts the
guarantees of docs/security.md for that run:

- no client's input is exposed (``exposed_clients``): the server never holds
  a masked input together with ``t`` shares of its self-mask seed and, for every
  partner its owner masked with, ``t`` shares of the owner's or the partner's
  mask key, which would let it strip every mask off that one input;
- every error a client raised is a typed ``ProtocolError``.

The sum is not checked: a malicious server can always report a wrong one, and
the protocol protects privacy, not the server's own result.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from secagg import crypto, derivation
from secagg import messages as msg
from secagg.errors import BadSignatureError, ProtocolError
from secagg.rounds import Round
from secagg.testing.cohort import Cohort

__all__ = ["Attack", "ForgedRecord", "SplitView", "WithheldShares", "exposed_clients"]


def exposed_clients(cohort: Cohort) -> set[int]:
    """Clients whose masked input the server could unmask alone (must be empty).

    ``v`` is exposed if the server received its masked input, ``t`` holders
    revealed shares of its self-mask seed, and for each partner ``p`` that ``v``
    masked with (the senders of the shares delivered to ``v``) ``t`` holders
    revealed shares of ``v``'s or ``p``'s mask key.
    """
    t = cohort.config.threshold
    seeds: Counter[int] = Counter()
    keys: Counter[int] = Counter()
    for sent in cohort.sent("up", msg.UnmaskResponse):
        response = sent.message
        assert isinstance(response, msg.UnmaskResponse)
        seeds.update(response.seed_owners)
        keys.update(response.key_owners)
    masked = {s.client for s in cohort.sent("up", msg.MaskedInput)}
    exposed = set()
    for v in masked:
        delivered = [m for i, m in cohort.delivered if i == v and isinstance(m, msg.EncryptedShares)]
        partners = delivered[-1].senders if delivered else ()
        if seeds[v] >= t and all(keys[v] >= t or keys[p] >= t for p in partners):
            exposed.add(v)
    return exposed


class Attack(Protocol):
    """A malicious-server behaviour: ``install`` before running, ``check`` after."""

    def install(self, cohort: Cohort) -> None: ...

    def check(self, cohort: Cohort) -> None: ...


def _check_common(cohort: Cohort) -> None:
    exposed = exposed_clients(cohort)
    assert not exposed, f"the server could unmask the inputs of clients {sorted(exposed)}"
    for i, error in cohort.errors.items():
        assert isinstance(error, ProtocolError), f"client {i} raised {type(error).__name__}"


@dataclass(frozen=True)
class WithheldShares:
    """The server withholds ``count`` of the encrypted shares addressed to ``victim``."""

    victim: int
    count: int

    def install(self, cohort: Cohort) -> None:
        def hook(i: int, m: msg.Message) -> msg.Message:
            if i == self.victim and isinstance(m, msg.EncryptedShares):
                k = min(self.count, len(m.senders))
                return dataclasses.replace(m, senders=m.senders[k:], ciphertexts=m.ciphertexts[k:])
            return m
        cohort.down = hook

    def check(self, cohort: Cohort) -> None:
        _check_common(cohort)


@dataclass(frozen=True)
class ForgedRecord:
    """The server puts its own keys in ``target``'s key-directory record, signed with its own key."""

    target: int

    def install(self, cohort: Cohort) -> None:
        forger = crypto.generate_signing_keypair()
        mask, enc = crypto.generate_kx_keypair(), crypto.generate_kx_keypair()

        def hook(i: int, m: msg.Message) -> msg.Message:
            if not isinstance(m, msg.KeyDirectory) or m.entry(self.target) is None:
                return m
            table = m.table.copy()
            row = int(np.flatnonzero(table["id"] == self.target)[0])
            payload = derivation.advert_payload(m.config_digest, self.target, mask.public, enc.public)
            table[row]["mask_pk"] = np.void(mask.public)
            table[row]["enc_pk"] = np.void(enc.public)
            table[row]["signature"] = np.void(crypto.sign(forger.secret, payload))
            return msg.KeyDirectory(m.config_digest, table.tobytes())
        cohort.down = hook

    def check(self, cohort: Cohort) -> None:
        _check_common(cohort)
        if cohort.server.round is Round.ADVERTISE_KEYS or self.target in cohort.server.dropped:
            return
        graph = cohort.server._state.data.graph
        if graph is None:
            return
        for v in graph.neighbours(self.target):
            if cohort.sent("down", msg.KeyDirectory, v) and v not in cohort.vanish:
                assert isinstance(cohort.errors.get(v), BadSignatureError), (
                    f"client {v} accepted a forged record for its neighbour {self.target}"
                )


@dataclass(frozen=True)
class SplitView:
    """The server tells ``victims`` that ``hidden`` dropped and everyone else that it survived.

    It then gives each group only the consistency signatures made over its own
    view, hoping to collect ``hidden``'s seed shares from one group and its
    mask-key shares from the other. With the consistency check and ``2t > k``
    no neighbourhood holds two disjoint groups of ``t``, so it must fail.
    """

    victims: tuple[int, ...]
    hidden: int

    def install(self, cohort: Cohort) -> None:
        victims = set(self.victims)
        signed_by: dict[int, bytes] = {}

        def without_hidden(ids: bytes) -> bytes:
            return msg.encode_ids([v for v in msg.decode_ids(ids).tolist() if v != self.hidden])

        def hook(i: int, m: msg.Message) -> msg.Message:
            if isinstance(m, msg.ConsistencyRequest) and i in victims:
                return dataclasses.replace(m, survivors=without_hidden(m.survivors))
            if isinstance(m, msg.UnmaskRequest):
                for sent in cohort.sent("up", msg.ConsistencySignature):
                    signed_by[sent.client] = sent.message.signature  # type: ignore[attr-defined]
                group = victims if i in victims else set(signed_by) - victims
                keep = [(s, sig) for s, sig in zip(m.signers, m.signatures, strict=True) if s in group]
                fields: dict[str, object] = dict(
                    signers=tuple(s for s, _ in keep), signatures=tuple(sig for _, sig in keep)
                )
                if i in victims and self.hidden in msg.decode_ids(m.survivors):
                    fields["survivors"] = without_hidden(m.survivors)
                    dropped = set(msg.decode_ids(m.dropped).tolist()) | {self.hidden}
                    fields["dropped"] = msg.encode_ids(sorted(dropped))
                return dataclasses.replace(m, **fields)  # type: ignore[arg-type]
            return m
        cohort.down = hook

    def check(self, cohort: Cohort) -> None:
        _check_common(cohort)
