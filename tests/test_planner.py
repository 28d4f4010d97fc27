"""Tests of secagg.planner: SecAgg+ (k, t) as fcp computes them, complete-graph t, bit width."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg import planner
from secagg.errors import SecAggTypeError, SecAggValueError

# (n, corrupt, dropout, malicious server, degree, threshold): precomputed values from
# federated-compute's fcp/secagg/server/graph_parameter_finder_test.cc (which checks the
# degree exactly and the threshold as an upper bound; ours equals it).
FCP_TABLE = [
    (100, 0.45, 0.45, False, 92, 46),
    (1000, 0.45, 0.45, False, 822, 417),
    (10, 0.33, 0.33, False, 8, 4),
    (1000, 0.33, 0.33, False, 286, 150),
    (1000000, 0.33, 0.33, False, 518, 270),
    (100, 0.3, 0.3, True, 92, 62),
    (1000, 0.3, 0.3, True, 872, 584),
    (100, 0.05, 0.33, False, 28, 6),
    (10000, 0.05, 0.33, False, 86, 29),
    (10, 0.05, 0.33, True, 8, 5),
    (1000, 0.05, 0.33, True, 398, 223),
    (1000000, 0.05, 0.33, True, 970, 545),
    (10, 0.33, 0.05, False, 4, 4),
    (100000, 0.33, 0.05, False, 102, 77),
    (100, 0.33, 0.05, True, 42, 37),
    (10000, 0.33, 0.05, True, 178, 146),
]


@pytest.mark.parametrize("n, corrupt, dropout, malicious, k, t", FCP_TABLE)
def test_plan_graph_reproduces_fcp(n, corrupt, dropout, malicious, k, t):
    plan = planner.plan_graph(
        n, dropout_rate=dropout, corrupt_fraction=corrupt, malicious_server=malicious
    )
    assert (plan.kind, plan.n, plan.k, plan.t) == ("harary", n, k, t)
    assert plan.k % 2 == 0 and 2 <= plan.t <= plan.k


def test_plan_graph_default_setting_values():
    # Hand-checked against the fcp algorithm (docs/planner.md table).
    p = planner.plan_graph(1000, dropout_rate=0.05, corrupt_fraction=0.05)
    assert (p.kind, p.k, p.t, p.malicious_server) == ("harary", 52, 37, True)
    p = planner.plan_graph(100, dropout_rate=0.05, corrupt_fraction=0.05)
    assert (p.k, p.t) == (16, 11)


def test_degree_grows_with_bad_fractions_and_slowly_with_n():
    ks = [
        planner.plan_graph(10_000, dropout_rate=d, corrupt_fraction=c).k
        for d, c in [(0.0, 0.0), (0.05, 0.05), (0.1, 0.1), (0.2, 0.2)]
    ]
    assert ks == sorted(ks) and ks[0] < ks[-1]
    by_n = [planner.plan_graph(n, dropout_rate=0.05, corrupt_fraction=0.05).k
            for n in (1000, 10_000, 100_000)]
    assert by_n == sorted(by_n) and by_n[-1] < 2 * by_n[0]  # O(log n)


def test_malicious_server_needs_a_larger_threshold():
    honest = planner.plan_graph(1000, dropout_rate=0.1, corrupt_fraction=0.1,
                                malicious_server=False)
    mal = planner.plan_graph(1000, dropout_rate=0.1, corrupt_fraction=0.1)
    assert mal.t / mal.k > honest.t / honest.k
    assert 2 * mal.t > mal.k  # t > k/2 against a malicious server


def test_plan_graph_security_bits_matter():
    weak = planner.plan_graph(10_000, dropout_rate=0.1, corrupt_fraction=0.1, security_bits=20)
    strong = planner.plan_graph(10_000, dropout_rate=0.1, corrupt_fraction=0.1, security_bits=80)
    assert weak.k <= strong.k and (weak.k, weak.t) != (strong.k, strong.t)


def test_plan_graph_falls_back_to_complete_for_tiny_n():
    p = planner.plan_graph(5, dropout_rate=0.2, corrupt_fraction=0.0)
    assert p.kind == "complete" and p.k == 4


def test_plan_graph_refuses_infeasible_rates():
    with pytest.raises(SecAggValueError, match="2\\*dropout_rate"):
        planner.plan_graph(1000, dropout_rate=0.4, corrupt_fraction=0.2)
    with pytest.raises(SecAggValueError, match="<= 0.9"):
        planner.plan_graph(1000, dropout_rate=0.5, corrupt_fraction=0.45, malicious_server=False)
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(SecAggValueError):
            planner.plan_graph(100, dropout_rate=bad, corrupt_fraction=0.0)
    with pytest.raises(SecAggTypeError):
        planner.plan_graph(100, dropout_rate="0.1", corrupt_fraction=0.0)
    with pytest.raises(SecAggValueError):
        planner.plan_graph(0, dropout_rate=0.1, corrupt_fraction=0.0)


def test_plan_complete_bonawitz_conditions():
    p = planner.plan_complete(100, 0.1, 0.1)
    assert p.kind == "complete" and p.k == 99
    assert p.t == 56  # 2t > 100 + 10
    assert planner.plan_complete(100, 0.1, 0.1, malicious_server=False).t == 51  # t > n/2
    assert planner.plan_complete(100, 0.1, 0.6, malicious_server=False).t == 61  # t > 60
    with pytest.raises(SecAggValueError, match="surviving neighbours"):
        planner.plan_complete(100, 0.5, 0.1)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 5000),
    d=st.floats(0, 0.45),
    c=st.floats(0, 0.9),
    mal=st.booleans(),
)
def test_plan_complete_threshold_is_secure_and_reachable(n, d, c, mal):
    n_c, n_drop = math.ceil((c - 1e-14) * n), math.floor((d + 1e-14) * n)
    try:
        p = planner.plan_complete(n, d, c, malicious_server=mal)
    except SecAggValueError:
        return
    assert 2 * p.t > n and p.t > n_c and p.t <= n - 1 - n_drop  # shares live on neighbours only
    if mal:
        assert 2 * p.t > n + n_c
    u = p.t - 1  # minimal: one less breaks a condition
    assert not (2 * u > n and u > n_c and (not mal or 2 * u > n + n_c))


# --- bit width ---------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 10**6),
    max_abs=st.floats(1e-3, 1e3),
    log_scale=st.integers(-4, 30),
)
def test_required_bits_is_the_exact_boundary(n, max_abs, log_scale):
    scale = 2.0**log_scale
    b = planner.required_bits(n, max_abs, scale)
    worst = n * math.ceil(max_abs * scale)
    assert worst <= 2 ** (b - 1) - 1  # fits at b
    assert b == 1 or worst > 2 ** (b - 2) - 1  # wraps at b - 1
    if b <= 64:
        planner.check_no_wrap(n, max_abs, scale, b)
    if 2 <= b <= 65:
        with pytest.raises(SecAggValueError, match="wraps"):
            planner.check_no_wrap(n, max_abs, scale, b - 1)


def test_required_bits_hand_values():
    assert planner.required_bits(1, 1.0, 1.0) == 2  # values in [-1, 1]
    assert planner.required_bits(100, 1.0, 2**16) == 24  # 100 * 65536 = 6553600 < 2^23
    assert planner.required_bits(1000, 1.0, 2**20) == 31
    assert planner.required_bits(3, 0.5, 3.0) == 4  # ceil(1.5) = 2, 3*2 = 6 <= 7


def test_check_no_wrap_messages():
    with pytest.raises(SecAggValueError, match="use bits >= 35"):
        planner.check_no_wrap(1000, 1.0, 2**24, 32)
    with pytest.raises(SecAggValueError, match="no bit width up to 64"):
        planner.check_no_wrap(10**6, 1e3, 2.0**60, 64)
    with pytest.raises(SecAggValueError):
        planner.check_no_wrap(10, 1.0, 1.0, 65)
    with pytest.raises(SecAggValueError):
        planner.required_bits(10, 0.0, 1.0)
    with pytest.raises(SecAggValueError):
        planner.required_bits(10, float("inf"), 1.0)
    with pytest.raises(SecAggTypeError):
        planner.required_bits(10, "1", 1.0)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 10**6), max_abs=st.floats(1e-3, 1e3), bits=st.integers(8, 64),
       p2=st.booleans())
def test_max_scale_is_safe_and_maximal(n, max_abs, bits, p2):
    if (2 ** (bits - 1) - 1) // n < 1:
        with pytest.raises(SecAggValueError):
            planner.max_scale(n, max_abs, bits, power_of_two=p2)
        return
    s = planner.max_scale(n, max_abs, bits, power_of_two=p2)
    planner.check_no_wrap(n, max_abs, s, bits)
    assert planner.required_bits(n, max_abs, s) <= bits
    bigger = 2 * s if p2 else math.nextafter(s, math.inf) * (1 + 1e-12)
    assert planner.required_bits(n, max_abs, bigger) > bits
    if p2:
        assert math.log2(s) == int(math.log2(s))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(6, 40), d=st.floats(0.0, 0.3),
       stage=st.sampled_from(["advertise", "share", "masked", "consistency", "unmask"]))
def test_a_session_that_loses_exactly_the_planned_fraction_completes(n, d, stage):
    """Planner, simulation and server count dropouts the same way (floor(d * n), t survivors)."""
    import numpy as np

    from secagg import SimulationConfig, simulate

    try:
        planner.plan_complete(n, d, 0.05)
    except SecAggValueError:
        return
    x = np.zeros((n, 2))
    res = simulate(x, None, SimulationConfig(graph="complete", dropout=d, planned_dropout=d,
                                             dropout_stage=stage, seed=1))
    lost = planner.planned_dropouts(n, d)
    counted = n - lost if stage in ("advertise", "share", "masked") else n  # later dropouts were counted
    assert len(res.survivors) == counted


@pytest.mark.parametrize("n, corrupt, dropout, malicious, k, t", [r for r in FCP_TABLE if r[3]])
def test_planned_thresholds_meet_the_unmasking_rules(n, corrupt, dropout, malicious, k, t):
    """docs/security.md needs c_u < t and 2t > k + c_u for every honest client's c_u.

    The planner bounds c_u by t1, the upper 2^-41/n quantile of the corrupt neighbours;
    both conditions then follow from 2t - k - 1 >= t1 (and t <= k).
    """
    p = planner.plan_graph(n, dropout_rate=dropout, corrupt_fraction=corrupt)
    if p.kind != "harary":
        return
    max_corrupt = math.floor((corrupt + 1e-14) * n)
    t1 = planner._Hypergeometric(n, max_corrupt, p.k).quantile(2.0**-41 / n, complement=True)
    assert 2 * p.t - p.k - 1 >= t1 and p.t <= p.k
