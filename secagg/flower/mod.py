"""The client side: a Flower mod that runs a ``secagg.Client`` across Flower messages.

Put it on a ``ClientApp`` (``ClientApp(mods=[secagg_mod])``); the app's own
``@app.train()`` function stays as it is. For each ``TRAIN`` message that
carries a secagg stage (see ``_records``) the mod

- ``identify``: answers with this node's roster id, from its own node config;
- ``advertise``: checks the server-sent ``SecAggConfig`` against the node's
  local ``ConfigPolicy`` and that every member is in the operator's roster,
  refuses a session nonce it has seen before, then starts a ``secagg.Client``;
- ``share`` / ``consistency`` / ``unmask``: hands the payload to the client;
- ``masked``: takes its shares, runs the app's training on the model sent along,
  flattens the trained arrays (checked against the model's manifest), clips them
  to the session's clipping range and masks them with the example count as the
  weight (the count is masked too: it never travels in clear).

Between messages the client lives in ``context.state`` as ``Client.to_bytes``
(sealed under the node's identity key), so the mod works when every message runs
in a fresh ClientApp process. Any refusal or protocol failure ends the node's
session and is returned as a Flower ``Error`` reply, reason prefixed ``secagg``.
A plain ``TRAIN`` message (no secagg stage) is refused unless the mod was built
with ``require_secure=False``: otherwise a server could skip secure aggregation
by just asking for the model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from flwr.app import ConfigRecord, Context, Error, Message, MessageType, RecordDict
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.constant import ErrorCode

from secagg import identity
from secagg.client import Client
from secagg.config import ConfigPolicy, SecAggConfig
from secagg.crypto import SigningKeyPair
from secagg.errors import IdentityError, SecAggError, SecAggValueError, ensure
from secagg.flower._records import (
    CONFIG_RECORD,
    PAYLOAD_RECORD,
    Manifest,
    Stage,
    get_payload,
    put_payload,
    stage_of,
)
from secagg.rounds import Round

__all__ = [
    "NODE_CONFIG_ID", "NODE_CONFIG_KEY", "NODE_CONFIG_ROSTER", "NodeIdentity", "SecAggMod", "secagg_mod",
]

#: ``--node-config`` keys the default mod reads: this node's roster id, its key file, the roster file.
NODE_CONFIG_ID = "secagg-id"
NODE_CONFIG_KEY = "secagg-key"
NODE_CONFIG_ROSTER = "secagg-roster"

_T = TypeVar("_T")
_STATE_RECORD = "secagg.state"
_SEEN_NONCES = 64  # session nonces remembered to refuse a replayed session
_ERROR_CODE = ErrorCode.MOD_FAILED_PRECONDITION

#: The client round that must hold before each stage's payload is handled.
_EXPECTED_ROUND = {
    Stage.SHARE: (Round.SHARE_KEYS,),
    Stage.MASKED: (Round.MASKED_INPUT,),
    Stage.CONSISTENCY: (Round.CONSISTENCY_CHECK,),
    Stage.UNMASK: (Round.UNMASKING,),
}


@dataclass(frozen=True)
class NodeIdentity:
    """Who this node is: its roster id, its Ed25519 key and the operator's roster.

    The roster is the trust anchor: peers' verify keys come from it, never from
    the server.
    """

    app_id: identity.AppId
    key: SigningKeyPair
    roster: identity.Roster

    def __post_init__(self) -> None:
        self.roster.check_own_key(self.app_id, self.key)

    @classmethod
    def from_node_config(cls, node_config: dict[str, object]) -> NodeIdentity:
        """Load the identity named by ``--node-config "secagg-id=.. secagg-key=.. secagg-roster=.."``."""
        missing = [k for k in (NODE_CONFIG_ID, NODE_CONFIG_KEY, NODE_CONFIG_ROSTER) if k not in node_config]
        if missing:
            raise IdentityError(
                f"this SuperNode's --node-config lacks {', '.join(missing)}: secure aggregation needs the "
                f"node's roster id, its key file and the operator's roster file"
            )
        roster = identity.Roster.load(os.fspath(str(node_config[NODE_CONFIG_ROSTER])))
        key = identity.load_key(os.fspath(str(node_config[NODE_CONFIG_KEY])))
        return cls(node_config[NODE_CONFIG_ID], key, roster)  # type: ignore[arg-type]


class SecAggMod:
    """A Flower mod running secure aggregation for the ``TRAIN`` messages of a ClientApp.

    ``policy`` is what this node accepts from a server-sent config (defaults to
    ``ConfigPolicy()``); ``identity`` gives the node's identity, by default read
    from its node config on every message (so each ClientApp process loads it).
    """

    def __init__(
        self,
        *,
        policy: ConfigPolicy | None = None,
        identity: NodeIdentity | Callable[[Context], NodeIdentity] | None = None,
        require_secure: bool = True,
    ) -> None:
        ensure(policy is None or isinstance(policy, ConfigPolicy), "policy must be a ConfigPolicy")
        self.policy = policy if policy is not None else ConfigPolicy()
        self._identity = identity
        self.require_secure = require_secure

    def identity(self, context: Context) -> NodeIdentity:
        if isinstance(self._identity, NodeIdentity):
            return self._identity
        if self._identity is not None:
            return self._identity(context)
        return NodeIdentity.from_node_config(dict(context.node_config))

    def __call__(self, message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if message.metadata.message_type.split(".")[0] != MessageType.TRAIN:
            return call_next(message, context)
        parsed = None
        try:
            parsed = stage_of(message.content)
            if parsed is None:
                if self.require_secure:
                    raise SecAggValueError(
                        "refusing a plain TRAIN message: this node sends its update only through secure "
                        "aggregation (build the mod with require_secure=False to allow it)"
                    )
                return call_next(message, context)
            stage, fields = parsed
            content = self._handle(stage, fields, message, context, call_next)
        except SecAggError as exc:
            _clear(context)
            where = parsed[0].value if parsed else "train"
            reason = f"secagg {where}: {type(exc).__name__}: {exc}"
            return Message(Error(_ERROR_CODE, reason), reply_to=message)
        content.config_records[CONFIG_RECORD] = ConfigRecord({"stage": stage.value})
        return Message(content, reply_to=message)

    # --- stages -----------------------------------------------------------------------

    def _handle(
        self, stage: Stage, fields: ConfigRecord, message: Message, context: Context,
        call_next: ClientAppCallable,
    ) -> RecordDict:
        me = self.identity(context)
        out = RecordDict()
        if stage is Stage.IDENTIFY:
            out.config_records[CONFIG_RECORD + ".id"] = ConfigRecord({"id": me.app_id})
            return out
        if stage is Stage.ADVERTISE:
            put_payload(out, self._advertise(fields, message, context, me))
            return out
        saved = context.state.config_records.get(_STATE_RECORD)
        if saved is None or "client" not in saved:
            raise SecAggValueError(f"no secure-aggregation session is open here for stage {stage.value}")
        members = _field(saved, "members", list)
        session_roster = me.roster.session(members)
        client = Client.from_bytes(_field(saved, "client", bytes), me.key.secret, session_roster)
        ensure(client.round in _EXPECTED_ROUND[stage],
               f"stage {stage.value} arrived while the client is in {client.state_name}")
        reply = client.handle(get_payload(message.content))
        if stage is Stage.MASKED:
            ensure(reply is None, "the masked stage did not receive the shares it expects")
            config = SecAggConfig.from_bytes(_field(saved, "config", bytes))
            x, weight = _train(message, context, call_next, fields, config)
            reply = client.set_input(x, weight)
        if reply is None:
            raise SecAggValueError(f"the client had nothing to send at stage {stage.value}")
        put_payload(out, reply)
        if client.round is Round.COMPLETED:
            _clear(context)
        else:
            saved["client"] = client.to_bytes(include_secrets=True)
        return out

    def _advertise(self, fields: ConfigRecord, message: Message, context: Context, me: NodeIdentity) -> bytes:
        config = SecAggConfig.from_bytes(_field(fields, "config", bytes), policy=self.policy)
        members: list[Any] = list(_field(fields, "members", list))
        ensure(len(members) == config.num_clients,
               f"the member list has {len(members)} ids but the config is for {config.num_clients} clients")
        ids = identity.IdMap(members)
        ensure(me.app_id in ids, f"this node ({me.app_id!r}) is not among the session's members")
        session_roster = me.roster.session(members)  # every member must be in the operator's roster
        seen = _nonces(context)
        if config.session_nonce in seen:
            raise SecAggValueError("the server reused a session nonce: refusing a replayed session")
        client = Client(config, ids.index(me.app_id), me.key.secret, session_roster)
        advert = client.start()
        context.state.config_records[_STATE_RECORD] = ConfigRecord({
            "client": client.to_bytes(include_secrets=True),
            "config": config.to_bytes(),
            "members": members,
            "nonces": (seen + [config.session_nonce])[-_SEEN_NONCES:],
        })
        return advert


def _train(
    message: Message, context: Context, call_next: ClientAppCallable, fields: ConfigRecord,
    config: SecAggConfig,
) -> tuple[np.ndarray, float]:
    """Run the app's training on the model sent with the masked stage; the update and its weight."""
    arrays_key = _field(fields, "arrays-key", str)
    weight_key = _field(fields, "weight-key", str)
    content = message.content
    for name in (CONFIG_RECORD, PAYLOAD_RECORD):  # the app sees only what the strategy sent
        del content[name]
    model = content.array_records.get(arrays_key)
    if model is None:
        raise SecAggValueError(f"the masked stage carries no model (ArrayRecord {arrays_key!r})")
    manifest = Manifest.of(model)
    ensure(manifest.size == config.vector_length,
           f"the model has {manifest.size} values but the session is for {config.vector_length}")
    reply = call_next(message, context)
    if reply.has_error():
        raise SecAggValueError(f"training failed: {reply.error.reason}")
    trained = list(reply.content.array_records.values())
    ensure(len(trained) == 1, f"training must return one ArrayRecord, got {len(trained)}")
    holders = [r for r in reply.content.metric_records.values() if weight_key in r]
    ensure(len(holders) == 1, f"training must return the weight {weight_key!r} in exactly one MetricRecord")
    weight = holders[0][weight_key]
    if not (isinstance(weight, (int, float)) and 0 <= weight <= config.max_weight):
        raise SecAggValueError(
            f"the weight {weight_key}={weight!r} must be a number in [0, max_weight={config.max_weight}] "
            f"(raise max_weight on the server)")
    bound = config.clip / config.max_weight  # per-parameter clipping range
    return np.clip(manifest.flatten(trained[0]), -bound, bound), float(weight)


def _field(fields: ConfigRecord, name: str, kind: type[_T]) -> _T:
    value = fields.get(name)
    if not isinstance(value, kind):
        raise SecAggValueError(f"the secagg record lacks {name!r} ({kind.__name__})")
    return value


def _nonces(context: Context) -> list[bytes]:
    """The session nonces this node has already taken part in (most recent last)."""
    saved = context.state.config_records.get(_STATE_RECORD)
    nonces = saved.get("nonces", []) if saved is not None else []
    return [n for n in nonces if isinstance(n, bytes)] if isinstance(nonces, list) else []


def _clear(context: Context) -> None:
    """Forget the open session (its secrets), keeping the nonces already seen."""
    context.state.config_records[_STATE_RECORD] = ConfigRecord({"nonces": _nonces(context)})


#: The mod with the default policy, reading the node's identity from its node config.
secagg_mod = SecAggMod()
