"""The partner-pruning attack (issue 7) at planned n = 1000, too slow for the suite.

Plays tests/attacker.py's malicious server with the planner's bound of colluders placed
next to the victim (what unbounded directory grinding could at best achieve), once with
one survivor view and once with a split view, and prints one JSON line per run. Exit
status 1 if the server's view ever rebuilds the victim's input.

    .venv/bin/python bench/attack_pruning.py [--clients 1000] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from attacker import PruningAttack  # noqa: E402

from secagg.config import SecAggConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    config = SecAggConfig.plan(args.clients, 8, clip=1.0, graph="harary", bits=32)
    k, t = config.degree, config.threshold
    colluders = 2 * t - k - 1
    broken = False
    for run in range(args.runs):
        for split_view in (False, True):
            start = time.perf_counter()
            out = PruningAttack(config, seed=run).run(colluders=colluders, split_view=split_view)
            leaked = out.recovered is not None and bool(np.array_equal(out.recovered, out.truth))
            broken |= out.recovered is not None
            print(json.dumps({
                "n": args.clients, "k": k, "t": t, "colluders": colluders, "split_view": split_view,
                "victim": out.victim, "partners": len(out.partners), "recovered": leaked,
                "victim_seed_shares_obtained": out.revealed_seed_shares,
                "refusals": len(out.errors), "missing": len(out.missing),
                "seconds": round(time.perf_counter() - start, 1),
            }), flush=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
