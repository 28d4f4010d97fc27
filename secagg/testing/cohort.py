"""An in-memory cohort: n clients and a server wired back to back, with hooks for attacks.

``Cohort`` plays the network (and, through its hooks, a malicious server or a
misbehaving client): every message passes through ``down`` (server -> client) or
``up`` (client -> server) hooks that may replace, re-route or drop it, every
honest message is logged for replays, and chosen clients vanish from a chosen
round on. Inputs are encoded integers mod 2^bits, so sums are checked exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from secagg import crypto, wire
from secagg import messages as msg
from secagg.bindings import storage_dtype
from secagg.client import Client
from secagg.config import SecAggConfig
from secagg.errors import ProtocolError
from secagg.planner import max_scale
from secagg.rounds import Round
from secagg.server import AggregationResult, Server

__all__ = ["ROUND_OF", "Cohort", "Sent", "make_config", "raw_message", "reencode"]

#: The round in which each client -> server message is sent.
ROUND_OF: dict[type[msg.Message], Round] = {
    msg.AdvertiseKeys: Round.ADVERTISE_KEYS,
    msg.ShareKeys: Round.SHARE_KEYS,
    msg.MaskedInput: Round.MASKED_INPUT,
    msg.ConsistencySignature: Round.CONSISTENCY_CHECK,
    msg.UnmaskResponse: Round.UNMASKING,
}

#: hook(client, message) -> the message (or raw bytes) to deliver instead, or None to drop it.
Hook = Callable[[int, msg.Message], "msg.Message | bytes | None"]


def make_config(
    n: int = 6,
    threshold: int = 3,
    *,
    graph: str = "complete",
    degree: int = 0,
    bits: int = 16,
    length: int = 3,
    consistency_check: bool = True,
    session_nonce: bytes | None = None,
) -> SecAggConfig:
    """A small config with exact-sum-friendly parameters (fresh nonce unless given)."""
    return SecAggConfig(
        num_clients=n, vector_length=length, threshold=threshold, bits=bits, clip=1.0,
        scale=max_scale(n, 1.0, bits), graph=graph, degree=degree,
        consistency_check=consistency_check,
        session_nonce=session_nonce if session_nonce is not None else crypto.random_bytes(32),
    )


def raw_message(kind: type[msg.Message], fields: list[object]) -> bytes:
    """Wire bytes of a message of type ``kind`` with arbitrary fields (no validation)."""
    return msgpack.packb([wire.MAGIC, wire.VERSION, wire._TAGS[kind], *fields], use_bin_type=True)


def reencode(data: bytes, **changes: object) -> bytes:
    """Decode a message, change some fields (without re-validation), and encode it again."""
    message = wire.decode(data)
    fields = [changes.get(f.name, getattr(message, f.name))
              for f in dataclasses.fields(message)]  # type: ignore[arg-type]
    return raw_message(type(message), fields)


@dataclass
class Sent:
    """One message as the honest party produced it (before any hook)."""

    direction: str  # "up" (client -> server) or "down" (server -> client)
    client: int
    message: msg.Message
    data: bytes = field(repr=False)


class Cohort:
    """n real clients and a real server, delivering every message in memory."""

    def __init__(
        self,
        config: SecAggConfig | None = None,
        *,
        seed: int = 0,
        vanish: dict[int, Round] | None = None,
        **config_args: Any,
    ) -> None:
        self.config = config or make_config(**config_args)
        n = self.config.num_clients
        self.identities = [crypto.generate_signing_keypair() for _ in range(n)]
        self.public = [k.public for k in self.identities]
        self.clients = [Client(self.config, i, self.identities[i].secret, self.public)
                        for i in range(n)]
        self.server = Server(self.config, threads=1)
        rng = np.random.default_rng(seed)  # test data only, never secrets
        high = (1 << self.config.bits) - 1
        raw = rng.integers(0, high, size=(n, self.config.encoded_length), dtype=np.uint64,
                           endpoint=True)
        self.inputs = raw.astype(storage_dtype(self.config.bits))
        #: client -> first round in which it sends nothing (it vanished).
        self.vanish: dict[int, Round] = dict(vanish or {})
        self.down: Hook | None = None
        self.up: Hook | None = None
        self.log: list[Sent] = []
        #: (client, message) as delivered to clients, after the ``down`` hook.
        self.delivered: list[tuple[int, msg.Message]] = []
        #: client -> the ProtocolError it raised while handling a server message.
        self.errors: dict[int, ProtocolError] = {}
        #: (message type, client) pairs the network holds back; held bytes land in ``held``.
        self._holding: set[tuple[type[msg.Message], int]] = set()
        self.held: dict[int, bytes] = {}
        self._begun = False

    # --- driving -----------------------------------------------------------------

    def begin(self, *, inputs: bool = True) -> None:
        """Round 0: every client starts and (unless ``inputs`` is False) sets its input."""
        self._begun = True
        for i, client in enumerate(self.clients):
            self.send_up(i, client.start())
            if inputs:
                self.send_up(i, client.set_encoded_input(self.inputs[i].copy()))

    def hold(self, kind: type[msg.Message], *clients: int) -> None:
        """Hold back the next ``kind`` messages to ``clients`` (kept in ``held``, not delivered)."""
        self._holding.update((kind, i) for i in clients)

    def step(self) -> dict[int, bytes]:
        """Close the server's current round and deliver what it sends."""
        if not self._begun:
            self.begin()
        outgoing = self.server.close_round()
        for i in sorted(outgoing):
            self.send_down(i, outgoing[i])
        return outgoing

    def run_until(self, round: Round) -> None:
        """Step until the server is collecting ``round`` (or has finished)."""
        if not self._begun:
            self.begin()
        while self.server.round is not round and not self.finished:
            self.step()

    def run(self) -> Server:
        """Step until the server completes or aborts."""
        self.run_until(Round.COMPLETED)
        return self.server

    @property
    def session_id(self) -> bytes:
        """The session id the server computed (empty before round 0 closes)."""
        return self.server._state.data.session_id

    @property
    def finished(self) -> bool:
        return self.server.round in (Round.COMPLETED, Round.ABORTED)

    # --- the network ---------------------------------------------------------------

    def send_down(self, i: int, data: bytes) -> None:
        """Server -> client i, through the ``down`` hook; the reply goes up."""
        if (type(wire.decode(data)), i) in self._holding:
            self.held[i] = data
            self._holding.discard((type(wire.decode(data)), i))
            return
        passed = self._through(self.down, "down", i, data)
        if passed is None or self._gone(i, self.clients[i].round):
            return
        data = passed
        try:
            self.delivered.append((i, wire.decode(data)))
        except ProtocolError:
            pass  # the hook sent bytes that do not parse; the client will say so
        try:
            reply = self.clients[i].handle(data)
        except ProtocolError as exc:
            self.errors.setdefault(i, exc)  # keep the first: later ones are refusals
            return
        self.send_up(i, reply)

    def send_up(self, i: int, data: bytes | None) -> None:
        """Client i -> server, through the ``up`` hook, unless i has vanished."""
        if data is None:
            return
        message = wire.decode(data)
        if i in self.vanish and ROUND_OF.get(type(message), Round.ADVERTISE_KEYS).value >= \
                self.vanish[i].value:
            return
        data = self._through(self.up, "up", i, data)
        if data is not None:
            self.server.receive(i, data)

    def deliver(self, i: int, data: bytes | msg.Message) -> bytes | None:
        """Hand client i a message directly (no hooks, errors propagate); returns its reply."""
        if isinstance(data, msg.Message):
            data = wire.encode(data)
        return self.clients[i].handle(data)

    def _gone(self, i: int, current: Round) -> bool:
        return i in self.vanish and current.value >= self.vanish[i].value

    def _through(self, hook: Hook | None, direction: str, i: int, data: bytes) -> bytes | None:
        message = wire.decode(data)
        self.log.append(Sent(direction, i, message, data))
        if hook is None:
            return data
        out = hook(i, message)
        if out is None or isinstance(out, bytes):
            return out
        return wire.encode(out)

    # --- looking at what happened ------------------------------------------------------

    def sent(
        self, direction: str, kind: type[msg.Message], client: int | None = None
    ) -> list[Sent]:
        """Logged honest messages of one type and direction (optionally to/from one client)."""
        return [s for s in self.log if s.direction == direction and type(s.message) is kind
                and (client is None or s.client == client)]

    def last(self, direction: str, kind: type[msg.Message], client: int) -> bytes:
        """The bytes of the last logged message of that type to/from ``client``."""
        found = self.sent(direction, kind, client)
        assert found, f"no {kind.__name__} {direction} for client {client}"
        return found[-1].data

    def expected_raw(self, survivors: Iterable[int]) -> np.ndarray:
        """The exact encoded sum (mod 2^bits) of the given clients' inputs."""
        total = self.inputs[list(survivors)].astype(object).sum(axis=0) % (1 << self.config.bits)
        out: np.ndarray = total.astype(storage_dtype(self.config.bits))
        return out

    def check_result(self) -> AggregationResult:
        """The server's result, asserted to be the exact sum over its survivors."""
        result = self.server.result()
        np.testing.assert_array_equal(result.raw, self.expected_raw(result.survivors))
        return result
