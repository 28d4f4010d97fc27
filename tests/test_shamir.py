"""Tests of secagg.shamir: t shares reconstruct, t-1 reveal nothing, bad shares are refused."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg import bindings, shamir
from secagg.errors import RemoteProtocolError, SecAggTypeError, SecAggValueError
from secagg.reference import shamir_interpolate

P = (1 << 61) - 1


def _elements(share: bytes) -> list[int]:
    return [int.from_bytes(share[8 * c : 8 * c + 8], "little") for c in range(shamir.CHUNKS)]


def _share(elements: list[int]) -> bytes:
    return b"".join(e.to_bytes(8, "little") for e in elements)


def _secret_chunks(secret: bytes) -> list[int]:
    padded = secret + bytes(shamir.CHUNKS * shamir.CHUNK_BYTES - len(secret))
    return [int.from_bytes(padded[7 * c : 7 * c + 7], "little") for c in range(shamir.CHUNKS)]


def test_constants():
    assert shamir.PRIME == P
    assert shamir.SECRET_BYTES == 32
    assert shamir.CHUNKS * shamir.CHUNK_BYTES >= 32
    assert shamir.SHARE_BYTES == 8 * shamir.CHUNKS == 40


@st.composite
def _instances(draw):
    n = draw(st.integers(1, 60))
    t = draw(st.integers(1, n))
    xs = draw(st.lists(st.integers(1, 10**6), min_size=n, max_size=n, unique=True))
    subset = draw(st.permutations(range(n)))[: draw(st.integers(t, n))]
    return xs, t, subset


@settings(max_examples=60, deadline=None)
@given(inst=_instances(), secret=st.binary(min_size=32, max_size=32))
def test_any_t_subset_reconstructs(inst, secret):
    xs, t, subset = inst
    shares = shamir.split(secret, xs, t)
    assert len(shares) == len(xs) and all(len(s) == shamir.SHARE_BYTES for s in shares)
    sub_x = [xs[i] for i in subset]
    sub_s = [shares[i] for i in subset]
    assert shamir.reconstruct(sub_x, sub_s, t) == secret
    # A Reconstructor over exactly t points agrees, and so does one over more points.
    assert shamir.Reconstructor(sub_x[:t]).reconstruct(sub_s[:t]) == secret
    assert shamir.Reconstructor(sub_x).reconstruct(sub_s) == secret


@settings(max_examples=25, deadline=None)
@given(inst=_instances(), secret=st.binary(min_size=32, max_size=32))
def test_shares_lie_on_degree_t_minus_1_polynomials(inst, secret):
    xs, t, _ = inst
    shares = shamir.split(secret, xs, t)
    cols = list(zip(*(_elements(s) for s in shares), strict=True))
    base_x = xs[:t]
    for c, col in enumerate(cols):
        base_y = list(col[:t])
        assert shamir_interpolate(base_x, base_y, 0) == _secret_chunks(secret)[c]
        for x, y in zip(xs[t:], col[t:], strict=True):
            assert shamir_interpolate(base_x, base_y, x) == y


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 40), data=st.data(),
    a=st.binary(min_size=32, max_size=32), b=st.binary(min_size=32, max_size=32),
)
def test_t_minus_1_shares_are_consistent_with_every_secret(n, data, a, b):
    # Perfect secrecy by construction: for any other secret b there is a degree t-1
    # polynomial through (0, b) and the t-1 shares of a; its value at a t-th point
    # completes a share set that reconstructs to b.
    t = data.draw(st.integers(2, n))
    xs = list(range(1, n + 1))
    shares = shamir.split(a, xs, t)
    known_x, known = xs[: t - 1], [_elements(s) for s in shares[: t - 1]]
    last = [
        shamir_interpolate([0, *known_x], [_secret_chunks(b)[c]] + [k[c] for k in known], xs[t - 1])
        for c in range(shamir.CHUNKS)
    ]
    forged = shares[: t - 1] + [_share(last)]
    assert shamir.reconstruct(xs[:t], forged, t) == b


def test_split_is_randomised():
    secret = os.urandom(32)
    xs = list(range(1, 6))
    assert shamir.split(secret, xs, 3) != shamir.split(secret, xs, 3)


def test_threshold_one_shares_are_the_secret_chunks():
    secret = os.urandom(32)
    shares = shamir.split(secret, [1, 2, 3], 1)
    assert shares[0] == shares[1] == shares[2] == _share(_secret_chunks(secret))
    assert shamir.reconstruct([2], [shares[1]], 1) == secret


def test_wrong_share_gives_error_or_other_secret():
    secret = os.urandom(32)
    xs = list(range(1, 11))
    shares = shamir.split(secret, xs, 5)
    elements = _elements(shares[4])
    elements[2] = (elements[2] + 1) % P
    bad = shares[:4] + [_share(elements)]
    try:
        assert shamir.reconstruct(xs[:5], bad, 5) != secret
    except shamir.InvalidShareError:
        pass
    # A random share in place of the t-th is caught by the range check with
    # overwhelming probability (all 5 chunks must land below 2^56, padding zero).
    rnd = _share([int.from_bytes(os.urandom(8), "little") % P for _ in range(shamir.CHUNKS)])
    with pytest.raises(shamir.InvalidShareError):
        shamir.reconstruct(xs[:5], shares[:4] + [rnd], 5)


def test_fewer_than_t_shares_refused():
    xs = list(range(1, 8))
    shares = shamir.split(os.urandom(32), xs, 4)
    with pytest.raises(SecAggValueError, match="at least t = 4"):
        shamir.reconstruct(xs[:3], shares[:3], 4)


def test_reconstruct_uses_first_t_and_ignores_the_rest():
    secret = os.urandom(32)
    xs = list(range(1, 8))
    shares = shamir.split(secret, xs, 3)
    junk = bytes(shamir.SHARE_BYTES)
    assert shamir.reconstruct(xs, shares[:3] + [junk] * 4, 3) == secret


@pytest.mark.parametrize(
    "bad, error",
    [
        (b"", shamir.InvalidShareError),
        (bytes(39), shamir.InvalidShareError),
        (bytes(41), shamir.InvalidShareError),
        (b"\xff" * 40, shamir.InvalidShareError),  # elements >= p
        (P.to_bytes(8, "little") + bytes(32), shamir.InvalidShareError),  # exactly p
        ("x" * 40, SecAggTypeError),
        (None, SecAggTypeError),
    ],
)
def test_malformed_shares_refused(bad, error):
    xs = [1, 2, 3]
    shares = shamir.split(os.urandom(32), xs, 3)
    r = shamir.Reconstructor(xs)
    with pytest.raises(error):
        r.reconstruct([shares[0], bad, shares[2]])
    assert issubclass(shamir.InvalidShareError, RemoteProtocolError)


def test_reconstructor_checks_share_count_and_types():
    r = shamir.Reconstructor([1, 2, 3])
    assert r.xs == (1, 2, 3)
    shares = shamir.split(os.urandom(32), [1, 2, 3], 3)
    with pytest.raises(SecAggValueError):
        r.reconstruct(shares[:2])
    with pytest.raises(SecAggTypeError):
        r.reconstruct(b"".join(shares))


@pytest.mark.parametrize(
    "xs, error",
    [
        ([1, 1, 2], SecAggValueError),
        ([0, 1, 2], SecAggValueError),
        ([-1, 1, 2], SecAggValueError),
        ([P, 1, 2], SecAggValueError),
        ([1.0, 2, 3], SecAggTypeError),
        ([True, 2, 3], SecAggTypeError),
        ([], SecAggValueError),
        ("abc", SecAggTypeError),
    ],
)
def test_bad_points_refused(xs, error):
    with pytest.raises(error):
        shamir.split(os.urandom(32), xs, 1)
    with pytest.raises(error):
        shamir.Reconstructor(xs)


def test_numpy_points_accepted():
    secret = os.urandom(32)
    xs = np.arange(1, 6, dtype=np.int64)
    shares = shamir.split(secret, xs, 3)
    assert shamir.Reconstructor(xs[2:]).reconstruct(shares[2:]) == secret


def test_bad_secret_and_threshold_refused():
    with pytest.raises(SecAggValueError):
        shamir.split(bytes(31), [1, 2], 1)
    with pytest.raises(SecAggTypeError):
        shamir.split("s" * 32, [1, 2], 1)
    for t in (0, 3):
        with pytest.raises(SecAggValueError):
            shamir.split(bytes(32), [1, 2], t)
    with pytest.raises(SecAggValueError):
        shamir.reconstruct([1, 2], [bytes(40)], 1)


def test_random_field_elements_in_range():
    v = shamir._random_field_elements(10_000)
    assert v.dtype == np.uint64 and len(v) == 10_000
    assert int(v.max()) < P
    assert int(v.max()) > P // 2  # uses the whole range, not 56 bits


# --- the C bindings ---------------------------------------------------------


def _u64(values):
    return np.array(values, dtype=np.uint64)


def test_binding_split_matches_reference_polynomial():
    secret, coeffs, xs = _u64([5, 7]), _u64([1, 2, 3, 4]), _u64([1, 2, 10])
    out = np.zeros(6, dtype=np.uint64)
    bindings.secagg_shamir_split(out, secret, coeffs, xs, 3)
    # chunk 0: 5 + 1x + 3x^2; chunk 1: 7 + 2x + 4x^2
    expect = [[5 + x + 3 * x * x, 7 + 2 * x + 4 * x * x] for x in (1, 2, 10)]
    assert out.reshape(3, 2).tolist() == expect


def test_binding_mulmod_near_the_prime():
    # Coefficients p-1 make every product hit the high end of the reduction.
    secret, coeffs, xs = _u64([P - 1]), _u64([P - 1] * 5), _u64([P - 1, P - 2, 2**40 + 3])
    out = np.zeros(3, dtype=np.uint64)
    bindings.secagg_shamir_split(out, secret, coeffs, xs, 6)
    for x, y in zip(xs.tolist(), out.tolist(), strict=True):
        assert y == sum((P - 1) * pow(x, j, P) for j in range(6)) % P
    lag = np.zeros(3, dtype=np.uint64)
    bindings.secagg_shamir_lagrange(lag, xs)
    for i in range(len(xs)):
        ys = [0] * 3
        ys[i] = 1
        assert int(lag[i]) == shamir_interpolate(xs.tolist(), ys, 0)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"secret": np.zeros(2, dtype=np.uint32)}, SecAggTypeError),
        ({"coeffs": np.zeros(3, dtype=np.uint64)}, SecAggValueError),
        ({"shares": np.zeros(5, dtype=np.uint64)}, SecAggValueError),
        ({"xs": _u64([0, 1, 2])}, SecAggValueError),
        ({"xs": _u64([P, 1, 2])}, SecAggValueError),
        ({"secret": _u64([P, 0])}, SecAggValueError),
        ({"coeffs": _u64([P, 0, 0, 0])}, SecAggValueError),
        ({"xs": [1, 2, 3]}, SecAggTypeError),
        ({"t": 0}, SecAggValueError),
    ],
)
def test_binding_split_rejects(kwargs, error):
    args = {"shares": np.zeros(6, dtype=np.uint64), "secret": _u64([1, 2]),
            "coeffs": _u64([1, 2, 3, 4]), "xs": _u64([1, 2, 3]), "t": 3}
    args.update(kwargs)
    with pytest.raises(error):
        bindings.secagg_shamir_split(**args)


def test_binding_lagrange_and_combine_reject():
    with pytest.raises(SecAggValueError):
        bindings.secagg_shamir_lagrange(np.zeros(2, dtype=np.uint64), _u64([1, 1]))
    with pytest.raises(SecAggValueError):
        bindings.secagg_shamir_lagrange(np.zeros(3, dtype=np.uint64), _u64([1, 2]))
    with pytest.raises(SecAggTypeError):
        bindings.secagg_shamir_lagrange(np.zeros(2, dtype=np.int64), _u64([1, 2]))
    with pytest.raises(SecAggValueError):
        bindings.secagg_shamir_combine(np.zeros(2, dtype=np.uint64), _u64([1, 2, 3]), _u64([1, 1]))
    with pytest.raises(SecAggValueError):
        bindings.secagg_shamir_combine(np.zeros(1, dtype=np.uint64), _u64([P, 2]), _u64([1, 1]))
    with pytest.raises(SecAggTypeError):
        bindings.secagg_shamir_combine(np.zeros(1, dtype=np.uint64), [1, 2], _u64([1, 1]))
