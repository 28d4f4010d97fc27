"""The distributed-DP encoder/decoder pair around a secure sum (Kairouz, Liu, Steinke 2021).

Client (``DistributedDp.encode``): L2-clip to ``clip``; pad to d = 2^k; rotate with
the randomised Hadamard transform H D / sqrt(d) (D = random signs from the session's
public ``rotation_seed``), so every coordinate is small and about equal; divide by
``gamma`` (the value of one integer unit); round each coordinate up or down
without bias, redrawing the whole rounding until the rounded vector's L2 norm is at
most ``l2_bound`` (conditional randomised rounding: the sensitivity the accountant
uses holds exactly); add this client's share of integer noise (discrete Gaussian
of variance parameter ``noise``, or Skellam(noise, noise)); reduce mod 2^bits.

Server (``DistributedDp.decode``): read the secure sum mod 2^bits as signed,
multiply by gamma, undo the rotation, drop the padding: an unbiased estimate of
the sum of the clipped inputs plus the aggregate noise.

Wrap-around: the secure sum is only correct if no coordinate of the true integer
sum leaves [-2^(bits-1), 2^(bits-1)). ``wrap_probability`` bounds the chance that
any does (Hoeffding for the rotated signal, the deterministic rounding error, and
a sub-Gaussian / Chernoff tail for the summed noise, union over coordinates), and a
``DistributedDp`` whose bound exceeds ``max_wrap_probability`` is refused. A wrap
costs accuracy only, never privacy: the released value is a post-processing of the
noisy sum either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from secagg import bindings
from secagg.ddp.noise import discrete_gaussian, skellam
from secagg.errors import SecAggTypeError, SecAggValueError, ensure
from secagg.fixedpoint import encode as _fixedpoint_encode
from secagg.prg import keystream

__all__ = [
    "MECHANISMS",
    "UNITS",
    "DistributedDp",
    "rounded_l2_bound",
    "rounded_l1_bound",
    "rotate",
    "unrotate",
    "padded_dim",
    "check_secagg_config",
    "secagg_threshold_for",
]

MECHANISMS = ("ddgauss", "skellam")
UNITS = ("client", "record")
_ROTATION_NONCE = b"ddp-rotation"  # 12 bytes: keystream domain of the sign flips
_MAX_ROUNDING_TRIES = 1000


def padded_dim(dim: int) -> int:
    """The smallest power of two >= dim."""
    return 1 << max(0, (dim - 1).bit_length())


def _signs(rotation_seed: bytes, d: int) -> np.ndarray:
    ensure(isinstance(rotation_seed, (bytes, bytearray)) and len(rotation_seed) == 32,
           "rotation_seed must be 32 bytes", raising=SecAggTypeError)
    bits = np.unpackbits(np.frombuffer(keystream(bytes(rotation_seed), _ROTATION_NONCE,
                                                 (d + 7) // 8), dtype=np.uint8),
                         bitorder="little")[:d]
    return 1.0 - 2.0 * bits.astype(np.float64)


def rotate(x: np.ndarray, rotation_seed: bytes) -> np.ndarray:
    """H D x / sqrt(d) of x zero-padded to d = padded_dim(len(x)): orthonormal, norm-preserving."""
    d = padded_dim(len(x))
    y = np.zeros(d, dtype=np.float64)
    y[: len(x)] = x
    y *= _signs(rotation_seed, d)
    bindings.secagg_hadamard_fwht(y)
    y *= 1.0 / math.sqrt(d)
    return y


def unrotate(y: np.ndarray, rotation_seed: bytes, dim: int) -> np.ndarray:
    """The inverse of ``rotate``: D H y / sqrt(d), cut back to ``dim`` coordinates."""
    d = len(y)
    ensure(d == padded_dim(d) and dim <= d, f"y must have a power-of-two length >= {dim}")
    z = np.array(y, dtype=np.float64, copy=True)
    bindings.secagg_hadamard_fwht(z)
    z *= _signs(rotation_seed, d) / math.sqrt(d)
    return z[:dim]


def rounded_l2_bound(l2: float, d: int, beta: float) -> float:
    """Kairouz et al.'s bound on the L2 norm after conditional randomised rounding.

    A vector of L2 norm <= l2 (in integer units) in d coordinates rounds to norm <=
    l2 + sqrt(d) always, and to norm <= sqrt(l2^2 + d/4 + sqrt(2 ln(1/beta)) (l2 +
    sqrt(d)/2)) with probability >= 1 - beta per attempt; conditional rounding
    retries until the bound holds, so the result is the sensitivity exactly.
    """
    bound_1 = l2 + math.sqrt(d)
    if beta <= 0:
        return bound_1
    sq = l2 * l2 + 0.25 * d + math.sqrt(2.0 * math.log(1.0 / beta)) * (l2 + 0.5 * math.sqrt(d))
    return min(bound_1, math.sqrt(sq))


def rounded_l1_bound(l2_rounded: float, d: int) -> float:
    """L1 bound of an integer vector of L2 norm <= l2_rounded: min(sqrt(d) l2, l2^2)."""
    return min(math.sqrt(d) * l2_rounded, l2_rounded * l2_rounded)


def _skellam_tail(t: float, total_mu: float) -> float:
    """Chernoff bound on P(|Sk(M, M)| >= t): 2 exp(2M(cosh l - 1) - l t), l = asinh(t / (2M))."""
    if total_mu == 0:
        return 0.0 if t > 0 else 1.0
    lam = math.asinh(t / (2.0 * total_mu))
    return min(1.0, 2.0 * math.exp(2.0 * total_mu * (math.cosh(lam) - 1.0) - lam * t))


@dataclass(frozen=True)
class DistributedDp:
    """Parameters of one distributed-DP aggregation, checked once (see the module docstring).

    ``noise`` is each client's share in integer units: the discrete Gaussian's
    sigma^2 (denominator <= 2^16) or Skellam's mu (variance 2 mu), an exact rational.
    ``max_clients`` bounds how many clients' vectors (and noise shares) are summed, for
    the wrap bound, and ``min_survivors`` how many honest clients' noise the privacy
    guarantee counts on.

    ``unit`` is what one neighbouring step adds or removes. ``"client"``: one client's
    vector, clipped to ``clip`` and rounded conditionally (Kairouz et al.). ``"record"``:
    one record inside a client's vector, which is then the sum of up to ``max_records``
    records each clipped to ``clip`` by the caller (cross-silo DP-SGD: a hospital's
    clipped per-example gradient sum); the sum is rounded once, without conditioning, and
    the sensitivity is ``clip / gamma + sqrt(d)`` by the coupling argued in docs/ddp.md
    ("Record level"). ``max_records`` bounds the records in the whole secure sum.
    """

    mechanism: str
    dim: int
    clip: float
    gamma: float
    bits: int
    noise: Fraction
    max_clients: int
    min_survivors: int
    beta: float = math.exp(-0.5)
    max_wrap_probability: float = 1e-9
    unit: str = "client"
    max_records: int | None = None
    d: int = field(init=False)

    def __post_init__(self) -> None:
        ensure(self.mechanism in MECHANISMS,
               f"mechanism must be one of {MECHANISMS}, got {self.mechanism!r}")
        ensure(isinstance(self.dim, int) and self.dim >= 1, f"dim must be an int >= 1, got {self.dim!r}")
        ensure(math.isfinite(self.clip) and self.clip > 0, f"clip must be > 0, got {self.clip!r}")
        ensure(math.isfinite(self.gamma) and self.gamma > 0, f"gamma must be > 0, got {self.gamma!r}")
        ensure(isinstance(self.bits, int) and 2 <= self.bits <= 32,
               f"bits must be an int in [2, 32], got {self.bits!r}")
        ensure(isinstance(self.noise, (Fraction, int)) and not isinstance(self.noise, bool)
               and self.noise >= 0, f"noise must be an exact rational >= 0, got {self.noise!r}",
               raising=SecAggTypeError if not isinstance(self.noise, (Fraction, int)) else SecAggValueError)
        object.__setattr__(self, "noise", Fraction(self.noise))
        if self.mechanism == "ddgauss":
            ensure(self.noise > 0 and self.noise.denominator <= bindings.DGAUSS_MAX_DEN
                   and self.noise <= bindings.DGAUSS_MAX_VARIANCE,
                   f"discrete Gaussian sigma^2 must be in (0, 2^40] with denominator <= 2^16,"
                   f" got {self.noise}")
        else:
            ensure(self.noise.denominator <= bindings.POISSON_MAX_DEN
                   and self.noise <= bindings.POISSON_MAX_MU,
                   f"Skellam mu must be in [0, 2^24] with denominator <= 2^32, got {self.noise}")
        ensure(isinstance(self.max_clients, int) and isinstance(self.min_survivors, int)
               and 1 <= self.min_survivors <= self.max_clients,
               f"need 1 <= min_survivors <= max_clients, got {self.min_survivors}, {self.max_clients}")
        ensure(0 <= self.beta < 1, f"beta must be in [0, 1), got {self.beta!r}")
        ensure(0 < self.max_wrap_probability < 1,
               f"max_wrap_probability must be in (0, 1), got {self.max_wrap_probability!r}")
        ensure(self.unit in UNITS, f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.unit == "record":
            ensure(isinstance(self.max_records, int) and not isinstance(self.max_records, bool)
                   and self.max_records >= 1,
                   f"unit 'record' needs max_records, an int >= 1, got {self.max_records!r}")
        else:
            ensure(self.max_records is None, "max_records applies to unit 'record' only")
        object.__setattr__(self, "d", padded_dim(self.dim))
        p = self.wrap_probability()
        if not p <= self.max_wrap_probability:
            raise SecAggValueError(
                f"{self.bits} bits cannot hold the sum: P(some coordinate wraps) <= {p:.3g} is above"
                f" {self.max_wrap_probability:g} (clip {self.clip:g}, gamma {self.gamma:g},"
                f" {self.max_clients} clients, noise {float(self.noise):g}); use more bits or a"
                f" larger gamma"
            )

    # --- sensitivities, in integer units -------------------------------------------------

    @property
    def l2_bound(self) -> float:
        """L2 sensitivity after rounding (integer units).

        Client unit: Kairouz et al.'s conditional-rounding bound. Record unit: one record
        moves the unrounded sum by at most clip / gamma; under the same rounding randomness
        each coordinate's rounding then moves by less than its shift plus one, so the
        rounded sums differ by at most clip / gamma + sqrt(d) (docs/ddp.md, "Record level").
        """
        if self.unit == "record":
            return self.clip / self.gamma + math.sqrt(self.d)
        return rounded_l2_bound(self.clip / self.gamma, self.d, self.beta)

    @property
    def l1_bound(self) -> float:
        """L1 sensitivity after rounding (integer units).

        Record unit: sum_j (|g_j| + 1) <= sqrt(d) clip / gamma + d, and never above L2^2
        (the difference is an integer vector).
        """
        if self.unit == "record":
            return min(math.sqrt(self.d) * self.clip / self.gamma + self.d, self.l2_bound ** 2)
        return rounded_l1_bound(self.l2_bound, self.d)

    @property
    def max_vectors(self) -> int:
        """How many clipped vectors the secure sum can hold: clients, or records."""
        return self.max_records if self.max_records is not None else self.max_clients

    @property
    def noise_variance(self) -> float:
        """Variance parameter of one client's noise per coordinate (integer units)."""
        return float(self.noise) * (2.0 if self.mechanism == "skellam" else 1.0)

    # --- wrap-around ----------------------------------------------------------------------

    def wrap_probability(self) -> float:
        """Upper bound on P(any coordinate of the summed integers leaves the signed range).

        Per coordinate j of the padded rotation, the integer sum is S_j + R_j + N_j:
        S_j = (H D s)_j / (sqrt(d) gamma) with ||s|| <= max_vectors * clip, which Hoeffding
        bounds by P(|S_j| >= a) <= 2 exp(-a^2 d / (2 (max_vectors clip / gamma)^2)) over the
        random signs; |R_j| < max_clients (each client rounds once and moves a coordinate by
        < 1); N_j is
        the sum of max_clients noise shares (sub-Gaussian with proxy n sigma^2 for the
        discrete Gaussian, Skellam(n mu) exactly for Skellam). Half the budget goes to
        each tail; the result is minimised over that split on a grid.
        """
        n, d = self.max_clients, self.d
        half = 2 ** (self.bits - 1) - 1 - n  # room left after the rounding error
        if half <= 0:
            return 1.0
        signal = self.max_vectors * self.clip / self.gamma

        def p_signal(a: float) -> float:
            return min(1.0, 2.0 * d * math.exp(-a * a * d / (2.0 * signal * signal)))

        def p_noise(a: float) -> float:
            if self.mechanism == "ddgauss":
                return min(1.0, 2.0 * d * math.exp(-a * a / (2.0 * n * float(self.noise))))
            return min(1.0, d * _skellam_tail(a, n * float(self.noise)))

        return min(p_signal(half * f) + p_noise(half * (1.0 - f)) for f in np.linspace(0.02, 0.98, 49))

    # --- client and server ----------------------------------------------------------------

    def encode(self, x: np.ndarray, rotation_seed: bytes, *, seed: bytes | None = None
               ) -> np.ndarray:
        """One client's contribution: clip, rotate, scale, round, add its noise share, mod 2^bits.

        Client unit: ``x`` is the client's vector, clipped here to ``clip``. Record unit:
        ``x`` is the sum of the client's records, each already clipped to ``clip`` (its
        norm must be at most ``max_records * clip``), and is rounded once.
        Returns uint32 values < 2^bits, ready for ``secagg.Client.set_input``.
        ``seed`` (32 bytes) fixes the rounding and the noise, for tests only.
        """
        ensure(isinstance(x, np.ndarray) and x.ndim == 1 and x.shape[0] == self.dim,
               f"x must be a 1-D numpy array of {self.dim} values", raising=SecAggTypeError)
        x = np.asarray(x, dtype=np.float64)
        ensure(bool(np.isfinite(x).all()), "x has NaN or infinity")
        norm = float(np.linalg.norm(x))
        if self.unit == "record":
            most = self.max_vectors * self.clip
            ensure(norm <= most * (1 + 1e-9), f"a sum of at most {self.max_vectors} records"
                   f" clipped to {self.clip:g} has norm <= {most:g}, got {norm:g}")
        elif norm > self.clip:
            x = x * (self.clip / norm)
        y = rotate(x, rotation_seed)
        v = self._round(y, seed)
        noise_seed = None if seed is None else bytes(a ^ 0x5A for a in seed)
        if self.mechanism == "ddgauss":
            z = discrete_gaussian(self.d, self.noise, seed=noise_seed)
        else:
            z = skellam(self.d, self.noise, seed=noise_seed)
        total = v + z
        wrapped: np.ndarray = (total & ((1 << self.bits) - 1)).astype(np.uint32)
        return wrapped

    def _round(self, y: np.ndarray, seed: bytes | None) -> np.ndarray:
        """Randomised rounding of y / gamma, each coordinate up with probability its fraction.

        Client unit: conditional, redrawn until ||v||_2 <= l2_bound. Record unit: one draw
        (the sensitivity argument couples the rounding of neighbouring sums instead).
        """
        record = self.unit == "record"
        bound_sq = self.l2_bound ** 2
        # Every |y_i| <= ||y|| (up to float error), so this box clip never bites.
        box = (self.max_vectors if record else 1) * self.clip * (1 + 1e-9) + 1e-300
        for attempt in range(_MAX_ROUNDING_TRIES):
            s = None if seed is None else bytes(a ^ (attempt & 0xFF) for a in seed[:31]) + seed[31:]
            enc, _ = _fixedpoint_encode(y, clip=box, scale=1.0 / self.gamma, bits=64, seed=s)
            v = enc.view(np.int64)
            if record:
                return v.copy()
            sq = v * v  # |v| <= clip/gamma + 1 < 2^31: exact in int64
            if float(_exact_sum(sq)) <= bound_sq:
                return v.copy()
        raise SecAggValueError(
            f"conditional rounding failed {_MAX_ROUNDING_TRIES} times (beta={self.beta})")

    def decode(self, total: np.ndarray, rotation_seed: bytes) -> np.ndarray:
        """The server's estimate of the sum of clipped inputs from the secure sum mod 2^bits."""
        ensure(isinstance(total, np.ndarray) and total.shape == (self.d,),
               f"total must be a numpy array of {self.d} values (the padded dimension)",
               raising=SecAggTypeError)
        t = total.astype(np.int64)
        ensure(bool(((t >= 0) & (t < (1 << self.bits))).all()), f"total must be < 2^{self.bits}")
        signed = np.where(t >= 1 << (self.bits - 1), t - (1 << self.bits), t)
        return unrotate(signed.astype(np.float64) * self.gamma, rotation_seed, self.dim)


def _exact_sum(sq: np.ndarray) -> int:
    """Exact sum of non-negative int64 values < 2^62: high and low 31-bit halves summed apart."""
    hi = int(np.sum(sq >> 31, dtype=np.int64))
    lo = int(np.sum(sq & ((1 << 31) - 1), dtype=np.int64))
    return (hi << 31) + lo


def check_secagg_config(ddp: DistributedDp, config: object, *, max_colluders: int = 0) -> None:
    """Refuse a SecAgg configuration that could release a sum with too little honest noise.

    The secure sum must use the same modulus and the padded length, and its threshold t
    must be >= ``min_survivors + max_colluders - 1`` (``secagg_threshold_for``). A sum that
    contains an honest client u's input needs u's self-mask, that is t shares held by t
    distinct neighbours of u (never by u itself); the honest ones among u and those t only
    answer as survivors, so the sum holds at least t + 1 - c honest survivors when at most c
    clients collude with the server (in the sum or not). Every released sum containing an
    honest input therefore carries the noise of at least ``min_survivors`` honest clients;
    with fewer survivors the round aborts, revealing nothing.
    """
    bits = getattr(config, "bits", None)
    length = getattr(config, "vector_length", None)
    threshold = getattr(config, "threshold", None)
    ensure(isinstance(max_colluders, int) and max_colluders >= 0,
           f"max_colluders must be an int >= 0, got {max_colluders!r}")
    ensure(bits == ddp.bits, f"SecAgg bits {bits} differ from the mechanism's {ddp.bits}")
    ensure(length == ddp.d, f"SecAgg vector_length {length} must be the padded dimension {ddp.d}")
    need = secagg_threshold_for(ddp, max_colluders)
    ensure(isinstance(threshold, int) and threshold >= need,
           f"SecAgg threshold {threshold} is below min_survivors + max_colluders - 1 = {need}:"
           f" a sum with less honest noise than accounted for could be released")


def secagg_threshold_for(ddp: DistributedDp, max_colluders: int = 0) -> int:
    """The least SecAgg threshold that guarantees ``min_survivors`` honest noise shares.

    A released sum containing an honest input holds at least t + 1 - max_colluders honest
    survivors (``check_secagg_config``): t = min_survivors + max_colluders - 1.
    """
    return max(1, ddp.min_survivors + max_colluders - 1)
