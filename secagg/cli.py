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

__all__ = ["main", "EXIT_USAGE", "UsageError", "OneLineParser"]

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised as ``UsageError`` rather than printed with usage."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def _print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


# --- secagg bench -------------------------------------------------------------


def _add_bench(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure the core's speed")
    kinds = bench.add_subparsers(dest="bench", required=True, parser_class=OneLineParser)
    prg = kinds.add_parser("prg", help="fused mask expansion vs OpenSSL ChaCha20, one core")
    prg.add_argument("--json", action="store_true", help="print one JSON object")
    prg.set_defaults(func=_run_bench_prg)
    _add_bench_protocol(kinds)
    _add_bench_calibrate(kinds)


def _run_bench_prg(args: argparse.Namespace) -> int:
    from secagg.benchmarks import bench_prg

    result = bench_prg()
    if args.json:
        print(json.dumps(result))
    else:
        _print_table([(k, f"{v:.3f}" if isinstance(v, float) else str(v)) for k, v in result.items()])
    return 0


def _add_bench_protocol(kinds: argparse._SubParsersAction) -> None:
    from secagg.simulation import STAGES

    proto = kinds.add_parser(
        "protocol", help="sweep whole sessions: time per stage, bytes, server memory",
        description="Each comma-separated list is swept; every combination is one session.")
    proto.add_argument("--clients", default="100", help="numbers of clients N (default 100)")
    proto.add_argument("--length", default="10000", help="vector lengths M (default 10000)")
    proto.add_argument("--graph", default="complete,harary",
                       help="complete and/or harary (the planned SecAgg+ graph)")
    proto.add_argument("--dropout", default="0", help="fractions of clients that vanish (default 0)")
    proto.add_argument("--dropout-stage", default="masked", help=f"stages they vanish at: {','.join(STAGES)}")
    proto.add_argument("--bits", default="32", help="field bits b (default 32)")
    proto.add_argument("--cipher", default="chacha20", help="chacha20 and/or aes256ctr")
    proto.add_argument("--server-threads", type=int, default=1, help="threads for the server's masks")
    proto.add_argument("--seed", type=int, default=0, help="picks inputs and who drops (not crypto)")
    proto.add_argument("--no-memory", action="store_true", help="skip the tracemalloc bound on server memory")
    proto.add_argument("--budget", type=float, help="stop starting points after this many seconds")
    proto.add_argument("--json", action="store_true", help="one JSON object per point, one per line")
    proto.add_argument("--csv", metavar="PATH", help="also write the records as CSV")
    proto.add_argument("--plots", metavar="DIR",
                       help="also draw the papers' figures as PNGs (needs matplotlib)")
    proto.set_defaults(func=_run_bench_protocol)


def _run_bench_protocol(args: argparse.Namespace) -> int:
    from secagg.bench_cli import run_protocol_command

    return run_protocol_command(args)


def _add_bench_calibrate(kinds: argparse._SubParsersAction) -> None:
    cal = kinds.add_parser("calibrate", help="measure unit costs for the cost model and cache them")
    cal.add_argument("--output", metavar="PATH", help="where to store them (default: the user cache)")
    cal.add_argument("--json", action="store_true", help="print the unit costs as one JSON object")
    cal.set_defaults(func=_run_bench_calibrate)


def _run_bench_calibrate(args: argparse.Namespace) -> int:
    from secagg.bench_cli import run_calibrate_command

    return run_calibrate_command(args)


# --- secagg plan -----------------------------------------------------------------


def _add_plan(sub: argparse._SubParsersAction) -> None:
    from secagg import prg
    from secagg.simulation import STAGES

    plan = sub.add_parser("plan", help="the planner's (k, t, b) and the predicted cost of a deployment")
    plan.add_argument("--clients", type=int, required=True, help="number of clients N")
    plan.add_argument("--length", type=int, required=True, help="vector length M")
    plan.add_argument("--dropout", type=float, default=0.05, help="fraction expected to drop (default 0.05)")
    plan.add_argument("--dropout-stage", choices=STAGES, default="masked")
    plan.add_argument("--corrupt", type=float, default=0.05, help="fraction colluding with the server")
    plan.add_argument("--graph", choices=("complete", "harary"), default="harary")
    plan.add_argument("--bits", type=int, default=32, help="field bits b (default 32)")
    plan.add_argument("--clip", type=float, default=1.0, help="inputs are clipped to [-clip, clip]")
    plan.add_argument("--cipher", choices=prg.CIPHERS, default="chacha20")
    plan.add_argument("--server-threads", type=int, default=1, help="server threads for the masks")
    plan.add_argument("--unit-costs", metavar="PATH", help="unit costs file (default: the user cache)")
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.set_defaults(func=_run_plan)


def _run_plan(args: argparse.Namespace) -> int:
    from secagg.bench_cli import run_plan_command

    return run_plan_command(args)


# --- secagg simulate -----------------------------------------------------------


def _add_simulate(sub: argparse._SubParsersAction) -> None:
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


def _load_inputs(args: argparse.Namespace):
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
    _add_plan(sub)
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
