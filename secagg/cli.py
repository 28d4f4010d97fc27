"""The ``secagg`` command line.

The contract (README, "Command-line contract"): bad input ends with a one-line
``secagg: error: ...`` on stderr and exit status 2 (``EXIT_USAGE``), found before any
work starts (outputs are checked for writability first); a protocol abort exits 3
(``EXIT_ABORT``) with ``secagg: aborted: <reason>`` on stderr and, under ``--json``, a
JSON object ``{"aborted": true, "reason": ...}`` on stdout; an unexpected failure exits 1
with one line (``SECAGG_TRACEBACK=1`` shows the traceback). Never a traceback otherwise.
Each subcommand's work lives in its own module; this file only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from secagg.errors import AbortedError, SecAggError

__all__ = ["main", "EXIT_USAGE", "EXIT_ABORT", "EXIT_INTERNAL", "UsageError", "OneLineParser",
           "check_writable"]

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_ABORT = 3
#: Values ``secagg simulate`` will hold (clients x length floats, 2 GiB): beyond, a usage error.
SIMULATE_MAX_VALUES = 2**28


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised as ``UsageError`` rather than printed with usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def check_writable(path: Path, what: str, *, directory: bool = False) -> None:
    """Raise UsageError unless ``path`` can be written: before any work, not after it.

    A file must not be a directory and its folder must exist and be writable; a
    directory (``directory=True``) must be one, or be creatable in a writable parent.
    """
    path = Path(path)
    if directory:
        if path.exists() and not path.is_dir():
            raise UsageError(f"{what} {path} exists and is not a directory")
        probe = path
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise UsageError(f"{what} {path} cannot be written: {probe} is not a writable directory")
        return
    if path.is_dir():
        raise UsageError(f"{what} {path} is a directory; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {path} cannot be written: no directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{what} {path} cannot be written: permission denied")


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


def _add_bench_protocol(kinds: argparse._SubParsersAction[OneLineParser]) -> None:
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


def _add_bench_calibrate(kinds: argparse._SubParsersAction[OneLineParser]) -> None:
    cal = kinds.add_parser("calibrate", help="measure unit costs for the cost model and cache them")
    cal.add_argument("--output", metavar="PATH", help="where to store them (default: the user cache)")
    cal.add_argument("--json", action="store_true", help="print the unit costs as one JSON object")
    cal.set_defaults(func=_run_bench_calibrate)


def _run_bench_calibrate(args: argparse.Namespace) -> int:
    from secagg.bench_cli import run_calibrate_command

    return run_calibrate_command(args)


# --- secagg plan -----------------------------------------------------------------


def _add_plan(sub: argparse._SubParsersAction[OneLineParser]) -> None:
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


def _add_simulate(sub: argparse._SubParsersAction[OneLineParser]) -> None:
    from secagg import prg
    from secagg.simulation import STAGES

    sim = sub.add_parser("simulate", help="run one whole session in this process")
    sim.add_argument("--clients", type=int, help="number of clients N (default 20)")
    sim.add_argument("--length", type=int, help="vector length M (default 1000)")
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
    sim.add_argument("--output", type=Path,
                     help="write the aggregated float vector to this file (.npy format)")
    sim.add_argument("--seed", type=int, default=None, help="picks inputs and who drops (not crypto)")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.set_defaults(func=_run_simulate)


def _check_simulate(args: argparse.Namespace) -> None:
    """Every usage error of ``secagg simulate`` that can be found before the run."""
    if not (math.isfinite(args.clip) and args.clip > 0):
        raise UsageError(f"--clip must be finite and > 0, got {args.clip}")
    if not (math.isfinite(args.dropout) and 0 <= args.dropout < 1):
        raise UsageError(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise UsageError(f"--seed must be in [0, 2^63), got {args.seed}")
    if args.inputs is not None:
        given = [f"--{name}" for name in ("clients", "length") if getattr(args, name) is not None]
        if given:
            raise UsageError(f"--inputs sets the clients and the length; drop {' and '.join(given)}")
    else:
        args.clients = 20 if args.clients is None else args.clients
        args.length = 1000 if args.length is None else args.length
        if args.clients < 2 or args.length < 1:
            raise UsageError(f"--clients must be >= 2 and --length >= 1, got {args.clients} "
                             f"and {args.length}")
        if args.clients * args.length > SIMULATE_MAX_VALUES:
            raise UsageError(f"--clients x --length = {args.clients * args.length} values; this "
                             f"command holds at most {SIMULATE_MAX_VALUES} in memory")
    if args.output is not None:
        check_writable(args.output, "--output")


def _load_inputs(args: argparse.Namespace) -> Any:
    import numpy as np

    if args.inputs is None:
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
    if inputs.size > SIMULATE_MAX_VALUES:
        raise ValueError(f"--inputs holds {inputs.size} values; at most {SIMULATE_MAX_VALUES}")
    return inputs


def _run_simulate(args: argparse.Namespace) -> int:
    import numpy as np

    from secagg.simulation import SimulationConfig, simulate

    _check_simulate(args)
    inputs = _load_inputs(args)
    config = SimulationConfig(
        graph=args.graph, clip=args.clip, bits=args.bits, dropout=args.dropout,
        dropout_stage=args.dropout_stage, consistency_check=not args.no_consistency_check,
        seed=args.seed, cipher=args.cipher,
    )
    result = simulate(inputs, None, config)
    if args.output is not None:
        with open(args.output, "wb") as f:  # exactly this path: np.save would add ".npy"
            np.save(f, result.sum, allow_pickle=False)
    # max_abs_error is against the clipped inputs: say how many were clipped, and the
    # error against the inputs as given, so clipping is never silent.
    clipped = int(np.count_nonzero(np.abs(inputs) > args.clip))
    given = inputs[result.survivors].sum(axis=0) if result.survivors else np.zeros(inputs.shape[1])
    summary = {"clients": inputs.shape[0], "length": inputs.shape[1], "graph": args.graph,
               **result.summary(), "clipped_values": clipped,
               "max_abs_error_unclipped": float(np.max(np.abs(given - result.sum)))}
    if clipped:
        print(f"secagg: warning: {clipped} input values were outside [-{args.clip}, {args.clip}] "
              f"and were clipped (max_abs_error is against the clipped inputs)", file=sys.stderr)
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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0, or EXIT_USAGE / EXIT_ABORT / EXIT_INTERNAL)."""
    args = None
    try:
        args = _parser().parse_args(argv)
        return int(args.func(args))
    except AbortedError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"aborted": True, "reason": _one_line(exc)}))
        print(f"secagg: aborted: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ABORT
    except (UsageError, SecAggError, ValueError, TypeError, OSError) as exc:
        print(f"secagg: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("secagg: error: out of memory: try a smaller --clients or --length", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a bug: one line, and the traceback only when asked for
        if os.environ.get("SECAGG_TRACEBACK") == "1":
            raise
        print(f"secagg: internal error: {type(exc).__name__}: {_one_line(exc)} "
              f"(SECAGG_TRACEBACK=1 shows where)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
