"""Retrieval metrics of the metric-learning papers: Recall@K, In-Shop recall, MAP@R, NMI, and the
label-distance metrics of the log-ratio paper (mean label distance of the top K, nDCG).

Recall@K follows the official Proxy-Anchor evaluation (code/utils.py): embeddings are
L2-normalised and compared by cosine similarity; every test image queries all the others (its own
match removed: the official code drops the top hit, here the query's own column is masked, which
differs only when another image has exactly the same score). A query is a hit at K when one of
its K nearest neighbours has its class. In-Shop queries a separate gallery, and a query is a hit
at K when fewer than K gallery images of other classes score strictly above its best same-class
gallery image (``evaluate_cos_Inshop``). Benchmarks report K = 1, 2, 4, 8 (CUB, Cars),
1, 10, 100, 1000 (SOP) and 1, 10, 20, 30, 40 (In-Shop).

Class-label metrics are returned in percent (the papers' unit). Neighbour search is exact and
chunked over queries, so a 60k x 60k search (SOP) stays within a few hundred MB.

Recall@K needs no neighbour lists, only each query's first-hit rank: the number of other-class
items that score strictly above its best same-class item (`first_hit_ranks`). That is one blocked
matmul and one comparison pass per query block, without a top-k: at SOP scale (60,502 x 512,
K up to 1000) it runs near the machine's float32 matmul bound (benchmarks/perf/retrieval_bound.py),
where a top-1000 search does not. It equals the neighbour-list rank unless another-class item
ties the best same-class score exactly (then the same-class item wins, as in the In-Shop rule);
`recall_at_k` uses it from BLOCKED_FROM items on, and the neighbour search below that.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

CHUNK_BYTES = 256 * 2**20  # one chunk of query-reference scores


def _chunk_size(num_reference: int, chunk_size: int | None) -> int:
    return chunk_size or max(1, CHUNK_BYTES // (4 * max(num_reference, 1)))


def _scores(query: torch.Tensor, reference: torch.Tensor, metric: str) -> torch.Tensor:
    if metric == "cosine":
        return query @ reference.T  # inputs are normalised by _prepare
    # negative squared distance: larger is nearer, same ranking as the distance
    return 2 * query @ reference.T - query.pow(2).sum(1, keepdim=True) - reference.pow(2).sum(1)


def _faiss():
    try:
        import faiss
    except ImportError:  # optional: exact torch search is the fallback
        return None
    return faiss


def _prepare(query, reference, metric):
    query = torch.as_tensor(query, dtype=torch.float32)
    reference = query if reference is None else torch.as_tensor(reference, dtype=torch.float32)
    if metric == "cosine":
        query, reference = F.normalize(query, dim=1), F.normalize(reference, dim=1)
    elif metric != "euclidean":
        raise ValueError(f"unknown metric {metric!r}; expected 'cosine' or 'euclidean'")
    return query.contiguous(), reference.contiguous()


@torch.no_grad()
def neighbour_chunks(
    query: torch.Tensor,
    reference: torch.Tensor | None = None,
    k: int = 1,
    metric: str = "cosine",
    chunk_size: int | None = None,
    backend: str = "auto",
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, indices)`` for consecutive query chunks: the k nearest references of
    queries ``start..start+len(indices)``, nearest first. See :func:`nearest_neighbours`."""
    exclude_self = reference is None
    query, reference = _prepare(query, reference, metric)
    available = reference.shape[0] - int(exclude_self)
    if not 1 <= k <= available:
        raise ValueError(f"k={k} neighbours requested but only {available} reference items exist")
    faiss = _faiss() if backend in ("auto", "faiss") else None
    if backend == "faiss" and faiss is None:
        raise ImportError("backend='faiss' needs the faiss-cpu package (pip install faiss-cpu)")
    if faiss is not None:
        index = faiss.IndexFlatIP(reference.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(reference.shape[1])
        index.add(reference.numpy())
        step = chunk_size or 4096
        for start in range(0, query.shape[0], step):
            chunk = query[start : start + step]
            _, found = index.search(chunk.numpy(), k + int(exclude_self))
            found = torch.from_numpy(found)
            if exclude_self:  # drop the query's own entry (or the last one when absent)
                own = found == torch.arange(start, start + chunk.shape[0])[:, None]
                found = found.gather(1, own.int().argsort(dim=1, stable=True))[:, :k]
            yield start, found
        return
    step = _chunk_size(reference.shape[0], chunk_size)
    for start in range(0, query.shape[0], step):
        scores = _scores(query[start : start + step], reference, metric)
        if exclude_self:
            rows = torch.arange(scores.shape[0])
            scores[rows, rows + start] = float("-inf")
        yield start, scores.topk(k, dim=1).indices


def nearest_neighbours(
    query: torch.Tensor,
    reference: torch.Tensor | None = None,
    k: int = 1,
    metric: str = "cosine",
    chunk_size: int | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Indices (num_query, k) of each query's k nearest references, nearest first.

    ``reference=None`` searches the queries themselves and leaves out each query's own entry.
    Cosine normalises both sides; Euclidean uses the raw vectors (the log-ratio evaluation).
    The search is exact: faiss (``IndexFlatIP``/``IndexFlatL2``) when installed, else chunked
    torch matmul + topk (``backend="torch"`` forces it).
    """
    return torch.cat([found for _, found in neighbour_chunks(query, reference, k, metric, chunk_size, backend)])


def _first_hit_rank(neighbour_labels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Rank (0-based) of the first neighbour with the query's label; K when there is none."""
    hits = neighbour_labels == labels[:, None]
    k = neighbour_labels.shape[1]
    return torch.where(hits.any(1), hits.int().argmax(1), torch.full_like(labels, k))


# Scores of one query block in first_hit_ranks: larger blocks keep the matmul nearer its peak
# (2,218 rows at SOP scale; the peak resident memory stays under 1 GB).
BLOCKED_CHUNK_BYTES = 512 * 2**20
# Class sizes up to this gather their members' scores; larger classes use a label mask.
GATHER_CLASS_SIZE = 64
# recall_at_k counts first-hit ranks from this many items on (SOP, not CUB or Cars): identical
# but for exact ties, and where a top-k search costs more than the matmul.
BLOCKED_FROM = 20_000


def _class_members(labels: torch.Tensor) -> torch.Tensor | None:
    """(n, largest class) indices of each item's class members, padded with the item itself;
    None when a class is larger than GATHER_CLASS_SIZE."""
    order = labels.argsort(stable=True)
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    largest = int(counts.max())
    if largest > GATHER_CLASS_SIZE:
        return None
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(largest)
    table = order[(starts[:, None] + slot).clamp(max=len(labels) - 1)]  # (classes, largest)
    members = table[inverse]
    own = torch.arange(len(labels))[:, None]
    return torch.where(slot[None, :] < counts[inverse][:, None], members, own)


@torch.no_grad()
def first_hit_ranks(embeddings: torch.Tensor, labels: torch.Tensor,
                    chunk_size: int | None = None) -> torch.Tensor:
    """For every item querying all the others by cosine similarity: how many items of other
    classes score strictly above its best same-class item (its 0-based first-hit rank); the
    number of items when its class has no other member. Recall@K = mean(rank < K)."""
    embeddings, _ = _prepare(embeddings, None, "cosine")
    labels = torch.as_tensor(labels).long()
    n = embeddings.shape[0]
    members = _class_members(labels)
    step = chunk_size or max(1, BLOCKED_CHUNK_BYTES // (4 * max(n, 1)))
    scores = torch.empty(min(step, n), n)  # reused: one block of query-reference scores
    ranks = torch.empty(n, dtype=torch.long)
    wide = torch.float64 if n >= 2**24 else None  # float32 counts are exact below 2**24
    for start in range(0, n, step):
        block = scores[: min(step, n - start)]
        torch.mm(embeddings[start : start + len(block)], embeddings.T, out=block)
        rows = torch.arange(len(block))
        block[rows, rows + start] = float("-inf")  # not its own match
        if members is not None:
            best = block.gather(1, members[start : start + len(block)]).amax(1, keepdim=True)
        else:
            same = labels[start : start + len(block), None] == labels[None, :]
            best = block.masked_fill(~same, float("-inf")).amax(1, keepdim=True)
        alone = best[:, 0] == float("-inf")  # no other item of its class: never a hit
        # in place and in float: a bool temporary and its sum cost as much as the matmul
        count = block.gt_(best).sum(1, dtype=wide).long()
        count[alone] = n
        ranks[start : start + len(block)] = count
    return ranks


def recall_at_k(embeddings: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 2, 4, 8),
                chunk_size: int | None = None, backend: str = "auto") -> dict[str, float]:
    """Recall@K (percent) of every item querying all others, cosine similarity.

    Keeps only each query's first-hit rank, so memory stays flat even for K = 1000 on SOP.
    `backend`: "blocked" counts ranks (first_hit_ranks); "faiss" / "torch" search neighbour
    lists; "auto" is blocked from BLOCKED_FROM items on, else the neighbour search."""
    labels = torch.as_tensor(labels).long()
    if backend == "blocked" or (backend == "auto" and len(labels) >= BLOCKED_FROM):
        first = first_hit_ranks(embeddings, labels, chunk_size)
        return {f"recall@{k}": 100.0 * (first < k).double().mean().item() for k in ks}
    first = torch.empty_like(labels)
    for start, found in neighbour_chunks(embeddings, k=max(ks), chunk_size=chunk_size, backend=backend):
        first[start : start + len(found)] = _first_hit_rank(labels[found], labels[start : start + len(found)])
    return {f"recall@{k}": 100.0 * (first < k).double().mean().item() for k in ks}


@torch.no_grad()
def inshop_recall_at_k(
    query: torch.Tensor,
    gallery: torch.Tensor,
    query_labels: torch.Tensor,
    gallery_labels: torch.Tensor,
    ks: Sequence[int] = (1, 10, 20, 30, 40),
    chunk_size: int | None = None,
) -> dict[str, float]:
    """In-Shop Recall@K (percent): hit when fewer than K negatives beat the best positive.

    A query with no same-class gallery image counts as a miss (the official code would fail).
    """
    query = F.normalize(torch.as_tensor(query, dtype=torch.float32), dim=1)
    gallery = F.normalize(torch.as_tensor(gallery, dtype=torch.float32), dim=1)
    query_labels, gallery_labels = torch.as_tensor(query_labels).long(), torch.as_tensor(gallery_labels).long()
    step = _chunk_size(gallery.shape[0], chunk_size)
    beaten_by = []
    for start in range(0, query.shape[0], step):
        scores = query[start : start + step] @ gallery.T
        positive = query_labels[start : start + step, None] == gallery_labels[None, :]
        best_positive = scores.masked_fill(~positive, float("-inf")).amax(1, keepdim=True)
        count = ((scores > best_positive) & ~positive).sum(1)
        count[~positive.any(1)] = gallery.shape[0]  # no positive: never a hit
        beaten_by.append(count)
    beaten = torch.cat(beaten_by)
    return {f"recall@{k}": 100.0 * (beaten < k).double().mean().item() for k in ks}


def map_at_r(embeddings: torch.Tensor, labels: torch.Tensor, chunk_size: int | None = None) -> float:
    """MAP@R (percent; Musgrave et al., 2020): R = number of other items of the query's class,
    AP over the top R with precision counted at each relevant rank. Items alone in their class are
    left out."""
    labels = torch.as_tensor(labels).long()
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    r = counts[inverse] - 1
    keep = r > 0
    if not keep.any():
        raise ValueError("MAP@R needs at least one class with two or more items")
    neighbours = nearest_neighbours(embeddings, k=int(r.max()), chunk_size=chunk_size)
    relevant = (labels[neighbours] == labels[:, None])[keep]
    r = r[keep]
    ranks = torch.arange(1, relevant.shape[1] + 1)
    within_r = ranks[None, :] <= r[:, None]
    relevant = relevant & within_r
    precision = relevant.cumsum(1) / ranks[None, :]
    average_precision = (precision * relevant).sum(1) / r
    return 100.0 * average_precision.double().mean().item()


def nmi(embeddings: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> float:
    """NMI (percent) between the classes and a k-means clustering (k = number of classes) of the
    L2-normalised embeddings (scikit-learn KMeans, one initialisation, fixed seed)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    x = F.normalize(torch.as_tensor(embeddings, dtype=torch.float32), dim=1).numpy()
    y = np.asarray(labels)
    clusters = KMeans(n_clusters=len(np.unique(y)), n_init=1, random_state=seed).fit_predict(x)
    return 100.0 * normalized_mutual_info_score(y, clusters)


def retrieval_metrics(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    ks: Sequence[int] = (1, 2, 4, 8),
    with_map_at_r: bool = True,
    with_nmi: bool = False,
) -> dict[str, float]:
    """Recall@K, and optionally MAP@R and NMI, of a test set querying itself (percent)."""
    metrics = recall_at_k(embeddings, labels, ks)
    if with_map_at_r:
        metrics["map@r"] = map_at_r(embeddings, labels)
    if with_nmi:
        metrics["nmi"] = nmi(embeddings, labels)
    return metrics


# ----------------------------------------------------------------- continuous labels (log-ratio)


def mean_label_distance_at_k(
    query: torch.Tensor, reference: torch.Tensor | None, label_distances: torch.Tensor | np.ndarray,
    max_k: int = 10, scale: float = 1.0,
) -> np.ndarray:
    """Mean label distance between each query and its top-K retrievals, for K = 1..max_k.

    As utils.eval_retrieval of the official log-ratio code: retrieval by Euclidean distance of
    the (unnormalised) embeddings; ``label_distances`` is (num_query, num_reference); the mean is
    over the K retrieved and then over queries. The pose task multiplies by ``scale = 224/288``
    (label distances measured on 288-pixel crops, reported in 224-pixel units). Lower is better.
    ``reference=None`` is leave-one-out: every query searches the other queries, and
    ``label_distances`` is then (num_query, num_query).
    """
    dist = torch.as_tensor(np.asarray(label_distances), dtype=torch.float64)
    neighbours = nearest_neighbours(query, reference, k=max_k, metric="euclidean")
    retrieved = dist.gather(1, neighbours)
    cumulative_mean = retrieved.cumsum(1) / torch.arange(1, max_k + 1)
    return (cumulative_mean.mean(0) * scale).numpy()


def ndcg_at_k(
    query: torch.Tensor, reference: torch.Tensor | None, label_distances: torch.Tensor | np.ndarray,
    ks: Sequence[int] = tuple(range(10, 101, 10)),
) -> dict[str, float]:
    """nDCG@K with relevance from label distance, in [0, 1] (higher is better).

    Relevance of a reference at label distance d is 2^(-log2(1 + d)) = 1 / (1 + d), the
    definition in the official code (utils.eval_retrieval, "continuous nDCG"); the paper's text
    was not reachable to confirm it. DCG@K = sum_{rank i <= K} rel_i / log2(i + 1) over the
    embedding ranking (Euclidean), divided by the DCG@K of the ranking by label distance.
    ``reference=None`` is leave-one-out, as in :func:`mean_label_distance_at_k`.
    """
    dist = torch.as_tensor(np.asarray(label_distances), dtype=torch.float64)
    relevance = 1.0 / (1.0 + dist)
    k_max = max(ks)
    neighbours = nearest_neighbours(query, reference, k=k_max, metric="euclidean")
    candidates = relevance.clone()
    if reference is None:  # a query is not its own ideal retrieval
        candidates.fill_diagonal_(float("-inf"))
    ideal = candidates.topk(k_max, dim=1).values  # most relevant first = nearest in label
    discounts = 1.0 / torch.log2(torch.arange(2, k_max + 2, dtype=torch.float64))
    dcg = (relevance.gather(1, neighbours) * discounts).cumsum(1)
    ideal_dcg = (ideal * discounts).cumsum(1)
    ndcg = (dcg / ideal_dcg).mean(0)
    return {f"ndcg@{k}": ndcg[k - 1].item() for k in ks}
