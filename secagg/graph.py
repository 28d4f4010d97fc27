"""Communication graphs: complete (SecAgg) and randomly relabelled Harary (SecAgg+).

The Harary graph H_{k,n} places n nodes on a ring and joins each to its k/2
nearest on either side: k-regular, k-connected. SecAgg+ (Bell et al. 2020) relabels
the nodes by a uniform random permutation so that no party picks its neighbours;
here the permutation is Fisher–Yates driven by ChaCha20 keyed with a 32-byte seed
the protocol derives from all round-0 public keys, so every party computes the
same graph and the server cannot choose it alone.

Memory is O(n) (the permutation and its inverse); neighbours are computed on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from secagg.bindings import _ensure_bytes, _ensure_int
from secagg.errors import ensure
from secagg.prg import keystream

__all__ = ["SEED_BYTES", "Graph", "complete_graph", "harary_graph", "random_permutation"]

SEED_BYTES = 32
_NONCE = bytes(12)
_MAX_NODES = 2**31 - 1
_WORD = np.dtype("<u8")


@dataclass(frozen=True)
class Graph:
    """An undirected regular graph on clients 0..n-1; compare by (n, kind, degree, seed)."""

    n: int
    kind: str  # "complete" or "harary"
    degree: int
    seed: bytes | None = None
    _label: np.ndarray | None = field(default=None, repr=False, compare=False)
    _position: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def k(self) -> int:
        """The degree (number of neighbours of every node)."""
        return self.degree

    def _harary(self) -> tuple[np.ndarray, np.ndarray]:
        """The ring's (position -> client, client -> position) arrays of a Harary graph."""
        assert self._label is not None and self._position is not None  # set by harary_graph
        return self._label, self._position

    def _check_node(self, i: object, name: str = "i") -> int:
        return _ensure_int(i, name, 0, self.n - 1)

    def neighbours(self, i: int) -> tuple[int, ...]:
        """The neighbours of client ``i``, sorted, never ``i`` itself."""
        i = self._check_node(i)
        if self.kind == "complete":
            return tuple(j for j in range(self.n) if j != i)
        label, position = self._harary()
        half = self.degree // 2
        p = int(position[i])
        ring = [(p + d) % self.n for d in range(-half, half + 1) if d]
        return tuple(sorted(int(v) for v in label[ring]))

    def ball(self, i: int, hops: int) -> tuple[int, ...]:
        """Every client within ``hops`` edges of ``i`` (``i`` included), sorted.

        On the Harary graph that is the ring positions within hops * k/2 of i's; on the
        complete graph, everyone once hops >= 1.
        """
        i = self._check_node(i)
        hops = _ensure_int(hops, "hops", 0, 2**31 - 1)
        if hops == 0:
            return (i,)
        reach = hops * (self.degree // 2)
        if self.kind == "complete" or 2 * reach + 1 >= self.n:
            return tuple(range(self.n))
        label, position = self._harary()
        p = int(position[i])
        ring = [(p + d) % self.n for d in range(-reach, reach + 1)]
        return tuple(sorted(int(v) for v in label[ring]))

    def is_neighbour(self, i: int, j: int) -> bool:
        """Whether clients ``i`` and ``j`` are adjacent (O(1); symmetric; False if i == j)."""
        i, j = self._check_node(i), self._check_node(j, "j")
        if i == j:
            return False
        if self.kind == "complete":
            return True
        position = self._harary()[1]
        gap = abs(int(position[i]) - int(position[j]))
        return min(gap, self.n - gap) <= self.degree // 2


def complete_graph(n: int) -> Graph:
    """The complete graph on n clients (original SecAgg: everyone shares with everyone)."""
    n = _ensure_int(n, "n", 1, _MAX_NODES)
    return Graph(n=n, kind="complete", degree=n - 1)


def random_permutation(seed: bytes, n: int) -> np.ndarray:
    """A uniform permutation of range(n): Fisher–Yates on ChaCha20(seed, nonce 0).

    Step i (i = n-1 .. 1) draws j uniform in [0, i] from the little-endian 64-bit
    word i of the keystream, rejecting words >= the largest multiple of i+1 below
    2^64 (no modulo bias); a rejected step takes the next unused word after the
    first n (rejections have probability < n/2^64, so this path is essentially never
    taken, but it keeps the result exact). Deterministic in (seed, n).
    """
    seed = _ensure_bytes(seed, "seed", SEED_BYTES)
    n = _ensure_int(n, "n", 1, _MAX_NODES)
    words = np.frombuffer(keystream(seed, _NONCE, 8 * n), dtype=_WORD)
    m = np.arange(1, n + 1, dtype=np.uint64)  # step i uses bound m = i + 1
    rem = (~m + np.uint64(1)) % m  # 2^64 mod m
    ok = words <= np.uint64(2**64 - 1) - rem
    js = (words % m).astype(np.int64)
    spare_block = -(-8 * n // 64)  # next unused ChaCha20 block
    for i in np.flatnonzero(~ok)[::-1].tolist():  # in Fisher–Yates order: i descending
        bound = i + 1
        limit = 2**64 - (2**64 % bound)
        while True:
            w = int.from_bytes(keystream(seed, _NONCE, 8, spare_block), "little")
            spare_block += 1
            if w < limit:
                js[i] = w % bound
                break
    perm = list(range(n))
    jl = js.tolist()
    for i in range(n - 1, 0, -1):
        j = jl[i]
        perm[i], perm[j] = perm[j], perm[i]
    return np.array(perm, dtype=np.int64)


def harary_graph(n: int, k: int, seed: bytes) -> Graph:
    """The k-regular Harary graph H_{k,n} with labels permuted by ``seed`` (k even, 2 <= k).

    If k >= n - 1 every pair is adjacent and the complete graph is returned.
    """
    n = _ensure_int(n, "n", 1, _MAX_NODES)
    k = _ensure_int(k, "k", 0, _MAX_NODES)
    seed = _ensure_bytes(seed, "seed", SEED_BYTES)
    if k >= n - 1:
        return complete_graph(n)
    ensure(k >= 2 and k % 2 == 0, f"Harary degree k must be even and >= 2, got {k}")
    label = random_permutation(seed, n)  # ring position -> client
    position = np.empty(n, dtype=np.int64)
    position[label] = np.arange(n, dtype=np.int64)
    return Graph(n=n, kind="harary", degree=k, seed=seed, _label=label, _position=position)
