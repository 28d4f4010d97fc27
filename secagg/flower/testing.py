"""An in-process Flower ``Grid``: real ClientApps and real Flower messages, no SuperLink.

``InProcessGrid`` delivers each message to a real ``flwr.clientapp.ClientApp``
with one persistent ``Context`` per node, as a SuperNode would, and returns the
replies. Every message crosses as Flower 1.42's transport carries it: deflated
into its content-addressed objects and inflated again on the other side, so a
receiver never shares objects with the sender, and the bytes are counted.
Hooks let tests play the network and the server: ``vanish`` makes a node
silent from a given stage on (as if its SuperNode was killed), and ``down`` may
rewrite or drop any message on its way to a node (a malicious server). Used by
the tests and by ``bench/flower_round.py``; the deployment script uses Flower's
real SuperLink and SuperNodes instead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from flwr.app import Context, Error, Message, RecordDict
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from secagg.errors import SecAggValueError
from secagg.flower._records import Stage, stage_of

__all__ = ["InProcessGrid", "SERVER_NODE_ID"]

SERVER_NODE_ID = 1


class InProcessGrid(Grid):
    """Runs ``app`` for every message, in this process, one ``Context`` per node id."""

    def __init__(self, app: Callable[[Message, Context], Message], node_configs: Mapping[int, dict[str, Any]],
                 *, run_id: int = 1) -> None:
        self.app = app
        self.contexts = {
            node: Context(run_id=run_id, node_id=node, node_config=dict(cfg), state=RecordDict(),
                          run_config={})
            for node, cfg in node_configs.items()
        }
        self._run_id = run_id
        # This process plays the ServerApp: Flower's Message constructor reads its identity.
        TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = run_id, SERVER_NODE_ID, 0
        #: node -> first stage at which it no longer answers (None: from the next message on).
        self.vanish: dict[int, Stage | None] = {}
        #: hook(message) -> the message to deliver instead, or None to drop it (the server misbehaves).
        self.down: Callable[[Message], Message | None] | None = None
        #: every (stage or None, message delivered, reply), for tests that inspect what the server saw.
        self.log: list[tuple[Stage | None, Message, Message]] = []
        #: seconds spent inside each node's ClientApp, by node.
        self.client_seconds: dict[int, float] = {}
        #: bytes of the serialized messages each node received / sent.
        self.download_bytes: dict[int, int] = {}
        self.upload_bytes: dict[int, int] = {}

    # --- Grid ------------------------------------------------------------------------

    def set_run(self, run):  # type: ignore[no-untyped-def]
        raise NotImplementedError("InProcessGrid has a fixed run")

    @property
    def run(self) -> Run:
        return Run.create_empty(self._run_id)

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):  # type: ignore[no-untyped-def]
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return sorted(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError("use send_and_receive")

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise NotImplementedError("use send_and_receive")

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        replies = []
        for message in messages:
            meta = message.metadata.__dict__
            meta["_message_id"] = uuid.uuid4().hex
            meta["_run_id"] = self._run_id
            meta["_src_node_id"] = SERVER_NODE_ID
            node = message.metadata.dst_node_id
            if node not in self.contexts or self._silent(node, message):
                continue
            if self.down is not None:
                altered = self.down(message)
                if altered is None:
                    continue
                message = altered
            parsed = _stage(message)
            message, size = _transport(message)
            self.download_bytes[node] = self.download_bytes.get(node, 0) + size
            start = time.perf_counter()
            try:
                reply = self.app(message, self.contexts[node])
            except Exception as exc:  # a SuperNode turns a crashing ClientApp into an error reply
                reply = Message(Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, f"{type(exc).__name__}: {exc}"),
                                reply_to=message)
            self.client_seconds[node] = self.client_seconds.get(node, 0.0) + time.perf_counter() - start
            reply.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            reply, size = _transport(reply)
            self.upload_bytes[node] = self.upload_bytes.get(node, 0) + size
            self.log.append((parsed[0] if parsed else None, message, reply))
            replies.append(reply)
        return replies

    def _silent(self, node: int, message: Message) -> bool:
        if node not in self.vanish:
            return False
        stage = self.vanish[node]
        if stage is None:
            return True
        parsed = _stage(message)
        order = list(Stage)
        if parsed is not None and order.index(parsed[0]) >= order.index(stage):
            self.vanish[node] = None  # once gone, gone for good
            return True
        return False


def _stage(message: Message) -> tuple[Stage, object] | None:
    """The secagg stage of a message, or None (also for an unknown stage: the node judges it)."""
    try:
        return stage_of(message.content) if message.has_content() else None
    except SecAggValueError:
        return None


def _transport(message: Message) -> tuple[Message, int]:
    """A copy of ``message`` as the receiver gets it from Flower's object store, and its size in bytes."""
    objects = get_all_nested_objects(message)
    contents = {object_id: obj.deflate() for object_id, obj in objects.items()}
    size = sum(len(c) for c in contents.values())
    copy = cast(Message, inflate_object_from_contents(message.object_id, contents))
    copy.metadata.__dict__["_message_id"] = message.metadata.message_id
    return copy, size
