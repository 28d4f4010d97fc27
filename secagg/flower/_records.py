"""How secure-aggregation traffic rides in Flower messages, and the array manifest.

Every message of a secure-aggregation round is a Flower ``TRAIN`` message whose
``RecordDict`` carries

- ``ConfigRecord`` ``"secagg"``: the stage name and the small fields of the
  stage (the session config, the member list, the weight key);
- ``ArrayRecord`` ``"secagg.payload"``: the secagg wire bytes of the stage (a
  ``secagg.wire`` message), as one uint8 array so that Flower chunks large
  payloads like any model array.

Nothing received is unpickled: the payload is parsed by ``secagg.wire`` and
Flower loads arrays with ``allow_pickle=False``.

``Manifest`` turns a model's ``ArrayRecord`` into one float vector (the input of
a ``secagg.Client``) and the aggregated vector back into arrays of the same
names, shapes and dtypes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from secagg.errors import SecAggTypeError, SecAggValueError, ensure

__all__ = [
    "CONFIG_RECORD",
    "PAYLOAD_RECORD",
    "Manifest",
    "Stage",
    "get_payload",
    "put_payload",
    "stage_of",
]

CONFIG_RECORD = "secagg"
PAYLOAD_RECORD = "secagg.payload"
_PAYLOAD_KEY = "bytes"


class Stage(str, enum.Enum):
    """The messages of one secure-aggregation round, in order (``IDENTIFY`` only when needed)."""

    IDENTIFY = "identify"  #: which roster id are you? (answered from the node's own config)
    ADVERTISE = "advertise"  #: session config + members -> signed public keys
    SHARE = "share"  #: key directory -> encrypted Shamir shares
    MASKED = "masked"  #: shares for me + the training task -> masked update
    CONSISTENCY = "consistency"  #: survivor set -> signature over it
    UNMASK = "unmask"  #: survivors, dropped, signatures -> seed / key shares


def put_payload(content: RecordDict, data: bytes) -> None:
    """Store secagg wire bytes in ``content`` as a uint8 array."""
    content.array_records[PAYLOAD_RECORD] = ArrayRecord(
        {_PAYLOAD_KEY: Array(np.frombuffer(data, dtype=np.uint8).copy())}
    )


def get_payload(content: RecordDict) -> bytes:
    """The secagg wire bytes carried by ``content``; ``SecAggValueError`` if absent or malformed."""
    record = content.array_records.get(PAYLOAD_RECORD)
    if record is None or list(record.keys()) != [_PAYLOAD_KEY]:
        raise SecAggValueError(f"the message carries no secagg payload (ArrayRecord {PAYLOAD_RECORD!r})")
    array = record[_PAYLOAD_KEY].numpy()
    ensure(array.dtype == np.uint8 and array.ndim == 1, "the secagg payload must be a uint8 vector")
    return array.tobytes()


def stage_of(content: RecordDict) -> tuple[Stage, ConfigRecord] | None:
    """The stage and fields of a secagg message, or None if ``content`` is not one."""
    record = content.config_records.get(CONFIG_RECORD)
    if record is None:
        return None
    name = record.get("stage")
    try:
        return Stage(name), record
    except ValueError:
        raise SecAggValueError(f"unknown secagg stage {name!r}") from None


# --- the array manifest ------------------------------------------------------------------

_NUMERIC = "biuf"  # bool, signed, unsigned, float


@dataclass(frozen=True)
class Manifest:
    """Names, shapes and dtypes of a model's arrays, in record order.

    ``flatten`` checks that an ``ArrayRecord`` has exactly these arrays and
    concatenates them into one float64 vector; ``restore`` cuts a vector back
    into arrays, rounding to the nearest integer for integer dtypes.
    """

    entries: tuple[tuple[str, tuple[int, ...], str], ...]

    @classmethod
    def of(cls, record: ArrayRecord) -> Manifest:
        """The manifest of ``record`` (numeric arrays only)."""
        ensure(isinstance(record, ArrayRecord), "expected an ArrayRecord", raising=SecAggTypeError)
        entries = []
        for name, array in record.items():
            shape: tuple[int, ...] = tuple(array.shape)
            if array.dtype:
                dtype = np.dtype(array.dtype)
            else:  # arrays converted from legacy Parameters carry no metadata
                loaded = array.numpy()
                shape, dtype = loaded.shape, loaded.dtype
            ensure(dtype.kind in _NUMERIC,
                   f"array {name!r} has dtype {dtype}; secure aggregation sums numeric arrays only")
            entries.append((name, tuple(int(s) for s in shape), dtype.str))
        ensure(entries, "the ArrayRecord holds no arrays")
        return cls(tuple(entries))

    @property
    def size(self) -> int:
        """Elements in the flattened vector."""
        return sum(int(np.prod(shape, dtype=np.int64)) for _, shape, _ in self.entries)

    def flatten(self, record: ArrayRecord) -> np.ndarray:
        """One float64 vector of ``record``'s arrays; refuses other names or shapes (dtypes may differ)."""
        found = Manifest.of(record)
        if [e[:2] for e in found.entries] != [e[:2] for e in self.entries]:
            raise SecAggValueError(
                f"the trained arrays do not match the model that was sent: expected "
                f"{_describe(self)}, got {_describe(found)}"
            )
        parts = [record[name].numpy().astype(np.float64, copy=False).ravel() for name, _, _ in self.entries]
        return np.concatenate(parts)

    def restore(self, vector: np.ndarray) -> ArrayRecord:
        """Arrays of this manifest from a float vector of length ``size``."""
        vector = np.asarray(vector, dtype=np.float64)
        ensure(vector.shape == (self.size,), f"expected a vector of {self.size} values, got {vector.shape}")
        arrays: dict[str, Array] = {}
        at = 0
        for name, shape, dtype_str in self.entries:
            dtype = np.dtype(dtype_str)
            count = int(np.prod(shape, dtype=np.int64))
            part = vector[at : at + count].reshape(shape)
            at += count
            if dtype.kind in "biu":
                part = np.rint(part)
            arrays[name] = Array(np.ascontiguousarray(part.astype(dtype)))
        return ArrayRecord(arrays)


def _describe(manifest: Manifest) -> str:
    shown = ", ".join(f"{n}{list(s)}:{np.dtype(d).name}" for n, s, d in manifest.entries[:4])
    more = f" and {len(manifest.entries) - 4} more" if len(manifest.entries) > 4 else ""
    return f"[{shown}{more}]"
