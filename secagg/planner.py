"""Parameter planning: graph degree k and threshold t, and the bit width b.

``plan_graph`` picks (k, t) for SecAgg+ exactly as Google's federated-compute does
(``fcp/secagg/server/graph_parameter_finder.cc``, after Bell et al. CCS 2020): the
smallest even k such that (a) removing the corrupt and dropped clients leaves the
randomly labelled Harary graph connected except with probability 2^-(sec+1)
(union bound over pairs of gaps of k/2 consecutive bad nodes), and (b) a
threshold t exists with Pr[some client has >= t corrupt neighbours] <= 2^-(sec+1)
and Pr[some client has < t surviving neighbours] <= 2^-corr (hypergeometric
tails, union bound over the n clients). With a malicious server the threshold
must also exceed (k + corrupt neighbours) / 2, so the server cannot learn both
kinds of share of an honest client. ``plan_complete`` does the same for the
complete graph (Bonawitz et al. CCS 2017): t > n/2, t > corrupt (2t > n + corrupt
against a malicious server), and t <= the clients expected to survive.

``required_bits``/``check_no_wrap``/``max_scale`` make sure the sum of n encoded
values cannot wrap around modulo 2^b. See docs/planner.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from secagg.bindings import _ensure_int, _ensure_real
from secagg.errors import SecAggTypeError, SecAggValueError, ensure

__all__ = [
    "MAX_CLIENTS",
    "GraphPlan",
    "plan_graph",
    "plan_complete",
    "required_bits",
    "check_no_wrap",
    "max_scale",
    "planned_dropouts",
]

MAX_CLIENTS = 10**7
# As in fcp: nudges the rates so that float rounding errs towards more bad clients.
_SMALL = 1e-14


@dataclass(frozen=True)
class GraphPlan:
    """Chosen graph and threshold.

    A client's shares are held by itself and its k neighbours (fcp's self-edge);
    t of those holders must survive to reconstruct. For SecAgg+ the analysis counts
    only the k neighbours, so t <= k and the owner's own share is a bonus; for the
    complete graph k = n - 1 and t <= n.
    """

    kind: str  # "complete" or "harary"
    k: int
    t: int
    n: int
    dropout_rate: float
    corrupt_fraction: float
    malicious_server: bool
    security_bits: int
    correctness_bits: int

    def __post_init__(self) -> None:
        """Check the invariants the protocol relies on."""
        ensure(self.kind in ("complete", "harary"), f"kind must be complete or harary: {self.kind}")
        ensure(1 <= self.t <= self.k + 1, f"need 1 <= t <= k + 1, got t={self.t}, k={self.k}")
        ensure(self.k <= self.n - 1 or self.n == 1, f"k={self.k} must be < n={self.n}")


def planned_dropouts(n: int, rate: float) -> int:
    """How many of ``n`` clients a dropout rate means: floor(rate * n), as the planner counts.

    The one rule shared by the planner (which provisions t for this many dropouts), the
    simulation and ``fl`` (which drop this many), so that a session planned for a rate
    completes when exactly that fraction drops.
    """
    n = _ensure_int(n, "n", 0, MAX_CLIENTS)
    rate = _ensure_rate(rate, "rate")
    return min(n, math.floor((rate + _SMALL) * n))


def _ensure_rate(value: object, name: str) -> float:
    ensure(
        isinstance(value, (int, float)) and not isinstance(value, bool),
        f"{name} must be a real number, got {type(value).__name__}",
        raising=SecAggTypeError,
    )
    assert isinstance(value, (int, float))  # for the type checker: ensured above
    value = float(value)
    ensure(math.isfinite(value) and 0 <= value < 1, f"{name} must be in [0, 1), got {value}")
    return value


# --- hypergeometric tails (a port of fcp/secagg/server/distribution_utilities.cc) ---


class _Hypergeometric:
    """Number of marked items in ``sampled`` draws without replacement from ``total``."""

    def __init__(self, total: int, marked: int, sampled: int) -> None:
        self.total, self.marked, self.sampled = total, marked, sampled

    def _pmf(self, x: float, counted: int) -> float:
        T, s = self.total, self.sampled
        if x < 0 or x > s or x > counted or T + x < counted + s:
            return 0.0
        lg = math.lgamma
        return math.exp(
            lg(s + 1) + lg(counted + 1) + lg(T - counted + 1) + lg(T - s + 1)
            - lg(x + 1) - lg(s - x + 1) - lg(counted - x + 1) - lg(T + 1)
            - lg(T - s - counted + x + 1)
        )

    def _cdf(self, x: float, counted: int) -> float:
        """Pr[X <= x], summing the pmf downwards from x until terms are negligible."""
        T, s = self.total, self.sampled
        pmf, result = self._pmf(x, counted), 0.0
        while pmf > result * 1e-16:
            result += pmf
            pmf *= x
            pmf *= T - counted - s + x
            pmf /= counted - x + 1
            pmf /= s - x + 1
            x -= 1
        return result

    def cdf(self, x: float) -> float:
        """Pr[X <= floor(x)], computed on the short side of the mean for accuracy."""
        x = math.floor(x)
        if x > self.marked * self.sampled / self.total:
            return 1 - self._cdf(self.sampled - x - 1, self.total - self.marked)
        return self._cdf(x, self.marked)

    def quantile(self, q: float, complement: bool = False) -> float:
        """The value whose cdf is q (1-q if ``complement``), rounded outwards."""
        if q > 0.5:
            q, complement = 1 - q, not complement
        if complement:
            return self.sampled - self._quantile(q, self.total - self.marked) - 1
        return self._quantile(q, self.marked)

    def _quantile(self, q: float, counted: int) -> float:
        T, s = self.total, self.sampled
        basic = counted + s - T - 1
        # An inverted Hoeffding bound gives a lower bound on the result.
        fancy = s * (counted / T - math.sqrt(-math.log(q) / (2 * s)))
        result = float(math.floor(max(-1.0, basic, fancy)))
        cdf, pmf = self._cdf(result, counted), self._pmf(result, counted)
        while cdf < q and result < s:
            if pmf > 0:
                pmf /= result + 1
                pmf /= T - counted - s + result + 1
                pmf *= counted - result
                pmf *= s - result
            else:
                pmf = self._pmf(result + 1, counted)
            cdf += pmf
            result += 1
        return result - 1


# --- SecAgg+ degree and threshold --------------------------------------------


def _log_prob_disconnected(n: int, k: int, corrupt: float, dropout: float) -> float:
    """Log of a union bound on Pr[the Harary graph minus bad nodes is disconnected]."""
    # Disconnecting H_{k,n} needs k/2 consecutive bad nodes at two disjoint places on
    # the ring: n * (n-k-1) / 2 pairs of gaps, each bad with prob (bad)_k / (n)_k.
    log_pairs = math.log(n) + math.log(n - k - 1) - math.log(2)
    bad = math.floor((corrupt + _SMALL) * n) + math.floor((dropout + _SMALL) * n)
    if k > bad:
        return -math.inf
    lg = math.lgamma
    return log_pairs + lg(bad + 1) + lg(n - k + 1) - lg(n + 1) - lg(bad - k + 1)


def _threshold_for_degree(
    n: int, k: int, corrupt: float, dropout: float, malicious: bool, sec: int, corr: int
) -> int | None:
    """The threshold for degree k if k is secure and correct, else None."""
    sec_per_event = sec + 1  # the security budget is split over two bad events
    if _log_prob_disconnected(n, k, corrupt, dropout) >= -sec_per_event * math.log(2):
        return None
    max_corrupt = math.floor((corrupt + _SMALL) * n)
    min_surviving = math.ceil((1 - dropout - _SMALL) * n)
    corrupt_nb = _Hypergeometric(n, max_corrupt, k)
    surviving_nb = _Hypergeometric(n, min_surviving, k)
    # t1: Pr[corrupt neighbours of a client > t1] <= 2^-sec_per_event / n.
    t1 = corrupt_nb.quantile(2.0**-sec_per_event / n, complement=True)
    # t2: Pr[surviving neighbours of a client <= t2] ~ 2^-corr / n (rounded outwards).
    q = 2.0**-corr / n
    t2 = surviving_nb.quantile(q)
    if surviving_nb.cdf(t2) < q:
        t2 += 1
    if malicious:
        # 2t - k must exceed the corrupt neighbours: t1 + 1 >= t1/2 + k/2 + 1/2.
        t1 = math.ceil((t1 + k - 1.25) / 2)
    if t2 <= t1:
        return None
    return int(max(t1 + 1, 2))


def plan_complete(
    n: int, dropout_rate: float, corrupt_fraction: float, *, malicious_server: bool = True
) -> GraphPlan:
    """Threshold for the complete graph (Bonawitz et al.): the smallest secure t.

    t > n/2 (two disjoint groups can never both reconstruct), t > the corrupt
    clients (2t > n + corrupt against a malicious server), and t <= the neighbours a
    client keeps after ``planned_dropouts(n, dropout_rate)`` dropouts (its n - 1 others
    minus the dropped: shares are held by neighbours only); otherwise
    SecAggValueError says which fails.
    """
    n = _ensure_int(n, "n", 1, MAX_CLIENTS)
    dropout = _ensure_rate(dropout_rate, "dropout_rate")
    corrupt = _ensure_rate(corrupt_fraction, "corrupt_fraction")
    # As fcp: corrupt clients rounded up, tolerated dropouts floor(dropout * n).
    n_corrupt = math.ceil((corrupt - _SMALL) * n)
    # A client's secrets are shared among its n - 1 neighbours only (no self-share), so
    # t of the others must survive: after floor(dropout * n) dropouts a survivor keeps
    # n - 1 - floor(dropout * n) surviving neighbours, and so does a dropped client.
    n_survive = n - 1 - planned_dropouts(n, dropout)
    t = n // 2 + 1
    reason = "t > n/2"
    if n_corrupt + 1 > t:
        t, reason = n_corrupt + 1, f"t > {n_corrupt} corrupt clients"
    if malicious_server and (n + n_corrupt) // 2 + 1 > t:
        t = (n + n_corrupt) // 2 + 1
        reason = f"2t > n + corrupt = {n + n_corrupt} (malicious server)"
    if t > n_survive:
        raise SecAggValueError(
            f"complete graph with n={n}, dropout {dropout}, corrupt {corrupt}: security needs "
            f"t >= {t} ({reason}) but a client keeps only {n_survive} surviving neighbours; "
            "lower the dropout or corrupt fraction, or add clients"
        )
    return GraphPlan(
        kind="complete", k=n - 1, t=t, n=n, dropout_rate=dropout, corrupt_fraction=corrupt,
        malicious_server=malicious_server, security_bits=40, correctness_bits=20,
    )


def plan_graph(
    n: int,
    *,
    dropout_rate: float,
    corrupt_fraction: float,
    security_bits: int = 40,
    correctness_bits: int = 20,
    malicious_server: bool = True,
) -> GraphPlan:
    """Degree k and threshold t of SecAgg+ (as fcp's HararyGraphParameterFinder).

    Security failure <= 2^-security_bits, correctness failure <= 2^-correctness_bits,
    for n clients of which ``corrupt_fraction`` collude with the server and
    ``dropout_rate`` drop out. ``malicious_server`` (the default, matching the
    consistency-check round) is fcp's SEMI_MALICIOUS_SERVER; False is CURIOUS_SERVER.
    If no degree below n - 1 works, the complete graph (``plan_complete``) is used; its
    guarantee is deterministic given at most the stated fractions of bad clients.
    """
    n = _ensure_int(n, "n", 1, MAX_CLIENTS)
    dropout = _ensure_rate(dropout_rate, "dropout_rate")
    corrupt = _ensure_rate(corrupt_fraction, "corrupt_fraction")
    sec = _ensure_int(security_bits, "security_bits", 1, 256)
    corr = _ensure_int(correctness_bits, "correctness_bits", 1, 256)
    ensure(
        isinstance(malicious_server, bool), "malicious_server must be a bool",
        raising=SecAggTypeError,
    )
    if malicious_server:
        ensure(
            corrupt + 2 * dropout <= 0.9,
            f"with a malicious server, corrupt_fraction + 2*dropout_rate must be <= 0.9, got "
            f"{corrupt} + 2*{dropout}",
        )
    else:
        ensure(
            corrupt + dropout <= 0.9,
            f"corrupt_fraction + dropout_rate must be <= 0.9, got {corrupt} + {dropout}",
        )
    for k in range(2, n - 1, 2):
        t = _threshold_for_degree(n, k, corrupt, dropout, malicious_server, sec, corr)
        if t is not None:
            return GraphPlan(
                kind="harary", k=k, t=t, n=n, dropout_rate=dropout, corrupt_fraction=corrupt,
                malicious_server=malicious_server, security_bits=sec, correctness_bits=corr,
            )
    plan = plan_complete(n, dropout, corrupt, malicious_server=malicious_server)
    return GraphPlan(
        kind="complete", k=plan.k, t=plan.t, n=n, dropout_rate=dropout,
        corrupt_fraction=corrupt, malicious_server=malicious_server,
        security_bits=sec, correctness_bits=corr,
    )


# --- bit width ------------------------------------------------------------------


def _bits_args(n: object, max_abs: object, scale: object) -> tuple[int, int]:
    """Check (n, max_abs, scale); return n and the largest encoded magnitude."""
    n = _ensure_int(n, "n", 1, 2**62)
    max_abs = _ensure_real(max_abs, "max_abs")
    scale = _ensure_real(scale, "scale")
    top = max_abs * scale
    ensure(math.isfinite(top), f"max_abs * scale overflows: {max_abs} * {scale}")
    return n, math.ceil(top)


def required_bits(n: int, max_abs: float, scale: float) -> int:
    """Smallest b with n * ceil(max_abs * scale) <= 2^(b-1) - 1 (may exceed 64).

    Stochastic rounding at ``scale`` keeps each encoded value within
    ±ceil(max_abs*scale), so the sum of n of them then fits in b-bit two's complement.
    """
    n, top = _bits_args(n, max_abs, scale)
    return (n * top).bit_length() + 1


def check_no_wrap(n: int, max_abs: float, scale: float, bits: int) -> None:
    """Raise SecAggValueError if the sum of n values could wrap modulo 2^bits."""
    bits = _ensure_int(bits, "bits", 1, 64)
    need = required_bits(n, max_abs, scale)
    if need > bits:
        _, top = _bits_args(n, max_abs, scale)
        hint = (
            f"use bits >= {need}" if need <= 64
            else "no bit width up to 64 suffices; lower the scale or the clip range"
        )
        raise SecAggValueError(
            f"the sum of {n} values in [-{max_abs}, {max_abs}] at scale {scale} can reach "
            f"±{n * top}, which wraps in {bits}-bit two's complement (max {2 ** (bits - 1) - 1}); "
            f"{hint}, or use scale <= {max_scale(n, max_abs, bits) if _fits(n, bits) else 0}"
        )


def _fits(n: int, bits: int) -> bool:
    return bool((2 ** (bits - 1) - 1) // n >= 1)


def max_scale(n: int, max_abs: float, bits: int, *, power_of_two: bool = True) -> float:
    """The largest scale (a power of two by default) at which n values cannot wrap in b bits."""
    n = _ensure_int(n, "n", 1, 2**62)
    max_abs = _ensure_real(max_abs, "max_abs")
    bits = _ensure_int(bits, "bits", 1, 64)
    per_client = (2 ** (bits - 1) - 1) // n  # the largest allowed ceil(max_abs * scale)
    ensure(
        per_client >= 1,
        f"{n} clients cannot be summed in {bits} bits at any scale: need bits >= "
        f"{n.bit_length() + 1}",
    )
    scale = per_client / max_abs
    if power_of_two:
        scale = 2.0 ** math.floor(math.log2(scale))
    # Step down past any rounding so that the exact condition holds.
    while not (math.isfinite(max_abs * scale) and math.ceil(max_abs * scale) <= per_client):
        scale = scale / 2 if power_of_two else math.nextafter(scale, 0.0)
    ensure(scale > 0, f"no positive scale keeps {n} values of magnitude {max_abs} in {bits} bits")
    return float(scale)
