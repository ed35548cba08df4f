"""The fully connected CRF (Krähenbühl & Koltun) through pydensecrf2, with each repo's parameters.

PSA (jiwoon-ahn/psa tool/imutils.py `crf_inference`): 10 mean-field iterations, Gaussian kernel
sxy 3 / compat 3, bilateral kernel sxy 80 / srgb 13 / compat 10, unary = -log(probabilities)
(`unary_from_softmax`). PSA uses it on the low/high-alpha CAM scores (affinity labels) and, for the
paper's CAM+RW+dCRF column, on the random-walk scores.
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


PSA_CRF = CrfParams()


def dense_crf(image: np.ndarray, probs: np.ndarray, params: CrfParams = PSA_CRF, scale_factor: float = 1) -> np.ndarray:
    """Mean-field marginals [K, H, W] (float32) of an RGB uint8 image [H, W, 3] and scores [K, H, W]."""
    try:
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_softmax
    except ImportError:
        from reprolab.errors import NotBuiltError

        raise NotBuiltError("the dense CRF needs pydensecrf2 (a project dependency): "
                            "pip install pydensecrf2==1.1") from None
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"dense_crf: expected an RGB uint8 image [H, W, 3], got {image.dtype} {image.shape}")
    labels, height, width = probs.shape
    if (height, width) != image.shape[:2]:
        raise ValueError(f"dense_crf: scores {probs.shape[1:]} and image {image.shape[:2]} differ in size")
    crf = dcrf.DenseCRF2D(width, height, labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs.astype(np.float32))))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy / scale_factor, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(sxy=params.bilateral_sxy / scale_factor, srgb=params.bilateral_srgb,
                             rgbim=np.ascontiguousarray(image), compat=params.bilateral_compat)
    return np.array(crf.inference(params.iterations), dtype=np.float32).reshape(labels, height, width)
