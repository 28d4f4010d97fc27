"""Protocol benchmarks of issue 3, run as a script (they take minutes, not seconds).

    .venv/bin/python bench/protocol.py client     # complete graph, n=100, m=1e6, b=32
    .venv/bin/python bench/protocol.py server     # same, 30% drop after sharing keys
    .venv/bin/python bench/protocol.py memory     # server memory vs n*m (tracemalloc)
    .venv/bin/python bench/protocol.py secaggplus # SecAgg+, n=10,000, m=100,000, 5% dropout

A second argument picks the mask cipher (default chacha20), e.g. ``server aes256ctr``.

Each prints one JSON object. Times are CPU seconds (``time.process_time`` around each
client and server call, all threads of the process), which other jobs on a shared
machine disturb far less than wall time; ``total_wall_seconds`` is the whole run's wall
time. Figures go to docs/benchmarks.md with the command.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import tracemalloc

import numpy as np

from secagg.simulation import SimulationConfig, _max_abs_error, run_session, simulate


def _inputs(n: int, m: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, size=(n, m)).astype(np.float32)


def _session(n: int, m: int, sim: SimulationConfig) -> dict:
    """One simulated session, CPU-timed: the figures of the clients that stayed and the server's."""
    inputs = _inputs(n, m)
    config = sim.plan(n, m)
    vanish = sim.vanishing(n)
    start = time.perf_counter()
    out = run_session(config, inputs, vanish=vanish, server_threads=sim.server_threads,
                      clock=time.process_time)
    wall = time.perf_counter() - start
    result = out.server.result()
    survivors = list(result.survivors)
    stayed = [c for c in range(n) if c not in vanish]
    return {"n": n, "m": m, "k": config.degree, "t": config.threshold, "bits": config.bits,
            "dropped": n - len(survivors),
            "client_cpu_seconds_median": statistics.median(out.client_seconds[c] for c in stayed),
            "server_cpu_seconds": out.server_seconds,
            "upload_bytes_per_client": int(statistics.median(out.upload_bytes[c] for c in stayed)),
            "max_abs_error": _max_abs_error(inputs, None, survivors, config.clip, result.sum),
            "total_wall_seconds": wall}


def client(cipher: str) -> dict:
    r = _session(100, 1_000_000, SimulationConfig(graph="complete", seed=1, cipher=cipher))
    return {"scenario": "client", "cipher": cipher, **r, "goal_client_seconds": 0.25,
            "packed_vector_bytes": -(-(1_000_001) * r["bits"] // 8)}


def server(cipher: str) -> dict:
    r = _session(100, 1_000_000, SimulationConfig(graph="complete", dropout=0.3, dropout_stage="masked",
                                                  seed=1, cipher=cipher))
    return {"scenario": "server", "cipher": cipher, **r, "goal_server_seconds": 3.0}


def memory(cipher: str) -> dict:
    """Peak memory the server allocates, against the n*m bytes it must never hold."""
    from secagg import server as server_module

    out = {"scenario": "memory", "rows": []}
    for n, m in ((50, 200_000), (100, 200_000), (100, 400_000)):
        inputs = _inputs(n, m)
        tracemalloc.start()
        peaks = []
        original_receive = server_module.Server.receive
        original_close = server_module.Server.close_round

        def timed(fn, peaks=peaks):
            def wrapper(self, *args, **kwargs):
                before = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                try:
                    return fn(self, *args, **kwargs)
                finally:
                    peaks.append(tracemalloc.get_traced_memory()[1] - before)
            return wrapper

        server_module.Server.receive = timed(original_receive)
        server_module.Server.close_round = timed(original_close)
        try:
            simulate(inputs, None,
                     SimulationConfig(graph="complete", dropout=0.3, seed=1, cipher=cipher))
        finally:
            server_module.Server.receive = original_receive
            server_module.Server.close_round = original_close
            tracemalloc.stop()
        out["rows"].append({"n": n, "m": m, "n_times_m_bytes": 4 * n * m,
                            "server_call_peak_bytes": max(peaks)})
    return out


def secaggplus(cipher: str) -> dict:
    r = _session(10_000, 100_000, SimulationConfig(graph="harary", dropout=0.05, dropout_stage="masked",
                                                   seed=1, cipher=cipher))
    return {"scenario": "secaggplus", "cipher": cipher, **r, "goal_total_seconds": 600,
            "goal_server_seconds": 60}


if __name__ == "__main__":
    scenarios = {"client": client, "server": server, "memory": memory, "secaggplus": secaggplus}
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in scenarios:
        sys.exit(f"usage: bench/protocol.py {{{','.join(scenarios)}}} [chacha20|aes256ctr]")
    print(json.dumps(scenarios[sys.argv[1]](sys.argv[2] if len(sys.argv) == 3 else "chacha20")))
