"""Run a session through a transport, with faults, on a clock: the embedder's test driver.

``Transport`` is the small interface a real transport implements to be tested
here: per-client channels, authenticated by the transport, carrying bytes both
ways. ``run_schedule`` drives a real ``Server`` and real ``Client`` objects
through it under a vanishing ``Schedule`` and a ``DeliveryPlan`` of faults, and
returns a ``Verdict``; ``Verdict.check(expected_outcome(...))`` says whether the
session did what the protocol requires. ``InMemoryTransport`` with a
``FakeClock`` is the reference; docs/embedding.md shows a loopback TCP one.
"""

from __future__ import annotations

import enum
import functools
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from secagg import crypto, wire
from secagg import messages as msg
from secagg.client import Client
from secagg.config import SecAggConfig
from secagg.errors import ProtocolError, ensure
from secagg.graph import Graph
from secagg.rounds import Round
from secagg.server import AggregationResult, DropReason, Server
from secagg.simulation import STAGES
from secagg.testing.oracle import AbortKind, Expected, Schedule, classify_abort

__all__ = [
    "Clock",
    "DeliveryPlan",
    "FakeClock",
    "Fault",
    "InMemoryTransport",
    "SystemClock",
    "Transport",
    "Verdict",
    "effective_schedule",
    "run_schedule",
]

_STAGE_OF_ROUND = {
    Round.ADVERTISE_KEYS: 0, Round.SHARE_KEYS: 1, Round.MASKED_INPUT: 2,
    Round.CONSISTENCY_CHECK: 3, Round.UNMASKING: 4,
}


class Clock(Protocol):
    """Where round deadlines come from."""

    def now(self) -> float: ...

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass (a fake clock jumps; a real one may do nothing)."""


class SystemClock:
    """The monotonic clock; ``advance`` does nothing (time passes by itself)."""

    def now(self) -> float:
        return time.monotonic()

    def advance(self, seconds: float) -> None:
        return None


class FakeClock:
    """A clock that moves only when told to: deadlines pass instantly and deterministically."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        ensure(seconds >= 0, "a clock does not go back")
        self._now += seconds


@runtime_checkable
class Transport(Protocol):
    """Carries one session's bytes between the server and its ``num_clients`` clients.

    Channels must be authenticated: ``server_receive`` names the sender as the
    transport established it (mutual TLS, a signed handshake ...), never as the
    bytes claim. A message is delivered at least once and possibly reordered;
    secagg ignores byte-identical redeliveries.
    """

    def open(self, num_clients: int) -> None:
        """Set up one channel per client, ``0 .. num_clients - 1``."""

    def client_send(self, client: int, data: bytes) -> None:
        """Client ``client`` sends ``data`` to the server."""

    def client_disconnect(self, client: int) -> None:
        """Client ``client`` goes away (crash, kill, network loss)."""

    def server_receive(self, timeout: float) -> list[tuple[int, bytes | None]]:
        """What reached the server, waiting up to ``timeout`` s for something.

        Each item is ``(sender, data)``, or ``(sender, None)`` once the sender's
        channel closed (the driver then calls ``Server.drop``).
        """

    def server_send(self, client: int, data: bytes) -> None:
        """The server sends ``data`` to client ``client``."""

    def client_receive(self, client: int, timeout: float) -> list[bytes]:
        """What reached client ``client``, waiting up to ``timeout`` s for something."""

    def close(self) -> None:
        """Release everything ``open`` set up."""


class InMemoryTransport:
    """The reference transport: queues in one process, instant and lossless."""

    def __init__(self) -> None:
        self._up: deque[tuple[int, bytes | None]] = deque()
        self._down: dict[int, deque[bytes]] = {}

    def open(self, num_clients: int) -> None:
        self._up.clear()
        self._down = {i: deque() for i in range(num_clients)}

    def client_send(self, client: int, data: bytes) -> None:
        self._up.append((client, data))

    def client_disconnect(self, client: int) -> None:
        self._up.append((client, None))

    def server_receive(self, timeout: float) -> list[tuple[int, bytes | None]]:
        out = list(self._up)
        self._up.clear()
        return out

    def server_send(self, client: int, data: bytes) -> None:
        self._down[client].append(data)

    def client_receive(self, client: int, timeout: float) -> list[bytes]:
        out = list(self._down[client])
        self._down[client].clear()
        return out

    def close(self) -> None:
        self._up.clear()
        self._down.clear()


class Fault(enum.Enum):
    """What the network does to one client -> server message."""

    DUPLICATE = "delivered twice, byte-identical"
    LATE = "delivered after its round closed"
    TRUNCATE = "its last byte lost"
    FLIP_HEADER = "one bit flipped in the message header"
    REPLAY = "replaced by the same message bound to another session"

    @property
    def loses_message(self) -> bool:
        """Whether the server must treat the sender as gone from this stage on."""
        return self is not Fault.DUPLICATE


@dataclass(frozen=True)
class DeliveryPlan:
    """Faults on client -> server messages, by (client, stage), and the order of arrival.

    Payload corruption is absent on purpose: masked inputs carry no integrity of
    their own, so the channel must be authenticated (docs/embedding.md). Header
    bit flips and truncation always make unparseable bytes, which is what a
    non-authenticating transport could deliver.
    """

    faults: Mapping[tuple[int, str], Fault] = field(default_factory=dict)
    order_seed: int = 0  #: shuffles the order in which clients' messages arrive in each round
    flip_bit: int = 0  #: which of the first 64 bits a FLIP_HEADER fault flips

    def __post_init__(self) -> None:
        for (client, stage), fault in self.faults.items():
            ensure(stage in STAGES and isinstance(fault, Fault) and client >= 0,
                   f"faults map (client, stage) -> Fault, got {(client, stage)!r}: {fault!r}")
        ensure(0 <= self.flip_bit < 64, "flip_bit must be in [0, 64)")


def effective_schedule(config: SecAggConfig, schedule: Schedule, plan: DeliveryPlan | None) -> Schedule:
    """The schedule the server sees: a lost message makes its sender vanish at that stage.

    Without the consistency check nothing is sent at the "consistency" stage, so a
    fault planned there hits no message.
    """
    vanish = dict(schedule.vanish)
    for (client, stage), fault in (plan.faults.items() if plan else ()):
        if stage == "consistency" and not config.consistency_check:
            continue
        gone = STAGES.index(vanish[client]) if client in vanish else len(STAGES)
        if fault.loses_message and STAGES.index(stage) < gone:
            vanish[client] = stage
    return Schedule(vanish)


@dataclass
class Verdict:
    """What a session did, in the terms of ``Expected``."""

    completed: bool
    survivors: tuple[int, ...]
    result: AggregationResult | None
    abort_round: Round | None
    abort_reason: str | None
    graph: Graph | None  #: the session's neighbour graph (None if round 0 never closed)
    responders: tuple[int, ...]  #: clients whose unmasking response (their shares) the server accepted
    dropped: dict[int, DropReason]
    client_errors: dict[int, str]  #: client -> the first ProtocolError it raised

    @property
    def abort_kind(self) -> AbortKind | None:
        return None if self.abort_reason is None else classify_abort(self.abort_reason)

    def check(self, expected: Expected) -> None:
        """Raise ``AssertionError`` explaining the first way this run differs from ``expected``."""
        def fail(what: str) -> None:
            raise AssertionError(f"expected the session to {expected.describe()}; {what}")

        if expected.completed != self.completed:
            fail("it " + ("completed" if self.completed else f"aborted: {self.abort_reason}"))
        if not expected.completed:
            if (self.abort_round, self.abort_kind) != (expected.abort_round, expected.abort_kind):
                fail(f"it aborted in {self.abort_round} ({self.abort_kind}): {self.abort_reason}")
        elif self.survivors != expected.survivors:
            fail(f"its survivors were {list(self.survivors)}")
        if self.responders != expected.responders:
            fail(f"clients {list(self.responders)} revealed shares, not {list(expected.responders)}")
        if not expected.completed:
            return
        assert self.result is not None
        if expected.raw is not None:
            if not np.array_equal(self.result.raw, expected.raw):
                fail("its raw sum differs from the exact sum mod 2^bits")
            return
        assert expected.sum is not None
        error = float(np.max(np.abs(self.result.sum - expected.sum), initial=0.0))
        if not error <= expected.tolerance:
            fail(f"its sum is off by {error} > {expected.tolerance}")
        if not abs(self.result.weight_sum - expected.weight_sum) <= expected.weight_tolerance:
            fail(f"its weight sum {self.result.weight_sum} is not {expected.weight_sum}")


def _foreign(data: bytes) -> bytes:
    """The same message bound to another (random) session: what a replay looks like."""
    message = wire.decode(data)
    field_name = "config_digest" if isinstance(message, msg.AdvertiseKeys) else "session_id"
    values = {f: getattr(message, f) for f in message.__dataclass_fields__}  # type: ignore[attr-defined]
    values[field_name] = crypto.random_bytes(32)
    return wire.encode(type(message)(**values))


class _FaultyUplink:
    """Applies a ``DeliveryPlan`` to what clients send, before the transport carries it."""

    def __init__(self, transport: Transport, plan: DeliveryPlan) -> None:
        self.transport = transport
        self.plan = plan
        self.late: list[tuple[int, bytes]] = []
        self.pending: list[tuple[int, bytes]] = []

    def send(self, client: int, stage: int, data: bytes) -> None:
        fault = self.plan.faults.get((client, STAGES[stage]))
        if fault is Fault.LATE:
            self.late.append((client, data))
            return
        if fault is Fault.TRUNCATE:
            data = data[:-1]
        elif fault is Fault.FLIP_HEADER:
            byte, bit = divmod(self.plan.flip_bit, 8)
            data = data[:byte] + bytes([data[byte] ^ (1 << bit)]) + data[byte + 1:]
        elif fault is Fault.REPLAY:
            data = _foreign(data)
        self.pending.append((client, data))
        if fault is Fault.DUPLICATE:
            self.pending.append((client, data))

    def flush(self, round_number: int) -> None:
        """Hand this round's messages to the transport, in the plan's order for this round."""
        random.Random(self.plan.order_seed * 1009 + round_number).shuffle(self.pending)
        for client, data in self.pending:
            self.transport.client_send(client, data)
        self.pending.clear()

    def release_late(self) -> None:
        for client, data in self.late:
            self.transport.client_send(client, data)
        self.late.clear()


def run_schedule(
    config: SecAggConfig,
    inputs: np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
    schedule: Schedule | Mapping[int, str] | None = None,
    *,
    plan: DeliveryPlan | None = None,
    transport: Transport | None = None,
    clock: Clock | None = None,
    round_timeout: float = 10.0,
    encoded: bool = False,
) -> Verdict:
    """Run one session of real clients and a real server through ``transport``.

    Clients vanish as ``schedule`` says (the driver disconnects them when they
    would next send), the client -> server messages suffer ``plan``'s faults, and
    each round closes once every awaited client has answered or ``round_timeout``
    has passed on ``clock``. Defaults: ``InMemoryTransport`` and ``FakeClock``.
    """
    schedule = schedule if isinstance(schedule, Schedule) else Schedule(dict(schedule or {}))
    transport = transport if transport is not None else InMemoryTransport()
    clock = clock if clock is not None else FakeClock()
    n = config.num_clients
    keys = [crypto.generate_signing_keypair() for _ in range(n)]
    public = [k.public for k in keys]
    clients = [Client(config, i, keys[i].secret, public) for i in range(n)]
    server = Server(config, threads=1)
    uplink = _FaultyUplink(transport, plan or DeliveryPlan())
    errors: dict[int, str] = {}
    disconnected: set[int] = set()

    def act(i: int, call: Callable[[Client], bytes | None]) -> None:
        client = clients[i]
        stage = _STAGE_OF_ROUND.get(client.round)
        if stage is None:
            return
        if not schedule.active(i, stage):
            if i not in disconnected:
                disconnected.add(i)
                transport.client_disconnect(i)
            return
        try:
            out = call(client)
        except ProtocolError as exc:
            errors.setdefault(i, f"{type(exc).__name__}: {exc}")
            return
        if out is not None:
            uplink.send(i, stage, out)

    def give_input(client: Client, i: int) -> bytes | None:
        if encoded:
            return client.set_encoded_input(np.ascontiguousarray(inputs[i]))
        return client.set_input(inputs[i], 1.0 if weights is None else float(weights[i]))

    transport.open(n)
    abort_round: Round | None = None
    graph: Graph | None = None
    try:
        for i in range(n):
            act(i, lambda c: c.start())
            if clients[i].round is Round.SHARE_KEYS:  # it started: set its input now (sends nothing)
                give_input(clients[i], i)
        round_number = 0
        while server.round not in (Round.COMPLETED, Round.ABORTED):
            uplink.flush(round_number)
            deadline = clock.now() + round_timeout
            while True:
                for sender, data in transport.server_receive(max(0.0, deadline - clock.now())):
                    if data is None:
                        if server.round not in (Round.COMPLETED, Round.ABORTED):
                            server.drop(sender, DropReason.TIMEOUT, "the channel closed")
                    else:
                        server.receive(sender, data)
                if not server.waiting_for or clock.now() >= deadline:
                    break
                if isinstance(clock, FakeClock):
                    clock.advance(max(0.0, deadline - clock.now()))
            current = server.round
            outgoing = server.close_round()
            if graph is None:
                graph = server._state.data.graph
            if server.abort_reason is not None:
                abort_round = current
            uplink.release_late()
            for i, data in outgoing.items():
                transport.server_send(i, data)
            for i in sorted(outgoing):
                for data in transport.client_receive(i, round_timeout):
                    act(i, functools.partial(Client.handle, data=data))
            round_number += 1
    finally:
        transport.close()
    result = server.result() if server.round is Round.COMPLETED else None
    return Verdict(
        completed=result is not None,
        survivors=result.survivors if result is not None else (),
        result=result,
        abort_round=abort_round,
        abort_reason=server.abort_reason,
        graph=graph,
        responders=tuple(sorted(server._state.data.responses)),
        dropped=server.dropped,
        client_errors=errors,
    )
