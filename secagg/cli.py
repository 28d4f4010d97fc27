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
from typing import Any, NoReturn

from secagg.errors import SecAggError

__all__ = ["main", "EXIT_USAGE", "UsageError", "OneLineParser"]

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised as ``UsageError`` rather than printed with usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


# --- secagg bench -------------------------------------------------------------


def _add_bench(sub: argparse._SubParsersAction[OneLineParser]) -> None:
    bench = sub.add_parser("bench", help="measure the core's speed")
    kinds = bench.add_subparsers(dest="bench", required=True, parser_class=OneLineParser)
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


# --- secagg simulate -----------------------------------------------------------


def _add_simulate(sub: argparse._SubParsersAction[OneLineParser]) -> None:
    from secagg import prg
    from secagg.simulation import STAGES

    sim = sub.add_parser("simulate", help="run one whole session in this process")
    sim.add_argument("--clients", type=int, default=20, help="number of clients N (default 20)")
    sim.add_argument("--length", type=int, default=1000, help="vector length M (default 1000)")
    sim.add_argument("--graph", choices=("complete", "harary"), default="harary")
    sim.add_argument("--dropout", type=float, default=0.0, help="fraction of clients that vanish")
    sim.add_argument("--dropout-stage", choices=STAGES, default="masked")
    sim.add_argument("--bits", type=int, default=32, help="field bits b (default 32)")
    sim.add_argument("--clip", type=float, default=1.0, help="inputs are clipped to [-clip, clip]")
    sim.add_argument("--cipher", choices=prg.CIPHERS, default="chacha20",
                     help="mask expansion (aes256ctr needs AES-NI)")
    sim.add_argument("--no-consistency-check", action="store_true",
                     help="honest-but-curious variant without the consistency round")
    sim.add_argument("--inputs", help="an (N, M) float array in a .npy file (default: random)")
    sim.add_argument("--output", help="write the aggregated float vector to this .npy file")
    sim.add_argument("--seed", type=int, default=None, help="picks inputs and who drops (not crypto)")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.set_defaults(func=_run_simulate)


def _load_inputs(args: argparse.Namespace) -> Any:
    import numpy as np

    if args.inputs is None:
        if args.clients < 2 or args.length < 1:
            raise ValueError("--clients must be >= 2 and --length >= 1")
        rng = np.random.default_rng(args.seed)
        return rng.uniform(-args.clip, args.clip, size=(args.clients, args.length))
    try:
        inputs = np.load(args.inputs, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read --inputs {args.inputs}: {exc}") from None
    if inputs.ndim != 2 or not np.issubdtype(inputs.dtype, np.floating):
        raise ValueError(f"--inputs must hold a 2-D float array, got {inputs.dtype} {inputs.shape}")
    if not np.all(np.isfinite(inputs)):
        raise ValueError("--inputs holds NaN or infinite values")
    return inputs


def _run_simulate(args: argparse.Namespace) -> int:
    import numpy as np

    from secagg.simulation import SimulationConfig, simulate

    inputs = _load_inputs(args)
    config = SimulationConfig(
        graph=args.graph, clip=args.clip, bits=args.bits, dropout=args.dropout,
        dropout_stage=args.dropout_stage, consistency_check=not args.no_consistency_check,
        seed=args.seed, cipher=args.cipher,
    )
    result = simulate(inputs, None, config)
    if args.output:
        np.save(args.output, result.sum, allow_pickle=False)
    summary = {"clients": inputs.shape[0], "length": inputs.shape[1], "graph": args.graph,
               **result.summary()}
    if args.json:
        print(json.dumps(summary))
    else:
        survivors = summary.pop("survivors")
        summary["survivors"] = f"{len(survivors)} of {inputs.shape[0]}"
        _print_table([(k, f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in summary.items()])
    return 0


# --- entry point --------------------------------------------------------------


def _parser() -> OneLineParser:
    parser = OneLineParser(prog="secagg", description="Secure aggregation for federated learning.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_bench(sub)
    _add_simulate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        args = _parser().parse_args(argv)
        return int(args.func(args))
    except (UsageError, SecAggError, ValueError, TypeError, OSError) as exc:
        print(f"secagg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
