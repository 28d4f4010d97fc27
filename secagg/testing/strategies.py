"""Hypothesis strategies for secure-aggregation sessions (needs ``hypothesis``: the ``test`` extra).

- ``configs()``: valid ``SecAggConfig`` objects over both graphs, bit widths,
  thresholds, the consistency check and the ciphers this CPU has; with
  ``invalid=True``, keyword arguments that ``SecAggConfig`` must refuse.
- ``inputs(config)``: (inputs, weights), values exactly representable at the
  config's scale or arbitrary finite floats (clipped by the encoder).
- ``encoded_inputs(config)``: integers mod 2^bits, weight element last.
- ``vanish_schedules(config)``: who vanishes at which stage, within the
  threshold or far beyond it.
- ``deliveries(config)``: a ``DeliveryPlan`` of reordering, duplicates, late,
  truncated, header-flipped and replayed messages.
- ``server_attacks(config)``: malicious-server behaviours (``secagg.testing.attacks``).
- ``sessions()``: all of the above at once, for a property test.

Importing this module registers ``configs()`` for ``st.from_type(SecAggConfig)``;
so does Hypothesis itself at start-up, through the ``hypothesis`` entry point.
Every strategy labels what it drew with ``hypothesis.event`` so that
``pytest --hypothesis-show-statistics`` shows which stages and faults were hit.
"""

from __future__ import annotations

from typing import Any

try:
    from hypothesis import event
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without the test extra
    raise ImportError(
        "secagg.testing.strategies needs hypothesis; install it with pip install 'secagg[test]'"
    ) from exc

import numpy as np

from secagg import prg
from secagg.bindings import storage_dtype
from secagg.config import SecAggConfig
from secagg.planner import max_scale
from secagg.simulation import STAGES
from secagg.testing.attacks import Attack, ForgedRecord, SplitView, WithheldShares
from secagg.testing.oracle import Schedule
from secagg.testing.transport import DeliveryPlan, Fault

__all__ = [
    "configs",
    "deliveries",
    "encoded_inputs",
    "inputs",
    "invalid_configs",
    "register",
    "server_attacks",
    "sessions",
    "vanish_schedules",
]


@st.composite
def _valid_fields(
    draw: st.DrawFn,
    max_clients: int,
    max_length: int,
    graphs: tuple[str, ...],
    consistency_check: bool | None,
) -> dict[str, Any]:
    n = draw(st.integers(2, max_clients))
    graph = draw(st.sampled_from(graphs)) if n >= 5 else "complete"
    if graph == "harary" and n < 5:
        graph = "complete"
    degree = n - 1 if graph == "complete" else draw(st.sampled_from(range(2, n - 1, 2)))
    check = draw(st.booleans()) if consistency_check is None else consistency_check
    threshold = draw(st.integers(degree // 2 + 1 if check else 1, degree))
    max_weight = draw(st.sampled_from([1.0, 2.0]))
    min_bits = (n + 1).bit_length() + 1
    while (2 ** (min_bits - 1) - 1) // n < max_weight:  # the weight element must resolve 1
        min_bits += 1
    bits = draw(st.integers(min_bits, 64))
    clip = draw(st.sampled_from([1.0, 0.5, 4.0, 100.0]))
    scale = max_scale(n, clip, bits) / draw(st.sampled_from([1, 2, 8]))
    return dict(
        num_clients=n, vector_length=draw(st.integers(1, max_length)), threshold=threshold, bits=bits,
        clip=clip, scale=scale, graph=graph, degree=degree if graph == "harary" else 0,
        max_weight=max_weight, consistency_check=check,
        session_nonce=draw(st.binary(min_size=32, max_size=32).filter(any)),
        cipher=draw(st.sampled_from(prg.ciphers())),
    )


#: Ways to break a valid config, each naming what ``SecAggConfig`` must complain about.
_BREAKS: dict[str, Any] = {
    "num_clients": lambda f: {**f, "num_clients": 1},
    "threshold": lambda f: {**f, "threshold": 0},
    "threshold above degree": lambda f: {**f, "threshold": f["num_clients"] + 1},
    "bits": lambda f: {**f, "bits": 65},
    "graph": lambda f: {**f, "graph": "ring"},
    "cipher": lambda f: {**f, "cipher": "rc4"},
    "clip": lambda f: {**f, "clip": float("nan")},
    "scale": lambda f: {**f, "scale": -1.0},
    "wrap": lambda f: {**f, "scale": f["scale"] * 2.0 ** 70},
    "session_nonce": lambda f: {**f, "session_nonce": b"short"},
    "zero nonce": lambda f: {**f, "session_nonce": bytes(32)},
    "vector_length": lambda f: {**f, "vector_length": 0},
    "split views": lambda f: {**f, "consistency_check": True, "num_clients": max(3, f["num_clients"]),
                              "threshold": (max(3, f["num_clients"]) - 1) // 2, "graph": "complete",
                              "degree": 0},
}


def configs(
    *,
    invalid: bool = False,
    max_clients: int = 16,
    max_length: int = 8,
    graphs: tuple[str, ...] = ("complete", "harary"),
    consistency_check: bool | None = None,
) -> st.SearchStrategy[Any]:
    """Valid ``SecAggConfig`` objects; with ``invalid=True``, constructor kwargs it must refuse."""
    fields = _valid_fields(max_clients, max_length, graphs, consistency_check)
    if not invalid:
        return fields.map(lambda f: _labelled(SecAggConfig(**f)))
    return invalid_configs(max_clients=max_clients).map(lambda pair: pair[1])


def invalid_configs(*, max_clients: int = 16) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """(how it is broken, constructor kwargs) pairs that ``SecAggConfig`` must refuse."""
    fields = _valid_fields(max_clients, 8, ("complete", "harary"), None)
    return st.tuples(fields, st.sampled_from(sorted(_BREAKS))).map(lambda p: (p[1], _broken(*p)))


def _labelled(config: SecAggConfig) -> SecAggConfig:
    event(f"graph={config.graph}, consistency_check={config.consistency_check}")
    return config


def _broken(fields: dict[str, Any], how: str) -> dict[str, Any]:
    event(f"invalid config: {how}")
    broken: dict[str, Any] = _BREAKS[how](fields)
    return broken


@st.composite
def inputs(
    draw: st.DrawFn, config: SecAggConfig, *, exact: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, weights) for ``config``: (n, m) floats and n weights in [0, max_weight].

    ``exact=True`` draws values on the fixed-point grid within the clip range and
    weights of 1 (the decoded sum is then exact); ``exact=False`` draws any finite
    floats, including ones the encoder clips; ``None`` draws either.
    """
    n, m = config.num_clients, config.vector_length
    exact = draw(st.booleans()) if exact is None else exact
    event(f"inputs: {'exactly representable' if exact else 'arbitrary floats'}")
    if exact:
        top = int(config.clip * config.scale)
        ints = draw(st.lists(st.integers(-top, top), min_size=n * m, max_size=n * m))
        return np.array(ints, dtype=np.float64).reshape(n, m) / config.scale, np.ones(n)
    values = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n * m, max_size=n * m))
    weights = draw(st.lists(st.floats(0.0, config.max_weight), min_size=n, max_size=n))
    return np.array(values, dtype=np.float64).reshape(n, m), np.array(weights)


@st.composite
def encoded_inputs(draw: st.DrawFn, config: SecAggConfig) -> np.ndarray:
    """(n, m + 1) integers mod 2^bits (any value, the weight element last)."""
    n, size = config.num_clients, config.encoded_length
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)  # test data, never secrets
    raw = rng.integers(0, (1 << config.bits) - 1, size=(n, size), dtype=np.uint64, endpoint=True)
    return raw.astype(storage_dtype(config.bits))


@st.composite
def vanish_schedules(
    draw: st.DrawFn, config: SecAggConfig, *, beyond_threshold: bool | None = None
) -> Schedule:
    """Who vanishes, and at which stage.

    Within the threshold (the default half the time) at most ``degree - threshold``
    clients vanish, which every neighbourhood survives on the complete graph;
    beyond it, up to all of them, so that every abort can happen.
    """
    n = config.num_clients
    beyond = draw(st.booleans()) if beyond_threshold is None else beyond_threshold
    most = n if beyond else max(0, config.degree - config.threshold)
    who = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=most))
    vanish = {c: draw(st.sampled_from(STAGES)) for c in who}
    for stage in set(vanish.values()):
        event(f"vanish at {stage}")
    event(f"vanishing: {'beyond' if beyond else 'within'} the threshold")
    return Schedule(vanish)


@st.composite
def deliveries(draw: st.DrawFn, config: SecAggConfig, *, max_faults: int = 3) -> DeliveryPlan:
    """Faults on client -> server messages and an arrival order (see ``DeliveryPlan``)."""
    n = config.num_clients
    keys = st.tuples(st.integers(0, n - 1), st.sampled_from(STAGES))
    faults = draw(st.dictionaries(keys, st.sampled_from(list(Fault)), max_size=max_faults))
    for fault in faults.values():
        event(f"fault: {fault.name}")
    return DeliveryPlan(faults, order_seed=draw(st.integers(0, 2**16)), flip_bit=draw(st.integers(0, 63)))


@st.composite
def server_attacks(draw: st.DrawFn, config: SecAggConfig) -> Attack:
    """One malicious-server behaviour against ``config`` (split views need the consistency check)."""
    n = config.num_clients
    kinds = ["withheld shares", "forged record"] + (["split view"] if n >= 3 else [])
    kind = draw(st.sampled_from(kinds))
    event(f"attack: {kind}")
    if kind == "withheld shares":
        return WithheldShares(victim=draw(st.integers(0, n - 1)), count=draw(st.integers(1, config.degree)))
    if kind == "forged record":
        return ForgedRecord(target=draw(st.integers(0, n - 1)))
    victims = draw(st.lists(st.integers(0, n - 1), unique=True, min_size=1, max_size=n - 1))
    return SplitView(victims=tuple(sorted(victims)), hidden=draw(st.integers(0, n - 1)))


@st.composite
def sessions(
    draw: st.DrawFn, *, max_clients: int = 16, faults: bool = True, encoded: bool | None = None
) -> dict[str, Any]:
    """A config, inputs, weights, a vanishing schedule and a delivery plan, as keyword args.

    The result fits ``run_schedule(**s)`` except ``encoded`` inputs are under ``"inputs"``
    with ``"encoded": True``.
    """
    config = draw(configs(max_clients=max_clients))
    use_encoded = draw(st.booleans()) if encoded is None else encoded
    if use_encoded:
        data, weights = draw(encoded_inputs(config)), None
    else:
        data, weights = draw(inputs(config))
    plan = draw(deliveries(config)) if faults else DeliveryPlan()
    return dict(config=config, inputs=data, weights=weights, schedule=draw(vanish_schedules(config)),
                plan=plan, encoded=use_encoded)


def register() -> None:
    """Make ``st.from_type(SecAggConfig)`` draw from ``configs()`` (idempotent)."""
    st.register_type_strategy(SecAggConfig, configs())


register()
