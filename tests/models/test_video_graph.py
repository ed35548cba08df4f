"""Stage 3 of web-video WSSS: the spatio-temporal graph cut recovers whole objects from partial,
blurred localization maps better than thresholding the maps (tiny web-videos-voc fixture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reprolab.data.fixtures.web_videos_voc import videos
from reprolab.models.segmentation.video_graph import VideoGraphConfig, optical_flow, segment_video
from reprolab.registry import load_card

CARD = Path(__file__).resolve().parents[2] / "datasets" / "web-videos-voc" / "card.yaml"


def partial_map(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A CAM-like map: the inner half of one side of the object (a discriminative part),
    Gaussian-blurred, max 1, plus noise; 0 where the object is absent."""
    from scipy.ndimage import binary_erosion, gaussian_filter

    out = np.zeros(masks.shape)
    for t, mask in enumerate(masks):
        if not mask.any():
            continue
        radius = np.sqrt(mask.sum() / np.pi)
        core = binary_erosion(mask, iterations=max(1, int(0.45 * radius)))
        core = core if core.any() else mask
        ys, xs = np.nonzero(core)
        side = xs < np.median(xs) if rng.random() < 0.5 else ys < np.median(ys)
        part = np.zeros(mask.shape)
        part[ys[side], xs[side]] = 1.0
        out[t] = gaussian_filter(part, radius / 3)
    out /= max(out.max(), 1e-9)
    return np.clip(out + rng.normal(0, 0.03, out.shape), 0, 1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def measured():
    rows = []
    for video in videos(load_card(CARD), seed=0):
        maps = partial_map(video.masks, np.random.default_rng([0, 7]))
        shown = video.masks.any((1, 2))   # the frames a perfect filter keeps
        masks = segment_video(video.frames, maps, keep=shown)
        assert masks.shape == video.masks.shape and masks.dtype == bool
        assert not masks[~shown].any()
        oracle = max(iou(maps >= th, video.masks) for th in np.linspace(0.05, 0.95, 19))
        rows.append((iou(masks, video.masks), iou(maps >= 0.5, video.masks), oracle))
    return np.array(rows)


def test_graph_beats_thresholded_maps(measured):
    graph, half, oracle = measured.T
    # measured (fixture seeds 0, 1, 2: 27 videos; 1 and 2 threads identical): graph mean 0.746,
    # per video 0.42-0.95; maps >= 0.5: 0.227 (0.17-0.28); best threshold per video (an oracle
    # that sees the true masks): 0.625. Seed 0 alone: 0.75 / 0.23 / 0.62.
    assert (graph > half + 0.1).all(), np.round(measured, 2)
    assert graph.mean() > half.mean() + 0.35
    assert graph.mean() > oracle.mean() + 0.05


def test_flow_follows_the_object():
    video = videos(load_card(CARD), seed=0)[0]
    flow = optical_flow(video.frames, VideoGraphConfig())
    t = 6   # object present in t and t+1: mean flow inside it is its displacement
    true = np.array([np.nonzero(video.masks[t + 1])[1].mean() - np.nonzero(video.masks[t])[1].mean(),
                     np.nonzero(video.masks[t + 1])[0].mean() - np.nonzero(video.masks[t])[0].mean()])
    assert np.abs(flow[t][video.masks[t]].mean(0) - true).max() < 1.0


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"maps \(3, 8, 8\) \[T, H, W\]"):
        segment_video(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 8, 8)))
