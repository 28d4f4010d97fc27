"""The public-key and symmetric primitives of the protocol, all from PyNaCl (libsodium).

This is the only protocol module that imports ``nacl``. It offers X25519 key
agreement, Ed25519 signatures, a BLAKE2b key derivation with domain separation,
a BLAKE2b session id, and XChaCha20-Poly1305 AEAD with a random prepended nonce.

Errors: arguments the caller controls (own keys, types) raise ``SecAggTypeError`` /
``SecAggValueError``; failures caused by received data (a peer's public key, a
signature, a ciphertext) raise ``RemoteProtocolError`` subclasses.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field

import nacl.bindings as _sodium
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.pwhash
import nacl.signing
import nacl.utils

from secagg.bindings import _ensure_bytes, _ensure_int
from secagg.errors import (
    BadSignatureError,
    DecryptionError,
    RemoteProtocolError,
    SecAggTypeError,
    ensure,
)

__all__ = [
    "KX_PUBLIC_BYTES",
    "KX_SECRET_BYTES",
    "KX_SHARED_BYTES",
    "SIGN_PUBLIC_BYTES",
    "SIGN_SECRET_BYTES",
    "SIGNATURE_BYTES",
    "KEY_BYTES",
    "SESSION_ID_BYTES",
    "AEAD_NONCE_BYTES",
    "AEAD_OVERHEAD",
    "BadPublicKeyError",
    "KeyPair",
    "SigningKeyPair",
    "random_bytes",
    "generate_kx_keypair",
    "kx_public_key",
    "kx_agree",
    "generate_signing_keypair",
    "sign",
    "verify",
    "stretch",
    "STRETCH_OPSLIMIT",
    "STRETCH_MEMLIMIT",
    "derive_key",
    "session_id",
    "aead_encrypt",
    "aead_decrypt",
]

KX_PUBLIC_BYTES: int = _sodium.crypto_scalarmult_BYTES
KX_SECRET_BYTES: int = _sodium.crypto_scalarmult_SCALARBYTES
KX_SHARED_BYTES: int = _sodium.crypto_scalarmult_BYTES
SIGN_PUBLIC_BYTES: int = _sodium.crypto_sign_PUBLICKEYBYTES
SIGN_SECRET_BYTES: int = _sodium.crypto_sign_SEEDBYTES
SIGNATURE_BYTES: int = _sodium.crypto_sign_BYTES
KEY_BYTES: int = 32
SESSION_ID_BYTES: int = 32
AEAD_NONCE_BYTES: int = _sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
AEAD_OVERHEAD: int = AEAD_NONCE_BYTES + _sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES

assert _sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES == KEY_BYTES

# BLAKE2b personalisation strings (at most 16 bytes): one per use, so a KDF output
# can never equal a session id.
_PERSON_KDF = b"secagg.kdf.v1"
_PERSON_SID = b"secagg.sid.v1"


class BadPublicKeyError(RemoteProtocolError):
    """A peer's X25519 public key is malformed or of low order (no shared secret)."""


@dataclass(frozen=True)
class KeyPair:
    """An X25519 key pair: 32-byte secret scalar and 32-byte public point."""

    secret: bytes = field(repr=False)
    public: bytes


@dataclass(frozen=True)
class SigningKeyPair:
    """An Ed25519 key pair: 32-byte secret seed (the signing key) and 32-byte verify key."""

    secret: bytes = field(repr=False)
    public: bytes


def _received_bytes(
    value: object, what: str, raising: type[Exception], *, exact: int = -1, at_least: int = 0
) -> bytes:
    """Check bytes that came from a peer; a bad one raises the peer's error (``raising``)."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise raising(f"{what} must be bytes, got {type(value).__name__}")
    value = bytes(value)
    if exact >= 0 and len(value) != exact:
        raise raising(f"{what} must be {exact} bytes, got {len(value)}")
    if len(value) < at_least:
        raise raising(f"{what} must be at least {at_least} bytes, got {len(value)}")
    return value


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the operating system's CSPRNG (libsodium randombytes)."""
    n = _ensure_int(n, "n", 0, 2**31 - 1)
    return nacl.utils.random(n)


def generate_kx_keypair() -> KeyPair:
    """A fresh X25519 key pair from the OS CSPRNG."""
    secret = nacl.utils.random(KX_SECRET_BYTES)
    return KeyPair(secret=secret, public=_sodium.crypto_scalarmult_base(secret))


def kx_public_key(secret: bytes) -> bytes:
    """The X25519 public key of ``secret`` (to check a reconstructed key against its advert)."""
    secret = _ensure_bytes(secret, "secret", KX_SECRET_BYTES)
    return _sodium.crypto_scalarmult_base(secret)


def kx_agree(secret: bytes, peer_public: bytes) -> bytes:
    """The raw 32-byte X25519 shared point of our ``secret`` and a peer's public key.

    Symmetric: ``kx_agree(a.secret, b.public) == kx_agree(b.secret, a.public)``.
    Never use it as a key directly: feed it to ``derive_key``. A wrongly sized or
    low-order peer key (all-zero result) raises ``BadPublicKeyError``.
    """
    secret = _ensure_bytes(secret, "secret", KX_SECRET_BYTES)
    ensure(
        isinstance(peer_public, (bytes, bytearray, memoryview)),
        f"peer_public must be bytes, got {type(peer_public).__name__}",
        raising=SecAggTypeError,
    )
    peer_public = _received_bytes(peer_public, "peer public key", BadPublicKeyError, exact=KX_PUBLIC_BYTES)
    try:
        shared = _sodium.crypto_scalarmult(secret, peer_public)
    except nacl.exceptions.CryptoError as exc:
        raise BadPublicKeyError("peer public key is of low order (no shared secret)") from exc
    # libsodium already refuses an all-zero result; check again, it costs nothing.
    ensure(any(shared), "peer public key is of low order (all-zero shared secret)",
           raising=BadPublicKeyError)
    return shared


def generate_signing_keypair() -> SigningKeyPair:
    """A fresh Ed25519 identity key pair from the OS CSPRNG."""
    key = nacl.signing.SigningKey.generate()
    return SigningKeyPair(secret=bytes(key), public=bytes(key.verify_key))


def sign(signing_key: bytes, message: bytes) -> bytes:
    """The 64-byte detached Ed25519 signature of ``message`` under ``signing_key`` (a seed)."""
    signing_key = _ensure_bytes(signing_key, "signing_key", SIGN_SECRET_BYTES)
    message = _ensure_bytes(message, "message")
    return nacl.signing.SigningKey(signing_key).sign(message).signature


def verify(verify_key: bytes, message: bytes, signature: bytes) -> None:
    """Check a detached Ed25519 signature; raise ``BadSignatureError`` unless it verifies."""
    verify_key = _ensure_bytes(verify_key, "verify_key", SIGN_PUBLIC_BYTES)
    message = _ensure_bytes(message, "message")
    signature = _received_bytes(signature, "signature", BadSignatureError, exact=SIGNATURE_BYTES)
    try:
        nacl.signing.VerifyKey(verify_key).verify(message, signature)
    except nacl.exceptions.CryptoError as exc:
        raise BadSignatureError("signature does not verify under the given identity key") from exc


#: Argon2id cost of ``stretch``: about 0.05-0.1 s and 32 MiB on this project's machines.
STRETCH_OPSLIMIT = 2
STRETCH_MEMLIMIT = 32 << 20
_STRETCH_SALT = b"secagg.graph.v1\0"  # 16 bytes: a fixed domain label, the input is unique


@functools.lru_cache(maxsize=64)
def stretch(seed: bytes) -> bytes:
    """A 32-byte Argon2id stretch of ``seed`` (memory-hard, deliberately slow).

    Used for the SecAgg+ graph permutation, so that a server that grinds candidate key
    directories for a graph it likes pays one Argon2id evaluation per candidate.
    Cached per process (every client of a simulation derives the same graph).
    """
    seed = _ensure_bytes(seed, "seed", KEY_BYTES)
    return nacl.pwhash.argon2id.kdf(
        KEY_BYTES, seed, _STRETCH_SALT, opslimit=STRETCH_OPSLIMIT, memlimit=STRETCH_MEMLIMIT
    )


def _length_prefixed(items: tuple[object, ...], what: str) -> bytes:
    """Concatenate byte strings, each preceded by its 8-byte little-endian length."""
    parts = []
    for i, item in enumerate(items):
        item = _ensure_bytes(item, f"{what}[{i}]")
        parts.append(struct.pack("<Q", len(item)))
        parts.append(item)
    return b"".join(parts)


def derive_key(secret: bytes, purpose: bytes, *context: bytes) -> bytes:
    """A 32-byte key: BLAKE2b keyed with ``secret`` over (purpose, *context), length-prefixed.

    ``purpose`` (e.g. ``b"pair-mask"``, ``b"self-mask"``, ``b"share-enc"``) separates
    uses; ``context`` binds session id, round, peers, vector name. Length prefixes
    make ``(b"ab", b"c")`` and ``(b"a", b"bc")`` give different keys.
    """
    secret = _ensure_bytes(secret, "secret", KEY_BYTES)
    purpose = _ensure_bytes(purpose, "purpose")
    ensure(len(purpose) > 0, "purpose must not be empty")
    data = _length_prefixed((purpose, *context), "context")
    return nacl.hash.blake2b(
        data, digest_size=KEY_BYTES, key=secret, person=_PERSON_KDF,
        encoder=nacl.encoding.RawEncoder,
    )


def session_id(*items: bytes) -> bytes:
    """A 32-byte BLAKE2b hash of the length-prefixed ``items`` (domain-separated from KDF)."""
    data = _length_prefixed(items, "items")
    return nacl.hash.blake2b(
        data, digest_size=SESSION_ID_BYTES, person=_PERSON_SID,
        encoder=nacl.encoding.RawEncoder,
    )


def aead_encrypt(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """XChaCha20-Poly1305-IETF: random 24-byte nonce || ciphertext || 16-byte tag."""
    key = _ensure_bytes(key, "key", KEY_BYTES)
    plaintext = _ensure_bytes(plaintext, "plaintext")
    associated_data = _ensure_bytes(associated_data, "associated_data")
    nonce = nacl.utils.random(AEAD_NONCE_BYTES)
    return nonce + _sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, associated_data, nonce, key
    )


def aead_decrypt(key: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
    """Open an ``aead_encrypt`` output; any failure (key, AD, tamper, size) → DecryptionError."""
    key = _ensure_bytes(key, "key", KEY_BYTES)
    associated_data = _ensure_bytes(associated_data, "associated_data")
    ciphertext = _received_bytes(ciphertext, "ciphertext", DecryptionError, at_least=AEAD_OVERHEAD)
    nonce, body = ciphertext[:AEAD_NONCE_BYTES], ciphertext[AEAD_NONCE_BYTES:]
    try:
        return _sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            body, associated_data, nonce, key
        )
    except nacl.exceptions.CryptoError as exc:
        raise DecryptionError(
            "ciphertext does not authenticate (wrong key, associated data, or tampered)"
        ) from exc
