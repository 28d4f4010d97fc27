"""fl.params: flatten/unflatten round trips over several models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fl.params import flatten_state, model_delta, state_spec, unflatten_state
from fl.tasks import GRULanguageModel
from secagg.errors import SecAggValueError

torch.set_num_threads(1)


def _cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3))


MODELS = {
    "mlp": lambda: nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1)),
    "gru_lm": lambda: GRULanguageModel(50, 8, 12),
    "cnn_batchnorm": _cnn,
    "float64_linear": lambda: nn.Linear(5, 3).double(),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_restores_every_tensor_exactly(name: str) -> None:
    torch.manual_seed(1)
    model = MODELS[name]()
    state = model.state_dict()
    spec = state_spec(state)
    vec = flatten_state(state, spec)
    assert vec.dtype == np.float64 and vec.size == spec.size
    back = unflatten_state(vec, spec, state)
    assert list(back) == list(state)
    for key, tensor in state.items():
        assert back[key].dtype == tensor.dtype
        assert torch.equal(back[key], tensor)


def test_integer_buffers_are_left_alone() -> None:
    model = _cnn()
    model.train()
    model(torch.randn(2, 1, 8, 8))  # bumps num_batches_tracked and running stats
    state = model.state_dict()
    spec = state_spec(state)
    assert "1.num_batches_tracked" not in spec.names
    assert "1.running_mean" in spec.names  # float buffers travel
    vec = flatten_state(state, spec) + 1.0
    back = unflatten_state(vec, spec, state)
    assert torch.equal(back["1.num_batches_tracked"], state["1.num_batches_tracked"])
    assert torch.allclose(back["1.running_mean"], state["1.running_mean"] + 1.0)


def test_model_delta_is_trained_minus_global() -> None:
    torch.manual_seed(2)
    a, b = MODELS["mlp"](), MODELS["mlp"]()
    spec = state_spec(a.state_dict())
    delta = model_delta(b.state_dict(), a.state_dict(), spec)
    rebuilt = unflatten_state(flatten_state(a.state_dict(), spec) + delta, spec, a.state_dict())
    for key, tensor in b.state_dict().items():
        assert torch.allclose(rebuilt[key], tensor, atol=1e-6)


def test_wrong_length_vector_is_refused() -> None:
    state = MODELS["mlp"]().state_dict()
    spec = state_spec(state)
    with pytest.raises(SecAggValueError, match="flat vector"):
        unflatten_state(np.zeros(spec.size + 1), spec, state)
