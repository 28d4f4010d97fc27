"""The three bundled-data tasks: hospitals, keyboard and fraud.

Each task loads data that ships inside an installed package (nothing is
downloaded), holds out a test set, splits the training pool across clients in a
non-IID way and says how to build, train and score its model.

- ``hospitals``: scikit-learn's breast-cancer data (569 patients, 30 features),
  Dirichlet label skew across hospitals, a 30-16-1 MLP, accuracy.
- ``keyboard``: next-word prediction on chatterbot-corpus's English YAML files;
  conversations are sorted by topic file and cut into contiguous blocks, so each
  user mostly writes about one topic (a natural split); embedding + GRU; top-1
  and top-3 accuracy over the test set's target tokens (out-of-vocabulary targets
  count as ``<unk>``).
- ``fraud``: ``make_classification`` with 3% positives, Dirichlet label skew
  across banks (so some banks see far more fraud), a 20-32-1 MLP, ROC-AUC
  (primary) and PR-AUC.

Features are standardised with the training pool's statistics: a simplification
(a deployment would fix public constants or sum moments with secure aggregation).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from secagg.errors import ensure

__all__ = ["TaskData", "TASKS", "load_task", "dirichlet_split", "GRULanguageModel"]


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
    "keyboard": dict(clients=40, rounds=20, sample_rate=0.3, local_epochs=2, batch_size=16,
                     lr=1.0, clip=1.0, noise_multiplier=0.5, alpha=0.0, central_epochs=8,
                     delta=1e-3),
    "fraud": dict(clients=20, rounds=60, sample_rate=0.5, local_epochs=2, batch_size=32,
                  lr=0.2, clip=0.5, noise_multiplier=0.7, alpha=0.5, central_epochs=20,
                  delta=1e-3),
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

_PAD, _UNK, _BOS = 0, 1, 2
_MAX_LEN = 20
_TOKEN = re.compile(r"[a-z0-9']+|[.,!?;:]")


class _GRU(nn.Module):
    """A one-layer batch-first GRU (gates r, z, n as in nn.GRU) written with Linear ops.

    torch.func.vmap has no batching rule for the fused GRU kernel, and on one CPU
    thread this loop is also faster than the fused kernel at these sizes.
    """

    def __init__(self, inputs: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.ih = nn.Linear(inputs, 3 * hidden)
        self.hh = nn.Linear(hidden, 3 * hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates_x = self.ih(x)
        h = x.new_zeros(x.shape[0], self.hidden)
        outs = []
        for t in range(x.shape[1]):
            xr, xz, xn = gates_x[:, t].chunk(3, dim=-1)
            hr, hz, hn = self.hh(h).chunk(3, dim=-1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
            outs.append(h)
        return torch.stack(outs, dim=1)


class GRULanguageModel(nn.Module):
    """Embedding, GRU and a linear read-out over the vocabulary."""

    def __init__(self, vocab: int, embed: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.gru = _GRU(embed, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.gru(self.embed(x)))


def _corpus_dir() -> Path:
    import chatterbot_corpus

    path = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    ensure(path.is_dir(), f"chatterbot-corpus English data not found at {path}")
    return path


def _conversations() -> list[tuple[str, list[str]]]:
    import yaml

    out = []
    for path in sorted(_corpus_dir().glob("*.yml")):
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        for conv in doc.get("conversations") or []:
            if isinstance(conv, list):
                lines = [str(u) for u in conv if isinstance(u, (str, int, float))]
                if lines:
                    out.append((path.stem, lines))
    return out


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _encode(convs: list[list[str]], vocab: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for conv in convs:
        for utt in conv:
            ids = [vocab.get(w, _UNK) for w in _tokens(utt)]
            for start in range(0, max(len(ids), 1), _MAX_LEN):
                seq = [_BOS] + ids[start:start + _MAX_LEN]
                if len(seq) < 2:
                    continue
                x = seq[:-1] + [_PAD] * (_MAX_LEN - len(seq) + 1)
                y = seq[1:] + [-100] * (_MAX_LEN - len(seq) + 1)
                xs.append(x)
                ys.append(y)
    if not xs:
        return torch.zeros(0, _MAX_LEN, dtype=torch.long), torch.zeros(0, _MAX_LEN, dtype=torch.long)
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)


def _seq_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                       ignore_index=-100)


def _keyboard(clients: int, alpha: float, seed: int) -> TaskData:
    convs = _conversations()
    rng = np.random.default_rng([seed, 2])
    is_test = rng.random(len(convs)) < 0.2
    train = [(topic, c) for (topic, c), t in zip(convs, is_test, strict=False) if not t]
    test = [c for (_, c), t in zip(convs, is_test, strict=False) if t]
    counts = Counter(w for _, c in train for u in c for w in _tokens(u))
    words = [w for w, k in counts.most_common(2000) if k >= 2]
    vocab = {w: i + 3 for i, w in enumerate(words)}
    size = len(vocab) + 3
    ensure(clients <= len(train), f"keyboard has {len(train)} training conversations,"
           f" fewer than {clients} clients")
    # Natural split: conversations in topic order, shuffled within a topic, cut into blocks.
    topics = sorted({t for t, _ in train})
    ordered = []
    for topic in topics:
        block = [c for t, c in train if t == topic]
        ordered.extend(block[i] for i in rng.permutation(len(block)))
    cuts = np.linspace(0, len(ordered), clients + 1).astype(int)
    client_data = [_encode(ordered[a:b], vocab) for a, b in zip(cuts[:-1], cuts[1:], strict=False)]
    pool = _encode(ordered, vocab)
    test_xy = _encode(test, vocab)

    def evaluate(model: nn.Module) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            logits = model(test_xy[0])
            loss = float(_seq_ce(logits, test_xy[1]))
            mask = test_xy[1] != -100
            target = test_xy[1][mask]
            top3 = logits[mask].topk(3, dim=-1).indices
        if not np.isfinite(loss):
            return {"top1": float("nan"), "top3": float("nan"), "loss": loss}
        return {"top1": float((top3[:, 0] == target).float().mean()),
                "top3": float((top3 == target[:, None]).any(-1).float().mean()), "loss": loss}

    def make() -> nn.Module:
        return GRULanguageModel(size)

    return TaskData("keyboard", "top1", client_data, pool, test_xy, make, _seq_ce, evaluate,
                    {"clients": clients, "vocab": size, "train_sequences": int(pool[0].shape[0]),
                     "test_sequences": int(test_xy[0].shape[0]), "topics": len(topics),
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
