"""Pure-numpy reference implementations of the C kernels.

Slow and simple on purpose: the tests use them as the oracle that the C paths
must match bit for bit. Nothing in the protocol calls them.
"""

from __future__ import annotations

__all__: list[str] = []
