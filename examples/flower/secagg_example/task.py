"""What the nodes compute: local training on one hospital's data, or a known vector (verify mode)."""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
from flwr.app import Array, ArrayRecord

#: Verify mode: updates are multiples of 1/64 in [-1, 1] and weights integers in [1, 8], so with a
#: fixed-point scale of 2^10 the secure sum is exact and can be compared with == .
VERIFY_SCALE = 2.0**10
VERIFY_MAX_WEIGHT = 8.0


def known_update(roster_id: object, server_round: int, length: int) -> tuple[np.ndarray, int]:
    """The vector and weight a node sends in verify mode (test data, not a secret)."""
    seed = hashlib.sha256(f"{roster_id}/{server_round}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
    return rng.integers(-64, 65, size=length) / 64.0, int(rng.integers(1, 9))


def zero_model(length: int) -> ArrayRecord:
    return ArrayRecord({"x": Array(np.zeros(length, dtype=np.float64))})


@lru_cache(maxsize=2)
def hospitals(num_partitions: int, alpha: float):  # noqa: ANN201 (fl.TaskData; torch is imported lazily)
    """The fl hospitals task split over ``num_partitions`` hospitals (bundled data, nothing fetched)."""
    from fl.tasks import load_task

    return load_task("hospitals", num_partitions, alpha, seed=0)


def train_hospital(arrays: ArrayRecord, partition: int, num_partitions: int, alpha: float, *,
                   epochs: int, batch_size: int, lr: float,
                   server_round: int) -> tuple[ArrayRecord, int, float]:
    """Local SGD on one hospital's data from the global model; the new weights, examples, loss."""
    import torch

    from fl.dpsgd import local_sgd

    data = hospitals(num_partitions, alpha)
    model = data.make_model()
    model.load_state_dict(arrays.to_torch_state_dict())
    x, y = data.clients[partition % num_partitions]
    generator = torch.Generator().manual_seed(server_round * 1000 + partition)
    loss = local_sgd(model, data.loss_fn, x, y, epochs=epochs, batch_size=batch_size, lr=lr,
                     generator=generator)
    return ArrayRecord(model.state_dict()), int(x.shape[0]), float(loss)
