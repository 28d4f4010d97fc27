"""secagg: secure aggregation for federated learning (SecAgg, SecAgg+).

A server learns the sum of its clients' vectors and nothing about any one of
them, even when clients drop out. ``Client`` and ``Server`` are sans-I/O state
machines (bytes in, bytes out); ``simulate`` runs a whole session in memory.
The public API is re-exported here; modules and names starting with ``_`` are
private.
"""

from secagg.client import Client
from secagg.config import ConfigPolicy, SecAggConfig
from secagg.errors import (
    AbortedError,
    BadSignatureError,
    DecryptionError,
    IdentityError,
    LocalProtocolError,
    MalformedMessageError,
    MaliciousServerError,
    PolicyError,
    ProtocolError,
    RemoteProtocolError,
    SecAggError,
    SecAggTypeError,
    SecAggValueError,
    SessionMismatchError,
    UnexpectedMessageError,
)
from secagg.identity import IdMap, Roster, SessionRoster, generate_key, load_key, save_key
from secagg.rounds import Round
from secagg.server import AggregationResult, DropReason, Server
from secagg.simulation import SimulationConfig, SimulationResult, simulate

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # protocol
    "SecAggConfig",
    "ConfigPolicy",
    "Client",
    "Server",
    "Round",
    "DropReason",
    "AggregationResult",
    "SimulationConfig",
    "SimulationResult",
    "simulate",
    # identities (the trust anchor)
    "Roster",
    "SessionRoster",
    "IdMap",
    "generate_key",
    "save_key",
    "load_key",
    # errors
    "SecAggError",
    "SecAggTypeError",
    "SecAggValueError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "MalformedMessageError",
    "UnexpectedMessageError",
    "SessionMismatchError",
    "MaliciousServerError",
    "BadSignatureError",
    "DecryptionError",
    "AbortedError",
    "IdentityError",
    "PolicyError",
]
