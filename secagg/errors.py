"""Exceptions of secagg, and ``ensure`` for argument checks.

Every error derives from ``SecAggError``. Argument errors are also the builtin
``TypeError``/``ValueError``, so either kind of ``except`` catches them. Protocol
errors say who is at fault, as in h11: ``LocalProtocolError`` when the caller
misused a state machine, ``RemoteProtocolError`` when a peer sent something bad.
"""

from __future__ import annotations

__all__ = [
    "SecAggError",
    "SecAggTypeError",
    "SecAggValueError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "BadSignatureError",
    "DecryptionError",
    "MalformedMessageError",
    "UnexpectedMessageError",
    "SessionMismatchError",
    "MaliciousServerError",
    "AbortedError",
    "IdentityError",
    "PolicyError",
    "ensure",
]


class SecAggError(Exception):
    """Root of every exception raised by secagg."""


class SecAggTypeError(SecAggError, TypeError):
    """An argument has the wrong type (dtype, class, layout)."""


class SecAggValueError(SecAggError, ValueError):
    """An argument has the right type but a bad value (length, range, NaN)."""


class ProtocolError(SecAggError, ValueError):
    """The protocol cannot go on; the state machine that raised it is aborted."""


class LocalProtocolError(ProtocolError):
    """The caller used a state machine out of turn or with bad input."""


class RemoteProtocolError(ProtocolError):
    """A peer (client, server or the network) sent something malformed or dishonest."""


class BadSignatureError(RemoteProtocolError):
    """A received Ed25519 signature does not verify (forged, altered or misrouted)."""


class DecryptionError(RemoteProtocolError):
    """A received AEAD ciphertext does not decrypt (wrong key, associated data, or tampered)."""


class MalformedMessageError(RemoteProtocolError):
    """Received bytes are not a well-formed message of this protocol version."""


class UnexpectedMessageError(RemoteProtocolError):
    """A well-formed message arrived out of turn (wrong round, duplicate, replay)."""


class SessionMismatchError(RemoteProtocolError):
    """A message belongs to another session or configuration (replayed or misrouted)."""


class MaliciousServerError(RemoteProtocolError):
    """The server asked for something an honest server never asks for."""


class AbortedError(ProtocolError):
    """The round was aborted (too few clients, or a peer misbehaved); nothing was revealed."""


class IdentityError(LocalProtocolError):
    """The application's identity roster cannot vouch for a key.

    Raised when this node's own signing key does not match its roster entry (a
    stale roster or a rotated key), when a roster entry is not a valid Ed25519
    verify key, or when the identity lookup the application gave fails. The
    message names the client and the key fingerprints involved.
    """


class PolicyError(RemoteProtocolError):
    """A configuration proposed by the server is refused by this node's local policy."""


def ensure(cond: object, message: str, *, raising: type[Exception] = SecAggValueError) -> None:
    """Raise ``raising(message)`` unless ``cond`` holds."""
    if not cond:
        raise raising(message)
