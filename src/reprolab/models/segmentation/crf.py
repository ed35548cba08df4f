"""The fully connected CRF (Krähenbühl & Koltun) through pydensecrf2, with each repo's parameters.

PSA (jiwoon-ahn/psa tool/imutils.py `crf_inference`): 10 mean-field iterations, Gaussian kernel
sxy 3 / compat 3, bilateral kernel sxy 80 / srgb 13 / compat 10, unary = -log(probabilities)
(`unary_from_softmax`). PSA uses it on the low/high-alpha CAM scores (affinity labels) and, for the
paper's CAM+RW+dCRF column, on the random-walk scores.

IRNet (jiwoon-ahn/irn misc/imutils.py `crf_inference_label`): started from hard labels
(`unary_from_labels`, gt_prob 0.7), 10 iterations, Gaussian sxy 3 / compat 3, bilateral sxy 50 /
srgb 5 / compat 10; the argmax is the refined label map (IRNet's relation labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CrfParams:
    iterations: int = 10
    gaussian_sxy: float = 3
    gaussian_compat: float = 3
    bilateral_sxy: float = 80
    bilateral_srgb: float = 13
    bilateral_compat: float = 10
    gt_prob: float = 0.7  # confidence of a hard label (crf_from_labels only)


PSA_CRF = CrfParams()
IRN_LABEL_CRF = CrfParams(bilateral_sxy=50, bilateral_srgb=5)


def _densecrf():
    try:
        import pydensecrf.densecrf as dcrf
        import pydensecrf.utils as utils
    except ImportError:
        from reprolab.errors import NotBuiltError

        raise NotBuiltError("the dense CRF needs pydensecrf2 (a project dependency): "
                            "pip install pydensecrf2==1.1") from None
    return dcrf, utils


def _check_image(image: np.ndarray, size: tuple[int, ...], caller: str, what: str) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{caller}: expected an RGB uint8 image [H, W, 3], got {image.dtype} {image.shape}")
    if tuple(size) != image.shape[:2]:
        raise ValueError(f"{caller}: {what} {tuple(size)} and image {image.shape[:2]} differ in size")


def _mean_field(image: np.ndarray, unary: np.ndarray, labels: int, params: CrfParams,
                scale_factor: float = 1) -> np.ndarray:
    """[labels, H, W] marginals after `params.iterations` mean-field steps from `unary`."""
    dcrf, _ = _densecrf()
    height, width = image.shape[:2]
    crf = dcrf.DenseCRF2D(width, height, labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy / scale_factor, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(sxy=params.bilateral_sxy / scale_factor, srgb=params.bilateral_srgb,
                             rgbim=np.ascontiguousarray(image), compat=params.bilateral_compat)
    return np.array(crf.inference(params.iterations), dtype=np.float32).reshape(labels, height, width)


def dense_crf(image: np.ndarray, probs: np.ndarray, params: CrfParams = PSA_CRF, scale_factor: float = 1) -> np.ndarray:
    """Mean-field marginals [K, H, W] (float32) of an RGB uint8 image [H, W, 3] and scores [K, H, W]."""
    _, utils = _densecrf()
    _check_image(image, probs.shape[1:], "dense_crf", "scores")
    unary = utils.unary_from_softmax(probs.astype(np.float32))
    return _mean_field(image, unary, probs.shape[0], params, scale_factor)


def crf_from_labels(image: np.ndarray, labels: np.ndarray, n_labels: int,
                    params: CrfParams = IRN_LABEL_CRF) -> np.ndarray:
    """(H, W) argmax of the dense CRF started from hard labels 0..n_labels-1 of an RGB uint8 image."""
    _, utils = _densecrf()
    _check_image(image, labels.shape, "crf_from_labels", "labels")
    unary = utils.unary_from_labels(labels, n_labels, gt_prob=params.gt_prob, zero_unsure=False)
    return np.argmax(_mean_field(image, unary, n_labels, params), axis=0)
