"""Local correlation (cosine similarity over a window of displacements), pure PyTorch.

SELFY and MotionSqueeze both compare every position of a query map with a window of positions
of a key map. The official code does this with a compiled extension
(``spatial_correlation_sampler``) or, as a fallback, with a full (HW x HW) matmul followed by
diagonal extraction in Python loops. Here the window is computed one row displacement at a time:
for each vertical offset ``du`` one batched matmul compares every query row with the
(horizontally zero-padded) key row ``du`` rows away, and a strided view keeps only the ``V``
horizontal displacements. Several key maps per query (SELFY's temporal neighbours) share the
same matmul. The transient buffer is O(N H W G (W + V)) instead of O(N G (HW)^2), backward is
hand-written (in-place accumulation, no per-offset zero tensors), and the result is exact: zero
outside the map, as the compiled sampler's zero padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def l2_normalize(x: torch.Tensor, dim: int = 1, eps: float = 1e-6) -> torch.Tensor:
    """x / sqrt(sum(x^2) + eps), the official codes' normalisation (not F.normalize's clamp)."""
    return x / (x.pow(2).sum(dim=dim, keepdim=True) + eps).sqrt()


class _RowCorrelation(torch.autograd.Function):
    """Banded row-by-row correlation with a hand-written backward.

    Autograd through per-offset slices would allocate and zero a full key-sized gradient for
    every offset; here both gradients accumulate in place (``baddbmm_``) into one buffer each.
    """

    @staticmethod
    def forward(ctx, q_rows, k_rows, h, groups, v_size):
        # q_rows (H*N, W, C); k_rows (H + U - 1, N, C, G*Wp) -> out (U, H*N, W, G, V)
        hn, w, c = q_rows.shape
        u_size = k_rows.shape[0] - h + 1
        gwp = k_rows.shape[-1]
        wp = gwp // groups
        out = q_rows.new_empty(u_size, hn, w, groups, v_size)
        scores = q_rows.new_empty(hn, w, gwp)
        # Row w of each (W, Wp) score block read from column w on: the band is a strided view.
        band = scores.as_strided((hn, w, groups, v_size), (w * gwp, gwp + 1, wp, 1))
        for du in range(u_size):
            torch.bmm(q_rows, k_rows[du : du + h].view(hn, c, gwp), out=scores)
            out[du].copy_(band)
        ctx.save_for_backward(q_rows, k_rows)
        ctx.shape = (h, groups)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        q_rows, k_rows = ctx.saved_tensors
        h, groups = ctx.shape
        hn, w, c = q_rows.shape
        gwp = k_rows.shape[-1]
        wp = gwp // groups
        v_size = grad_out.shape[-1]
        grad_q = torch.zeros_like(q_rows)
        grad_k = torch.zeros_like(k_rows)
        scores = q_rows.new_zeros(hn, w, gwp)  # entries off the band stay zero
        band = scores.as_strided((hn, w, groups, v_size), (w * gwp, gwp + 1, wp, 1))
        for du in range(grad_out.shape[0]):
            band.copy_(grad_out[du])
            k_view = k_rows[du : du + h].view(hn, c, gwp)
            grad_q.baddbmm_(scores, k_view.transpose(1, 2))
            grad_k[du : du + h].view(hn, c, gwp).baddbmm_(q_rows.transpose(1, 2), scores)
        return grad_q, grad_k, None, None, None


def local_correlation(query: torch.Tensor, key: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """Dot products of each query position with a (U, V) window of key positions.

    Args:
        query: (N, C, H, W) maps.
        key: (N, C, H, W) maps, or (N, G, C, H, W): G key maps per query map (SELFY's temporal
            neighbours), all compared with the same query in one pass.
        window: (U, V), both odd; displacements run over -(U//2)..U//2 rows and -(V//2)..V//2
            columns.

    Returns:
        (N, U, V, H, W), or (N, G, U, V, H, W) for grouped keys, with
        ``out[n, (g,) u, v, h, w] = sum_c query[n, c, h, w] * key[n, (g,) c, h + u - U//2,
        w + v - V//2]`` and 0 where the key position is off the map (the layout of
        ``SpatialCorrelationSampler(kernel_size=1, patch_size=(U, V))``).
    """
    grouped = key.dim() == 5
    keys = key if grouped else key.unsqueeze(1)
    if query.dim() != 4 or keys.shape[:1] + keys.shape[2:] != query.shape:
        raise ValueError(
            f"local_correlation expects query (N, C, H, W) and key (N, C, H, W) or "
            f"(N, G, C, H, W) of matching sizes, got {tuple(query.shape)} and {tuple(key.shape)}"
        )
    u_size, v_size = window
    if u_size % 2 == 0 or v_size % 2 == 0:
        raise ValueError(f"correlation window must be odd, got {window}")
    n, c, h, w = query.shape
    groups = keys.shape[1]
    ru, rv = u_size // 2, v_size // 2
    # Rows outermost, so that a block of consecutive key rows is one contiguous (rows * N)
    # batch: every per-offset matmul reads a view, nothing is copied per offset.
    q_rows = query.permute(2, 0, 3, 1).reshape(h * n, w, c)  # (H*N, W, C)
    k_rows = F.pad(keys, (rv, rv, ru, ru)).permute(3, 0, 2, 1, 4)  # (H+2ru, N, C, G, W+2rv)
    k_rows = k_rows.reshape(h + 2 * ru, n, c, groups * (w + 2 * rv)).contiguous()
    out = _RowCorrelation.apply(q_rows, k_rows, h, groups, v_size)  # (U, H*N, W, G, V)
    out = out.view(u_size, h, n, w, groups, v_size).permute(2, 4, 0, 5, 1, 3)  # (N, G, U, V, H, W)
    return out if grouped else out.squeeze(1)
