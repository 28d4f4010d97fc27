"""The ``secagg`` command line.

Bad input ends with a one-line ``secagg: error: ...`` on stderr and exit status 2,
never a traceback. Each subcommand's work lives in its own module; this file only
parses arguments and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from secagg.errors import SecAggError

__all__ = ["main"]

EXIT_USAGE = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, raised rather than printed."""

    def error(self, message: str):  # type: ignore[override]
        raise _UsageError(message)


def _print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


# --- secagg bench -------------------------------------------------------------


def _add_bench(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure the core's speed")
    kinds = bench.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    prg = kinds.add_parser("prg", help="fused mask expansion vs OpenSSL ChaCha20, one core")
    prg.add_argument("--json", action="store_true", help="print one JSON object")
    prg.set_defaults(func=_run_bench_prg)


def _run_bench_prg(args: argparse.Namespace) -> int:
    from secagg.benchmarks import bench_prg

    result = bench_prg()
    if args.json:
        print(json.dumps(result))
    else:
        _print_table([(k, f"{v:.3f}" if isinstance(v, float) else str(v)) for k, v in result.items()])
    return 0


# --- entry point --------------------------------------------------------------


def _parser() -> _Parser:
    parser = _Parser(prog="secagg", description="Secure aggregation for federated learning.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        args = _parser().parse_args(argv)
        return int(args.func(args))
    except (_UsageError, SecAggError, ValueError, TypeError, OSError) as exc:
        print(f"secagg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
