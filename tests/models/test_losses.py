"""Metric-learning losses: Proxy Anchor against pytorch-metric-learning, log-ratio against its
formula, dense/binary tuple mining against the official sampling rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses as pml_losses

from reprolab.models.losses import (
    BASELINES,
    BinaryTripletLoss,
    DenseTripletLoss,
    LogRatioLoss,
    ProxyAnchorLoss,
    TupleMiner,
    build_loss,
    neighbour_lists,
)
from reprolab.models.losses.dense_mining import binary_positions, dense_positions

# ---------------------------------------------------------------- Proxy Anchor


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_proxy_anchor_matches_pytorch_metric_learning(seed):
    torch.manual_seed(seed)
    num_classes, dim, batch = 10, 16, 32
    ours = ProxyAnchorLoss(num_classes, dim).double()
    reference = pml_losses.ProxyAnchorLoss(num_classes, dim, margin=0.1, alpha=32).double()
    reference.proxies.data.copy_(ours.proxies.data)
    embeddings = torch.randn(batch, dim, dtype=torch.float64)
    labels = torch.randint(0, 6, (batch,))  # classes 6..9 absent: their proxies get no positives

    x1 = embeddings.clone().requires_grad_(True)
    x2 = embeddings.clone().requires_grad_(True)
    loss1, loss2 = ours(x1, labels), reference(x2, labels)
    loss1.backward()
    loss2.backward()

    assert loss1.item() == pytest.approx(loss2.item(), rel=1e-6, abs=1e-5)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.proxies.grad, reference.proxies.grad, rtol=1e-5, atol=1e-5)


def test_proxy_anchor_is_eq4_evaluated_directly():
    """Plain exp/log evaluation of Eq. 4 (as the official code does) on a small example."""
    torch.manual_seed(3)
    loss = ProxyAnchorLoss(4, 8, margin=0.1, alpha=32).double()
    x = torch.randn(6, 8, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 2, 2, 2])
    cos = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(loss.proxies.data, dim=1).T
    pos = sum(math.log(1 + sum(math.exp(-32 * (cos[i, c] - 0.1)) for i in range(6) if y[i] == c)) for c in (0, 1, 2))
    neg = sum(math.log(1 + sum(math.exp(32 * (cos[i, c] + 0.1)) for i in range(6) if y[i] != c)) for c in range(4))
    assert loss(x, y).item() == pytest.approx(pos / 3 + neg / 4, rel=1e-10)


def test_proxy_anchor_initialisation_and_lr_multiplier():
    torch.manual_seed(0)
    loss = ProxyAnchorLoss(200, 512)
    # randn then kaiming_normal_(fan_out): std sqrt(2 / fan_out) with fan_out = num_classes
    assert loss.proxies.std().item() == pytest.approx(math.sqrt(2 / 200), rel=0.02)
    assert loss.lr_multiplier == 100


def test_proxy_anchor_is_stable_for_large_similarities_and_rejects_bad_labels():
    loss = ProxyAnchorLoss(3, 4, alpha=1e4)
    value = loss(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]))
    assert torch.isfinite(value)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        loss(torch.randn(2, 4), torch.tensor([0, 3]))


def test_baseline_factory_builds_every_baseline_and_they_backpropagate():
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(24, 8), dim=1).requires_grad_(True)
    y = torch.arange(6).repeat_interleave(4)
    for name in BASELINES:
        criterion = build_loss(name, num_classes=6, embedding_size=8)
        value = criterion(x, y)
        assert torch.isfinite(value) and value.item() > 0, name
        (grad,) = torch.autograd.grad(value, x)
        assert grad.abs().sum() > 0, name
    assert build_loss("proxy_nca", 6, 8).lr_multiplier == 1.0
    assert len(list(build_loss("proxy_nca", 6, 8).parameters())) == 1  # its proxies
    with pytest.raises(ValueError, match="unknown loss 'npair'"):
        build_loss("npair")


# ---------------------------------------------------------------- log-ratio


def test_log_ratio_matches_formula_on_hand_made_tuple():
    # anchor at the origin; three paired samples at distances 1, 2, 4 along axes
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [-4.0, 0.0]], dtype=torch.float64)
    label_dist = torch.tensor([1.0, 3.0, 3.0], dtype=torch.float64)
    d = [1.0, 2.0, 4.0]
    expected = []
    for i in range(3):
        for j in range(i + 1, 3):
            expected.append((math.log(d[i] / d[j]) - math.log(label_dist[i] / label_dist[j])) ** 2)
    expected = sum(expected) / len(expected)
    # (log 1/2 - log 1/3)^2 + (log 1/4 - log 1/3)^2 + (log 2/4 - 0)^2, over 3
    assert expected == pytest.approx(((math.log(1.5)) ** 2 + math.log(0.75) ** 2 + math.log(0.5) ** 2) / 3)
    assert LogRatioLoss()(emb, label_dist).item() == pytest.approx(expected, rel=1e-4)


def test_log_ratio_is_zero_when_distances_are_proportional_to_labels():
    emb = torch.tensor([[1.0, 1.0], [2.0, 1.0], [1.0, 4.0], [6.0, 1.0]])
    label_dist = torch.tensor([0.5, 1.5, 2.5])  # = 0.5 x embedding distances 1, 3, 5
    assert LogRatioLoss()(emb, label_dist).item() == pytest.approx(0.0, abs=1e-6)


def test_log_ratio_gradient_moves_log_distance_ratio_toward_log_label_ratio():
    torch.manual_seed(0)
    emb = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
    label_dist = torch.rand(7, dtype=torch.float64).sort().values + 0.1
    criterion = LogRatioLoss()

    def gap():
        d = (emb[1:] - emb[:1]).norm(dim=1)
        log_ratio = torch.log(d[:, None] / d[None, :])
        target = torch.log(label_dist[:, None] / label_dist[None, :])
        return (log_ratio - target).abs().sum().item()

    before = gap()
    # one small gradient step already narrows the gap ...
    (grad,) = torch.autograd.grad(criterion(emb, label_dist), emb)
    with torch.no_grad():
        emb -= 1e-3 * grad
    assert gap() < before
    # ... and following the gradient closes it
    optimizer = torch.optim.Adam([emb], lr=0.02)
    for _ in range(500):
        optimizer.zero_grad()
        criterion(emb, label_dist).backward()
        optimizer.step()
    assert gap() < 0.05 * before
    assert criterion(emb, label_dist).item() < 1e-3


def test_log_ratio_batched_equals_mean_of_single_tuples():
    torch.manual_seed(1)
    emb = torch.randn(3, 6, 4, dtype=torch.float64)
    label_dist = torch.rand(3, 5, dtype=torch.float64)
    single = torch.stack([LogRatioLoss()(emb[i], label_dist[i]) for i in range(3)]).mean()
    assert LogRatioLoss()(emb, label_dist).item() == pytest.approx(single.item(), rel=1e-12)
    with pytest.raises(ValueError, match="one label distance each"):
        LogRatioLoss()(emb[0], label_dist[0, :3])


def test_dense_triplet_loss_counts_violations_in_label_order():
    # distances^2 from the anchor: 1, 4, 0.25 -> pairs (1,2) satisfied, (1,3) and (2,3) violated
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.5, 0.0]], dtype=torch.float64)
    eps = 1e-4 / 2
    d2 = [1 + eps, 4 + eps, 0.25 + eps]
    expected = [max(d2[i] - d2[j] + 0.03, 0) for i in range(3) for j in range(i + 1, 3)]
    value = DenseTripletLoss(margin=0.03)(emb, torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
    assert value.item() == pytest.approx(sum(expected) / 3, rel=1e-9)


def test_binary_triplet_loss_uses_every_positive_negative_pair():
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 0.5], [0.0, 3.0]], dtype=torch.float64)
    criterion = BinaryTripletLoss(margin=0.2, num_positives=2)
    eps = 1e-4 / 2
    pos, neg = [1 + eps, 4 + eps], [0.25 + eps, 9 + eps]
    expected = sum(max(p - n + 0.2, 0) for p in pos for n in neg) / 4
    assert criterion(emb).item() == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------- mining


def test_neighbour_lists_sort_by_label_distance_and_leave_out_the_anchor():
    labels = torch.tensor([0.0, 10.0, 1.0, 4.0, 0.0])
    dist = (labels[:, None] - labels[None, :]).abs()
    neighbours, distances = neighbour_lists(dist)
    assert neighbours.shape == (5, 4)
    assert neighbours[0].tolist() == [4, 2, 3, 1]  # the tie at distance 0 (sample 4) first
    assert distances[0].tolist() == [0.0, 1.0, 4.0, 10.0]
    assert all(a not in row for a, row in enumerate(neighbours.tolist()))


def test_dense_positions_take_the_nearest_then_sorted_random_others():
    rng = np.random.default_rng(0)
    for _ in range(50):
        pos = dense_positions(num_others=40, num_nn=5, tuple_size=20, rng=rng)
        assert len(pos) == 19 and len(set(pos.tolist())) == 19
        assert pos[:5].tolist() == [0, 1, 2, 3, 4]
        assert (np.diff(pos) > 0).all() and pos.max() < 40
    with pytest.raises(ValueError, match="needs at least 19 other samples"):
        dense_positions(num_others=10, num_nn=5, tuple_size=20, rng=rng)


def test_binary_positions_split_positives_from_negatives():
    rng = np.random.default_rng(0)
    pos = binary_positions(num_others=100, num_positive_neighbours=30, num_positives=5, tuple_size=20, rng=rng)
    assert len(pos) == 19 and (pos[:5] < 30).all() and (pos[5:] >= 30).all()


def test_tuple_miner_visits_every_anchor_once_per_epoch_with_sorted_label_distances():
    torch.manual_seed(0)
    labels = torch.rand(30, 2)
    dist = torch.cdist(labels, labels)
    neighbours, distances = neighbour_lists(dist)
    miner = TupleMiner(neighbours, distances, mode="dense", tuple_size=8, num_nn=3, seed=0)
    tuples = list(miner)
    assert sorted(int(t.indices[0]) for t in tuples) == list(range(30))
    for t in tuples:
        anchor = int(t.indices[0])
        assert torch.allclose(t.label_distances, dist[anchor, t.indices[1:]].float())
        assert (t.label_distances.diff() >= 0).all()
        nearest = set(neighbours[anchor, :3].tolist())
        assert nearest <= set(t.indices[1:].tolist())
    miner.set_epoch(1)
    assert [int(t.indices[0]) for t in miner] != [int(t.indices[0]) for t in tuples]
    with pytest.raises(ValueError, match="unknown mining mode"):
        TupleMiner(neighbours, distances, mode="hard")
