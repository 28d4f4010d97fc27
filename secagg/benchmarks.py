"""Benchmarks behind ``secagg bench``: figures measured in-process, with a reference."""

from __future__ import annotations

__all__ = ["bench_prg"]


def bench_prg() -> dict[str, object]:
    """Fused expand-and-accumulate throughput against OpenSSL's ChaCha20, on one core."""
    raise NotImplementedError("bench prg is not built yet")
