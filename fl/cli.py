"""``python -m fl train``: federated training over secure aggregation from the command line.

Bad options end with a one-line ``fl: error: ...`` on stderr and exit status 2, found
before training starts (``--out`` is checked for writability first); the contract is
the one of ``secagg.cli`` (README, "Command-line contract").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from secagg.cli import EXIT_INTERNAL, EXIT_USAGE, OneLineParser, UsageError, check_writable
from secagg.errors import SecAggError

__all__ = ["main", "build_parser"]



def build_parser() -> argparse.ArgumentParser:
    """The ``fl`` argument parser (defaults of None are filled in per task)."""
    from fl.tasks import TASKS

    parser = OneLineParser(prog="python -m fl", description="federated learning over secagg")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    p = sub.add_parser("train", help="train one task with FedAvg")
    p.add_argument("--task", choices=sorted(TASKS), default="hospitals")
    p.add_argument("--clients", type=int, help="number of clients (hospitals, users, banks)")
    p.add_argument("--rounds", type=int)
    p.add_argument("--sample-rate", type=float, help="Poisson sampling rate q in (0, 1]")
    p.add_argument("--clients-per-round", type=int,
                   help="fixed-size sampling of this many clients instead of Poisson")
    p.add_argument("--local-epochs", type=int)
    p.add_argument("--max-local-steps", type=int, help="cap on a client's SGD steps per round")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="client learning rate")
    p.add_argument("--server-lr", type=float, default=1.0)
    p.add_argument("--server-momentum", type=float, help="FedAvgM momentum (default per task)")
    p.add_argument("--secagg", action=argparse.BooleanOptionalAction, default=True,
                   help="aggregate through secure aggregation (default) or in plaintext")
    p.add_argument("--graph", choices=["harary", "complete"], default="harary",
                   help="SecAgg+ (harary) or original SecAgg (complete)")
    p.add_argument("--bits", type=int, default=32, help="secagg field bits")
    p.add_argument("--coord-clip", type=float, default=1.0,
                   help="secagg coordinate range when updates are not L2-clipped")
    p.add_argument("--dp", choices=["none", "central", "local", "record", "distributed"],
                   default="central")
    p.add_argument("--mechanism", choices=["ddgauss", "skellam"], default="ddgauss",
                   help="--dp distributed: client-added discrete Gaussian or Skellam noise")
    p.add_argument("--min-survivors", type=int,
                   help="--dp distributed: honest survivors whose noise the guarantee counts on"
                        " (default half the expected cohort; the SecAgg threshold enforces it)")
    p.add_argument("--max-colluders", type=int, default=0,
                   help="--dp distributed: survivors that may side with the server and add no"
                        " noise (the SecAgg threshold grows by as many)")
    p.add_argument("--level", choices=["client", "record"], default="client",
                   help="client: DP-FedAvg over clients; record: DP-SGD across the clients over"
                        " the union of their records, one noisy step a round (fl.crosssilo)")
    p.add_argument("--noise-multiplier", type=float)
    p.add_argument("--clip", type=float, help="L2 clip norm C (per client, or per example)")
    p.add_argument("--adaptive-clip", action="store_true", help="Andrew et al. 2021 (central)")
    p.add_argument("--target-quantile", type=float, default=0.5)
    p.add_argument("--target-delta", type=float)
    p.add_argument("--target-epsilon", type=float)
    p.add_argument("--accountant", choices=["pld", "rdp"],
                   help="pld (default; rdp with --clients-per-round, which PLD cannot account)")
    p.add_argument("--dropout", type=float, default=0.0, help="fraction of clients that vanish")
    p.add_argument("--alpha", type=float, help="Dirichlet label-skew parameter")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="directory for summary.json and training.png")
    p.add_argument("--no-baselines", action="store_true", help="skip centralised/plaintext runs")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    return parser


def _config(args: argparse.Namespace):
    from fl.fedavg import FLConfig
    from fl.tasks import RECORD_LEVEL, TASKS

    d = TASKS[args.task]
    if args.level == "record":
        d = {**d, **RECORD_LEVEL.get(args.task, {})}

    def pick(name: str) -> object:
        value = getattr(args, name)
        return d.get(name) if value is None else value

    for name in ("sample_rate", "lr", "clip", "noise_multiplier", "alpha", "target_delta",
                 "target_epsilon", "dropout", "server_lr", "coord_clip"):
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            raise UsageError(f"--{name.replace('_', '-')} must be finite, got {value}")
    if not 0 <= args.seed < 2**32:
        raise UsageError(f"--seed must be in [0, 2^32), got {args.seed}")
    clients = pick("clients")
    if not isinstance(clients, int) or clients < 1:
        raise UsageError(f"--clients must be >= 1, got {clients}")
    alpha = pick("alpha")
    if args.task != "keyboard" and not alpha > 0:
        raise UsageError(f"--alpha must be > 0, got {alpha}")
    cfg = FLConfig(
        rounds=pick("rounds"), sample_rate=pick("sample_rate"),
        clients_per_round=args.clients_per_round, local_epochs=pick("local_epochs"),
        batch_size=pick("batch_size"), lr=pick("lr"), server_lr=args.server_lr,
        server_momentum=pick("server_momentum") or 0.0,
        max_local_steps=pick("max_local_steps"), secure=args.secagg, graph=args.graph,
        bits=args.bits, coord_clip=args.coord_clip, dp=args.dp,
        noise_multiplier=pick("noise_multiplier") if args.dp != "none" else 0.0,
        clip=pick("clip"), delta=args.target_delta if args.target_delta is not None else d["delta"],
        target_epsilon=args.target_epsilon,
        accountant=args.accountant or ("rdp" if args.clients_per_round is not None else "pld"),
        adaptive_clip=args.adaptive_clip, target_quantile=args.target_quantile,
        dropout=args.dropout, seed=args.seed, mechanism=args.mechanism,
        min_survivors=args.min_survivors, max_colluders=args.max_colluders, level=args.level)
    return clients, alpha, cfg


def _fmt(value: object, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _train(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from fl.experiment import label_of, run_experiment
    from fl.tasks import load_task

    clients, alpha, cfg = _config(args)
    out = args.out if args.out is not None else Path("fl-runs") / args.task
    check_writable(out, "--out", directory=True)  # before training, not after it
    torch.set_num_threads(1)
    data = load_task(args.task, clients, alpha, cfg.seed)
    if cfg.clients_per_round is not None and cfg.clients_per_round > clients:
        raise UsageError(f"--clients-per-round {cfg.clients_per_round} exceeds --clients {clients}")
    text = sys.stderr if args.json else sys.stdout
    bars: list[tqdm] = []  # made at the first round, so early errors stay one line

    def on_round(r: dict[str, object]) -> None:
        if not bars:
            bars.append(tqdm(total=cfg.rounds, desc=f"{args.task} {label_of(cfg)}",
                             file=sys.stderr, leave=False, dynamic_ncols=True, disable=None))
        bars[0].update(1)
        eps = "" if r["epsilon"] is None else f"  eps {r['epsilon']:.3f}"
        # Cohort sizes are published only without DP (they are not noised).
        who = f"  clients {r['took_part']} (dropped {r['dropped']})" if "took_part" in r else ""
        extra = f"  refused {r['refused']}" if r.get("refused") else ""
        err = f"  ({r['error']})" if r["error"] else ""
        tqdm.write(f"round {r['round']:>3}/{cfg.rounds}  {data.metric} {_fmt(r['metric'])}"
                   f"  loss {_fmt(r['loss'])}{eps}{who}{extra}  {r['seconds']:.2f}s{err}",
                   file=text)

    def on_stage(msg: str) -> None:
        print(f"... {msg}", file=sys.stderr)

    if not args.json:
        print(f"{args.task}: {clients} clients, {data.info.get('train', '')} "
              f"{label_of(cfg)}", file=text)
    summary = run_experiment(args.task, clients, alpha, cfg, out_dir=out,
                             baselines=not args.no_baselines, on_round=on_round,
                             on_stage=on_stage, data=data)
    for bar in bars:
        bar.close()
    if args.json:
        print(json.dumps(summary, default=float))
        return 0
    base = summary["baselines"]
    if summary["stopped"]:
        print(summary["stopped"])
    eps = ("no DP" if summary["epsilon"] is None else
           f"epsilon {summary['epsilon']:.3f} at delta {summary['delta']:g}")
    if cfg.level == "record":
        matched = summary.get("centralised_dpsgd") or {}
        dpsgd = ("" if not matched else f"  |  centralised DP-SGD at the same epsilon"
                 f" {_fmt(base['centralised_dpsgd'])} (z={matched['noise_multiplier']:.3f}, PLD)")
        print(f"final {summary['metric']}: {_fmt(summary['final'])} ({label_of(cfg)})"
              f"  |  centralised, no DP {_fmt(base['centralised'])}{dpsgd}  |  {eps}")
    else:
        print(f"final {summary['metric']}: {_fmt(summary['final'])} ({label_of(cfg)})"
              f"  |  centralised {_fmt(base['centralised'])}"
              f"  |  plaintext FedAvg {_fmt(base['plaintext_fedavg'])}  |  {eps}")
    if summary["epsilon"] is not None:
        print(f"accounting: {summary['accounting']}")
    if summary.get("graph"):
        print(f"secure aggregation: {summary['graph']} graph, threshold {summary['secagg_threshold']},"
              f" {summary['bits']}-bit sums")
    if summary.get("trust"):
        print(f"trust model: {summary['trust']}")
    print(f"wrote {out / 'summary.json'} and {out / 'training.png'} in {summary['seconds']:.1f}s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fl`` command line; return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return _train(args)
    except (UsageError, SecAggError, ValueError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"fl: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fl: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, and the traceback only when asked for
        if os.environ.get("SECAGG_TRACEBACK") == "1":
            raise
        print(f"fl: internal error: {type(exc).__name__}: {exc} (SECAGG_TRACEBACK=1 shows where)",
              file=sys.stderr)
        return EXIT_INTERNAL
