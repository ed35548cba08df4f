"""PSA's random walk (jiwoon-ahn/psa infer_aff.py), dense as the official code and sparse.

Official: the [N, N] affinity matrix of the N = h*w positions of the stride-8 map (pair
affinities, their transposes, ones on the diagonal) is raised to beta, column-normalized into
a transition matrix T, squared logt times (T^t, t = 2^logt), and the CAMs (average-pooled by the
stride, background (1 - max CAM)^alpha) are propagated: cam_rw = cam_vec @ T^t.

The dense matrix and its repeated squaring are O(N^2) memory and O(N^3) time; `random_walk_sparse`
applies T to the [21, N] CAMs t times instead (T has ~2 * offsets + 1 non-zeros per column):
the same product, associativity only, with O(N * offsets) memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reprolab.models.segmentation.affinity import pair_indices

PSA_BETA, PSA_LOGT, PSA_RW_ALPHA = 8, 8, 16


def _pairs(aff: torch.Tensor, radius: int, height: int, width: int):
    """(rows, columns, values) of the symmetric affinity matrix with its unit diagonal."""
    source, target = pair_indices(radius, height, width)
    source = source.unsqueeze(0).expand(aff.shape[0], -1).reshape(-1)
    area = height * width
    diagonal = torch.arange(area)
    rows = torch.cat([source, diagonal, target])
    cols = torch.cat([target, diagonal, source])
    values = torch.cat([aff.reshape(-1), torch.ones(area, dtype=aff.dtype, device=aff.device), aff.reshape(-1)])
    return rows.to(aff.device), cols.to(aff.device), values


def dense_affinity_matrix(aff: torch.Tensor, radius: int, height: int, width: int) -> torch.Tensor:
    """The official `to_dense` matrix [N, N] from pair affinities [offsets, P] of one image."""
    rows, cols, values = _pairs(aff, radius, height, width)
    area = height * width
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (area, area),
                                   check_invariants=False).to_dense()


def transition_matrix(aff_mat: torch.Tensor, beta: float = PSA_BETA) -> torch.Tensor:
    aff_mat = aff_mat ** beta
    return aff_mat / aff_mat.sum(dim=0, keepdim=True)


def random_walk_dense(cam_vec: torch.Tensor, trans_mat: torch.Tensor, logt: int = PSA_LOGT) -> torch.Tensor:
    """cam_vec [K, N] @ T^(2^logt), squaring T logt times, as the official code."""
    for _ in range(logt):
        trans_mat = trans_mat @ trans_mat
    return cam_vec @ trans_mat


def random_walk_sparse(cam_vec: torch.Tensor, aff: torch.Tensor, radius: int, height: int, width: int,
                       beta: float = PSA_BETA, logt: int = PSA_LOGT) -> torch.Tensor:
    """cam_vec [K, N] @ T^(2^logt) with T kept sparse: 2^logt products of T^T with the CAMs."""
    rows, cols, values = _pairs(aff, radius, height, width)
    area = height * width
    values = values ** beta
    column_sum = torch.zeros(area, dtype=values.dtype, device=values.device).index_add_(0, cols, values)
    values = values / column_sum[cols]
    # (v T)^T = T^T v^T: T^T has T's entries with rows and columns swapped
    transposed = torch.sparse_coo_tensor(torch.stack([cols, rows]), values, (area, area),
                                         check_invariants=False).coalesce()
    walked = cam_vec.t().contiguous()
    for _ in range(2 ** logt):
        walked = torch.sparse.mm(transposed, walked)
    return walked.t()


def rw_cam_vector(cam: torch.Tensor, alpha: float, stride: int) -> torch.Tensor:
    """[21, h, w]: infer_aff.py's CAM input; `cam` [20, H, W] max-normalized CAMs (zero for absent
    classes) padded to a multiple of the stride; background (1 - max CAM)^alpha; avg-pooled."""
    full = torch.cat([(1 - cam.amax(0, keepdim=True)) ** alpha, cam])
    height, width = cam.shape[-2:]
    padded_h, padded_w = -(-height // stride) * stride, -(-width // stride) * stride
    full = F.pad(full, (0, padded_w - width, 0, padded_h - height))
    return F.avg_pool2d(full[None], stride, stride)[0]


def propagate(cam: torch.Tensor, aff: torch.Tensor, radius: int, stride: int, *, alpha: float = PSA_RW_ALPHA,
              beta: float = PSA_BETA, logt: int = PSA_LOGT, dense: bool = False) -> torch.Tensor:
    """[21, H, W] random-walk scores of one image: `cam` [20, H, W] and the pair affinities
    [offsets, P] of its padded stride-`stride` map; upsampled bilinearly and cropped to H x W."""
    vec = rw_cam_vector(cam, alpha, stride)
    height, width = vec.shape[-2:]
    flat = vec.reshape(vec.shape[0], -1).to(aff.dtype)
    if dense:
        walked = random_walk_dense(flat, transition_matrix(dense_affinity_matrix(aff, radius, height, width), beta), logt)
    else:
        walked = random_walk_sparse(flat, aff, radius, height, width, beta, logt)
    walked = walked.view(1, -1, height, width)
    up = F.interpolate(walked, (height * stride, width * stride), mode="bilinear", align_corners=False)[0]
    return up[:, :cam.shape[-2], :cam.shape[-1]]
