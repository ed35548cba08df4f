"""IRNet's inter-pixel relation labels from CAMs (jiwoon-ahn/irn ``step/cam_to_ir_label.py``).

Two label maps from the image's max-normalised CAMs: argmax over [constant background, CAMs] with
a high background score (``conf_fg_thres`` 0.30: only confident foreground survives) and with a
low one (``conf_bg_thres`` 0.05: only confident background stays background), each refined by a
dense CRF on hard labels (``misc/imutils.crf_inference_label``, our `crf.crf_from_labels` with
IRNet's parameters).
The result keeps the first map's foreground, is background where both say background, and 255
(ignored) elsewhere: the uncertain band around each object.
"""

from __future__ import annotations

import numpy as np

from reprolab.models.segmentation.crf import crf_from_labels


def ir_label(image: np.ndarray, cams: np.ndarray, classes: np.ndarray, conf_fg_thres: float = 0.30,
             conf_bg_thres: float = 0.05) -> np.ndarray:
    """(H, W) uint8 relation-label map: 0 background, 1-20 classes, 255 unsure.

    ``cams``: (K, H, W) max-normalised full-size CAMs of the image's K classes, ``classes`` their
    VOC indices 1-20."""
    cams = np.asarray(cams, np.float64)
    if not len(cams):  # no class: all background (the official CRF divides by n_labels - 1 = 0)
        return np.zeros(image.shape[:2], np.uint8)
    keys = np.concatenate([[0], np.asarray(classes, np.int64)])

    def confident(threshold: float) -> np.ndarray:
        scores = np.concatenate([np.full((1, *cams.shape[1:]), threshold), cams])
        return keys[crf_from_labels(image, np.argmax(scores, axis=0), n_labels=len(keys))]

    fg_conf, bg_conf = confident(conf_fg_thres), confident(conf_bg_thres)
    conf = fg_conf.copy()
    conf[fg_conf == 0] = 255
    conf[bg_conf + fg_conf == 0] = 0
    return conf.astype(np.uint8)
