"""Stage 2 of Hong et al. (arXiv 1701.00352): drop the frames of a retrieved video that do not
show its query class, by the encoder's classification score for that class.

A video found by the query "cat" has many frames without a cat (titles, people, other animals);
the paper keeps a frame only when the VOC-trained classifier scores the query class high. The
score is the multi-label classifier's sigmoid probability; the threshold is ours (0.5, the
decision boundary of a multi-label sigmoid classifier: the paper's value is not known to us).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_THRESHOLD", "keep_frames"]

DEFAULT_THRESHOLD = 0.5


def keep_frames(scores, query: int, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """bool [T]: frames whose probability for class `query` is at least `threshold`.

    `scores`: [T, C] per-frame class probabilities in [0, 1] (a torch tensor or an array).
    """
    scores = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, np.float64)
    if scores.ndim != 2:
        raise ValueError(f"keep_frames: scores {scores.shape} must be [frames, classes]")
    if not 0 <= query < scores.shape[1]:
        raise ValueError(f"keep_frames: query class {query} is not one of the {scores.shape[1]} "
                         "score columns")
    if scores.size and (scores.min() < 0 or scores.max() > 1 or np.isnan(scores).any()):
        raise ValueError("keep_frames: scores must be probabilities in [0, 1] (apply the sigmoid "
                         "to the classifier's logits first)")
    if not 0 < threshold < 1:
        raise ValueError(f"keep_frames: threshold {threshold} must be in (0, 1)")
    return scores[:, query] >= threshold
