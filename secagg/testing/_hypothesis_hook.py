"""Hypothesis's ``hypothesis`` entry point: registers ``SecAggConfig`` for ``st.from_type``."""

from __future__ import annotations


def _hypothesis_setup_hook() -> None:
    """Called by Hypothesis at import; does nothing if secagg's core cannot load."""
    try:
        from secagg.testing.strategies import register
    except ImportError:  # pragma: no cover
        return
    register()
