"""Parameters of one secure-aggregation session, agreed by every party in advance.

A ``SecAggConfig`` is what the application hands to each ``Client`` and to the
``Server``. Its digest is signed into every round-0 message, so parties with
different parameters (or a replay from another session, which has another
``session_nonce``) cannot be mixed. ``SecAggConfig.plan`` picks the graph
degree, threshold, bit width and scale with ``secagg.planner`` and refuses a
configuration whose sum could wrap.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import msgpack

from secagg import crypto, planner, prg
from secagg.errors import (
    MalformedMessageError,
    PolicyError,
    SecAggError,
    SecAggTypeError,
    SecAggValueError,
    ensure,
)
from secagg.graph import Graph, complete_graph, harary_graph

__all__ = ["GRAPHS", "ConfigPolicy", "SecAggConfig"]

GRAPHS = ("complete", "harary")
_CONFIG_DOMAIN = b"secagg-config-v1"
_CONFIG_MAGIC = "secagg-config"
_CONFIG_VERSION = 1


@dataclass(frozen=True)
class SecAggConfig:
    """The parameters every party of a session must share.

    Each client's input is a float vector of ``vector_length`` values whose
    weighted values ``weight * x`` are clipped to ``[-clip, clip]`` and encoded
    at ``scale`` into integers mod ``2**bits``; its weight, at most
    ``max_weight``, travels masked as one more element. ``threshold`` is the
    number of a client's neighbours needed to recover its secrets; ``degree`` is
    the number of neighbours (``num_clients - 1`` for the complete graph).
    ``cipher`` expands the masks: ChaCha20 everywhere, or AES-256-CTR where
    every party has AES-NI (``secagg.prg.ciphers()``).
    """

    num_clients: int
    vector_length: int
    threshold: int
    bits: int
    clip: float
    scale: float
    graph: str = "complete"
    degree: int = 0
    max_weight: float = 1.0
    consistency_check: bool = True
    session_nonce: bytes = dataclasses.field(default_factory=lambda: crypto.random_bytes(32))
    cipher: str = "chacha20"

    def __post_init__(self) -> None:
        for name in ("num_clients", "vector_length", "threshold", "bits", "degree"):
            value = getattr(self, name)
            ensure(type(value) is int, f"{name} must be an int, got {type(value).__name__}",
                   raising=SecAggTypeError)
        for name in ("clip", "scale", "max_weight"):
            value = getattr(self, name)
            ensure(isinstance(value, (int, float)) and not isinstance(value, bool),
                   f"{name} must be a number", raising=SecAggTypeError)
            ensure(math.isfinite(value) and value > 0, f"{name} must be finite and > 0, got {value}")
        ensure(type(self.consistency_check) is bool, "consistency_check must be a bool",
               raising=SecAggTypeError)
        ensure(type(self.session_nonce) is bytes and len(self.session_nonce) == 32,
               "session_nonce must be 32 bytes")
        # A constant nonce would let round-0 adverts of an old session verify in a new one.
        ensure(any(self.session_nonce),
               "session_nonce must be 32 fresh random bytes, not zeros (omit it to draw one)")
        ensure(2 <= self.num_clients <= 1 << 24, f"num_clients must be in [2, 2^24], got {self.num_clients}")
        ensure(self.vector_length >= 1, f"vector_length must be >= 1, got {self.vector_length}")
        ensure(2 <= self.bits <= 64, f"bits must be in [2, 64], got {self.bits}")
        ensure(self.graph in GRAPHS, f"graph must be one of {GRAPHS}, got {self.graph!r}")
        ensure(self.cipher in prg.CIPHERS, f"cipher must be one of {prg.CIPHERS}, got {self.cipher!r}")
        if self.graph == "complete":
            ensure(self.degree in (0, self.num_clients - 1),
                   f"the complete graph has degree num_clients - 1 = {self.num_clients - 1}")
            object.__setattr__(self, "degree", self.num_clients - 1)
        else:
            ensure(2 <= self.degree < self.num_clients - 1 and self.degree % 2 == 0,
                   f"a Harary graph needs an even degree in [2, {self.num_clients - 2}], "
                   f"got {self.degree} (use graph='complete' for a full graph)")
        ensure(1 <= self.threshold <= self.degree,
               f"threshold must be in [1, degree={self.degree}], got {self.threshold}")
        if self.consistency_check:
            # Two disjoint groups of t neighbours could each confirm a different survivor set.
            ensure(2 * self.threshold > self.degree,
                   f"the consistency check needs 2 * threshold > degree to stop split views, "
                   f"got threshold {self.threshold} and degree {self.degree}")
        planner.check_no_wrap(self.num_clients, self.clip, self.scale, self.bits)
        # The weight element must resolve a weight of 1 (one example): a coarser scale
        # rounds typical weights to 0 and the weight sum decodes as nonsense.
        ensure(self.weight_scale >= 1,
               f"max_weight {self.max_weight} with {self.num_clients} clients needs more than "
               f"{self.bits} bits: the weight sum would be encoded in steps of "
               f"{1 / self.weight_scale:g}; lower max_weight or raise bits")

    # --- derived values ------------------------------------------------------

    @property
    def weight_scale(self) -> float:
        """Fixed-point scale of the weight element: the largest that cannot wrap."""
        return planner.max_scale(self.num_clients, self.max_weight, self.bits)

    @property
    def encoded_length(self) -> int:
        """Elements in a masked input: the vector plus the weight element."""
        return self.vector_length + 1

    def digest(self) -> bytes:
        """32-byte hash of every field: what round-0 signatures commit to."""
        fields = [getattr(self, f.name) for f in dataclasses.fields(self)]
        return crypto.session_id(_CONFIG_DOMAIN, msgpack.packb(fields, use_bin_type=True))

    def build_graph(self, session_id: bytes) -> Graph:
        """The neighbour graph; a Harary graph's labels are permuted by the session id."""
        if self.graph == "complete":
            return complete_graph(self.num_clients)
        seed = crypto.stretch(crypto.derive_key(session_id, b"graph-permutation"))
        return harary_graph(self.num_clients, self.degree, seed)

    # --- bytes --------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The config as versioned msgpack bytes, ending with its digest (see ``from_bytes``)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return msgpack.packb([_CONFIG_MAGIC, _CONFIG_VERSION, fields, self.digest()], use_bin_type=True)

    @classmethod
    def from_bytes(cls, data: bytes, *, policy: ConfigPolicy | None = None) -> SecAggConfig:
        """Parse ``to_bytes`` output, check it, and (if given) check it against ``policy``.

        The fields are validated as by the constructor and the digest is
        recomputed; anything malformed raises ``MalformedMessageError``. A client
        that receives its config from the server should pass its local ``policy``:
        a config the policy refuses raises ``PolicyError``, naming the field.
        """
        try:
            obj = msgpack.unpackb(bytes(data), use_list=False, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises several unrelated types on bad input
            raise MalformedMessageError(f"config: not msgpack ({type(exc).__name__})") from None
        if type(obj) is not tuple or len(obj) != 4 or obj[0] != _CONFIG_MAGIC:
            raise MalformedMessageError("config: not a secagg config (missing header)")
        if type(obj[1]) is not int or obj[1] != _CONFIG_VERSION:
            raise MalformedMessageError(
                f"config: unsupported version {obj[1]!r} (expected {_CONFIG_VERSION})"
            )
        fields, digest = obj[2], obj[3]
        names = {f.name for f in dataclasses.fields(cls)}
        if type(fields) is not dict or set(fields) != names:
            got = sorted(fields) if type(fields) is dict else type(fields).__name__
            raise MalformedMessageError(f"config: expected the fields {sorted(names)}, got {got}")
        try:
            config = cls(**fields)
        except SecAggError as exc:
            raise MalformedMessageError(f"config: {exc}") from None
        if digest != config.digest():
            raise MalformedMessageError("config: the digest does not match the fields")
        if policy is not None:
            config.check_policy(policy)
        return config

    def check_policy(self, policy: ConfigPolicy) -> None:
        """Raise ``PolicyError`` unless this config is one ``policy`` accepts."""
        ensure(isinstance(policy, ConfigPolicy), "policy must be a ConfigPolicy", raising=SecAggTypeError)
        policy.check(self)

    # --- planning --------------------------------------------------------------

    @classmethod
    def plan(
        cls,
        num_clients: int,
        vector_length: int,
        *,
        clip: float,
        graph: str = "harary",
        bits: int | None = None,
        scale: float | None = None,
        dropout_rate: float = 0.05,
        corrupt_fraction: float = 0.05,
        max_weight: float = 1.0,
        consistency_check: bool = True,
        session_nonce: bytes | None = None,
        cipher: str = "chacha20",
    ) -> SecAggConfig:
        """A config with degree and threshold from the planner and a bit width that cannot wrap.

        Without ``bits``, 32 bits are used unless ``scale`` needs more; without
        ``scale``, the largest scale that fits. A fresh ``session_nonce`` is drawn
        unless given (all parties must then receive this same config).

        ``consistency_check=True`` (the default) plans for a *malicious* server: the
        threshold also satisfies 2t > k + (corrupt neighbours), which the consistency
        round needs to stop split views (docs/security.md). With
        ``consistency_check=False`` the planner still gives that (k, t), but the
        session only protects against an *honest-but-curious* server: without the
        signed survivor set, a malicious server can ask different clients for both
        kinds of share of one client. Use it only where the server is trusted to run
        the protocol as written.
        """
        ensure(graph in GRAPHS, f"graph must be one of {GRAPHS}, got {graph!r}")
        if graph == "harary":
            gp = planner.plan_graph(
                num_clients, dropout_rate=dropout_rate, corrupt_fraction=corrupt_fraction
            )
            if gp.kind == "complete" or gp.k >= num_clients - 1:
                graph = "complete"
            degree, threshold = gp.k, gp.t
        if graph == "complete":
            gp = planner.plan_complete(
                num_clients, dropout_rate=dropout_rate, corrupt_fraction=corrupt_fraction
            )
            degree, threshold = num_clients - 1, min(gp.t, num_clients - 1)
        if bits is None:
            bits = 32 if scale is None else max(32, planner.required_bits(num_clients, clip, scale))
        if scale is None:
            scale = planner.max_scale(num_clients, clip, bits)
            if not scale > 0:
                raise SecAggValueError(
                    f"{bits} bits cannot carry the sum of {num_clients} values in [-{clip}, {clip}]"
                )
        return cls(
            num_clients=num_clients,
            vector_length=vector_length,
            threshold=threshold,
            bits=bits,
            clip=float(clip),
            scale=float(scale),
            graph=graph,
            degree=degree,
            max_weight=float(max_weight),
            consistency_check=consistency_check,
            session_nonce=session_nonce if session_nonce is not None else crypto.random_bytes(32),
            cipher=cipher,
        )


@dataclass(frozen=True)
class ConfigPolicy:
    """What a client accepts from a server-sent ``SecAggConfig`` (its local policy).

    The server picks the session parameters, so a client must not take them on
    trust: a malicious server could propose a threshold of 1, a tiny cohort, or
    no consistency check. ``check`` refuses, with ``PolicyError`` naming the
    field, any config outside these bounds. ``fixed`` pins fields the client
    knows in advance (``vector_length``, ``clip``, ``scale`` ...) to exact values.

    The defaults ask for the consistency check and ``2t > k`` (as the config
    itself does); tighten ``min_clients`` and ``min_threshold_fraction`` to the
    deployment's threat model (docs/security.md).
    """

    min_clients: int = 2
    max_clients: int = 1 << 24
    min_threshold: int = 1
    min_threshold_fraction: float = 0.5  #: threshold must exceed this fraction of the degree
    require_consistency_check: bool = True
    graphs: tuple[str, ...] = GRAPHS
    ciphers: tuple[str, ...] = prg.CIPHERS
    fixed: tuple[tuple[str, object], ...] = ()  #: (field name, required value) pairs

    def __post_init__(self) -> None:
        names = {f.name for f in dataclasses.fields(SecAggConfig)}
        for name, _ in self.fixed:
            ensure(name in names, f"fixed names unknown config field {name!r}")
        ensure(0 <= self.min_threshold_fraction < 1, "min_threshold_fraction must be in [0, 1)")

    def check(self, config: SecAggConfig) -> None:
        """Raise ``PolicyError`` naming the first field of ``config`` this policy refuses."""
        def refuse(what: str) -> None:
            raise PolicyError(f"the proposed config is refused by local policy: {what}")

        if not self.min_clients <= config.num_clients <= self.max_clients:
            refuse(f"num_clients={config.num_clients} outside [{self.min_clients}, {self.max_clients}]")
        if config.threshold < self.min_threshold:
            refuse(f"threshold={config.threshold} below {self.min_threshold}")
        if not config.threshold > self.min_threshold_fraction * config.degree:
            refuse(f"threshold={config.threshold} is not above {self.min_threshold_fraction} of "
                   f"degree={config.degree}")
        if self.require_consistency_check and not config.consistency_check:
            refuse("consistency_check is off")
        if config.graph not in self.graphs:
            refuse(f"graph={config.graph!r} not in {self.graphs}")
        if config.cipher not in self.ciphers:
            refuse(f"cipher={config.cipher!r} not in {self.ciphers}")
        for name, value in self.fixed:
            if getattr(config, name) != value:
                refuse(f"{name}={getattr(config, name)!r}, expected {value!r}")
