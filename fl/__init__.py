"""fl: federated averaging on PyTorch over secagg, with differential privacy.

Needs the ``fl`` extra (torch, scikit-learn, dp-accounting, ...); ``secagg`` itself does not.
"""

from fl.aggregators import (
    Aggregate,
    AggregationAborted,
    Aggregator,
    Block,
    CentralGaussian,
    PlaintextSum,
    RoundContext,
    SecureSum,
)
from fl.crosssilo import run_cross_silo
from fl.fedavg import DP_MODES, FLConfig, History, run_fedavg, train_centralised
from fl.noise import gaussian, gaussian_from_key
from fl.params import StateSpec, flatten_state, model_delta, state_spec, unflatten_state
from fl.privacy import (
    AdaptiveClip,
    ClientAccountant,
    Ledger,
    RecordAccountant,
    clip_l2,
    epsilon_of,
    membership_tpr_bound,
)
from fl.sampling import CohortSampler
from fl.tasks import TASKS, TaskData, load_task

__all__ = [
    "Aggregate",
    "AggregationAborted",
    "Aggregator",
    "Block",
    "CentralGaussian",
    "PlaintextSum",
    "RoundContext",
    "SecureSum",
    "CohortSampler",
    "Ledger",
    "membership_tpr_bound",
    "DP_MODES",
    "FLConfig",
    "History",
    "run_fedavg",
    "run_cross_silo",
    "train_centralised",
    "gaussian",
    "gaussian_from_key",
    "StateSpec",
    "state_spec",
    "flatten_state",
    "unflatten_state",
    "model_delta",
    "AdaptiveClip",
    "ClientAccountant",
    "RecordAccountant",
    "clip_l2",
    "epsilon_of",
    "TASKS",
    "TaskData",
    "load_task",
]
