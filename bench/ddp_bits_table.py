"""Bits per coordinate needed by distributed DP: the table in docs/ddp.md.

For each setting and bit width, plan_ddp's finest gamma, each client's noise share and
the aggregate noise std over what central Gaussian DP needs for the same target under
the same accountant ("inflation"; 1.00 = no cost for distributing the noise).

Run: .venv/bin/python bench/ddp_bits_table.py
"""

from __future__ import annotations

from secagg.ddp.planner import plan_ddp
from secagg.errors import SecAggValueError

SETTINGS = {
    "cross-silo: 10 clients (>= 8 honest survivors), q=1, 100 rounds, d=10^4": dict(
        max_clients=10, min_survivors=8, sampling_rate=1.0, rounds=100, dim=10_000),
    "cross-device: 500 per round (>= 400), q=0.01, 1000 rounds, d=10^5": dict(
        max_clients=500, min_survivors=400, sampling_rate=0.01, rounds=1000, dim=100_000),
}
BITS = (12, 14, 16, 18, 20, 24)


def main() -> None:
    for title, kw in SETTINGS.items():
        print(f"\n{title}; epsilon=3, delta=1e-5, clip=1\n")
        print("| bits | DDGauss gamma | DDGauss share sigma^2 | DDGauss inflation |"
              " Skellam gamma | Skellam share mu | Skellam inflation |")
        print("|---|---|---|---|---|---|---|")
        for b in BITS:
            row = [str(b)]
            for mech in ("ddgauss", "skellam"):
                try:
                    p = plan_ddp(mech, epsilon=3.0, delta=1e-5, clip=1.0, bits=b, **kw)
                    row += [f"{p.params.gamma:.3g}", f"{float(p.params.noise):.4g}",
                            f"{p.noise_inflation:.3f}"]
                except SecAggValueError:
                    row += ["refused", "-", "-"]
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
