"""Stage 2 of web-video WSSS: frames are kept by the classifier's score for the query class.
(With a trained classifier on the fixture's distractor videos: a later test, with the CAM stage.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reprolab.models.segmentation.frame_filter import keep_frames

# 5 frames x 3 classes: a video retrieved for class 1 whose frames 0 and 3 show something else
SCORES = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.1, 0.5, 0.3], [0.1, 0.49, 0.9],
                   [0.0, 0.97, 0.2]])


def test_keeps_frames_scored_high_for_the_query_only():
    assert keep_frames(SCORES, 1).tolist() == [False, True, True, False, True]
    assert keep_frames(SCORES, 0).tolist() == [True, False, False, False, False]
    assert keep_frames(torch.tensor(SCORES), 1, threshold=0.9).tolist() == [False, False, False, False, True]
    assert keep_frames(np.zeros((0, 3)), 2).shape == (0,)


@pytest.mark.parametrize(("scores", "query", "threshold", "message"), [
    (SCORES[:, 0], 0, 0.5, r"scores \(5,\) must be \[frames, classes\]"),
    (SCORES, 3, 0.5, "query class 3 is not one of the 3 score columns"),
    (SCORES * 4 - 1, 1, 0.5, "apply the sigmoid"),
    (SCORES, 1, 1.0, r"threshold 1.0 must be in \(0, 1\)"),
])
def test_bad_input_is_named(scores, query, threshold, message):
    with pytest.raises(ValueError, match=message):
        keep_frames(scores, query, threshold)
