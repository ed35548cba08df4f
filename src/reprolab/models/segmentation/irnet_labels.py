"""IRNet's inter-pixel relation labels from CAMs (jiwoon-ahn/irn ``step/cam_to_ir_label.py``).

Two label maps from the image's max-normalised CAMs: argmax over [constant background, CAMs] with
a high background score (``conf_fg_thres`` 0.30: only confident foreground survives) and with a
low one (``conf_bg_thres`` 0.05: only confident background stays background), each refined by a
dense CRF on hard labels (``misc/imutils.crf_inference_label``: ``unary_from_labels`` with
gt_prob 0.7, 10 iterations, Gaussian sxy 3 / compat 3, bilateral sxy 50 / srgb 5 / compat 10).
The result keeps the first map's foreground, is background where both say background, and 255
(ignored) elsewhere: the uncertain band around each object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelCrfParams:
    iterations: int = 10
    gt_prob: float = 0.7
    gaussian_sxy: float = 3
    gaussian_compat: float = 3
    bilateral_sxy: float = 50
    bilateral_srgb: float = 5
    bilateral_compat: float = 10


IRN_LABEL_CRF = LabelCrfParams()


def crf_inference_label(image: np.ndarray, labels: np.ndarray, n_labels: int,
                        params: LabelCrfParams = IRN_LABEL_CRF) -> np.ndarray:
    """(H, W) argmax of the dense CRF started from hard labels 0..n_labels-1 of an RGB uint8 image."""
    try:
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_labels
    except ImportError:
        from reprolab.errors import NotBuiltError

        raise NotBuiltError("the dense CRF needs pydensecrf2 (a project dependency): "
                            "pip install pydensecrf2==1.1") from None
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"crf_inference_label: expected an RGB uint8 image [H, W, 3], got {image.dtype} {image.shape}")
    height, width = labels.shape
    if (height, width) != image.shape[:2]:
        raise ValueError(f"crf_inference_label: labels {labels.shape} and image {image.shape[:2]} differ in size")
    crf = dcrf.DenseCRF2D(width, height, n_labels)
    crf.setUnaryEnergy(unary_from_labels(labels, n_labels, gt_prob=params.gt_prob, zero_unsure=False))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(sxy=params.bilateral_sxy, srgb=params.bilateral_srgb,
                             rgbim=np.ascontiguousarray(image), compat=params.bilateral_compat)
    q = np.array(crf.inference(params.iterations)).reshape(n_labels, height, width)
    return np.argmax(q, axis=0)


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
        return keys[crf_inference_label(image, np.argmax(scores, axis=0), n_labels=len(keys))]

    fg_conf, bg_conf = confident(conf_fg_thres), confident(conf_bg_thres)
    conf = fg_conf.copy()
    conf[fg_conf == 0] = 255
    conf[bg_conf + fg_conf == 0] = 0
    return conf.astype(np.uint8)
