"""What a session will cost, predicted from unit costs measured on this machine.

``UnitCosts`` holds the price of each operation the protocol performs (keystream
bytes per second per cipher, one X25519 agreement, one Ed25519 signature, one AEAD
call, Shamir sharing and reconstruction, encoding and packing per element) and a
few protocol overheads (Python work per neighbour and per client, fitted on small
calibration sessions). ``predict`` composes them with the operation counts of
each stage of the protocol, read off ``secagg.client`` and ``secagg.server``; the
formulas are written out in docs/benchmarks.md ("Cost model").

``secagg bench calibrate`` (``calibrate``) measures the unit costs and stores them
in ``$XDG_CACHE_HOME/secagg/unit-costs.json`` (``~/.cache`` by default);
``load_unit_costs`` reads that file, or falls back to ``DEFAULT_UNIT_COSTS``,
measured on the project's reference machine.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secagg.errors import SecAggValueError, ensure

__all__ = [
    "STAGES",
    "CALIBRATED_UP_TO",
    "UnitCosts",
    "Workload",
    "Prediction",
    "DEFAULT_UNIT_COSTS",
    "cache_path",
    "load_unit_costs",
    "save_unit_costs",
    "calibrate",
    "workload",
    "predict",
    "message_bytes",
]

STAGES = ("advertise", "share", "masked", "consistency", "unmask")
_FORMAT = 1
#: The largest n at which every prediction was checked within 25 % of a measured session
#: (docs/benchmarks.md; at n = 10^4 the server was 1.6-2.2 times low): beyond, extrapolations.
CALIBRATED_UP_TO = 1_000


@dataclass(frozen=True)
class UnitCosts:
    """Seconds per operation (and bytes per second for keystream) on one core.

    ``client_overhead[stage]`` is (seconds per session, per neighbour, per client in
    the cohort, per squared neighbour count on a Harary graph, per consistency signer
    within three hops, per squared neighbour count on the complete graph) of the
    client's Python work not covered by the primitives (``_overhead_features`` says
    which stages use which);
    ``server_overhead[stage]`` is (seconds per client, per client-neighbour pair, and
    per pair again on a Harary graph, whose pairs cost more);
    ``memory`` is (bytes, per vector element, per client-neighbour pair, per client, per
    signer-signer pair within three hops).
    Shorter tuples (files written before a feature existed) leave the missing terms out.
    """

    keystream_gbps: Mapping[str, float]  #: fused mask expansion and accumulation, GB of keystream / s
    kx_keygen_s: float  #: X25519 key pair
    kx_agree_s: float  #: X25519 agreement, with its checks
    sign_s: float  #: Ed25519 signature
    verify_s: float  #: Ed25519 verification
    kdf_s: float  #: one BLAKE2b key derivation
    aead_encrypt_s: float  #: XChaCha20-Poly1305 of one share pair (88 bytes)
    aead_decrypt_s: float
    shamir_split_s: float  #: one call of shamir.split, besides the per-product term
    shamir_split_product_s: float  #: per holder x threshold
    lagrange_s: float  #: Reconstructor(xs) per t^2
    reconstruct_share_s: float  #: reconstruction per share, coefficients known
    encode_element_s: float  #: float -> fixed point, per element
    #: Client: pack and frame the masked input, per element, by "byte" (b = 8/16/32/64) or "odd" width
    pack_element_s: Mapping[str, float]
    #: Server: parse the message, unpack and add into the sum, per element
    unpack_add_element_s: Mapping[str, float]
    decode_element_s: float
    threads_efficiency: float = 0.875  #: speed-up per extra server thread, as a fraction of ideal
    stretch_s: float = 0.0  #: one Argon2id stretch of the SecAgg+ graph seed
    lagrange_fixed_s: float = 0.0  #: Reconstructor(xs), besides the per-t^2 term
    reconstruct_fixed_s: float = 0.0  #: one reconstruction, besides the per-share term
    #: A deployed client's check of one key-directory record (payload hash, Ed25519
    #: verification, Python); 0 in files written before it was measured: ``verify_s`` then.
    directory_record_s: float = 0.0
    #: BLAKE2b per byte: the server names every received message (redelivery check).
    digest_byte_s: float = 0.0
    #: One id of an IdSet (the survivor set) checked and framed in a message: the server
    #: builds one unmasking request per signer, each carrying all survivors.
    idset_element_s: float = 0.0
    client_overhead: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    server_overhead: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    memory: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    machine: str = ""
    measured: str = ""  #: UTC time of the calibration

    def to_json(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out["format"] = _FORMAT
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> UnitCosts:
        ensure(isinstance(data, Mapping) and data.get("format") == _FORMAT,
               f"unit costs must be a format-{_FORMAT} object")
        names = {f.name for f in dataclasses.fields(cls)}
        optional = {"threads_efficiency", "stretch_s", "lagrange_fixed_s", "reconstruct_fixed_s",
                    "directory_record_s", "digest_byte_s", "idset_element_s", "machine", "measured"}
        missing = names - set(data) - optional
        ensure(not missing, f"unit costs lack {sorted(missing)}")
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in names}
        for key in ("client_overhead", "server_overhead"):
            kwargs[key] = {s: tuple(v) for s, v in dict(kwargs.get(key) or {}).items()}
        kwargs["memory"] = tuple(kwargs.get("memory") or (0.0,) * 5)
        return cls(**kwargs)


# Measured with `secagg bench calibrate` on the project's machine (Xeon, AVX-512, VAES);
# see docs/benchmarks.md. Used when no calibration of this machine is cached.
DEFAULT_UNIT_COSTS = UnitCosts(
    keystream_gbps={"chacha20": 6.31, "aes256ctr": 28.1},
    kx_keygen_s=1.49e-05,
    kx_agree_s=3.28e-05,
    sign_s=3.29e-05,
    verify_s=4.52e-05,
    kdf_s=7.07e-06,
    aead_encrypt_s=5.44e-06,
    aead_decrypt_s=4.91e-06,
    shamir_split_s=1.94e-05,
    shamir_split_product_s=1.16e-08,
    lagrange_s=4.59e-09,
    reconstruct_share_s=5.09e-07,
    encode_element_s=4.3e-09,
    pack_element_s={"byte": 4.82e-10, "odd": 7.67e-10},
    unpack_add_element_s={"byte": 2.71e-10, "odd": 9.94e-10},
    decode_element_s=1.26e-09,
    threads_efficiency=0.875,
    stretch_s=0.0291,
    lagrange_fixed_s=1.94e-05,
    reconstruct_fixed_s=1.12e-05,
    directory_record_s=5.62e-05,
    digest_byte_s=8.03e-10,
    idset_element_s=1.2e-09,
    memory=(295000.0, 14.8, 251.0, 0.0, 141.0),
    client_overhead={
        "advertise": (1.27e-05, 7.85e-09, 0.0, 0.0, 0.0, 0.0),
        "share": (0.000308, 1.44e-05, 6.16e-07, 0.0, 0.0, 0.0),
        "masked": (0.000134, 1.59e-05, 0.0, 0.0, 0.0, 0.0),
        "consistency": (4.13e-05, 3.44e-08, 0.0, 0.0, 0.0, 0.0),
        "unmask": (0.000149, 4.68e-05, 0.0, 3.71e-07, 8.69e-06, 2.39e-08),
    },
    server_overhead={
        "advertise": (8.93e-06, 0.0, 1.36e-07),
        "share": (3.74e-05, 7.97e-07, 6e-07),
        "masked": (3.66e-05, 4.14e-07, 2.42e-07),
        "consistency": (4.52e-05, 8.76e-07, 7.02e-07),
        "unmask": (4.21e-05, 1.44e-06, 1.2e-06),
    },
    machine="project reference machine (x86_64, AVX-512, VAES)", measured="2026-12-02T01:44:25Z",
)


def cache_path() -> Path:
    """Where ``secagg bench calibrate`` stores unit costs: $XDG_CACHE_HOME/secagg/unit-costs.json."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "secagg" / "unit-costs.json"


def load_unit_costs(path: str | os.PathLike[str] | None = None) -> tuple[UnitCosts, str]:
    """The cached calibration (or ``DEFAULT_UNIT_COSTS``) and where it came from."""
    if path is not None and not Path(path).exists():
        raise SecAggValueError(f"no unit costs at {path} (write them with `secagg bench calibrate --output`)")
    path = Path(path) if path is not None else cache_path()
    if not path.exists():
        return DEFAULT_UNIT_COSTS, "shipped defaults (run `secagg bench calibrate` for this machine)"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SecAggValueError(f"cannot read unit costs from {path}: {exc}") from None
    return UnitCosts.from_json(data), str(path)


def save_unit_costs(costs: UnitCosts, path: str | os.PathLike[str] | None = None) -> Path:
    path = Path(path) if path is not None else cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(costs.to_json(), indent=1))
    tmp.replace(path)
    return path


# --- what a session does -----------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """Operation counts of one session, from the parameters (expected values under dropout)."""

    n: int
    m: int
    k: int
    t: int
    bits: int
    graph: str
    dropout: float
    stage: str
    cipher: str
    consistency_check: bool = True
    threads: int = 1
    #: In a simulation the key-directory signatures and the graph's Argon2id stretch are
    #: verified once per process (cached); in a deployment every client pays them.
    simulated: bool = False

    @property
    def vanished(self) -> int:
        from secagg.planner import planned_dropouts

        return planned_dropouts(self.n, self.dropout)

    def _alive_at(self, stage: str) -> int:
        """Clients still sending at ``stage``."""
        gone = STAGES.index(self.stage) <= STAGES.index(stage)
        return self.n - self.vanished if gone else self.n

    @property
    def advertisers(self) -> int:
        return self._alive_at("advertise")

    @property
    def sharers(self) -> int:
        return self._alive_at("share")

    @property
    def counted(self) -> int:
        """Clients whose masked input is in the sum."""
        return self._alive_at("masked")

    @property
    def signers(self) -> int:
        return self._alive_at("consistency")

    @property
    def responders(self) -> int:
        return self._alive_at("unmask")

    @property
    def unmasked_dropped(self) -> int:
        """Clients that shared keys but sent no masked input: their pair masks are removed."""
        return self.sharers - self.counted

    def neighbours(self, group: int) -> float:
        """Expected neighbours of a client of ``group`` (itself included) inside that group."""
        return self.k * max(group - 1, 0) / (self.n - 1)

    def within_three_hops(self, group: int) -> float:
        """Expected members of ``group`` within three hops of a client (itself included)."""
        reach = self.n if self.graph == "complete" else min(3 * self.k + 1, self.n)
        return reach * group / self.n

    @property
    def element_bytes(self) -> int:
        return 4 if self.bits <= 32 else 8


def workload(n: int, m: int, k: int, t: int, *, bits: int = 32, graph: str = "harary",
             dropout: float = 0.0, stage: str = "masked", cipher: str = "chacha20",
             consistency_check: bool = True, threads: int = 1, simulated: bool = False) -> Workload:
    ensure(stage in STAGES, f"stage must be one of {STAGES}, got {stage!r}")
    ensure(0 <= dropout < 1, f"dropout must be in [0, 1), got {dropout}")
    ensure(1 <= t <= k < n, f"need 1 <= t <= k < n, got t={t}, k={k}, n={n}")
    return Workload(n, m, k, t, bits, graph, dropout, stage, cipher, consistency_check, threads, simulated)


def _width(bits: int) -> str:
    return "byte" if bits in (8, 16, 32, 64) else "odd"


def _bin(length: float) -> float:
    """Bytes a msgpack ``bin`` of ``length`` bytes adds over an empty one (header growth included)."""
    header = 2 if length < 256 else 3 if length < 65536 else 5
    return length + header - 2


def message_bytes(w: Workload) -> dict[str, float]:
    """Bytes one client that stays sends and receives over the session (msgpack framing included).

    Sizes come from encoding real messages with ``count`` items and adding the rest
    at the per-item size, so they follow the wire format.
    """
    from secagg import messages as msg
    from secagg import packing, wire
    from secagg.crypto import AEAD_OVERHEAD, SIGNATURE_BYTES
    from secagg.derivation import _SHARE_PLAINTEXT
    from secagg.shamir import SHARE_BYTES

    big = max(w.n - 1, 1)
    sid, digest, key, sig = bytes(32), bytes(32), bytes(32), bytes(SIGNATURE_BYTES)
    ct = bytes(AEAD_OVERHEAD + _SHARE_PLAINTEXT)

    def items(make: Callable[[int], msg.Message], count: float) -> float:
        few = int(min(count, 32))
        size: float = len(wire.encode(make(few)))
        if count > few and few:
            size += (count - few) * (len(wire.encode(make(few))) - len(wire.encode(make(few - 1))))
        return float(size)

    def ids(j: int) -> tuple[int, ...]:
        """The j largest ids, sorted."""
        return tuple(big - i for i in range(j))[::-1]

    advert = len(wire.encode(msg.AdvertiseKeys(big, digest, key, bytes(31) + b"\1", sig)))
    k_adv, k_share = w.neighbours(w.advertisers), w.neighbours(w.sharers)
    share_keys = items(lambda j: msg.ShareKeys(big, sid, ids(j), (ct,) * j), k_adv)
    missing = w.k - k_share  # neighbours whose shares never came: named in the masked input
    masked = len(wire.encode(msg.MaskedInput(big, sid, bytes(packing.packed_size(w.m + 1, w.bits)), b"",
                                             sig))) + _bin(4 * missing)
    signature = len(wire.encode(msg.ConsistencySignature(big, sid, sig))) if w.consistency_check else 0
    # Seed shares of the counted neighbours, key shares of the dropped ones: two lists.
    seeds = min(w.neighbours(w.counted), k_share)
    share = (bytes(SHARE_BYTES),)
    response = (items(lambda j: msg.UnmaskResponse(big, sid, ids(j), share * j, (), ()), seeds)
                + items(lambda j: msg.UnmaskResponse(big, sid, (), (), ids(j), share * j), k_share - seeds)
                - len(wire.encode(msg.UnmaskResponse(big, sid, (), (), (), ()))))
    directory = len(wire.encode(msg.KeyDirectory(digest, b""))) + _bin(w.advertisers * msg.KEY_RECORD_BYTES)
    shares_in = items(lambda j: msg.EncryptedShares(sid, ids(j), (ct,) * j), k_share)
    idset = _bin(4 * w.counted)
    request = len(wire.encode(msg.ConsistencyRequest(sid, b""))) + idset if w.consistency_check else 0
    n_signers = w.within_three_hops(w.signers) if w.consistency_check else 0
    attested = w.neighbours(w.counted)  # counted partners: their partner sets travel with the request
    empty = len(wire.encode(msg.UnmaskRequest(sid, b"", b"", (), (), (), (), ())))
    exclusion = (msg.encode_ids(range(round(missing))),)
    signed = items(lambda j: msg.UnmaskRequest(sid, b"", b"", ids(j), (sig,) * j, (), (), ()), n_signers)
    partner_sets = items(
        lambda j: msg.UnmaskRequest(sid, b"", b"", (), (), ids(j), exclusion * j, (sig,) * j), attested)
    unmask_req = signed + partner_sets - empty + idset + _bin(4 * w.unmasked_dropped)
    return {
        "upload": advert + share_keys + masked + signature + response,
        "download": directory + shares_in + request + unmask_req,
        "masked_input": float(masked),
    }


@dataclass(frozen=True)
class Prediction:
    """Predicted costs of one session (seconds on one core unless ``threads`` says otherwise)."""

    client_stage_s: dict[str, float]
    server_stage_s: dict[str, float]
    upload_bytes: float
    download_bytes: float
    server_peak_bytes: float
    client_messages: int  #: messages a client sends (its round trips with the server)
    server_broadcasts: int

    @property
    def client_s(self) -> float:
        return sum(self.client_stage_s.values())

    @property
    def server_s(self) -> float:
        return sum(self.server_stage_s.values())

    def wall_s(self, n: int) -> float:
        """Wall time of an in-process simulation: every client's work plus the server's."""
        return n * self.client_s + self.server_s

    def to_json(self) -> dict[str, object]:
        return {
            **{f"client_{s}_s": v for s, v in self.client_stage_s.items()},
            "client_total_s": self.client_s,
            **{f"server_{s}_s": v for s, v in self.server_stage_s.items()},
            "server_total_s": self.server_s,
            "upload_bytes": self.upload_bytes,
            "download_bytes": self.download_bytes,
            "server_peak_bytes": self.server_peak_bytes,
            "client_messages": self.client_messages,
            "server_broadcasts": self.server_broadcasts,
        }


def _primitive_costs(w: Workload, u: UnitCosts) -> tuple[dict[str, float], dict[str, float]]:
    """Client and server seconds per stage spent in the primitives (no protocol overhead)."""
    rate = u.keystream_gbps.get(w.cipher)
    ensure(rate is not None and rate > 0, f"no keystream rate for cipher {w.cipher!r}")
    assert rate is not None  # narrowed by the check above
    mask_s = w.element_bytes * (w.m + 1) / (rate * 1e9)  # one mask over the vector
    k_adv = w.neighbours(w.advertisers)
    k_share = w.neighbours(w.sharers)
    split = u.shamir_split_s + u.shamir_split_product_s * k_adv * w.t
    stretch = u.stretch_s if w.graph == "harary" else 0.0
    # Every directory record is checked (and the graph seed stretched) by every client,
    # except in a simulation, where one process pays them once.
    record = u.directory_record_s or u.verify_s
    directory = 0.0 if w.simulated else w.advertisers * record + stretch
    signers = w.within_three_hops(w.signers) if w.consistency_check else 0.0
    # The survivor set (U ids) travels in the consistency request (once for all) and in
    # each unmasking request; every message is checked when built and when received.
    survivor_set = w.counted * u.idset_element_s
    client = {
        "advertise": 2 * u.kx_keygen_s + u.sign_s,
        "share": directory + k_adv * (2 * u.kx_agree_s + 2 * u.kdf_s + u.aead_encrypt_s) + 2 * split,
        "masked": (w.m * u.encode_element_s + k_share * u.aead_decrypt_s + (k_share + 1) * mask_s
                   + w.m * u.pack_element_s[_width(w.bits)] + u.sign_s),
        "consistency": u.sign_s + survivor_set if w.consistency_check else 0.0,
        # Consistency signatures within three hops, and each counted partner's partner set.
        "unmask": (signers + w.neighbours(w.counted)) * u.verify_s + survivor_set,
    }
    counted, dropped = w.counted, w.unmasked_dropped
    partners = w.k * counted / (w.n - 1)  # a dropped client's neighbours that were counted
    # Lagrange coefficients are computed once per distinct set of t holders: about t + 1
    # sets on the complete graph (the first t responders, skipping the owner), one per
    # secret on a Harary graph (each client's holders are its own neighbours).
    secrets = counted + dropped
    lagrange_sets = min(w.t + 1, secrets) if w.graph == "complete" else secrets
    speedup = 1 + (max(w.threads, 1) - 1) * u.threads_efficiency
    server = {
        "advertise": stretch,
        "share": 0.0,
        # Each masked input is named (hashed) for the redelivery check, parsed, unpacked, added.
        "masked": (counted * (w.m * u.unpack_add_element_s[_width(w.bits)]
                              + math.ceil((w.m + 1) * w.bits / 8) * u.digest_byte_s)
                   + (0.0 if w.consistency_check else counted * survivor_set)),
        # One request per signer (per survivor without the consistency check, built when
        # the masked round closes), each with the whole survivor set: O(n^2) in all.
        "consistency": w.signers * survivor_set if w.consistency_check else 0.0,
        "unmask": (lagrange_sets * (u.lagrange_fixed_s + u.lagrange_s * w.t ** 2)
                   + secrets * (u.reconstruct_fixed_s + w.t * u.reconstruct_share_s)
                   + counted * u.kdf_s
                   + dropped * (u.kx_keygen_s + partners * (u.kx_agree_s + u.kdf_s))
                   + (counted + dropped * partners) * mask_s / speedup
                   + w.m * u.decode_element_s),
    }
    return client, server


#: Which client overhead features each stage uses (the others are 0): (1, k, n, k^2 Harary,
#: H, k^2 complete). Only the key-directory round does Python work per client of the
#: session (a roster lookup per record); the survivor sets of the later rounds are handled
#: by numpy (``idset_element_s``). Only the unmasking round walks signers within three hops
#: (H) and each attested partner's neighbours (k^2, at a different price per graph).
_CLIENT_FEATURES = {
    "advertise": (1, 1, 0, 0, 0, 0),
    "share": (1, 1, 1, 0, 0, 0),
    "masked": (1, 1, 0, 0, 0, 0),
    "consistency": (1, 1, 0, 0, 0, 0),
    "unmask": (1, 1, 0, 1, 1, 1),
}


def _overhead_features(w: Workload) -> tuple[dict[str, tuple[float, ...]], dict[str, tuple[float, ...]]]:
    """Feature values the fitted overheads multiply.

    Client: (1, k, n, k^2 on a Harary graph, H, k^2 on the complete graph), H the
    consistency signers within three hops (``Workload.within_three_hops``), masked
    per stage by ``_CLIENT_FEATURES``. Server: (N, N k, N k on a Harary graph), N the
    clients active in the stage: a Harary graph's pairs cost more (neighbour lists
    come from a permuted ring, indexed and sorted, and the consistency round forwards
    the 3k + 1 signatures within three hops of each client, against n = k + 1 on the
    complete graph), so the third term is that graph's surcharge per pair.
    """
    k = float(w.k)
    harary = w.graph == "harary"
    signers = w.within_three_hops(w.signers) if w.consistency_check else 0.0
    values = (1.0, k, float(w.n), k * k if harary else 0.0, signers, 0.0 if harary else k * k)
    client = {s: tuple(x * on for x, on in zip(values, _CLIENT_FEATURES[s], strict=True)) for s in STAGES}
    alive = {"advertise": w.advertisers, "share": w.sharers, "masked": w.counted,
             "consistency": w.signers, "unmask": w.responders}
    server: dict[str, tuple[float, ...]] = {
        s: (float(alive[s]), float(alive[s]) * k, float(alive[s]) * k if harary else 0.0) for s in STAGES
    }
    return client, server


def predict(w: Workload, u: UnitCosts) -> Prediction:
    """Predicted costs of a session with workload ``w`` under unit costs ``u``."""
    client, server = _primitive_costs(w, u)
    cf, sf = _overhead_features(w)
    for s in STAGES:
        client[s] += sum(a * x for a, x in zip(u.client_overhead.get(s, ()), cf[s], strict=False))
        server[s] += sum(a * x for a, x in zip(u.server_overhead.get(s, ()), sf[s], strict=False))
    sizes = message_bytes(w)
    memory = sum(c * x for c, x in zip(u.memory, _memory_features(w), strict=False))
    return Prediction(
        client_stage_s=client, server_stage_s=server,
        upload_bytes=sizes["upload"], download_bytes=sizes["download"],
        server_peak_bytes=memory,
        client_messages=5 if w.consistency_check else 4,
        server_broadcasts=4 if w.consistency_check else 3,
    )


# --- calibration --------------------------------------------------------------


def _best(fn: Callable[[], object], count: int, repeats: int = 5) -> float:
    """CPU seconds per call: the best of ``repeats`` runs of ``count`` calls."""
    best = math.inf
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(count):
            fn()
        best = min(best, (time.process_time() - start) / count)
    return best


def _measure_primitives(log: Callable[[str], None]) -> dict[str, Any]:
    """Unit costs of the primitives, as keyword arguments of ``UnitCosts``."""
    import numpy as np

    from secagg import crypto, derivation, fixedpoint, packing, prg, shamir, wire
    from secagg import messages as msg
    from secagg.config import SecAggConfig

    out: dict[str, Any] = {}
    log("keystream")
    m, nkeys = 1 << 20, 8
    acc = np.zeros(m, dtype=np.uint32)
    keys = [os.urandom(32) for _ in range(nkeys)]
    signs = [1] * nkeys
    out["keystream_gbps"] = {
        c: 4 * m * nkeys / _best(functools.partial(prg.accumulate_masks, acc, keys, signs, 32, cipher=c),
                                 1, 5) / 1e9
        for c in prg.ciphers()
    }
    log("X25519, Ed25519, AEAD, KDF")
    a, b = crypto.generate_kx_keypair(), crypto.generate_kx_keypair()
    ident = crypto.generate_signing_keypair()
    payload = bytes(100)
    signature = crypto.sign(ident.secret, payload)
    out["kx_keygen_s"] = _best(crypto.generate_kx_keypair, 200)
    out["kx_agree_s"] = _best(lambda: crypto.kx_agree(a.secret, b.public), 200)
    out["sign_s"] = _best(lambda: crypto.sign(ident.secret, payload), 200)
    out["verify_s"] = _best(lambda: crypto.verify(ident.public, payload, signature), 200)
    out["kdf_s"] = _best(lambda: crypto.derive_key(a.secret, b"pair-mask", payload), 1000)
    plain, ad = bytes(derivation._SHARE_PLAINTEXT), bytes(81)
    ct = crypto.aead_encrypt(a.secret, plain, ad)
    out["aead_encrypt_s"] = _best(lambda: crypto.aead_encrypt(a.secret, plain, ad), 1000)
    out["aead_decrypt_s"] = _best(lambda: crypto.aead_decrypt(a.secret, ct, ad), 1000)
    out["stretch_s"] = _best(lambda: crypto.stretch(os.urandom(32)), 1)
    out["directory_record_s"] = _directory_record_s()
    blob = os.urandom(1 << 22)
    out["digest_byte_s"] = _best(lambda: wire.message_digest(blob), 10) / len(blob)
    survivors = msg.encode_ids(range(1 << 20))
    out["idset_element_s"] = _best(
        lambda: wire.encode(msg.UnmaskRequest(bytes(32), survivors, b"", (), (), (), (), ())), 5) / (1 << 20)
    log("Shamir")
    secret = os.urandom(32)
    small = _best(lambda: shamir.split(secret, list(range(1, 5)), 2), 200)
    xs = list(range(1, 401))
    large = _best(lambda: shamir.split(secret, xs, 200), 5)
    out["shamir_split_product_s"] = max(large - small, 0.0) / (400 * 200 - 4 * 2)
    out["shamir_split_s"] = small
    l_small = _best(lambda: shamir.Reconstructor(list(range(1, 21))), 50)
    l_large = _best(lambda: shamir.Reconstructor(list(range(1, 401))), 3)
    out["lagrange_s"] = slope = max(l_large - l_small, 0.0) / (400 ** 2 - 20 ** 2)
    out["lagrange_fixed_s"] = max(l_small - slope * 20 ** 2, 0.0)
    shares = shamir.split(secret, xs, 400)
    rec, rec4 = shamir.Reconstructor(xs), shamir.Reconstructor(xs[:4])
    r_large = _best(lambda: rec.reconstruct(shares), 20)
    shares4 = shamir.split(secret, xs[:4], 4)
    r_small = _best(lambda: rec4.reconstruct(shares4), 200)
    out["reconstruct_share_s"] = per_share = max(r_large - r_small, 0.0) / 396
    out["reconstruct_fixed_s"] = max(r_small - 4 * per_share, 0.0)
    log("encode, pack, unpack, decode")
    m = 1 << 20
    cfg = SecAggConfig.plan(100, m, clip=1.0, graph="complete")
    x = np.random.default_rng(0).uniform(-1, 1, m).astype(np.float32)
    out["encode_element_s"] = _best(lambda: derivation.encode_input(cfg, x, 1.0), 3) / m
    pack, unpack_add = {}, {}
    sid = bytes(32)
    for width, bits in (("byte", 32), ("odd", 20)):
        # As the protocol does: pack and frame the masked input; parse it, unpack, add.
        v = np.random.default_rng(1).integers(0, 1 << bits, m + 1, dtype=np.uint64).astype(np.uint32)
        def framed(v: np.ndarray = v, bits: int = bits) -> bytes:
            return wire.encode(msg.MaskedInput(1, sid, packing.pack(v, bits), b"", bytes(64)))

        wire_bytes = framed()
        total = np.zeros(m + 1, dtype=np.uint32)
        pack[width] = _best(framed, 5) / m

        def add(wire_bytes: bytes = wire_bytes, bits: int = bits, total: np.ndarray = total) -> None:
            message = wire.decode(wire_bytes)
            assert isinstance(message, msg.MaskedInput)  # framed() made one
            total.__iadd__(packing.unpack(message.masked, m + 1, bits))
            if bits != 32:
                total.__iand__(np.uint32((1 << bits) - 1))

        unpack_add[width] = _best(add, 5) / m
    out["pack_element_s"], out["unpack_add_element_s"] = pack, unpack_add
    v = np.random.default_rng(2).integers(0, 1 << 32, m, dtype=np.uint64).astype(np.uint32)
    out["decode_element_s"] = _best(lambda: fixedpoint.decode(v.copy(), scale=cfg.scale, bits=32), 3) / m
    return out


def _directory_record_s(records: int = 200) -> float:
    """CPU seconds a deployed client spends per key-directory record: the uncached check
    every client runs (``client._directory_verifies``) on a directory of real adverts."""
    from secagg import client, crypto, derivation
    from secagg import messages as msg

    digest = bytes(32)
    keys, rows = [], []
    for i in range(records):
        ident = crypto.generate_signing_keypair()
        mask_pk, enc_pk = crypto.generate_kx_keypair().public, crypto.generate_kx_keypair().public
        signature = crypto.sign(ident.secret, derivation.advert_payload(digest, i, mask_pk, enc_pk))
        rows.append(msg.AdvertiseKeys(i, digest, mask_pk, enc_pk, signature).record())
        keys.append(ident.public)
    table, roster = b"".join(rows), b"".join(keys)
    check = client._directory_verifies.__wrapped__
    ensure(check(digest, table, roster), "the calibration directory does not verify")
    return _best(lambda: check(digest, table, roster), 1) / records


#: Sessions the protocol overheads are fitted on: (n, m, graph, dropout, stage, heap traced).
#: Both graphs, k from 16 to 199, with and without dropouts, and one at n = 1000, where the
#: per-pair Python work of the server had been under-predicted when fitted on n <= 600.
#: The heap is traced (a second, three-fold slower run) on the smaller ones only.
_CALIBRATION_SESSIONS = (
    (24, 200_000, "complete", 0.0, "masked", True),
    (60, 2_000, "complete", 0.1, "masked", True),
    (120, 2_000, "complete", 0.0, "masked", True),
    (200, 2_000, "complete", 0.2, "masked", False),
    (100, 2_000, "harary", 0.0, "masked", True),
    (200, 2_000, "harary", 0.3, "masked", True),
    (300, 2_000, "harary", 0.1, "masked", True),
    (600, 2_000, "harary", 0.0, "masked", True),
    (1000, 2_000, "harary", 0.1, "masked", False),
)


def _memory_features(w: Workload) -> tuple[float, ...]:
    """What the server heap bound grows with: (1, m + 1, n k, n, n H), H as in ``_overhead_features``
    (the unmasking requests hold every signature within three hops of each signer)."""
    signers = w.within_three_hops(w.signers) if w.consistency_check else 0.0
    return (1.0, float(w.m + 1), float(w.n * w.k), float(w.n), w.signers * signers)


def _fit_nonnegative(rows: list[list[float]], targets: list[float]) -> list[float]:
    """Least squares with coefficients >= 0 (drop a negative one and refit)."""
    import numpy as np

    a, y = np.asarray(rows, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    active = [j for j in range(a.shape[1]) if np.any(a[:, j])]  # a feature never present stays 0
    coef = np.zeros(a.shape[1])
    while active:
        # Relative error is what matters: weight each row by 1 / target.
        wts = 1.0 / np.maximum(np.abs(y), 1e-6)
        sol, *_ = np.linalg.lstsq(a[:, active] * wts[:, None], y * wts, rcond=None)
        if np.all(sol >= 0):
            coef[:] = 0
            coef[active] = sol
            break
        active.pop(int(np.argmin(sol)))
    return coef.tolist()


def _fit_overheads(base: UnitCosts, log: Callable[[str], None]) -> dict[str, Any]:
    """The fitted protocol overheads and memory terms, as keyword arguments of ``UnitCosts``."""
    from secagg.bench_protocol import SweepPoint, record_number, run_point

    rows: list[tuple[Workload, dict[str, object]]] = []
    for n, m, graph, dropout, stage, traced in _CALIBRATION_SESSIONS:
        log(f"session n={n} m={m} {graph} dropout={dropout}")
        record = run_point(SweepPoint(n, m, graph, dropout, stage), memory=traced)
        ensure(record["status"] == "ok", f"calibration session failed: {record['error']}")
        w = workload(n, m, int(record_number(record, "k")), int(record_number(record, "t")),
                     graph=str(record["graph_used"]),
                     dropout=dropout, stage=stage, simulated=True)
        rows.append((w, record))
    client_overhead, server_overhead = {}, {}
    for s in STAGES:
        c_rows, c_y, s_rows, s_y = [], [], [], []
        for w, r in rows:
            client, server = _primitive_costs(w, base)
            cf, sf = _overhead_features(w)
            c_rows.append(list(cf[s]))
            c_y.append(max(record_number(r, f"client_{s}_s_median") - client[s], 0.0))
            s_rows.append(list(sf[s]))
            s_y.append(max(record_number(r, f"server_{s}_s") - server[s], 0.0))
        client_overhead[s] = tuple(_fit_nonnegative(c_rows, c_y))
        server_overhead[s] = tuple(_fit_nonnegative(s_rows, s_y))
    heaps = [(w, r) for w, r in rows if r["server_peak_bytes"] is not None]
    memory = tuple(_fit_nonnegative([list(_memory_features(w)) for w, _ in heaps],
                                    [record_number(r, "server_peak_bytes") for _, r in heaps]))
    return {"client_overhead": client_overhead, "server_overhead": server_overhead, "memory": memory}


def calibrate(log: Callable[[str], None] = lambda _: None) -> UnitCosts:
    """Measure this machine's unit costs (about three minutes of CPU on one core)."""
    primitives = _measure_primitives(log)
    base = dataclasses.replace(DEFAULT_UNIT_COSTS, **primitives)
    fitted = _fit_overheads(base, log)
    return dataclasses.replace(
        base, **fitted, machine=f"{platform.machine()} {platform.processor() or platform.node()}",
        measured=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
