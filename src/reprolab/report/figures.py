"""PNG figures for the reports: training curves and obtained-versus-published deltas.

matplotlib runs headless (Agg) and is imported only when a figure is drawn. Files are written
atomically, without the "Software" metadata, so an unchanged figure is byte-for-byte unchanged.
"""

from __future__ import annotations

import math
import re
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


# Accuracy-like series, in percent: one that is 100 at every point (top-5 of 5 or fewer classes)
# says nothing about learning.
_ACCURACY = re.compile(r"(^|_)(top\d+|acc|accuracy|mean_class_acc|recall@?\d*)$")


def _is_time(key: str) -> bool:
    return key.endswith(("_time_s", "_time", "_seconds")) or "wall" in key


def latest_per_seed(runs: Sequence[RunResult]) -> list[RunResult]:
    """The latest run of each (profile, seed): reruns of a seed are one sample, as in the tables."""
    latest: dict[tuple[str, int], RunResult] = {}
    for run in sorted(runs, key=lambda r: (r.started_at, r.run_id)):
        latest[(run.profile, run.seed)] = run
    return [latest[key] for key in sorted(latest)]


def _points(run: RunResult, key: str) -> list[tuple[float, float]]:
    """(x, value) of one series; a repeated x (a resumed epoch logged twice) keeps its last value."""
    by_x: dict[float, float] = {}
    for i, entry in enumerate(run.history):
        if _is_number(entry.get(key)):
            by_x[next((entry[x] for x in _X_KEYS if _is_number(entry.get(x))), i + 1)] = entry[key]
    return sorted(by_x.items())


def uninformative(key: str, values: Sequence[float]) -> str | None:
    """Why a series is not worth a panel (None when it is): time, constant or saturated."""
    if _is_time(key):
        return "a wall-time series"
    if not values or max(values) - min(values) <= 1e-12 * max(1.0, abs(max(values))):
        return "constant"
    if _ACCURACY.search(key) and min(values) >= 100.0 - 1e-9:
        return "at its maximum everywhere"
    return None


def history_keys(runs: Sequence[RunResult]) -> list[str]:
    """The numeric per-epoch series worth plotting, sorted: x-axis keys, wall-time, constant and
    saturated series (see `uninformative`) left out."""
    keys = {key for run in runs for entry in run.history for key, value in entry.items()
            if _is_number(value) and key not in _X_KEYS}
    return sorted(key for key in keys
                  if uninformative(key, [v for run in runs for _, v in _points(run, key)]) is None)


def plot_training_curves(runs: Sequence[RunResult], title: str, target: Path) -> Path | None:
    """The training curves of `runs` (see `training_curves_figure`) as a PNG at `target`."""
    fig = training_curves_figure(runs, title)
    return None if fig is None else _save(fig, target)


def training_curves_figure(runs: Sequence[RunResult], title: str):
    """One panel per informative series, one line and one legend entry per seed (its latest
    run); None when nothing is worth plotting."""
    runs = latest_per_seed(runs)
    keys = history_keys(runs)[:_MAX_PANELS]
    if not keys:
        return None
    plt = _pyplot()
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols + 1.4, 3.2 * rows), squeeze=False,
                             layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    legend: dict[str, object] = {}
    for ax, key in zip(axes.flat, keys, strict=False):
        for index, run in enumerate(runs):
            points = _points(run, key)
            if points:
                xs, ys = zip(*points, strict=True)
                label = f"seed {run.seed} ({run.profile})"
                (line,) = ax.plot(xs, ys, "-" if run.profile == "full" else "--", marker="o",
                                  markersize=3, color=colours[index % len(colours)])
                legend.setdefault(label, line)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.legend(list(legend.values()), list(legend), loc="outside right upper", fontsize=8)
    return fig


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
