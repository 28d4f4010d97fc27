"""Local training for one client: plain minibatch SGD, or DP-SGD for record-level privacy.

DP-SGD (Abadi et al. 2016) samples each step's batch by Poisson sampling with
rate b / n (matching the accountant) from the OS CSPRNG (``fl.sampling.poisson_mask``:
amplification needs batches nobody can rebuild), computes per-example gradients with
``torch.func.vmap(grad(...))``, clips each to L2 norm C, sums, adds Gaussian noise
of std z*C from ``fl.noise`` and divides by the expected batch size b (a fixed
denominator, so the batch size itself does not leak).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.func import functional_call, grad, vmap

from fl import noise
from fl.sampling import poisson_mask

__all__ = ["local_sgd", "local_dp_sgd", "dp_sgd_steps_per_epoch", "ClippedGradients"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def local_sgd(model: torch.nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *,
              epochs: int, batch_size: int, lr: float, generator: torch.Generator,
              max_steps: int | None = None) -> float:
    """Train ``model`` in place with shuffled minibatch SGD; return the mean training loss.

    ``max_steps`` caps the steps over all epochs (a client's work per round is bounded).
    """
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    total, count = 0.0, 0
    n = x.shape[0]
    steps = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            if max_steps is not None and steps >= max_steps:
                break
            steps += 1
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
    return total / max(count, 1)


def dp_sgd_steps_per_epoch(n: int, batch_size: int) -> int:
    """Steps per epoch of DP-SGD: one pass in expectation, ceil(n / b)."""
    return max(1, math.ceil(n / batch_size))


class ClippedGradients:
    """Per-example gradients of ``model``'s loss, each clipped to L2 norm ``clip``, summed.

    ``torch.func.vmap(grad(...))`` over the selected examples; the clip is on the norm over
    all parameters together. Used by local DP-SGD and by cross-silo DP-SGD, where each
    hospital sends this sum (plus its noise share) into secure aggregation.
    """

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn, clip: float) -> None:
        self.model = model
        self.clip = clip
        self.buffers = {k: v.detach() for k, v in model.named_buffers()}

        def one_loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor
                     ) -> torch.Tensor:
            out = functional_call(model, (p, self.buffers), (xi.unsqueeze(0),))
            return loss_fn(out, yi.unsqueeze(0))

        self._per_example = vmap(grad(one_loss), in_dims=(None, 0, 0))

    def sum(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
            ) -> dict[str, torch.Tensor]:
        """The sum over the rows of ``x``/``y`` of the clipped per-example gradients at ``params``."""
        summed = {k: torch.zeros_like(v) for k, v in params.items()}
        if x.shape[0]:
            grads = self._per_example(params, x, y)
            norms = torch.sqrt(sum(g.reshape(g.shape[0], -1).pow(2).sum(1) for g in grads.values()))
            factor = torch.clamp(self.clip / (norms + 1e-12), max=1.0)
            for k, g in grads.items():
                summed[k] = torch.einsum("b,b...->...", factor, g)
        return summed


def local_dp_sgd(model: torch.nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *,
                 epochs: int, batch_size: int, lr: float, clip: float, noise_multiplier: float
                 ) -> int:
    """Train ``model`` in place with DP-SGD; return the number of steps taken."""
    n = x.shape[0]
    rate = min(1.0, batch_size / n)
    expected = rate * n
    params = {k: v.detach() for k, v in model.named_parameters()}
    clipped = ClippedGradients(model, loss_fn, clip)
    steps = epochs * dp_sgd_steps_per_epoch(n, batch_size)
    model.train()
    for _ in range(steps):
        idx = poisson_mask(n, rate).nonzero().flatten()
        summed = clipped.sum(params, x[idx], y[idx])
        with torch.no_grad():
            for k, p in params.items():
                z = noise.gaussian(p.numel(), noise_multiplier * clip)
                g = (summed[k] + torch.from_numpy(z).reshape(p.shape).to(p.dtype)) / expected
                p.sub_(lr * g)
    return steps
