"""What client and server must compute identically: payloads, keys, encodings.

Every key is derived with BLAKE2b (``crypto.derive_key``) from a secret plus the
session id and a purpose label, so no ChaCha20 keystream is reused across
sessions, purposes or vectors. Signature payloads are length-prefixed hashes
with their own domain labels.
"""

from __future__ import annotations

import numpy as np

from secagg import crypto, fixedpoint, shamir
from secagg.config import SecAggConfig
from secagg.errors import MalformedMessageError

__all__ = [
    "INPUT_VECTOR",
    "advert_payload",
    "session_id",
    "share_key",
    "share_associated_data",
    "pack_share_plaintext",
    "unpack_share_plaintext",
    "self_mask_key",
    "pair_mask_key",
    "pair_sign",
    "consistency_payload",
    "partners_payload",
    "encode_input",
    "decode_sum",
]

#: The name of the one vector a session aggregates; bound into every mask key.
INPUT_VECTOR = b"input"
_U32 = 4
_SHARE_PLAINTEXT = 2 * _U32 + 2 * shamir.SHARE_BYTES


def _u32(value: int) -> bytes:
    return value.to_bytes(_U32, "little")


def advert_payload(config_digest: bytes, client: int, mask_pk: bytes, enc_pk: bytes) -> bytes:
    """What a client signs in round 0: its fresh public keys, bound to config and id."""
    return crypto.session_id(b"secagg-advertise", config_digest, _u32(client), mask_pk, enc_pk)


def session_id(config_digest: bytes, records: bytes) -> bytes:
    """The session id: a hash of the config and every round-0 advertisement."""
    return crypto.session_id(b"secagg-session", config_digest, records)


def share_key(shared_secret: bytes, sid: bytes) -> bytes:
    """AEAD key for the shares two clients send each other (direction is in the AD)."""
    return crypto.derive_key(shared_secret, b"share-enc", sid)


def share_associated_data(sid: bytes, sender: int, receiver: int) -> bytes:
    """AEAD associated data: session, round, sender and receiver."""
    return b"secagg-share-keys" + sid + _u32(sender) + _u32(receiver)


def pack_share_plaintext(owner: int, holder: int, seed_share: bytes, key_share: bytes) -> bytes:
    """Plaintext of one encrypted share pair: owner id, holder id, both shares."""
    return _u32(owner) + _u32(holder) + seed_share + key_share


def unpack_share_plaintext(data: bytes, owner: int, holder: int) -> tuple[bytes, bytes]:
    """Parse a decrypted share pair and check it names the expected owner and holder."""
    if len(data) != _SHARE_PLAINTEXT:
        raise MalformedMessageError(f"share plaintext must be {_SHARE_PLAINTEXT} bytes, got {len(data)}")
    if data[:4] != _u32(owner) or data[4:8] != _u32(holder):
        raise MalformedMessageError(f"shares from client {owner} name another owner or holder")
    seed_share = data[8 : 8 + shamir.SHARE_BYTES]
    return seed_share, data[8 + shamir.SHARE_BYTES :]


def self_mask_key(seed: bytes, sid: bytes) -> bytes:
    """The ChaCha20 key of a client's self mask."""
    return crypto.derive_key(seed, b"self-mask", sid, INPUT_VECTOR)


def pair_mask_key(shared_secret: bytes, sid: bytes, u: int, v: int) -> bytes:
    """The ChaCha20 key of the mask clients u and v share (symmetric in u, v)."""
    lo, hi = min(u, v), max(u, v)
    return crypto.derive_key(shared_secret, b"pair-mask", sid, _u32(lo), _u32(hi), INPUT_VECTOR)


def pair_sign(u: int, v: int) -> int:
    """+1 if client u adds the (u, v) pair mask, -1 if it subtracts it."""
    return 1 if u < v else -1


def consistency_payload(sid: bytes, survivors: bytes) -> bytes:
    """What a client signs in the consistency check: the set of counted inputs."""
    return crypto.session_id(b"secagg-consistency", sid, survivors)


def partners_payload(sid: bytes, client: int, partners: bytes) -> bytes:
    """What a client signs with its masked input: the IdSet of neighbours it masked with."""
    return crypto.session_id(b"secagg-partners", sid, _u32(client), partners)


def encode_input(config: SecAggConfig, x: np.ndarray, weight: float) -> tuple[np.ndarray, int]:
    """Encode ``weight * x`` and the weight as integers mod 2^bits; return (vector, clipped)."""
    values, clipped = fixedpoint.encode(
        np.asarray(x, dtype=np.float64) * weight, clip=config.clip, scale=config.scale, bits=config.bits
    )
    w, _ = fixedpoint.encode(
        np.array([weight], dtype=np.float64), clip=config.max_weight, scale=config.weight_scale,
        bits=config.bits,
    )
    return np.concatenate([values, w]), clipped


def decode_sum(config: SecAggConfig, total: np.ndarray) -> tuple[np.ndarray, float]:
    """Decode an unmasked sum into (weighted float sum, total weight)."""
    values = fixedpoint.decode(total[:-1].copy(), scale=config.scale, bits=config.bits)
    weight = fixedpoint.decode(total[-1:].copy(), scale=config.weight_scale, bits=config.bits)
    return values, float(weight[0])
