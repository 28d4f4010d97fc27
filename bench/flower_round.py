"""One FL round of secure aggregation in the same Flower harness: Flower's SecAgg+ against secagg.

Both sides run the same legacy Flower app in this process: n ``ClientApp``s built
from the same ``NumPyClient`` (each returns a fixed random vector of m float32
values and an example count), behind ``secagg.flower.testing.InProcessGrid``,
driven by Flower's ``DefaultWorkflow`` with a legacy ``FedAvg``. Only the secure
aggregation differs:

- flower: ``SecAggPlusWorkflow(num_shares, reconstruction_threshold)`` + ``secaggplus_mod``;
- secagg: ``SecAggWorkflow(num_shares, reconstruction_threshold)`` + ``SecAggMod``, or with
  ``--secagg-planned`` the graph degree and threshold planned for the dropout rate.

``--vanish`` makes that fraction of nodes (the same ones for both) go silent after
sharing keys, i.e. from the masked-input stage on. Messages are delivered in
process, one node after the other, so the wall time splits exactly into the
time inside ClientApps (client) and the rest (server: the workflow, the
protocol's server side, the grid). Bytes per client are what a node uploads over
the round: its replies as Flower serializes them (deflated objects).

    .venv/bin/python bench/flower_round.py --nodes 100 --length 100000 --num-shares 100 \
        --threshold 51 --vanish 0.3
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time

import numpy as np
from flwr.app import Context, Message, RecordDict
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

from secagg import identity
from secagg.flower import NodeIdentity, SecAggMod, SecAggParams, SecAggWorkflow
from secagg.flower._records import CONFIG_RECORD, Stage, stage_of
from secagg.flower.testing import InProcessGrid


def _vanishing_at_masked(flavour: str, gone: set[int]):
    """A ``down`` hook that silences ``gone`` from the masked-input stage on."""
    silent: set[int] = set()

    def down(message: Message) -> Message | None:
        node = message.metadata.dst_node_id
        if node in silent:
            return None
        if node in gone and message.has_content():
            if flavour == "flower":
                configs = message.content.config_records.get(RECORD_KEY_CONFIGS)
                due = configs is not None and configs.get("stage") == "collect_masked_vectors"
            else:
                parsed = stage_of(message.content) if CONFIG_RECORD in message.content else None
                due = parsed is not None and parsed[0] is Stage.MASKED
            if due:
                silent.add(node)
                return None
        return message

    return down


def run(flavour: str, args: argparse.Namespace, vectors: dict[int, np.ndarray], gone: set[int]) -> dict:
    nodes = sorted(vectors)
    examples = {node: 1 + i % 10 for i, node in enumerate(nodes)}

    class Node(NumPyClient):
        def __init__(self, node_id: int) -> None:
            self.node_id = node_id

        def fit(self, parameters, config):
            return [vectors[self.node_id]], examples[self.node_id], {}

    keys = {node: identity.generate_key() for node in nodes}
    roster = identity.Roster({node: key.public for node, key in keys.items()})
    mod = secaggplus_mod if flavour == "flower" else SecAggMod(
        identity=lambda context: NodeIdentity(context.node_id, keys[context.node_id], roster))
    app = ClientApp(client_fn=lambda context: Node(context.node_id).to_client(), mods=[mod])
    grid = InProcessGrid(app, {node: {} for node in nodes})
    grid.down = _vanishing_at_masked(flavour, gone)
    if flavour == "flower":
        workflow = SecAggPlusWorkflow(num_shares=args.num_shares, reconstruction_threshold=args.threshold,
                                      clipping_range=args.clip, max_weight=10.0, timeout=60.0)
    elif args.secagg_planned:
        workflow = SecAggWorkflow(clipping_range=args.clip, max_weight=10.0, timeout=60.0,
                                  params=SecAggParams(dropout_rate=args.vanish, graph="harary"))
    else:
        workflow = SecAggWorkflow(num_shares=args.num_shares, reconstruction_threshold=args.threshold,
                                  clipping_range=args.clip, max_weight=10.0, timeout=60.0)
    initial = ndarrays_to_parameters([np.zeros(args.length, np.float32)])
    strategy = FedAvg(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=len(nodes),
                      min_available_clients=len(nodes), initial_parameters=initial)
    context = LegacyContext(Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}),
                            config=ServerConfig(num_rounds=1), strategy=strategy)
    start = time.perf_counter()
    DefaultWorkflow(fit_workflow=workflow)(grid, context)
    wall = time.perf_counter() - start
    client = sum(grid.client_seconds.values())
    uploads = grid.upload_bytes
    model = context.state.array_records["parameters"]
    final = np.concatenate([a.numpy().ravel() for a in model.values()]).astype(np.float64)
    survivors = [n for n in nodes if n not in gone]
    weight = sum(examples[n] for n in survivors)
    expected = sum(examples[n] * np.clip(vectors[n].astype(np.float64), -args.clip, args.clip)
                   for n in survivors) / weight
    updated = bool(np.any(final != 0))
    out = {
        "flavour": flavour + (" (planned SecAgg+)" if flavour == "secagg" and args.secagg_planned else ""),
        "completed": updated,
        "server_seconds": round(wall - client, 3),
        "client_seconds_median": round(statistics.median(grid.client_seconds[n] for n in survivors), 4),
        "upload_bytes_median": int(statistics.median(uploads[n] for n in survivors)),
        "max_abs_error_of_mean": float(np.max(np.abs(final - expected))) if updated else None,
    }
    if flavour == "secagg":
        config = workflow.reports[-1].config
        out.update(k=config.degree, t=config.threshold, bits=config.bits)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--length", type=int, default=100_000)
    parser.add_argument("--num-shares", type=int, default=100, help="Flower's num_shares (n: complete graph)")
    parser.add_argument("--threshold", type=int, default=51, help="Flower's reconstruction_threshold")
    parser.add_argument("--vanish", type=float, default=0.3, help="fraction silent from the masked stage on")
    parser.add_argument("--secagg-planned", action="store_true", help="plan secagg's k and t for --vanish")
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--which", choices=["both", "flower", "secagg"], default="both")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rng = np.random.default_rng(0)  # benchmark data, not secrets
    nodes = [1000 + i for i in range(args.nodes)]
    vectors = {n: rng.uniform(-1, 1, args.length).astype(np.float32) for n in nodes}
    gone = {int(n) for n in rng.choice(nodes, size=int(round(args.vanish * args.nodes)), replace=False)}
    results = {"nodes": args.nodes, "length": args.length, "num_shares": args.num_shares,
               "threshold": args.threshold, "vanish": args.vanish}
    for flavour in (["flower", "secagg"] if args.which == "both" else [args.which]):
        results[flavour] = run(flavour, args, vectors, gone)
    if args.which == "both" and results["secagg"]["server_seconds"] > 0:
        ratio = results["flower"]["server_seconds"] / results["secagg"]["server_seconds"]
        results["server_speedup"] = round(ratio, 1)
        results["client_speedup"] = round(results["flower"]["client_seconds_median"]
                                          / results["secagg"]["client_seconds_median"], 1)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
