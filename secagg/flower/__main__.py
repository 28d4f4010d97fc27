"""Provisioning for a Flower deployment: ``python -m secagg.flower keygen|roster``.

- ``keygen --id ID --out FILE``: make one node's Ed25519 identity key (a file
  only its owner can read; it stays on that node) and print the node's public
  roster entry as one JSON line.
- ``roster --out FILE ENTRY...``: gather public entries (files holding the JSON
  lines printed by keygen) into the roster file that the operator gives every
  node. The roster is the trust anchor: whoever can write it can stand in for
  any node, so distribute it out of band, never through the Flower server.

Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from secagg import identity
from secagg.errors import SecAggError


def _app_id(text: str) -> identity.AppId:
    return int(text) if text.lstrip("-").isdigit() else text


def _keygen(args: argparse.Namespace) -> None:
    key = identity.generate_key()
    identity.save_key(args.out, key)
    print(json.dumps({"id": _app_id(args.id), "verify_key": key.public.hex()}))


def _roster(args: argparse.Namespace) -> None:
    members: dict[object, bytes] = {}
    for path in args.entries:
        for line in Path(path).read_text().splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                app_id, key = entry["id"], bytes.fromhex(entry["verify_key"])
            except (ValueError, KeyError, TypeError) as exc:
                raise SecAggError(f"{path}: not a roster entry ({exc})") from None
            if app_id in members:
                raise SecAggError(f"{path}: id {app_id!r} is listed twice")
            members[app_id] = key
    identity.Roster(members).save(args.out)
    print(f"wrote {args.out} with {len(members)} members", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m secagg.flower", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="make one node's identity key")
    keygen.add_argument("--id", required=True, help="the node's roster id (as in --node-config secagg-id)")
    keygen.add_argument("--out", required=True, help="key file to create (refuses to overwrite)")
    roster = sub.add_parser("roster", help="build the roster from nodes' public entries")
    roster.add_argument("--out", required=True)
    roster.add_argument("entries", nargs="+", help="files of JSON lines printed by keygen")
    args = parser.parse_args(argv)
    try:
        {"keygen": _keygen, "roster": _roster}[args.command](args)
    except (SecAggError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
