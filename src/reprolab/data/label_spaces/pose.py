"""Human-pose label distances (log-ratio paper, MPII full-body crops): the authors' own files.

The prepared mpii-pose splits carry them per image (reprolab.data.prepare.mpii_pose):
- train: ``pose_nn`` (every other training image by rising pose distance, list_nn.pkl) and
  ``pose_nn_dist`` (those distances, dist_nn.pkl): the official mining reads exactly these lists;
- test: ``pose_dist`` (the image's row of dist_pose_val.mat).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from reprolab.data.label_spaces import LABEL_SPACES, LabelSpace, check_list_order


def _npy(payload: bytes) -> np.ndarray:
    return np.load(io.BytesIO(payload), allow_pickle=False)


@LABEL_SPACES.register(name="pose")
class PoseLabels(LabelSpace):
    def _payload(self, index: int, key: str) -> np.ndarray:
        sample = self.split[index]
        check_list_order(sample, index, self.split)
        if key not in sample.extra:
            raise KeyError(f"{self.split!r}: sample {sample.id} has no {key!r} (pose label distances "
                           "come with the prepared mpii-pose splits; prepare mpii-pose again)")
        return _npy(sample.extra[key])

    def distance_rows(self, indices: Sequence[int]) -> np.ndarray:
        return np.stack([self._payload(int(i), "pose_dist") for i in indices]).astype(np.float32)

    def sorted_neighbours(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return (self._payload(index, "pose_nn").astype(np.int64),
                self._payload(index, "pose_nn_dist").astype(np.float32))
