"""Distributed differential privacy inside secure aggregation.

Each client adds its share of exact integer noise (discrete Gaussian or Skellam)
to its rotated, rounded, encoded vector before masking, so the only thing that
leaves the protocol, even to the server, is already differentially private.
``DistributedDp`` is the encoder/decoder pair; ``secagg.ddp.accounting`` and
``secagg.ddp.planner`` (which need the ``fl`` extra's dp-accounting, imported
lazily) give the epsilon and pick the parameters.
"""

from secagg.ddp.accounting import DistributedDpAccountant, pld_epsilon
from secagg.ddp.mechanism import (
    MECHANISMS,
    DistributedDp,
    check_secagg_config,
    padded_dim,
    rotate,
    rounded_l1_bound,
    rounded_l2_bound,
    secagg_threshold_for,
    unrotate,
)
from secagg.ddp.noise import discrete_gaussian, poisson, rational_at_least, skellam
from secagg.ddp.planner import DdpPlan, plan_ddp

__all__ = [
    "MECHANISMS",
    "DistributedDp",
    "check_secagg_config",
    "secagg_threshold_for",
    "padded_dim",
    "rotate",
    "unrotate",
    "rounded_l2_bound",
    "rounded_l1_bound",
    "discrete_gaussian",
    "skellam",
    "poisson",
    "rational_at_least",
    "DistributedDpAccountant",
    "pld_epsilon",
    "DdpPlan",
    "plan_ddp",
]
