"""CPU and wall seconds of one simulated SecAgg+ session (the issue 7 cost figures).

    .venv/bin/python bench/secaggplus_cpu.py N M

5 % of the clients vanish at the masked-input stage; prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from secagg.simulation import SimulationConfig, simulate


def main() -> None:
    n, m = int(sys.argv[1]), int(sys.argv[2])
    x = np.random.default_rng(0).uniform(-1, 1, size=(n, m)).astype(np.float32)
    wall, cpu = time.perf_counter(), time.process_time()
    r = simulate(x, None, SimulationConfig(graph="harary", dropout=0.05, dropout_stage="masked", seed=1))
    print(json.dumps({
        "n": n, "m": m, "k": r.k, "t": r.t, "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(time.process_time() - cpu, 1), "max_abs_error": r.max_abs_error,
        "upload_bytes_per_client": r.upload_bytes_per_client,
    }))


if __name__ == "__main__":
    main()
