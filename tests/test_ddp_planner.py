"""The distributed-DP planner: meets the target or refuses; lazy dp-accounting import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from secagg.errors import SecAggValueError

pytest.importorskip("dp_accounting")

from secagg.ddp.planner import plan_ddp  # noqa: E402

KW = dict(max_clients=10, min_survivors=8, epsilon=2.0, delta=1e-5, rounds=10, sampling_rate=1.0,
          dim=100, clip=1.0)


@pytest.mark.parametrize("mechanism", ["ddgauss", "skellam"])
def test_plan_meets_the_target_and_the_wrap_bound(mechanism):
    plan = plan_ddp(mechanism, bits=16, **KW)
    p = plan.params
    assert p.bits == 16 and p.mechanism == mechanism
    assert plan.accountant.epsilon(KW["rounds"]) <= KW["epsilon"] * (1 + 1e-9)
    assert p.wrap_probability() <= 1e-9
    assert plan.noise_inflation >= 0.999
    # The accountant counts exactly min_survivors shares of exactly the planned noise.
    assert plan.accountant.min_survivors == 8 and plan.accountant.noise == float(p.noise)


def test_more_bits_cost_less_noise():
    infl = [plan_ddp("ddgauss", bits=b, **KW).noise_inflation for b in (12, 16, 20)]
    assert infl[0] > infl[1] >= infl[2] * 0.999
    assert infl[2] < 1.02


def test_picks_the_fewest_bits_within_the_inflation_allowance():
    plan = plan_ddp("ddgauss", max_inflation=1.05, **KW)
    assert plan.noise_inflation <= 1.05
    try:
        fewer = plan_ddp("ddgauss", bits=plan.params.bits - 1, **KW)
    except SecAggValueError:
        return
    assert fewer.noise_inflation > 1.05


def test_refuses_what_cannot_be_met():
    with pytest.raises(SecAggValueError, match="no bit width"):
        plan_ddp("ddgauss", bits=8, **{**KW, "max_clients": 1000, "min_survivors": 1000})


def test_import_secagg_does_not_import_dp_accounting():
    code = ("import sys, secagg, secagg.ddp; "
            "assert 'dp_accounting' not in sys.modules, 'dp_accounting imported'; "
            "assert not any(m in sys.modules for m in ('torch', 'flwr', 'hypothesis'))")
    subprocess.run([sys.executable, "-c", code], check=True)
