"""PNG figures for the reports: training curves and obtained-versus-published deltas.

matplotlib runs headless (Agg) and is imported only when a figure is drawn. Files are written
atomically, without the "Software" metadata, so an unchanged figure is byte-for-byte unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from reprolab import atomic
from reprolab.report.compare import Comparison
from reprolab.results import RunResult

_X_KEYS = ("epoch", "step", "iteration")
_MAX_PANELS = 6
_VERDICT_COLOURS = {"within": "tab:green", "above": "tab:blue", "below": "tab:red"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, target: Path) -> Path:
    with atomic.atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    _pyplot().close(fig)
    return target


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def history_keys(runs: Sequence[RunResult]) -> list[str]:
    """The numeric per-epoch series the runs logged (x-axis keys left out), sorted."""
    keys = {key for run in runs for entry in run.history for key, value in entry.items()
            if _is_number(value) and key not in _X_KEYS}
    return sorted(keys)


def plot_training_curves(runs: Sequence[RunResult], title: str, target: Path) -> Path | None:
    """One panel per logged series, one line per run; None when no run logged a history."""
    keys = history_keys(runs)[:_MAX_PANELS]
    if not keys:
        return None
    plt = _pyplot()
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        for run in sorted(runs, key=lambda r: r.run_id):
            points = [(entry.get("epoch", entry.get("step", i + 1)), entry[key])
                      for i, entry in enumerate(run.history) if _is_number(entry.get(key))]
            if points:
                xs, ys = zip(*points, strict=True)
                style = "-" if run.profile == "full" else "--"
                ax.plot(xs, ys, style, marker="o", markersize=3,
                        label=f"seed {run.seed} ({run.profile})")
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, target)


def plot_deltas(comparisons: Sequence[Comparison], title: str, target: Path) -> Path | None:
    """Obtained minus published per compared number, with its tolerance band and 95% interval.

    None when no number has a full-profile result (tiny runs are never compared).
    """
    compared = [c for c in comparisons if c.obtained is not None and c.obtained.profile == "full"
                and not math.isnan(c.published)]
    if not compared:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.7 * len(compared) + 1.6))
    labels = []
    for y, c in enumerate(compared):
        ax.fill_betweenx([y - 0.35, y + 0.35], -c.tolerance, c.tolerance, color="tab:green", alpha=0.18,
                         label="tolerance" if y == 0 else None)
        if not math.isnan(c.obtained.ci_low):
            ax.plot([c.obtained.ci_low - c.published, c.obtained.ci_high - c.published], [y, y],
                    color="black", linewidth=1.5, label="95% interval" if y == 0 else None)
        ax.plot(c.delta, y, "o", color=_VERDICT_COLOURS[str(c.verdict)], markersize=7)
        lower = " (lower is better)" if c.lower_is_better else ""
        labels.append(f"{c.benchmark} · {c.metric}{lower} · {c.recipe}\npublished {c.published!r}")
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_yticks(range(len(compared)), labels, fontsize=8)
    ax.invert_yaxis()
    for verdict, colour in _VERDICT_COLOURS.items():
        ax.plot([], [], "o", color=colour, label=verdict)
    ax.set_xlabel("obtained mean - published (points)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    return _save(fig, target)
