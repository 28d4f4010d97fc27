"""Tests of secagg.graph: complete and seeded Harary graphs."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg import graph
from secagg.errors import SecAggTypeError, SecAggValueError
from secagg.prg import keystream


def _seed(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(4, "little")).digest()


@st.composite
def _harary_params(draw):
    n = draw(st.integers(3, 80))
    k = 2 * draw(st.integers(1, max(1, (n - 2) // 2)))
    return n, k, draw(st.binary(min_size=32, max_size=32))


def test_complete_graph():
    g = graph.complete_graph(5)
    assert (g.n, g.kind, g.degree, g.k) == (5, "complete", 4, 4)
    assert g.neighbours(2) == (0, 1, 3, 4)
    assert g.is_neighbour(0, 4) and not g.is_neighbour(3, 3)
    assert graph.complete_graph(1).neighbours(0) == ()


@settings(max_examples=40, deadline=None)
@given(params=_harary_params())
def test_harary_is_symmetric_k_regular_and_self_free(params):
    n, k, seed = params
    g = graph.harary_graph(n, k, seed)
    if k >= n - 1:
        assert g.kind == "complete"
        return
    assert (g.kind, g.degree, g.n) == ("harary", k, n)
    adj = {i: g.neighbours(i) for i in range(n)}
    for i, nb in adj.items():
        assert len(nb) == k and len(set(nb)) == k
        assert list(nb) == sorted(nb) and i not in nb
        assert all(0 <= j < n for j in nb)
        for j in nb:
            assert i in adj[j]
        assert [j for j in range(n) if g.is_neighbour(i, j)] == list(nb)


@settings(max_examples=20, deadline=None)
@given(params=_harary_params())
def test_harary_is_a_relabelled_ring(params):
    # Following the neighbours around recovers a ring where each node's neighbours are
    # exactly those within k/2 ring steps: it is H_{k,n} up to relabelling.
    n, k, seed = params
    g = graph.harary_graph(n, k, seed)
    if g.kind == "complete":
        return
    label = graph.random_permutation(seed, n)
    half = k // 2
    for p in range(n):
        expect = sorted(int(label[(p + d) % n]) for d in range(-half, half + 1) if d)
        assert list(g.neighbours(int(label[p]))) == expect


def test_harary_deterministic_in_seed_and_seed_matters():
    a = graph.harary_graph(200, 10, _seed(1))
    b = graph.harary_graph(200, 10, _seed(1))
    c = graph.harary_graph(200, 10, _seed(2))
    assert a == b and a != c
    assert [a.neighbours(i) for i in range(200)] == [b.neighbours(i) for i in range(200)]
    assert [a.neighbours(i) for i in range(200)] != [c.neighbours(i) for i in range(200)]
    assert not np.array_equal(graph.random_permutation(_seed(1), 200),
                              graph.random_permutation(_seed(2), 200))


def test_large_k_gives_complete_graph():
    assert graph.harary_graph(10, 9, _seed(0)).kind == "complete"
    assert graph.harary_graph(10, 12, _seed(0)) == graph.complete_graph(10)
    assert graph.harary_graph(11, 8, _seed(0)).kind == "harary"


@pytest.mark.parametrize("k", [0, 1, 3, 7])
def test_harary_rejects_bad_degree(k):
    with pytest.raises(SecAggValueError, match="even"):
        graph.harary_graph(20, k, _seed(0))


def test_bad_arguments():
    with pytest.raises(SecAggValueError):
        graph.harary_graph(20, 4, bytes(31))
    with pytest.raises(SecAggTypeError):
        graph.harary_graph(20, 4, "s" * 32)
    with pytest.raises(SecAggValueError):
        graph.complete_graph(0)
    with pytest.raises(SecAggTypeError):
        graph.harary_graph(20.0, 4, _seed(0))
    g = graph.harary_graph(20, 4, _seed(0))
    for bad in (-1, 20):
        with pytest.raises(SecAggValueError):
            g.neighbours(bad)
        with pytest.raises(SecAggValueError):
            g.is_neighbour(0, bad)


def test_permutation_matches_fisher_yates_on_the_keystream():
    seed, n = _seed(7), 50
    words = np.frombuffer(keystream(seed, bytes(12), 8 * n), dtype="<u8").tolist()
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        assert words[i] < 2**64 - 2**64 % (i + 1)  # no rejection for this seed
        j = words[i] % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    assert graph.random_permutation(seed, n).tolist() == perm


def test_rejected_words_are_redrawn_from_the_spare_stream(monkeypatch):
    # Make every primary word the maximum 2^64-1, which is rejected for every bound
    # that does not divide 2^64; the spare words after the first n then decide.
    n = 6
    spare = [5, 9, 2**64 - 1, 4, 7, 3]  # 2^64-1 is rejected again for bound 3

    def fake_keystream(key, nonce, length, counter=0):
        if counter == 0:
            return b"\xff" * length
        return spare[counter - 1].to_bytes(8, "little")

    monkeypatch.setattr(graph, "keystream", fake_keystream)
    perm = list(range(n))
    it = iter(spare)
    for i in range(n - 1, 0, -1):
        m = i + 1
        if (2**64) % m == 0:  # m = 2, 4: 2^64-1 is accepted
            j = (2**64 - 1) % m
        else:
            w = next(it)
            while w >= 2**64 - 2**64 % m:
                w = next(it)
            j = w % m
        perm[i], perm[j] = perm[j], perm[i]
    assert graph.random_permutation(bytes(32), n).tolist() == perm


def test_permutation_is_roughly_uniform():
    # All 6 permutations of 3 elements appear with frequency near 1/6.
    counts = Counter(tuple(graph.random_permutation(_seed(i), 3).tolist()) for i in range(1200))
    assert len(counts) == 6
    assert all(140 < c < 260 for c in counts.values())


def test_large_graph_is_cheap_and_regular():
    g = graph.harary_graph(100_000, 300, _seed(3))
    for i in (0, 1, 99_999, 54_321):
        nb = g.neighbours(i)
        assert len(nb) == 300 and i not in nb
        assert all(i in g.neighbours(j) for j in nb[:5])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 60), half=st.integers(1, 8), hops=st.integers(0, 4),
       seed=st.binary(min_size=32, max_size=32))
def test_ball_is_every_client_within_that_many_hops(n, half, hops, seed):
    k = 2 * half
    g = graph.harary_graph(n, k, seed) if k < n - 1 else graph.complete_graph(n)
    for i in (0, n // 2, n - 1):
        frontier, seen = {i}, {i}
        for _ in range(hops):  # breadth-first search, the definition
            frontier = {v for u in frontier for v in g.neighbours(u)} - seen
            seen |= frontier
        assert g.ball(i, hops) == tuple(sorted(seen))
