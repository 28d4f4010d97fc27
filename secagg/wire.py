"""Versioned bytes <-> messages, with msgpack.

A message on the wire is the msgpack array ``["secagg", VERSION, TAG, *fields]``
with fields in the dataclass's order. Decoding never executes anything it reads:
msgpack yields only plain values, and the message constructors validate every
field. Anything malformed raises ``MalformedMessageError``; a well-formed message
of a type the caller did not expect raises ``UnexpectedMessageError``.
"""

from __future__ import annotations

import dataclasses
import hashlib

import msgpack

from secagg import messages as m
from secagg.errors import MalformedMessageError, UnexpectedMessageError

__all__ = ["VERSION", "MAGIC", "encode", "decode", "message_digest"]

MAGIC = "secagg"
VERSION = 2  # 2: MaskedInput carries the signed partner set; UnmaskRequest its attestations

_TAGS: dict[type[m.Message], int] = {
    m.AdvertiseKeys: 1,
    m.KeyDirectory: 2,
    m.ShareKeys: 3,
    m.EncryptedShares: 4,
    m.MaskedInput: 5,
    m.ConsistencyRequest: 6,
    m.ConsistencySignature: 7,
    m.UnmaskRequest: 8,
    m.UnmaskResponse: 9,
    m.Abort: 10,
}
_TYPES = {tag: cls for cls, tag in _TAGS.items()}
_NFIELDS = {cls: len(dataclasses.fields(cls)) for cls in _TAGS}  # type: ignore[arg-type]


def encode(message: m.Message) -> bytes:
    """Serialise a message (already validated by its constructor)."""
    cls = type(message)
    if cls not in _TAGS:
        raise TypeError(f"not a secagg message: {cls.__name__}")
    fields = [getattr(message, f.name) for f in dataclasses.fields(message)]  # type: ignore[arg-type]
    packed: bytes = msgpack.packb([MAGIC, VERSION, _TAGS[cls], *fields], use_bin_type=True)
    return packed


def decode(data: bytes, *expected: type[m.Message]) -> m.Message:
    """Parse bytes into a message; if ``expected`` is given, the message must be one of them."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedMessageError(f"expected bytes, got {type(data).__name__}")
    try:
        obj = msgpack.unpackb(bytes(data), use_list=False, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise MalformedMessageError(f"not a msgpack message: {type(exc).__name__}: {exc}") from None
    if type(obj) is not tuple or len(obj) < 3 or obj[0] != MAGIC:
        raise MalformedMessageError("not a secagg message (missing header)")
    if obj[1] != VERSION or type(obj[1]) is not int:
        raise MalformedMessageError(f"unsupported wire version {obj[1]!r} (expected {VERSION})")
    cls = _TYPES.get(obj[2]) if type(obj[2]) is int else None
    if cls is None:
        raise MalformedMessageError(f"unknown message tag {obj[2]!r}")
    fields = obj[3:]
    if len(fields) != _NFIELDS[cls]:
        raise MalformedMessageError(
            f"{cls.__name__}: expected {_NFIELDS[cls]} fields, got {len(fields)}"
        )
    message = cls(*fields)
    if expected and cls not in expected:
        names = " or ".join(e.__name__ for e in expected)
        raise UnexpectedMessageError(f"expected {names}, got {cls.__name__}")
    return message


def message_digest(data: object) -> bytes | None:
    """A 32-byte BLAKE2b name of received bytes, to recognise a redelivery; None if not bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return None
    return hashlib.blake2b(data, digest_size=32, person=b"secagg.delivery").digest()
