"""secagg: secure aggregation for federated learning (SecAgg, SecAgg+).

The public API is re-exported here; everything else is private.
"""

from secagg.errors import (
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    SecAggError,
    SecAggTypeError,
    SecAggValueError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "SecAggError",
    "SecAggTypeError",
    "SecAggValueError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
]
