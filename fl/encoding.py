"""Client-side clipping and encoding of a FedAvg update, and the server's decoding of the sum.

A row is the client's flat update (``trained - global``), clipped to L2 norm C in the
client-level DP modes; in ``local`` mode the client adds its own N(0, (zC)^2); with adaptive
clipping (Andrew et al. 2021) it appends one coordinate (b - 1/2) * 2C, where b says whether
its norm was at most C. The layout (blocks and their sensitivities) goes to the aggregator,
which noises each block in proportion to how far one client can move it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl import noise
from fl.aggregators import Block, RoundContext
from fl.privacy import clip_l2

__all__ = ["ClipEncoder", "LOCAL_NOISE_RANGE"]

LOCAL_NOISE_RANGE = 8.0  # secagg coordinate range in local mode: C * (1 + 8 z)


@dataclass(frozen=True)
class ClipEncoder:
    """Clips, noises (local mode) and lays out one client's update for the aggregator."""

    dp: str
    size: int
    noise_multiplier: float = 0.0
    adaptive: bool = False
    coord_clip: float = 1.0

    @property
    def clips(self) -> bool:
        """Whether updates are L2-clipped (client-level DP)."""
        return self.dp in ("central", "local", "distributed")

    def context(self, rnd: int, clip: float) -> RoundContext:
        """The round's coordinate bound and block layout at clip norm ``clip``."""
        if self.dp in ("central", "distributed"):
            bound = clip
        elif self.dp == "local":
            bound = clip * (1.0 + LOCAL_NOISE_RANGE * self.noise_multiplier)
        else:
            bound = self.coord_clip
        blocks = [Block("update", self.size, clip if self.clips else None)]
        if self.adaptive:
            # The bit coordinate is +-C, so one client moves its sum by at most C.
            blocks.append(Block("unclipped_count", 1, clip))
        return RoundContext(rnd, bound, tuple(blocks))

    def encode(self, delta: np.ndarray, clip: float) -> np.ndarray:
        """The row a client sends for update ``delta`` at clip norm ``clip``."""
        if not self.clips:
            return delta
        row, norm = clip_l2(delta, clip)
        if self.dp == "local":
            row = row + noise.gaussian(row.size, self.noise_multiplier * clip)
        if self.adaptive:
            bit = 1.0 if norm <= clip else 0.0
            row = np.append(row, (bit - 0.5) * 2.0 * clip)
        return row

    def decode(self, total: np.ndarray, clip: float, denominator: float
               ) -> tuple[np.ndarray, float | None]:
        """Split a released sum into the summed update and, with adaptive clipping, the
        estimated fraction of unclipped updates (from the noised count)."""
        if not self.adaptive:
            return total, None
        bits_sum, total = float(total[-1]), total[:-1]
        fraction = min(1.0, max(0.0, bits_sum / (2.0 * clip) / denominator + 0.5))
        return total, fraction
