"""Parity of IRNet's pieces with jiwoon-ahn/irn@a2ece00, float64 (reference/irnet_pieces.pt).

- path-index affinities (misc/indexing.py PathIndex + edge_to_affinity) at radius 10 and 5, the
  inter-pixel relation labels (voc12/dataloader.py GetAffinityLabelFromIndices), the pair
  displacements (net/resnet50_irn.py to_pair_displacement) and the offsets (search_dst);
- displacement -> centroids -> instance seeds (step/make_ins_seg_labels.py
  find_centroids_with_refinement, patched to float64, and cluster_centroids);
- the boundary random walk (misc/indexing.py propagate_to_edge, dense, float64) against ours (sparse).
How the file was made: reference/README.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reprolab.models.segmentation.irnet_inference import (
    cluster_centroids,
    find_centroids,
    random_walk,
)
from reprolab.models.segmentation.path_index import (
    PathIndex,
    affinity_labels,
    pair_displacement,
    path_affinity,
)
from tests.parity._reference import assert_matches, load_reference


@pytest.fixture(scope="module")
def reference():
    return load_reference("irnet_pieces")


@pytest.mark.parametrize("radius", [10, 5])
def test_path_index_affinities_labels_and_pairs(reference, radius):
    ref = reference[f"paths_r{radius}"]
    index = PathIndex(radius)
    assert np.array_equal(index.offsets, ref["search_dst"].numpy())
    assert_matches(path_affinity(ref["edge"], index), ref["affinity"], f"path affinity r{radius}")
    for ours, name in zip(affinity_labels(ref["labels"].numpy(), index), ("bg_pos", "fg_pos", "neg"), strict=True):
        assert torch.equal(ours.bool(), ref[name]), name
    assert ref["bg_pos"].any() and ref["fg_pos"].any() and ref["neg"].any()
    assert_matches(pair_displacement(ref["displacement"], index), ref["pair_displacement"], f"pair displacement r{radius}")


def test_displacement_to_centroids(reference):
    ref = reference["centroids"]
    displacement = ref["displacement"].numpy()
    centroids = find_centroids(displacement)
    assert np.array_equal(centroids, ref["centroids"].numpy())
    assert np.array_equal(cluster_centroids(centroids, displacement), ref["clusters"].numpy())
    assert len(ref["clusters"]) == 3  # the three centres of the synthetic field


def test_sparse_random_walk_equals_the_official_dense_one(reference):
    ref = reference["random_walk"]
    assert_matches(random_walk(ref["cams"], ref["edge"], radius=5, beta=10, exp_times=8), ref["rw"], "random walk")


def test_boundary_and_displacement_heads(reference):
    """Our IRNet on seeded weights (tests/parity/_seeded.py, seed 7) against net/resnet50_irn.py Net."""
    from reprolab.models.segmentation.irnet import IRNet
    from tests.parity._seeded import seeded_state

    ref = reference["heads"]
    model = IRNet().double()
    model.load_state_dict(seeded_state(model, 7))
    with torch.no_grad():
        edge, dp = model.eval()(ref["input"])
    assert_matches(edge, ref["edge"], "IRNet boundary logits")
    assert_matches(dp, ref["displacement"], "IRNet displacement (mean shift applied)")
