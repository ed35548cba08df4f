"""Training-curve figures: only informative series, one legend entry per seed."""

from __future__ import annotations

import math

import pytest

from reprolab.report import figures


def _history(top1: list[float], *, classes_top5: float = 100.0) -> list[dict]:
    """Records as the training loop writes them (reprolab.engine.loop.fit), one per epoch."""
    epochs = len(top1)
    return [{"epoch": e, "split": "train", "loss": 1.4 - 0.2 * e + 0.01 * top1[e],
             "lr": 0.05 * (1 + math.cos(math.pi * e / epochs)) / 2, "epoch_time_s": 3.1 + 0.37 * e,
             "eval_top1": top1[e], "eval_top5": classes_top5, "eval_mean_class_acc": top1[e] - 1.5,
             "eval_samples": 48.0}
            for e in range(epochs)]


@pytest.fixture
def tiny_runs(make_run):
    """Seed 0 run twice (a rerun), seed 1 once; 4 classes, so top-5 is 100 at every epoch."""
    return [
        make_run("r", 0, {"top1": 50.0}, profile="tiny", history=_history([25.0, 37.5, 50.0]),
                 run_id="20210101T000000Z-s0-aaaaaa", started_at="2021-01-01T00:00:00+00:00"),
        make_run("r", 0, {"top1": 56.25}, profile="tiny", history=_history([25.0, 43.75, 56.25]),
                 run_id="20210102T000000Z-s0-bbbbbb", started_at="2021-01-02T00:00:00+00:00"),
        make_run("r", 1, {"top1": 62.5}, profile="tiny", history=_history([31.25, 50.0, 62.5]),
                 run_id="20210101T000000Z-s1-cccccc"),
    ]


def test_constant_time_and_saturated_series_are_skipped(tiny_runs):
    assert figures.history_keys(tiny_runs) == ["eval_mean_class_acc", "eval_top1", "loss", "lr"]
    assert figures.uninformative("eval_samples", [48.0, 48.0, 48.0]) == "constant"
    assert figures.uninformative("epoch_time_s", [3.1, 3.5]) == "a wall-time series"
    assert figures.uninformative("eval_top5", [100.0, 100.0]) == "constant"
    assert figures.uninformative("top5", [99.0, 100.0]) is None
    assert figures.uninformative("eval_top1", [25.0, 50.0]) is None


def test_top5_that_varies_across_runs_is_kept(make_run):
    runs = [make_run("r", s, {}, history=_history([20.0, 30.0], classes_top5=top5))
            for s, top5 in ((0, 80.0), (1, 90.0))]
    assert "eval_top5" in figures.history_keys(runs)


def test_one_legend_entry_per_seed_and_the_latest_rerun(tiny_runs):
    fig = figures.training_curves_figure(tiny_runs, "r: training curves")
    try:
        texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert texts == ["seed 0 (tiny)", "seed 1 (tiny)"]
        titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
        assert titles == ["eval_mean_class_acc", "eval_top1", "loss", "lr"]
        top1 = fig.axes[titles.index("eval_top1")]
        assert [list(line.get_ydata()) for line in top1.get_lines()] == [[25.0, 43.75, 56.25],
                                                                          [31.25, 50.0, 62.5]]
    finally:
        figures._pyplot().close(fig)


def test_a_resumed_epoch_logged_twice_is_one_point(make_run):
    history = _history([25.0, 37.5, 50.0])
    history.insert(1, {**history[1], "eval_top1": 30.0})  # epoch 1 logged, then again after a resume
    run = make_run("r", 0, {}, history=history)
    assert figures._points(run, "eval_top1") == [(0, 25.0), (1, 37.5), (2, 50.0)]


def test_nothing_to_plot_draws_nothing(make_run, tmp_path):
    flat = [{"epoch": e, "eval_samples": 48.0, "epoch_time_s": 2.0 + e} for e in range(3)]
    assert figures.plot_training_curves([make_run("r", 0, {}, history=flat)], "t", tmp_path / "c.png") is None
    assert not (tmp_path / "c.png").exists()
