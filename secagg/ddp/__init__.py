"""Distributed differential privacy inside secure aggregation.

Each client adds its share of exact integer noise (discrete Gaussian or Skellam)
to its rotated, rounded, encoded vector before masking, so the only thing that
leaves the protocol, even to the server, is already differentially private.
"""

from secagg.ddp.noise import discrete_gaussian, poisson, rational_at_least, skellam

__all__ = [
    "discrete_gaussian",
    "skellam",
    "poisson",
    "rational_at_least",
]
