"""Stage 3 of Hong et al. (arXiv 1701.00352): a video's object masks from its localization maps,
as a binary labelling of a spatio-temporal graph over superpixels, solved exactly by s-t min-cut.

Nodes are SLIC superpixels of every frame. The unary term of a node mixes its mean localization
score (the encoder's map for the query class) with a colour model of the video's object and
background, re-estimated from the current solution (GrabCut-style rounds): the maps cover the
discriminative part of an object, the colour model carries the labelling to the rest of it.
Pairwise terms join superpixels that touch within a frame (weighted by shared boundary, colour
and motion similarity: an edge between pixels that look and move alike is costly to cut) and
superpixels of consecutive frames that Farneback optical flow connects (weighted by the share
of pixels the flow carries across and their colour similarity). The paper's exact energy is not
known to us; every choice here is ours and NOTES.md of web-videos-wsss lists them with reasons.

Solver: PyMaxflow (Boykov-Kolmogorov max-flow). The labelling is binary per video (query-class
object or not), so one exact min-cut suffices; multi-label alpha-expansion (gco) is not needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HARD = 1e9   # a capacity no cut pays: rejected frames are background
__all__ = ["VideoGraphConfig", "optical_flow", "segment_video", "superpixels"]


@dataclass(frozen=True)
class VideoGraphConfig:
    segments: int = 150              # SLIC superpixels per frame (target)
    compactness: float = 10.0        # SLIC colour/space balance in Lab
    map_gain: float = 10.0           # log-odds per unit of localization score
    map_threshold: float = 0.1       # the score at which the map is neutral
    spatial_weight: float = 2.0      # lambda of the within-frame edges
    temporal_weight: float = 2.0     # lambda of the flow edges
    colour_bins: int = 8             # per Lab channel, for the object/background colour model
    rounds: int = 3                  # colour-model re-estimations (1: map-seeded model only)
    eps: float = 1e-3                # probabilities are clipped to [eps, 1 - eps]
    # OpenCV Farneback parameters (its documented example values)
    flow_pyr_scale: float = 0.5
    flow_levels: int = 3
    flow_winsize: int = 15
    flow_iterations: int = 3
    flow_poly_n: int = 5
    flow_poly_sigma: float = 1.2


def superpixels(frames: np.ndarray, config: VideoGraphConfig) -> np.ndarray:
    """int [T, H, W]: SLIC labels, numbered across the whole video (frame t's after t-1's)."""
    from skimage.segmentation import slic

    labels, offset = np.empty(frames.shape[:3], np.int64), 0
    for t, frame in enumerate(frames):
        sp = slic(frame, n_segments=config.segments, compactness=config.compactness,
                  start_label=0, channel_axis=-1)
        _, sp = np.unique(sp, return_inverse=True)   # dense 0..n-1
        labels[t] = sp.reshape(frame.shape[:2]) + offset
        offset = labels[t].max() + 1
    return labels


def optical_flow(frames: np.ndarray, config: VideoGraphConfig) -> np.ndarray:
    """float32 [T-1, H, W, 2]: Farneback flow (dx, dy) from frame t to t+1."""
    import cv2

    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    return np.stack([cv2.calcOpticalFlowFarneback(
        grey[t], grey[t + 1], None, config.flow_pyr_scale, config.flow_levels, config.flow_winsize,
        config.flow_iterations, config.flow_poly_n, config.flow_poly_sigma, 0)
        for t in range(len(frames) - 1)]).astype(np.float32)


def segment_video(frames: np.ndarray, maps: np.ndarray, keep: np.ndarray | None = None,
                  config: VideoGraphConfig = VideoGraphConfig()) -> np.ndarray:
    """bool [T, H, W] object masks of a video (uint8 [T, H, W, 3]) from its localization maps
    (float [T, H, W] in [0, 1]). `keep` (bool [T], default all): the frames the filter kept;
    the others are background (their colours still inform the background model)."""
    import maxflow
    from skimage.color import rgb2lab

    frames, maps = np.asarray(frames), np.asarray(maps, np.float64)
    if frames.ndim != 4 or maps.shape != frames.shape[:3]:
        raise ValueError(f"segment_video: frames {frames.shape} must be [T, H, W, 3] and maps "
                         f"{maps.shape} [T, H, W]")
    keep = np.ones(len(frames), bool) if keep is None else np.asarray(keep, bool)
    if keep.shape != (len(frames),):
        raise ValueError(f"segment_video: keep {keep.shape} must be [T] = ({len(frames)},)")
    labels = superpixels(frames, config)
    n = int(labels.max()) + 1
    flat = labels.ravel()
    size = np.bincount(flat, minlength=n).astype(np.float64)

    def mean(values: np.ndarray) -> np.ndarray:   # per-superpixel mean of a [T, H, W, C] array
        values = values.reshape(len(flat), -1)
        return np.stack([np.bincount(flat, values[:, c], n) for c in range(values.shape[1])], 1) / size[:, None]

    lab = mean(rgb2lab(frames))
    score = mean(maps[..., None])[:, 0]
    flow = optical_flow(frames, config) if len(frames) > 1 else np.zeros((0, *frames.shape[1:3], 2), np.float32)
    motion = mean(np.concatenate([flow, flow[-1:] if len(flow) else np.zeros((1, *frames.shape[1:3], 2))]))

    src, dst, weight = _edges(labels, flow, lab, motion, config)
    rejected = ~keep[np.searchsorted(_frame_ends(labels), np.arange(n), side="right")]
    score = np.where(rejected, 0.0, score)
    p_map = np.clip(score, config.eps, 1 - config.eps)
    colour_bin = _colour_bins(lab, config.colour_bins)
    fg = p_map >= 0.5
    for round_ in range(max(1, config.rounds)):
        seeds = p_map if round_ == 0 else fg.astype(np.float64)   # then: the last solution
        p_colour = _colour_posterior(colour_bin, size, seeds, config)
        # log-odds: the colour model's plus the map's, centred on map_threshold. A low map score is
        # weak evidence of background (the map covers only the discriminative part), a high one strong
        logit = np.log(p_colour / (1 - p_colour)) + config.map_gain * (score - config.map_threshold)
        p = np.clip(1 / (1 + np.exp(-logit)), config.eps, 1 - config.eps)
        graph = maxflow.Graph[float]()
        nodes = graph.add_nodes(n)
        # source side = object: a node left on the sink side pays its source capacity
        cost_object = np.where(rejected, HARD, size * -np.log(p))
        graph.add_grid_tedges(nodes, size * -np.log(1 - p), cost_object)
        graph.add_edges(nodes[src], nodes[dst], weight, weight)
        graph.maxflow()
        fg = graph.get_grid_segments(nodes) == 0
    return fg[labels]


def _edges(labels, flow, lab, motion, config):
    """(src, dst, weight) of the within-frame and flow edges between superpixels."""
    t_count, height, width = labels.shape
    colour_scale = _mean_sq(lab[labels[:, :, 1:].ravel()] - lab[labels[:, :, :-1].ravel()]) + 1e-6
    motion_scale = _mean_sq(motion[labels[:, :, 1:].ravel()] - motion[labels[:, :, :-1].ravel()]) + 1e-6
    spatial = []
    for a, b in ((labels[:, :, 1:], labels[:, :, :-1]), (labels[:, 1:], labels[:, :-1])):
        keep = a != b
        spatial.append(np.stack([np.minimum(a, b)[keep], np.maximum(a, b)[keep]], 1))
    spatial_pairs, boundary = np.unique(np.concatenate(spatial), axis=0, return_counts=True)
    i, j = spatial_pairs.T
    similar = np.exp(-((lab[i] - lab[j]) ** 2).sum(1) / (2 * colour_scale)) \
        * np.exp(-((motion[i] - motion[j]) ** 2).sum(1) / (2 * motion_scale))
    src, dst = [i], [j]
    weight = [config.spatial_weight * boundary * similar]
    ys, xs = np.mgrid[0:height, 0:width]
    for t in range(t_count - 1):
        tx = np.clip(np.rint(xs + flow[t, ..., 0]), 0, width - 1).astype(np.int64)
        ty = np.clip(np.rint(ys + flow[t, ..., 1]), 0, height - 1).astype(np.int64)
        links, count = np.unique(np.stack([labels[t].ravel(), labels[t + 1][ty, tx].ravel()], 1),
                                 axis=0, return_counts=True)
        a, b = links.T
        similar = np.exp(-((lab[a] - lab[b]) ** 2).sum(1) / (2 * colour_scale))
        # count pixels carried across: on the scale of a spatial edge's boundary length
        src.append(a), dst.append(b)
        weight.append(config.temporal_weight * np.sqrt(count) * similar)
    return np.concatenate(src), np.concatenate(dst), np.concatenate(weight).astype(np.float64)


def _frame_ends(labels: np.ndarray) -> np.ndarray:
    """The first superpixel number after each frame's."""
    return labels.reshape(len(labels), -1).max(1) + 1


def _mean_sq(diff: np.ndarray) -> float:
    diff = diff[(diff != 0).any(1)] if diff.ndim == 2 else diff
    return float((diff ** 2).sum(-1).mean()) if len(diff) else 1.0


def _colour_bins(lab: np.ndarray, bins: int) -> np.ndarray:
    low, high = np.array([0.0, -100.0, -100.0]), np.array([100.0, 100.0, 100.0])
    q = np.clip(((lab - low) / (high - low) * bins).astype(np.int64), 0, bins - 1)
    return (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]


def _colour_posterior(colour_bin, size, fg_weight, config) -> np.ndarray:
    """P(object | colour) from pixel-weighted colour histograms of the object and background."""
    bins = config.colour_bins ** 3
    fg = np.bincount(colour_bin, size * fg_weight, bins) + 1.0   # +1: Laplace smoothing
    bg = np.bincount(colour_bin, size * (1 - fg_weight), bins) + 1.0
    fg, bg = fg / fg.sum(), bg / bg.sum()
    return fg[colour_bin] / (fg[colour_bin] + bg[colour_bin])
