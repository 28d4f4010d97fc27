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
        # The graph is densified until the noise's threshold fits (complete for small cohorts).
        agg = "secure aggregation"
    if cfg.level == "record":
        return f"cross-silo DP-SGD ({agg}, {dp.replace('DP ', 'record-level DP ', 1)})"
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
    if cfg.level == "record":
        noise_by = {"central": "the server, to the noiseless sum of the hospitals' clipped"
                               " gradients (centralised DP-SGD)",
                    "distributed": noise_by}[cfg.dp]
    return {
        "level": "record" if cfg.dp == "record" or cfg.level == "record" else "client",
        "sampling": ("secret: each client's Poisson sample of its records from the OS CSPRNG"
                     if cfg.level == "record" else
                     "secret: cohorts and DP-SGD batches from the OS CSPRNG")
                    + "; --seed fixes only the data split, the initial model and local shuffles",
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
    if cfg.level == "record":
        return _record_experiment(task, clients, alpha, cfg, data, start, out_dir=out_dir,
                                  baselines=baselines, central_epochs=central_epochs,
                                  on_round=on_round, on_stage=on_stage)
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
    secure_rounds = [r for r in history.rounds if "quantisation_error" in r]
    summary = _summary(task, clients, alpha, cfg, data, history, start,
                       {"centralised": central, "plaintext_fedavg": plain},
                       {"centralised": central_metrics, "plaintext_fedavg": plain_metrics})
    if cfg.dp == "none":  # data-dependent figures (per-client sizes too), published only without DP
        summary["data"] = data.info
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


def _mechanism_keys(cfg: FLConfig, rounds: list[dict[str, object]]) -> dict[str, object]:
    """Public configuration of the distributed-DP mechanism, read from a released round."""
    if cfg.dp != "distributed":
        return {}
    released = [r for r in rounds if r.get("mechanism")]
    last = released[-1] if released else {}
    return {"mechanism": cfg.mechanism, "bits": last.get("bits"),
            "min_survivors": last.get("min_survivors"), "max_colluders": cfg.max_colluders,
            "secagg_threshold": last.get("threshold"), "graph": last.get("graph")}


def _record_experiment(task: str, clients: int, alpha: float, cfg: FLConfig, data: TaskData,
                       start: float, *, out_dir: Path | None, baselines: bool,
                       central_epochs: int | None,
                       on_round: Callable[[dict[str, object]], None] | None,
                       on_stage: Callable[[str], None] | None) -> dict[str, object]:
    """Cross-silo DP-SGD (``--level record``) beside the centralised baselines.

    Baselines: the centralised model without DP, and centralised DP-SGD on the pooled records
    at the same epsilon (same sampling rate, steps, clip and learning rate; central Gaussian
    noise whose multiplier is the smallest with a PLD epsilon at most the run's).
    """
    from fl.crosssilo import matched_central_noise, run_cross_silo, trust_model

    history = run_cross_silo(data, cfg, on_round)
    central = dpsgd = None
    central_metrics: dict[str, float] = {}
    dpsgd_metrics: dict[str, float] = {}
    matched: dict[str, object] | None = None
    if baselines:
        if on_stage:
            on_stage("training the centralised baseline (no DP)")
        # The non-private reference is trained as the task's centralised baseline always is
        # (its own batch size and learning rate), not with DP-SGD's step size.
        task_defaults = TASKS[task]
        epochs = central_epochs if central_epochs is not None else int(task_defaults["central_epochs"])
        _, central_metrics = train_centralised(data, epochs, int(task_defaults["batch_size"]),
                                               float(task_defaults["lr"]), cfg.seed)
        central = central_metrics.get(data.metric)
        if cfg.dp == "distributed" and history.epsilon is not None:
            if on_stage:
                on_stage("training centralised DP-SGD at the same epsilon")
            z = matched_central_noise(history.epsilon, cfg)
            central_cfg = replace(cfg, dp="central", secure=False, dropout=0.0, noise_multiplier=z,
                                  accountant="pld", max_colluders=0, min_survivors=None)
            dpsgd_hist = run_cross_silo(data, central_cfg)
            dpsgd_metrics = dpsgd_hist.final
            dpsgd = dpsgd_metrics.get(data.metric)
            matched = {"noise_multiplier": z, "epsilon": dpsgd_hist.epsilon, "accountant": "pld",
                       "accounting": dpsgd_hist.accountant}
    summary = _summary(task, clients, alpha, cfg, data, history, start,
                       {"centralised": central, "centralised_dpsgd": dpsgd},
                       {"centralised": central_metrics, "centralised_dpsgd": dpsgd_metrics})
    summary.update(level="record", trust=trust_model(cfg, len(data.clients)),
                   centralised_dpsgd=matched)
    if out_dir is not None:
        write_summary(summary, out_dir)
        plot_history(summary, out_dir / "training.png")
    return summary


def _summary(task: str, clients: int, alpha: float, cfg: FLConfig, data: TaskData,
             history: History, start: float, baselines: dict[str, float | None],
             baseline_metrics: dict[str, dict[str, float]]) -> dict[str, object]:
    """The summary.json keys every run has; data-dependent figures are added by the caller
    only without DP."""
    private = cfg.dp != "none"
    rounds = history.rounds
    summary: dict[str, object] = {
        "task": task,
        "level": cfg.level,
        "clients": len(data.clients),
        "metric": data.metric,
        "final": history.final.get(data.metric),
        "final_metrics": history.final,
        "epsilon": history.epsilon,
        "delta": cfg.delta if private else None,
        "accountant": ("rdp" if cfg.dp == "distributed" else cfg.accountant) if private else None,
        "accounting": history.accountant,
        "privacy": privacy_claim(cfg),
        "baselines": baselines,
        "baseline_metrics": baseline_metrics,
        "seconds": time.perf_counter() - start,
        "label": label_of(cfg),
        "rounds_completed": len(rounds),
        "rounds_released": history.released,
        "stopped": history.stopped,
        "data": {k: v for k, v in data.info.items() if k != "client_sizes"},
        "config": {"task": task, "clients": clients, "alpha": alpha, **cfg.to_dict()},
        "history": [{k: v for k, v in r.items() if k != "metrics"} | r["metrics"] for r in rounds],
    }
    summary.update(_mechanism_keys(cfg, rounds))
    return summary
