"""Write a run's summary.json and its plot (metric and epsilon against rounds)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["write_summary", "plot_history"]


def write_summary(summary: dict[str, object], out_dir: Path) -> Path:
    """Write ``summary`` as ``out_dir/summary.json``; return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    return path


def plot_history(summary: dict[str, object], path: Path) -> Path:
    """Plot the metric (left axis) and epsilon (right axis) per round, baselines as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in summary["history"]]
    values = [r["metric"] for r in summary["history"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(rounds, values, marker="o", ms=3, label=f"{summary['label']}")
    styles = {"centralised": ("k", "--"), "plaintext_fedavg": ("tab:green", ":")}
    for name, value in summary["baselines"].items():
        if value is not None:
            color, style = styles.get(name, ("grey", "-."))
            ax.axhline(value, color=color, linestyle=style, label=f"{name} {value:.4f}")
    ax.set_xlabel("round")
    ax.set_ylabel(str(summary["metric"]))
    ax.set_title(f"{summary['task']}: {summary['label']}")
    eps = [r["epsilon"] for r in summary["history"]]
    handles, labels = ax.get_legend_handles_labels()
    if any(e is not None for e in eps):
        ax2 = ax.twinx()
        ax2.plot(rounds, [e if e is not None else float("nan") for e in eps], color="tab:red",
                 label=f"epsilon (delta={summary['delta']:g})")
        ax2.set_ylabel("epsilon", color="tab:red")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
