"""Flatten a model's floating-point state into one float64 vector and back.

FedAvg moves *every floating-point tensor* of the ``state_dict`` (parameters and
float buffers such as BatchNorm running statistics). Integer and bool buffers
(e.g. ``num_batches_tracked``) are not averaged: they are left as the global
model has them, because a mean of counters is meaningless and secure
aggregation only carries real-valued vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from secagg.errors import SecAggTypeError, ensure

__all__ = ["StateSpec", "state_spec", "flatten_state", "unflatten_state", "model_delta"]


@dataclass(frozen=True)
class StateSpec:
    """Which state_dict entries travel, in order, with their shapes and dtypes."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[torch.dtype, ...]

    @property
    def size(self) -> int:
        """Total number of scalars in the flat vector."""
        return int(sum(int(np.prod(s, dtype=np.int64)) for s in self.shapes))


def state_spec(state: Mapping[str, torch.Tensor]) -> StateSpec:
    """Describe the floating-point entries of ``state`` (in state_dict order)."""
    names, shapes, dtypes = [], [], []
    for name, tensor in state.items():
        ensure(isinstance(tensor, torch.Tensor), f"state entry {name!r} is not a tensor",
               raising=SecAggTypeError)
        if tensor.is_floating_point():
            names.append(name)
            shapes.append(tuple(tensor.shape))
            dtypes.append(tensor.dtype)
    return StateSpec(tuple(names), tuple(shapes), tuple(dtypes))


def flatten_state(state: Mapping[str, torch.Tensor], spec: StateSpec | None = None) -> np.ndarray:
    """Concatenate the floating-point tensors of ``state`` into one float64 vector."""
    spec = state_spec(state) if spec is None else spec
    parts = []
    for name, shape in zip(spec.names, spec.shapes, strict=False):
        ensure(name in state, f"state has no entry {name!r}")
        tensor = state[name]
        ensure(tuple(tensor.shape) == shape,
               f"entry {name!r} has shape {tuple(tensor.shape)}, expected {shape}")
        parts.append(tensor.detach().cpu().reshape(-1).to(torch.float64).numpy())
    if not parts:
        return np.zeros(0, dtype=np.float64)
    return np.concatenate(parts)


def unflatten_state(vector: np.ndarray, spec: StateSpec,
                    template: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rebuild a state_dict: float entries from ``vector``, all others copied from ``template``."""
    vector = np.asarray(vector)
    ensure(vector.ndim == 1 and vector.size == spec.size,
           f"expected a flat vector of {spec.size} values, got shape {vector.shape}")
    out = {name: tensor.detach().clone() for name, tensor in template.items()}
    offset = 0
    for name, shape, dtype in zip(spec.names, spec.shapes, spec.dtypes, strict=False):
        count = int(np.prod(shape, dtype=np.int64))
        chunk = torch.from_numpy(np.ascontiguousarray(vector[offset:offset + count]))
        out[name] = chunk.reshape(shape).to(dtype)
        offset += count
    return out


def model_delta(trained: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor],
                spec: StateSpec) -> np.ndarray:
    """Flat ``trained - base`` over the floating-point entries (the FedAvg update)."""
    return flatten_state(trained, spec) - flatten_state(base, spec)
