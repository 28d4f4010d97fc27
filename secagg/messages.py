"""One frozen dataclass per protocol message; each checks itself when built.

``secagg.wire`` is the only module that turns these into bytes and back. Because
``wire.decode`` builds messages through their constructors, every check below is
also a check on what arrives from the network: a bad field raises
``MalformedMessageError`` naming the message and the field.

Sets of client ids travel as ``IdSet`` bytes: strictly increasing little-endian
uint32 values, so that large cohorts parse in one numpy call.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from secagg.errors import MalformedMessageError

__all__ = [
    "MAX_CLIENTS",
    "KEY_RECORD_BYTES",
    "KEY_RECORD_DTYPE",
    "encode_ids",
    "decode_ids",
    "Message",
    "AdvertiseKeys",
    "KeyDirectory",
    "ShareKeys",
    "EncryptedShares",
    "MaskedInput",
    "ConsistencyRequest",
    "ConsistencySignature",
    "UnmaskRequest",
    "UnmaskResponse",
    "Abort",
]

#: Client ids are 0 .. n-1 with n at most this.
MAX_CLIENTS = 1 << 24
_DIGEST = 32
_PUBLIC_KEY = 32
_SIGNATURE = 64
#: One record of a ``KeyDirectory``: id (u32 LE), mask public key, encryption public key, signature.
KEY_RECORD_BYTES = 4 + _PUBLIC_KEY + _PUBLIC_KEY + _SIGNATURE
KEY_RECORD_DTYPE = np.dtype(
    [("id", "<u4"), ("mask_pk", "V32"), ("enc_pk", "V32"), ("signature", "V64")]
)
_MAX_REASON = 1000


def _fail(cls: type, field: str, expected: str, got: object) -> MalformedMessageError:
    shown = type(got).__name__ if not isinstance(got, (int, bytes)) else repr(got)[:40]
    return MalformedMessageError(f"{cls.__name__}.{field}: expected {expected}, got {shown}")


def _check_id(cls: type, field: str, value: object) -> None:
    if type(value) is not int or not 0 <= value < MAX_CLIENTS:
        raise _fail(cls, field, f"a client id in [0, {MAX_CLIENTS})", value)


def _check_bytes(cls: type, field: str, value: object, length: int | None = None) -> None:
    if type(value) is not bytes:
        raise _fail(cls, field, "bytes", value)
    if length is not None and len(value) != length:
        raise _fail(cls, field, f"{length} bytes", f"{len(value)} bytes")


def _check_id_list(cls: type, field: str, value: object) -> None:
    if type(value) is not tuple:
        raise _fail(cls, field, "a list of client ids", value)
    for item in value:
        _check_id(cls, field, item)


def _check_bytes_list(cls: type, field: str, value: object, length: int | None = None) -> None:
    if type(value) is not tuple:
        raise _fail(cls, field, "a list of byte strings", value)
    for item in value:
        _check_bytes(cls, field, item, length)


def _check_same_length(cls: type, a: str, b: str, x: tuple[object, ...], y: tuple[object, ...]) -> None:
    if len(x) != len(y):
        raise MalformedMessageError(f"{cls.__name__}: {a} and {b} differ in length")


def encode_ids(ids: Iterable[int] | np.ndarray) -> bytes:
    """Encode client ids as an ``IdSet``: sorted, distinct, uint32 little-endian."""
    arr = np.unique(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64))
    if arr.size and (arr[0] < 0 or arr[-1] >= MAX_CLIENTS):
        raise ValueError(f"client ids must be in [0, {MAX_CLIENTS})")
    return arr.astype("<u4").tobytes()


def decode_ids(data: bytes) -> np.ndarray:
    """Parse an ``IdSet`` into a sorted int64 array (already validated by the message)."""
    return np.frombuffer(data, dtype="<u4").astype(np.int64)


def _check_idset(cls: type, field: str, value: object) -> None:
    _check_bytes(cls, field, value)
    assert isinstance(value, bytes)  # checked just above
    if len(value) % 4:
        raise _fail(cls, field, "an IdSet (a multiple of 4 bytes)", f"{len(value)} bytes")
    ids = np.frombuffer(value, dtype="<u4")
    if ids.size and (np.any(np.diff(ids.astype(np.int64)) <= 0) or ids[-1] >= MAX_CLIENTS):
        raise _fail(cls, field, "strictly increasing client ids", "an unsorted or out-of-range IdSet")


class Message:
    """Base of every message (for isinstance checks and typing)."""

    __slots__ = ()


@dataclass(frozen=True)
class AdvertiseKeys(Message):
    """Round 0, client -> server: fresh public keys, signed with the long-term identity key."""

    sender: int
    config_digest: bytes
    mask_public_key: bytes
    enc_public_key: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_id(type(self), "sender", self.sender)
        _check_bytes(type(self), "config_digest", self.config_digest, _DIGEST)
        _check_bytes(type(self), "mask_public_key", self.mask_public_key, _PUBLIC_KEY)
        _check_bytes(type(self), "enc_public_key", self.enc_public_key, _PUBLIC_KEY)
        _check_bytes(type(self), "signature", self.signature, _SIGNATURE)

    def record(self) -> bytes:
        """This advertisement as one ``KeyDirectory`` record."""
        return (
            self.sender.to_bytes(4, "little")
            + self.mask_public_key
            + self.enc_public_key
            + self.signature
        )


@dataclass(frozen=True)
class KeyDirectory(Message):
    """Round 0 -> 1, server -> clients: every advertisement received, as sorted fixed-size records."""

    config_digest: bytes
    records: bytes

    def __post_init__(self) -> None:
        _check_bytes(type(self), "config_digest", self.config_digest, _DIGEST)
        _check_bytes(type(self), "records", self.records)
        if len(self.records) % KEY_RECORD_BYTES:
            raise _fail(type(self), "records", f"a multiple of {KEY_RECORD_BYTES} bytes", len(self.records))
        ids = self.table["id"].astype(np.int64)
        if ids.size and (np.any(np.diff(ids) <= 0) or ids[-1] >= MAX_CLIENTS):
            raise _fail(type(self), "records", "strictly increasing client ids", "unsorted records")

    def check_ids(self, num_clients: int) -> None:
        """Refuse records of ids outside [0, num_clients) (a session's ids are 0 .. n-1)."""
        ids = self.ids
        if ids.size and ids[-1] >= num_clients:
            raise MalformedMessageError(
                f"KeyDirectory.records: client id {int(ids[-1])} is outside [0, {num_clients})"
            )

    @functools.cached_property
    def table(self) -> np.ndarray:
        """The records as a numpy structured array (id, mask_pk, enc_pk, signature)."""
        return np.frombuffer(self.records, dtype=KEY_RECORD_DTYPE)

    @functools.cached_property
    def ids(self) -> np.ndarray:
        return self.table["id"].astype(np.int64)

    def entry(self, client: int) -> AdvertiseKeys | None:
        """The advertisement of ``client``, or None if it is not listed."""
        ids = self.ids
        i = int(np.searchsorted(ids, client))
        if i == ids.size or ids[i] != client:
            return None
        row = self.table[i]
        return AdvertiseKeys(
            client, self.config_digest, row["mask_pk"].tobytes(), row["enc_pk"].tobytes(),
            row["signature"].tobytes(),
        )


@dataclass(frozen=True)
class ShareKeys(Message):
    """Round 1, client -> server: Shamir shares of its secrets, one AEAD ciphertext per neighbour."""

    sender: int
    session_id: bytes
    receivers: tuple[int, ...]
    ciphertexts: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_id(type(self), "sender", self.sender)
        _check_bytes(type(self), "session_id", self.session_id, _DIGEST)
        _check_id_list(type(self), "receivers", self.receivers)
        _check_bytes_list(type(self), "ciphertexts", self.ciphertexts)
        _check_same_length(type(self), "receivers", "ciphertexts", self.receivers, self.ciphertexts)
        if len(set(self.receivers)) != len(self.receivers):
            raise MalformedMessageError("ShareKeys.receivers: a receiver is listed twice")


@dataclass(frozen=True)
class EncryptedShares(Message):
    """Round 1 -> 2, server -> one client: the ciphertexts addressed to it, by sender."""

    session_id: bytes
    senders: tuple[int, ...]
    ciphertexts: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_bytes(type(self), "session_id", self.session_id, _DIGEST)
        _check_id_list(type(self), "senders", self.senders)
        _check_bytes_list(type(self), "ciphertexts", self.ciphertexts)
        _check_same_length(type(self), "senders", "ciphertexts", self.senders, self.ciphertexts)
        if len(set(self.senders)) != len(self.senders):
            raise MalformedMessageError("EncryptedShares.senders: a sender is listed twice")


@dataclass(frozen=True)
class MaskedInput(Message):
    """Round 2, client -> server: the masked, bit-packed input vector (weight element last).

    ``excluded`` names the graph neighbours the sender did *not* mask with (those whose
    shares it never received); ``partner_signature`` is its identity signature over the
    complementary partner set (``derivation.partners_payload``). Peers check it before
    revealing the sender's self-mask seed, so that the server cannot prune a client's
    partners and then unmask it alone.
    """

    sender: int
    session_id: bytes
    masked: bytes
    excluded: bytes
    partner_signature: bytes

    def __post_init__(self) -> None:
        _check_id(type(self), "sender", self.sender)
        _check_bytes(type(self), "session_id", self.session_id, _DIGEST)
        _check_bytes(type(self), "masked", self.masked)
        _check_idset(type(self), "excluded", self.excluded)
        _check_bytes(type(self), "partner_signature", self.partner_signature, _SIGNATURE)


@dataclass(frozen=True)
class ConsistencyRequest(Message):
    """Round 2 -> 3, server -> clients: the set of clients whose masked input was counted."""

    session_id: bytes
    survivors: bytes

    def __post_init__(self) -> None:
        _check_bytes(type(self), "session_id", self.session_id, _DIGEST)
        _check_idset(type(self), "survivors", self.survivors)


@dataclass(frozen=True)
class ConsistencySignature(Message):
    """Round 3, client -> server: its identity signature over (session, survivors)."""

    sender: int
    session_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_id(type(self), "sender", self.sender)
        _check_bytes(type(self), "session_id", self.session_id, _DIGEST)
        _check_bytes(type(self), "signature", self.signature, _SIGNATURE)


@dataclass(frozen=True)
class UnmaskRequest(Message):
    """Round 3 -> 4, server -> one client: who survived, who dropped, and the evidence for it.

    ``signers``/``signatures``: consistency signatures over ``survivors`` from clients
    within three hops of the receiver (empty without the consistency check).
    ``attested``/``exclusions``/``attestations``: for each surviving neighbour whose
    shares the receiver holds, the ``excluded`` set and ``partner_signature`` of its
    ``MaskedInput``.
    """

    session_id: bytes
    survivors: bytes
    dropped: bytes
    signers: tuple[int, ...]
    signatures: tuple[bytes, ...]
    attested: tuple[int, ...]
    exclusions: tuple[bytes, ...]
    attestations: tuple[bytes, ...]

    def __post_init__(self) -> None:
        cls = type(self)
        _check_bytes(cls, "session_id", self.session_id, _DIGEST)
        _check_idset(cls, "survivors", self.survivors)
        _check_idset(cls, "dropped", self.dropped)
        _check_id_list(cls, "signers", self.signers)
        _check_bytes_list(cls, "signatures", self.signatures, _SIGNATURE)
        _check_same_length(cls, "signers", "signatures", self.signers, self.signatures)
        if len(set(self.signers)) != len(self.signers):
            # One signature repeated must not count twice towards the threshold.
            raise MalformedMessageError("UnmaskRequest.signers: a signer is listed twice")
        _check_id_list(cls, "attested", self.attested)
        if type(self.exclusions) is not tuple:
            raise _fail(cls, "exclusions", "a list of IdSets", self.exclusions)
        for item in self.exclusions:
            _check_idset(cls, "exclusions", item)
        _check_bytes_list(cls, "attestations", self.attestations, _SIGNATURE)
        _check_same_length(cls, "attested", "exclusions", self.attested, self.exclusions)
        _check_same_length(cls, "attested", "attestations", self.attested, self.attestations)
        if len(set(self.attested)) != len(self.attested):
            raise MalformedMessageError("UnmaskRequest.attested: a client is listed twice")


@dataclass(frozen=True)
class UnmaskResponse(Message):
    """Round 4, client -> server: self-seed shares of survivors, mask-key shares of the dropped."""

    sender: int
    session_id: bytes
    seed_owners: tuple[int, ...]
    seed_shares: tuple[bytes, ...]
    key_owners: tuple[int, ...]
    key_shares: tuple[bytes, ...]

    def __post_init__(self) -> None:
        cls = type(self)
        _check_id(cls, "sender", self.sender)
        _check_bytes(cls, "session_id", self.session_id, _DIGEST)
        _check_id_list(cls, "seed_owners", self.seed_owners)
        _check_bytes_list(cls, "seed_shares", self.seed_shares)
        _check_id_list(cls, "key_owners", self.key_owners)
        _check_bytes_list(cls, "key_shares", self.key_shares)
        _check_same_length(cls, "seed_owners", "seed_shares", self.seed_owners, self.seed_shares)
        _check_same_length(cls, "key_owners", "key_shares", self.key_owners, self.key_shares)
        owners = self.seed_owners + self.key_owners
        if len(set(owners)) != len(owners):
            raise MalformedMessageError("UnmaskResponse: a client's shares are listed twice")


@dataclass(frozen=True)
class Abort(Message):
    """Either direction: the sender gives up on the session, saying why."""

    reason: str

    def __post_init__(self) -> None:
        if type(self.reason) is not str or len(self.reason) > _MAX_REASON:
            raise _fail(type(self), "reason", f"a string of at most {_MAX_REASON} characters", self.reason)
