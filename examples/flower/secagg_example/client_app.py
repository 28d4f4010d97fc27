"""The ClientApp: the app's own training, with secagg's mod in front of it.

Switching a Flower ClientApp to secure aggregation is the ``mods=[...]`` line;
the train function is what it would be without it.
"""

from __future__ import annotations

from pathlib import Path

from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from secagg import identity
from secagg.flower import NodeIdentity, SecAggMod
from secagg_example.task import known_update, train_hospital


def node_identity(context: Context) -> NodeIdentity:
    """The operator-provisioned identity: from --node-config, or (simulation) from keys-dir."""
    if "secagg-id" in context.node_config:
        return NodeIdentity.from_node_config(dict(context.node_config))
    keys = Path(str(context.run_config["keys-dir"]))
    partition = int(context.node_config["partition-id"])
    return NodeIdentity(partition, identity.load_key(keys / f"{partition}.json"),
                        identity.Roster.load(keys / "roster.json"))


app = ClientApp(mods=[SecAggMod(identity=node_identity)])


@app.train()
def train(message: Message, context: Context) -> Message:
    cfg = context.run_config
    server_round = int(message.content["config"]["server-round"])
    if cfg["mode"] == "verify":
        me = node_identity(context).app_id
        x, weight = known_update(me, server_round, int(cfg["verify-length"]))
        arrays = message.content["arrays"]
        arrays["x"] = type(arrays["x"])(x)
        return Message(RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": weight})}),
                       reply_to=message)
    arrays, examples, loss = train_hospital(
        message.content["arrays"], int(context.node_config.get("partition-id", 0)),
        int(cfg["num-partitions"]), float(cfg["alpha"]), epochs=int(cfg["local-epochs"]),
        batch_size=int(cfg["batch-size"]), lr=float(cfg["lr"]), server_round=server_round)
    metrics = MetricRecord({"num-examples": examples, "train-loss": loss})  # the loss stays on the node
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=message)
