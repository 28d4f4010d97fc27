"""Node identities: Ed25519 keys and the roster, the trust anchor of a session.

Every client signs its round-0 keys (and, with the consistency check, the
survivor set) with a long-term Ed25519 key. Peers check those signatures
against verify keys the *application* gives them, never against keys the server
relays: that is what stops a malicious server from impersonating clients. The
roster is that application-side table, application id -> verify key, and it is
the trust anchor: whoever can write it can stand in for any client.

- ``generate_key`` makes a node's key; ``save_key`` / ``load_key`` keep it in a
  file only its owner can read (mode 0600).
- ``Roster`` maps application ids (ints or strings, e.g. Flower node ids) to
  verify keys, checks every key is a valid Ed25519 point and no key is listed
  twice, and loads or saves a JSON file.
- A session numbers its ``n`` clients ``0 .. n-1``. ``IdMap`` is the mapping
  helper: it puts the application ids taking part in a session in one canonical
  (sorted) order, so every party derives the same numbering from the same set.
  ``Roster.session(members)`` returns a ``SessionRoster``, the verify keys by
  session index, which is what ``Client`` takes as ``identities``.
"""

from __future__ import annotations

import json
import operator
import os
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import overload

import nacl.bindings as _sodium
import numpy as np

from secagg import crypto
from secagg.errors import IdentityError, SecAggTypeError, SecAggValueError, ensure

__all__ = [
    "AppId",
    "IdMap",
    "Roster",
    "SessionRoster",
    "fingerprint",
    "generate_key",
    "session_index",
    "load_key",
    "save_key",
    "verify_key_of",
]

#: An application's name for a node: an int (numpy integers are accepted) or a string.
AppId = int | str

_KEY_FORMAT = "secagg-ed25519-key-v1"
_ROSTER_FORMAT = "secagg-roster-v1"


def fingerprint(verify_key: bytes) -> str:
    """A short printable name of a verify key (its first 8 bytes in hex) for error messages."""
    return bytes(verify_key[:8]).hex()


def generate_key() -> crypto.SigningKeyPair:
    """A fresh Ed25519 identity key pair for one node, from the OS CSPRNG."""
    return crypto.generate_signing_keypair()


def verify_key_of(signing_key: bytes) -> bytes:
    """The verify key of a 32-byte Ed25519 seed (what goes in the roster)."""
    ensure(isinstance(signing_key, bytes) and len(signing_key) == crypto.SIGN_SECRET_BYTES,
           f"a signing key is a {crypto.SIGN_SECRET_BYTES}-byte Ed25519 seed", raising=SecAggTypeError)
    return _sodium.crypto_sign_seed_keypair(signing_key)[0]


def save_key(path: str | os.PathLike[str], key: crypto.SigningKeyPair) -> None:
    """Write ``key`` to a new file readable by its owner only (refuses to overwrite)."""
    ensure(isinstance(key, crypto.SigningKeyPair), "key must be a SigningKeyPair", raising=SecAggTypeError)
    ensure(verify_key_of(key.secret) == key.public, "key.public is not the verify key of key.secret")
    text = json.dumps({"format": _KEY_FORMAT, "seed": key.secret.hex(), "verify_key": key.public.hex()})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def load_key(path: str | os.PathLike[str]) -> crypto.SigningKeyPair:
    """Read a key written by ``save_key``; refuses a file that others can read.

    Raises ``IdentityError`` naming the file if it is not a key file, its
    verify key does not match its seed, or its mode lets group or others read it.
    """
    mode = os.stat(path).st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise IdentityError(f"{path}: key file is readable by others (mode {oct(mode & 0o777)}); "
                            f"run chmod 600 on it")
    try:
        obj = json.loads(Path(path).read_text())
        ok = isinstance(obj, dict) and obj.get("format") == _KEY_FORMAT
        seed, public = bytes.fromhex(obj["seed"]), bytes.fromhex(obj["verify_key"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IdentityError(f"{path}: not a {_KEY_FORMAT} file ({exc})") from None
    if not ok or len(seed) != crypto.SIGN_SECRET_BYTES:
        raise IdentityError(f"{path}: not a {_KEY_FORMAT} file")
    if verify_key_of(seed) != public:
        raise IdentityError(f"{path}: the stored verify key {fingerprint(public)}… is not that of the seed")
    return crypto.SigningKeyPair(secret=seed, public=public)


def session_index(value: object, num_clients: int, name: str = "client_id") -> int:
    """A session's client id as a plain int in ``[0, num_clients)``; numpy integers are accepted.

    Sessions number their clients ``0 .. n-1``; map application ids with ``IdMap``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SecAggTypeError(
            f"{name} must be an int in [0, {num_clients}), got {type(value).__name__}; "
            f"map application ids with secagg.identity.IdMap"
        )
    index = int(value)
    ensure(0 <= index < num_clients, f"{name} must be in [0, {num_clients}), got {index}")
    return index


def _app_id(value: object) -> AppId:
    """An application id as a plain int or str (numpy integers become ints; bools are refused)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise SecAggTypeError(f"application ids are ints or strings, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise SecAggTypeError(
            f"application ids are ints or strings, got {type(value).__name__}"
        ) from None


def _check_verify_key(app_id: AppId, key: object) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) != crypto.SIGN_PUBLIC_BYTES:
        raise IdentityError(f"roster entry {app_id!r}: a verify key is {crypto.SIGN_PUBLIC_BYTES} bytes")
    key = bytes(key)
    if not _sodium.crypto_core_ed25519_is_valid_point(key):
        raise IdentityError(f"roster entry {app_id!r}: {fingerprint(key)}… is not a valid Ed25519 key")
    return key


class IdMap:
    """Application ids <-> session indices ``0 .. n-1``, in one canonical (sorted) order.

    Every party that knows the same set of members derives the same numbering, so
    the set is all that must be agreed. Ids must be all ints or all strings.
    """

    def __init__(self, app_ids: Iterable[object]) -> None:
        ids = [_app_id(a) for a in app_ids]
        ensure(len({type(a) for a in ids}) <= 1, "application ids must be all ints or all strings",
               raising=SecAggTypeError)
        ensure(len(set(ids)) == len(ids), "an application id is listed twice")
        ensure(len(ids) >= 2, f"a session needs at least 2 members, got {len(ids)}")
        self._ids: tuple[AppId, ...] = tuple(sorted(ids, key=lambda a: (str(type(a)), a)))
        self._index = {a: i for i, a in enumerate(self._ids)}

    @property
    def app_ids(self) -> tuple[AppId, ...]:
        """The members, by session index."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, app_id: object) -> bool:
        try:
            return _app_id(app_id) in self._index
        except SecAggTypeError:
            return False

    def index(self, app_id: object) -> int:
        """The session index (the ``client_id`` to give ``Client``) of an application id."""
        a = _app_id(app_id)
        if a not in self._index:
            raise SecAggValueError(f"{a!r} is not a member of this session")
        return self._index[a]

    def app_id(self, index: int) -> AppId:
        """The application id of session index ``index``."""
        i = operator.index(index)
        ensure(0 <= i < len(self._ids), f"session index must be in [0, {len(self._ids)}), got {i}")
        return self._ids[i]


class SessionRoster(Sequence[bytes]):
    """The verify keys of one session's members, indexed by session index (an ``IdentityLookup``)."""

    def __init__(self, ids: IdMap, keys: Sequence[bytes]) -> None:
        ensure(len(ids) == len(keys), "one verify key per member is needed")
        self.ids = ids
        self._keys = tuple(keys)

    def __len__(self) -> int:
        return len(self._keys)

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return self._keys[index]
        i = operator.index(index)
        if not 0 <= i < len(self._keys):
            raise IdentityError(f"no roster entry for session index {i} (the session has {len(self)})")
        return self._keys[i]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._keys)


class Roster(Mapping[AppId, bytes]):
    """Application id -> Ed25519 verify key: who may take part, and how to recognise them.

    Built from a mapping (``Roster({7: vk7, 9: vk9})``) or a JSON file
    (``Roster.load(path)``). Every key must be a valid Ed25519 point and no key
    may belong to two ids (one party could then count as two clients).
    """

    def __init__(self, members: Mapping[object, bytes]) -> None:
        ensure(isinstance(members, Mapping), "members must be a mapping of id -> verify key",
               raising=SecAggTypeError)
        table: dict[AppId, bytes] = {}
        for raw_id, key in members.items():
            app_id = _app_id(raw_id)
            ensure(app_id not in table, f"application id {app_id!r} is listed twice")
            table[app_id] = _check_verify_key(app_id, key)
        owners: dict[bytes, AppId] = {}
        for app_id, key in table.items():
            if key in owners:
                raise IdentityError(
                    f"roster entries {owners[key]!r} and {app_id!r} share the verify key {fingerprint(key)}…"
                )
            owners[key] = app_id
        self._table = table

    def __getitem__(self, app_id: object) -> bytes:
        a = _app_id(app_id)
        if a not in self._table:
            raise IdentityError(f"{a!r} is not in the roster")
        return self._table[a]

    def __iter__(self) -> Iterator[AppId]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def session(self, members: Iterable[object]) -> SessionRoster:
        """The verify keys of a session's ``members`` (all must be in the roster), by session index."""
        ids = IdMap(members)
        return SessionRoster(ids, [self[a] for a in ids.app_ids])

    def check_own_key(self, app_id: object, key: crypto.SigningKeyPair | bytes) -> None:
        """Raise ``IdentityError`` unless ``app_id``'s roster entry is the verify key of ``key``.

        ``key`` is this node's signing key (or key pair). A mismatch means the roster
        is stale or the key was rotated; the error names both fingerprints.
        """
        seed = key.secret if isinstance(key, crypto.SigningKeyPair) else key
        mine = verify_key_of(seed)
        listed = self[app_id]
        if listed != mine:
            raise IdentityError(
                f"the roster lists {fingerprint(listed)}… for {_app_id(app_id)!r} but this node's key is "
                f"{fingerprint(mine)}…: the roster is stale or the key was rotated"
            )

    # --- files -----------------------------------------------------------------------

    def to_json(self) -> str:
        """The roster as JSON: ``{"format": ..., "members": [{"id": ..., "verify_key": hex}]}``."""
        members = [{"id": a, "verify_key": k.hex()} for a, k in self._table.items()]
        return json.dumps({"format": _ROSTER_FORMAT, "members": members}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Roster:
        """Parse ``to_json`` output; a malformed document raises ``IdentityError``."""
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise IdentityError(f"roster is not JSON: {exc}") from None
        if not isinstance(obj, dict) or obj.get("format") != _ROSTER_FORMAT:
            raise IdentityError(f"roster is not a {_ROSTER_FORMAT} document")
        members = obj.get("members")
        if not isinstance(members, list):
            raise IdentityError("roster: 'members' must be a list")
        table: dict[object, bytes] = {}
        for entry in members:
            if not isinstance(entry, dict) or set(entry) != {"id", "verify_key"}:
                raise IdentityError(f"roster: each member is {{'id', 'verify_key'}}, got {entry!r:.80}")
            if entry["id"] in table:
                raise IdentityError(f"roster: id {entry['id']!r} is listed twice")
            try:
                table[entry["id"]] = bytes.fromhex(entry["verify_key"])
            except (ValueError, TypeError):
                raise IdentityError(f"roster entry {entry['id']!r}: verify_key is not hex") from None
        try:
            return cls(table)
        except (SecAggTypeError, SecAggValueError) as exc:
            raise IdentityError(f"roster: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Roster:
        """Read a roster file written by ``save``."""
        return cls.from_json(Path(path).read_text())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the roster to ``path`` (it holds only public keys, but guard who can write it)."""
        Path(path).write_text(self.to_json() + "\n")
