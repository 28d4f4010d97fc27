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
from secagg.errors import SecAggTypeError, SecAggValueError, ensure
from secagg.graph import Graph, complete_graph, harary_graph

__all__ = ["GRAPHS", "SecAggConfig"]

GRAPHS = ("complete", "harary")
_CONFIG_DOMAIN = b"secagg-config-v1"


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
