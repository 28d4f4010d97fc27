"""One experiment: the requested FedAvg run plus its centralised and plaintext-FedAvg baselines."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from fl.fedavg import FLConfig, History, run_fedavg, train_centralised
from fl.report import plot_history, write_summary
from fl.tasks import TASKS, TaskData, load_task

__all__ = ["run_experiment", "label_of", "privacy_claim"]


def label_of(cfg: FLConfig) -> str:
    """Short description of a configuration for plots and tables."""
    agg = "SecAgg+" if cfg.secure and cfg.graph == "harary" else ("SecAgg" if cfg.secure
                                                                   else "plaintext")
    dp = "no DP" if cfg.dp == "none" else f"DP {cfg.dp} z={cfg.noise_multiplier:g}"
    if cfg.dp == "distributed":
        dp = f"distributed DP {cfg.mechanism} z={cfg.noise_multiplier:g}"
    return f"FedAvg ({agg}, {dp})"


def privacy_claim(cfg: FLConfig) -> dict[str, object] | None:
    """The assumptions an epsilon holds under, stated beside it in summary.json."""
    if cfg.dp == "none":
        return None
    noise_by = {"central": "the server (trusted to add it; it sees the noiseless sum)",
                "local": "each client, before masking (the sum carries at least the central noise)",
                "record": "each client's DP-SGD, per step",
                "distributed": f"each client, its share of exact integer {cfg.mechanism} noise added"
                               " before masking; the guarantee counts only the noise of the honest"
                               " survivors (>= min_survivors, enforced by the SecAgg threshold);"
                               " dropped and colluding clients are assumed to add none"}[cfg.dp]
    return {
        "level": "record" if cfg.dp == "record" else "client",
        "sampling": "secret: cohorts and DP-SGD batches from the OS CSPRNG; --seed fixes only"
                    " the data split, the initial model and local shuffles",
        "noise_added_by": noise_by,
        "delta": cfg.delta,
        "accountant": cfg.accountant,
        "dropouts": f"simulated rate {cfg.dropout:g}; rounds that abort release nothing and are"
                    " not charged (whether a round aborted is treated as public)",
        "public": "configuration, per-round metric on held-out data, epsilon, clip norm (from"
                  " the noised count), timing, whether each round was released; no cohort sizes",
        "caveats": ("exact integer noise (no floating-point sampling); RDP bounds of Kairouz et al."
                    " / Agarwal et al. with Zhu-Wang subsampling (docs/ddp.md)"
                    if cfg.dp == "distributed" else "floating-point Gaussian noise (Mironov 2012)")
                   + "; feature scaling and weight cap taken from pooled data in this simulation",
    }


def run_experiment(task: str, clients: int, alpha: float, cfg: FLConfig, *,
                   out_dir: Path | None = None, baselines: bool = True,
                   central_epochs: int | None = None,
                   on_round: Callable[[dict[str, object]], None] | None = None,
                   on_stage: Callable[[str], None] | None = None,
                   data: TaskData | None = None) -> dict[str, object]:
    """Train ``task`` as ``cfg`` says, with baselines; write summary.json and plot to ``out_dir``."""
    start = time.perf_counter()
    data = load_task(task, clients, alpha, cfg.seed) if data is None else data
    history = run_fedavg(data, cfg, on_round)
    central = plain = None
    central_metrics: dict[str, float] = {}
    plain_metrics: dict[str, float] = {}
    if baselines:
        if on_stage:
            on_stage("training the centralised baseline")
        epochs = central_epochs if central_epochs is not None else int(TASKS[task]["central_epochs"])
        _, central_metrics = train_centralised(data, epochs, cfg.batch_size, cfg.lr, cfg.seed)
        central = central_metrics.get(data.metric)
        plain_cfg = replace(cfg, secure=False, dp="none", adaptive_clip=False, dropout=0.0,
                            target_epsilon=None)
        if plain_cfg == cfg:
            plain_hist: History = history
        else:
            if on_stage:
                on_stage("training the plaintext FedAvg baseline")
            plain_hist = run_fedavg(data, plain_cfg)
        plain_metrics = plain_hist.final
        plain = plain_metrics.get(data.metric)
    rounds = history.rounds
    private = cfg.dp != "none"
    secure_rounds = [r for r in rounds if "quantisation_error" in r]
    summary: dict[str, object] = {
        "task": task,
        "clients": len(data.clients),
        "metric": data.metric,
        "final": history.final.get(data.metric),
        "final_metrics": history.final,
        "epsilon": history.epsilon,
        "delta": cfg.delta if private else None,
        "accountant": ("rdp" if cfg.dp == "distributed" else cfg.accountant) if private else None,
        "accounting": history.accountant,
        "privacy": privacy_claim(cfg),
        "baselines": {"centralised": central, "plaintext_fedavg": plain},
        "baseline_metrics": {"centralised": central_metrics, "plaintext_fedavg": plain_metrics},
        "seconds": time.perf_counter() - start,
        "label": label_of(cfg),
        "rounds_completed": len(rounds),
        "rounds_released": history.released,
        "stopped": history.stopped,
        # Per-client sizes are client data: published only without DP (totals describe the
        # data set and are stated as public).
        "data": data.info if not private else {k: v for k, v in data.info.items()
                                               if k != "client_sizes"},
        "config": {"task": task, "clients": clients, "alpha": alpha, **cfg.to_dict()},
        "history": [{k: v for k, v in r.items() if k != "metrics"} | r["metrics"] for r in rounds],
    }
    if cfg.dp == "distributed":  # public configuration of the mechanism, from a released round
        released = [r for r in rounds if r.get("mechanism")]
        summary["mechanism"] = cfg.mechanism
        summary["bits"] = released[-1]["bits"] if released else None
        summary["min_survivors"] = released[-1]["min_survivors"] if released else None
    if not private:  # data-dependent figures, published only without DP
        summary["refused_updates"] = [list(x) for x in history.refused]
        summary["secagg"] = ({k: secure_rounds[-1].get(k) for k in ("k", "t", "bits",
                                                                  "upload_bytes_per_client")}
                             if secure_rounds else None)
        summary["max_quantisation_error"] = max(
            (float(r["quantisation_error"]) for r in secure_rounds), default=None)
    if out_dir is not None:
        write_summary(summary, out_dir)
        plot_history(summary, out_dir / "training.png")
    return summary
