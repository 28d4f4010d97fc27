"""Secure aggregation for Flower 1.42 (``pip install secagg[flower]``).

- Client side: ``secagg_mod`` (or ``SecAggMod(policy=..., identity=...)``), a
  mod for a ``ClientApp``: ``ClientApp(mods=[secagg_mod])``.
- Server side, Message API: ``secure_round(grid, contents, ...)`` runs one
  round over a ``Grid``; ``SecureAggregation(FedAvg(...))`` is a strategy whose
  training rounds are aggregated securely.
- Server side, legacy ``DefaultWorkflow``: ``SecAggWorkflow``, a drop-in for
  Flower's ``SecAggPlusWorkflow``.

The core package never imports this one (nor flwr). See docs/flower.md.
"""

from secagg.flower._records import Manifest, Stage
from secagg.flower.mod import NodeIdentity, SecAggMod, secagg_mod
from secagg.flower.server import NodeDirectory, RoundReport, SecAggParams, SecureAggregation, secure_round
from secagg.flower.workflow import SecAggWorkflow

__all__ = [
    "Manifest",
    "NodeDirectory",
    "NodeIdentity",
    "RoundReport",
    "SecAggMod",
    "SecAggParams",
    "SecAggWorkflow",
    "SecureAggregation",
    "Stage",
    "secagg_mod",
    "secure_round",
]
