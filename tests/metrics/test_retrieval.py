"""Retrieval metrics against pytorch-metric-learning, brute force, and the official rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reprolab.metrics.retrieval import (
    inshop_recall_at_k,
    map_at_r,
    mean_label_distance_at_k,
    ndcg_at_k,
    nearest_neighbours,
    nmi,
    recall_at_k,
    retrieval_metrics,
)


def clustered(num_classes=20, per_class=5, dim=16, noise=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=g)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    x = centres[labels] + noise * torch.randn(len(labels), dim, generator=g)
    return x, labels


def brute_force_recall(x, labels, k):
    sim = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
    hits = 0
    for i in range(len(x)):
        order = [j for j in sim[i].argsort(descending=True).tolist() if j != i][:k]
        hits += int(any(labels[j] == labels[i] for j in order))
    return 100.0 * hits / len(x)


def test_recall_at_k_matches_brute_force_and_chunking_does_not_matter():
    x, y = clustered(noise=1.5)
    metrics = recall_at_k(x, y, ks=(1, 2, 4, 8))
    for k in (1, 2, 4, 8):
        assert metrics[f"recall@{k}"] == pytest.approx(brute_force_recall(x, y, k))
    for backend in ("torch", "faiss"):
        assert recall_at_k(x, y, ks=(1, 2, 4, 8), chunk_size=7, backend=backend) == metrics
    assert 0 < metrics["recall@1"] < metrics["recall@8"] <= 100


def test_recall_and_map_at_r_match_pytorch_metric_learning():
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    x, y = clustered(num_classes=30, per_class=6, noise=1.2, seed=1)
    xn = F.normalize(x, dim=1)
    calculator = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"), k="max_bin_count")
    reference = calculator.get_accuracy(xn, y, xn, y, ref_includes_query=True)
    ours = retrieval_metrics(x, y, ks=(1,))
    assert ours["recall@1"] == pytest.approx(100 * reference["precision_at_1"], abs=1e-9)
    assert ours["map@r"] == pytest.approx(100 * reference["mean_average_precision_at_r"], abs=1e-6)


def test_map_at_r_on_a_hand_made_ranking():
    # 1-d points: query 0 (class a) sees 1 (a), 3 (b), 2 (a) in that order: R = 2
    x = torch.tensor([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.9, 0.44]])
    y = torch.tensor([0, 0, 0, 1])
    neighbours = nearest_neighbours(x, k=3)
    assert neighbours[0].tolist() == [1, 3, 2]
    # AP@R for query 0: ranks 1..2 -> hit, miss -> (1/1) / 2 = 0.5
    ap0 = 0.5
    # query 1: neighbours 0 (a), 3 (b) -> 0.5 as well; query 2: nearest 3 (b), then 1 (a) -> 1/2 * 1/2
    ap1 = 0.5
    ap2 = 0.25
    assert map_at_r(x, y) == pytest.approx(100 * (ap0 + ap1 + ap2) / 3)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_faiss_and_torch_searches_agree(metric):
    x, _ = clustered(num_classes=10, per_class=8, seed=3)
    q = torch.randn(7, 16)
    for reference in (None, x):
        query = x if reference is None else q
        a = nearest_neighbours(query, reference, k=5, metric=metric, backend="torch", chunk_size=4)
        b = nearest_neighbours(query, reference, k=5, metric=metric, backend="faiss", chunk_size=4)
        assert torch.equal(a, b)
        if reference is None:
            assert not (a == torch.arange(len(x))[:, None]).any()


def test_nearest_neighbours_exclude_only_the_query_itself():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    for backend in ("torch", "faiss"):
        nn_idx = nearest_neighbours(x, k=1, backend=backend)
        assert nn_idx[:2, 0].tolist() == [1, 0]  # the duplicate is found, the query itself is not
    with pytest.raises(ValueError, match="only 2 reference items"):
        nearest_neighbours(x, k=3)


def test_inshop_recall_follows_the_official_hit_rule():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    gallery = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9], [-1.0, 0.0]])
    q_labels = torch.tensor([0, 1])
    g_labels = torch.tensor([1, 2, 0, 3, 0])
    # query 0: its best positive (index 2) is beaten by 2 negatives -> a hit from K = 3
    # query 1: its only positive (index 0, cosine 0.11) is beaten by 3 negatives -> from K = 4;
    # the positive at index 4 of query 0 scores lowest of all and does not matter
    metrics = inshop_recall_at_k(q, gallery, q_labels, g_labels, ks=(1, 3, 4))
    assert metrics == {"recall@1": 0.0, "recall@3": 50.0, "recall@4": 100.0}
    orphan = inshop_recall_at_k(q, gallery, torch.tensor([0, 7]), g_labels, ks=(5,))
    assert orphan["recall@5"] == 50.0


def test_inshop_recall_equals_brute_force_on_random_sets():
    torch.manual_seed(0)
    q, qy = clustered(num_classes=10, per_class=4, seed=2)
    g, gy = clustered(num_classes=10, per_class=6, seed=2)
    g = g + 0.8 * torch.randn_like(g)
    sims = F.normalize(q, dim=1) @ F.normalize(g, dim=1).T
    for k in (1, 5, 10):
        hits = [int(((sims[i] > sims[i][gy == qy[i]].max()) & (gy != qy[i])).sum() < k) for i in range(len(q))]
        ours = inshop_recall_at_k(q, g, qy, gy, ks=(k,), chunk_size=3)[f"recall@{k}"]
        assert ours == pytest.approx(100 * sum(hits) / len(hits))


def test_nmi_is_100_for_separated_classes_and_low_for_noise():
    x, y = clustered(num_classes=8, per_class=10, noise=0.01)
    assert nmi(x, y) == pytest.approx(100.0)
    noise = torch.randn(80, 16)
    assert nmi(noise, y) < 60


# ------------------------------------------------------------------ continuous labels


def test_mean_label_distance_and_ndcg_against_direct_evaluation():
    rng = np.random.default_rng(0)
    query, reference = torch.randn(6, 3, dtype=torch.float64), torch.randn(12, 3, dtype=torch.float64)
    label_dist = rng.uniform(0, 5, size=(6, 12))
    ranking = np.argsort(torch.cdist(query, reference).numpy(), axis=1)
    mean_dist = mean_label_distance_at_k(query, reference, label_dist, max_k=4, scale=224 / 288)
    for k in range(1, 5):
        expected = np.mean([label_dist[i, ranking[i, :k]].mean() for i in range(6)]) * 224 / 288
        assert mean_dist[k - 1] == pytest.approx(expected)

    ndcg = ndcg_at_k(query, reference, label_dist, ks=(3, 10))
    for k in (3, 10):
        scores = []
        for i in range(6):
            rel = 2.0 ** (-np.log2(label_dist[i] + 1))  # the official relevance
            disc = 1 / np.log2(np.arange(1, k + 1) + 1)
            ideal = np.argsort(label_dist[i])[:k]
            scores.append((rel[ranking[i, :k]] * disc).sum() / (rel[ideal] * disc).sum())
        assert ndcg[f"ndcg@{k}"] == pytest.approx(np.mean(scores))


def test_ndcg_is_one_for_a_label_consistent_embedding():
    labels = torch.linspace(0, 3, 20, dtype=torch.float64)[:, None]
    dist = (labels[:5] - labels.T).abs().numpy()
    metrics = ndcg_at_k(labels[:5] * 2, labels * 2, dist, ks=(5,))
    assert metrics["ndcg@5"] == pytest.approx(1.0)
    assert math.isclose(mean_label_distance_at_k(labels[:5], labels, dist, max_k=1)[0], 0.0)


def test_leave_one_out_equals_searching_the_other_images_one_query_at_a_time():
    rng = np.random.default_rng(1)
    embeddings = torch.randn(9, 4, dtype=torch.float64)
    label_dist = rng.uniform(0, 1, size=(9, 9))
    label_dist = (label_dist + label_dist.T) / 2
    np.fill_diagonal(label_dist, 0.0)  # a query is at label distance 0 from itself
    mean_dist = mean_label_distance_at_k(embeddings, None, label_dist, max_k=3)
    ndcg = ndcg_at_k(embeddings, None, label_dist, ks=(2, 5))
    per_query = []
    for i in range(9):
        others = [j for j in range(9) if j != i]
        one = embeddings[i : i + 1]
        per_query.append((mean_label_distance_at_k(one, embeddings[others], label_dist[i : i + 1, others], max_k=3),
                          ndcg_at_k(one, embeddings[others], label_dist[i : i + 1, others], ks=(2, 5))))
    np.testing.assert_allclose(mean_dist, np.mean([m for m, _ in per_query], axis=0))
    for k in (2, 5):
        assert ndcg[f"ndcg@{k}"] == pytest.approx(np.mean([n[f"ndcg@{k}"] for _, n in per_query]))
        assert ndcg[f"ndcg@{k}"] < 1.0  # the query's own zero distance is not the ideal retrieval


@pytest.mark.parametrize("largest_class", [8, 100])  # members gathered / a label mask
def test_blocked_first_hit_ranks_give_the_recall_of_the_neighbour_searches(largest_class):
    from reprolab.metrics.retrieval import first_hit_ranks

    g = torch.Generator().manual_seed(3)
    labels = torch.cat([torch.randint(0, 60, (400,), generator=g),
                        torch.full((largest_class,), 60), torch.tensor([61])])  # 61: a singleton
    embeddings = torch.randn(len(labels), 24, generator=g)
    ks = (1, 2, 4, 8, 100)
    searched = {backend: recall_at_k(embeddings, labels, ks, backend=backend) for backend in ("torch", "faiss")}
    for chunk in (None, 7):  # several query blocks, and one
        assert recall_at_k(embeddings, labels, ks, chunk_size=chunk, backend="blocked") == searched["torch"]
    assert searched["faiss"] == searched["torch"]
    ranks = first_hit_ranks(embeddings, labels)
    assert ranks[-1] == len(labels)  # the singleton is never a hit
    # its definition, directly: other-class items scoring above the best same-class one
    x = F.normalize(embeddings, dim=1)
    scores = x @ x.T
    scores.fill_diagonal_(float("-inf"))
    same = labels[:, None] == labels[None, :]
    best = scores.masked_fill(~same, float("-inf")).amax(1, keepdim=True)
    expected = ((scores > best) & ~same).sum(1)
    assert torch.equal(ranks[:-1], expected[:-1])


def test_blocked_recall_counts_an_exact_tie_for_the_same_class_item():
    embeddings = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # items 0 and 3 see a class mate and another-class item at the same score: hits;
    # items 1 and 2 see each other (another class) first: misses
    assert recall_at_k(embeddings, labels, ks=(1,), backend="blocked") == {"recall@1": 50.0}
