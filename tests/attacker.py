"""A malicious server, played by hand against real clients, for the attack tests.

``PruningAttack`` runs one SecAgg+ session in which the server (with chosen colluding
clients, whose every secret it knows) tries to unmask one honest victim alone, as in
the partner-pruning attack of issue 7:

1. it forwards to the victim only the shares of a partner set P (colluders first);
2. it keeps the victim's masked input;
3. it shows survivor sets in which the honest members of P "dropped" (one view for
   everyone, or, with ``split_view``, the true set to the victim's neighbourhood and the
   pruned one to everybody else), and forwards every signature it has;
4. it collects what the clients reveal, adds what the colluders hold, and tries to
   rebuild the victim's self-mask seed and every pair key of the partners the victim
   actually masked with, then to strip the victim's masks.

The verdict is the server's *view*: ``recovered`` is the victim's vector if the view
suffices, else None. With ``reveal_all=True`` the honest clients' shares are taken
straight from their state instead of from what they sent (what an implementation
without the unmasking rules would have revealed): a control that shows the harness
does recover the input when nothing stops it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from secagg import crypto, derivation, packing, prg, shamir, wire
from secagg import messages as msg
from secagg.bindings import storage_dtype
from secagg.client import Client
from secagg.config import SecAggConfig
from secagg.errors import ProtocolError

__all__ = ["PruningAttack", "AttackOutcome", "fabricated_directory"]


@dataclass
class AttackOutcome:
    """What the attacker ended with."""

    victim: int
    partners: list[int]  #: the partner set forced on the victim
    colluders: list[int]
    recovered: np.ndarray | None  #: the victim's encoded input, if the server's view gives it
    truth: np.ndarray
    errors: dict[int, ProtocolError] = field(default_factory=dict)  #: honest clients that refused
    revealed_seed_shares: int = 0  #: seed shares of the victim the server obtained
    missing: list[str] = field(default_factory=list)  #: what the server could not rebuild


class PruningAttack:
    """One session against real ``Client`` objects, with the server's moves scripted."""

    def __init__(self, config: SecAggConfig, *, seed: int = 0) -> None:
        self.config = config
        self.n = config.num_clients
        self.rng = np.random.default_rng(seed)
        self.keys = [crypto.generate_signing_keypair() for _ in range(self.n)]
        public = [k.public for k in self.keys]
        self.clients = [Client(config, i, self.keys[i].secret, public) for i in range(self.n)]
        high = (1 << config.bits) - 1
        self.inputs = self.rng.integers(
            0, high, size=(self.n, config.encoded_length), dtype=np.uint64, endpoint=True
        ).astype(storage_dtype(config.bits))
        self.errors: dict[int, ProtocolError] = {}

    def _call(self, i: int, data: bytes) -> msg.Message | None:
        try:
            out = self.clients[i].handle(data)
        except ProtocolError as exc:
            self.errors[i] = exc
            return None
        return wire.decode(out) if out is not None else None

    def run(
        self,
        *,
        victim: int | None = None,
        partners: int | None = None,
        colluders: int = 0,
        adjacent: bool = True,
        split_view: bool = False,
        reveal_all: bool = False,
    ) -> AttackOutcome:
        """Attack ``victim`` (random if None), pruning it to ``partners`` (t if None).

        ``colluders`` corrupt clients are the victim's neighbours when ``adjacent`` (what
        grinding the graph could at best achieve), else drawn from all clients (no
        grinding: the graph falls where the honest keys put it).
        """
        cfg, n, t = self.config, self.n, self.config.threshold
        adverts = {i: wire.decode(c.start()) for i, c in enumerate(self.clients)}
        records = b"".join(adverts[i].record() for i in range(n))
        directory = wire.encode(msg.KeyDirectory(adverts[0].config_digest, records))
        sid = derivation.session_id(adverts[0].config_digest, records)
        graph = cfg.build_graph(sid)

        # The worst case for the victim: the colluders are its neighbours (as if the
        # server had ground the graph until they were), and they fill P first.
        victim = int(self.rng.integers(n)) if victim is None else victim
        around = list(graph.neighbours(victim))
        self.rng.shuffle(around)
        if adjacent:
            bad = sorted(around[:colluders])
        else:
            others = [u for u in range(n) if u != victim]
            bad = sorted(int(u) for u in self.rng.choice(others, size=colluders, replace=False))
        honest_pool = [v for v in around if v not in bad]
        bad_around = [v for v in around if v in bad]
        size = t if partners is None else partners
        chosen = sorted(bad_around[:size] + honest_pool[: max(0, size - len(bad_around))])
        honest_partners = [p for p in chosen if p not in bad]

        shares = {}
        for i in range(n):
            out = self._call(i, directory)
            assert out is not None, f"client {i} refused an honest directory: {self.errors.get(i)}"
            shares[i] = out
        pair_keys = {c: self.clients[c]._state.data.peers[victim].mask_key for c in bad_around}
        held: dict[int, dict[int, tuple[bytes, bytes]]] = {}
        masked: dict[int, msg.MaskedInput] = {}
        for v in range(n):
            senders, cts = [], []
            for u in range(n):
                share = shares[u]
                if v in share.receivers and (v != victim or u in chosen):
                    senders.append(u)
                    cts.append(share.ciphertexts[share.receivers.index(v)])
            self._call(v, wire.encode(msg.EncryptedShares(sid, tuple(senders), tuple(cts))))
            data = self.clients[v].set_encoded_input(self.inputs[v].copy())
            held[v] = dict(self.clients[v]._state.data.held_shares)  # the server reads colluders'
            masked[v] = wire.decode(data)

        # Views: who is told which survivor set.
        pruned = [u for u in range(n) if u not in honest_partners]
        inner = set(graph.neighbours(victim)) | {victim}
        view_of = {
            u: (list(range(n)) if split_view and u in inner else pruned) for u in range(n)
        }
        signatures: dict[bytes, dict[int, bytes]] = {}
        if cfg.consistency_check:
            for u in range(n):
                wire_view = msg.encode_ids(view_of[u])
                out = self._call(u, wire.encode(msg.ConsistencyRequest(sid, wire_view)))
                if out is not None:
                    signatures.setdefault(wire_view, {})[u] = out.signature
        revealed_seed: dict[int, bytes] = {}
        revealed_keys: dict[int, dict[int, bytes]] = {p: {} for p in honest_partners}
        for u in range(n):
            if u in bad:
                continue
            if reveal_all:  # the control: what a client without the rules would give
                if victim in held[u]:
                    revealed_seed[u + 1] = held[u][victim][0]
                for p in honest_partners:
                    if p in held[u]:
                        revealed_keys[p][u + 1] = held[u][p][1]
                continue
            if u in self.errors:
                continue
            view = view_of[u]
            wire_view = msg.encode_ids(view)
            signed = signatures.get(wire_view, {})
            signers = tuple(s for s in graph.ball(u, 3) if s in signed)
            counted = set(view)
            attested = tuple(v for v in held[u] if v in counted)
            request = msg.UnmaskRequest(
                sid, wire_view, msg.encode_ids(sorted(set(range(n)) - counted)),
                signers, tuple(signed[s] for s in signers),
                attested, tuple(masked[v].excluded for v in attested),
                tuple(masked[v].partner_signature for v in attested),
            )
            out = self._call(u, wire.encode(request))
            if out is not None:
                for owner, share in zip(out.seed_owners, out.seed_shares, strict=True):
                    if owner == victim:
                        revealed_seed[u + 1] = share
                for owner, share in zip(out.key_owners, out.key_shares, strict=True):
                    if owner in revealed_keys:
                        revealed_keys[owner][u + 1] = share
        for c in bad:  # colluders hand over everything they hold
            if victim in held[c]:
                revealed_seed[c + 1] = held[c][victim][0]
            for p in honest_partners:
                if p in held[c]:
                    revealed_keys[p][c + 1] = held[c][p][1]

        outcome = AttackOutcome(victim, chosen, bad, None, self.inputs[victim].copy(),
                                dict(self.errors), len(revealed_seed))
        keys, signs = [], []
        if len(revealed_seed) >= t:
            xs = sorted(revealed_seed)[:t]
            seed = shamir.reconstruct(xs, [revealed_seed[x] for x in xs], t)
            keys.append(derivation.self_mask_key(seed, sid))
            signs.append(-1)
        else:
            outcome.missing.append("the victim's self-mask seed")
        victim_pk = adverts[victim].mask_public_key
        for p in self._victim_partners(masked[victim], graph, victim):
            if p in pair_keys:
                keys.append(pair_keys[p])
            elif len(revealed_keys.get(p, {})) >= t:
                xs = sorted(revealed_keys[p])[:t]
                secret = shamir.reconstruct(xs, [revealed_keys[p][x] for x in xs], t)
                keys.append(derivation.pair_mask_key(crypto.kx_agree(secret, victim_pk), sid, victim, p))
            else:
                outcome.missing.append(f"the pair key of partner {p}")
                continue
            signs.append(-derivation.pair_sign(victim, p))
        if not outcome.missing:
            y = packing.unpack(masked[victim].masked, cfg.encoded_length, cfg.bits)
            prg.accumulate_masks(y, keys, signs, cfg.bits, cipher=cfg.cipher)
            outcome.recovered = y
        return outcome

    @staticmethod
    def _victim_partners(masked: msg.MaskedInput, graph, victim: int) -> list[int]:
        excluded = set(msg.decode_ids(masked.excluded).tolist())
        return [p for p in graph.neighbours(victim) if p not in excluded]


def fabricated_directory(config: SecAggConfig, clients: list[Client], how: str) -> tuple[bytes, list]:
    """Round-0 adverts of every client plus one fabricated record, as grinding needs."""
    adverts = [wire.decode(c.start()) for c in clients]
    fake_keys = crypto.generate_signing_keypair()
    mask, enc = crypto.generate_kx_keypair(), crypto.generate_kx_keypair()
    if how == "out_of_range":
        fake_id, signer = config.num_clients, fake_keys.secret
    else:  # an in-range id whose record is not signed by its identity key
        fake_id, signer = None, fake_keys.secret
    records = {a.sender: a for a in adverts}
    if fake_id is None:
        fake_id = adverts[-1].sender
    payload = derivation.advert_payload(adverts[0].config_digest, fake_id, mask.public, enc.public)
    records[fake_id] = msg.AdvertiseKeys(fake_id, adverts[0].config_digest, mask.public, enc.public,
                                         crypto.sign(signer, payload))
    raw = b"".join(records[i].record() for i in sorted(records))
    return wire.encode(msg.KeyDirectory(adverts[0].config_digest, raw)), adverts
