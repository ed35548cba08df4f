"""Parity of PSA's CAM, AffinityNet and random walk with jiwoon-ahn/psa@9493e59, float64.

reference/psa_parity.pt (how it was made: reference/README.md) holds the official outputs on the
seeded weights of tests/parity/_seeded.py: resnet38_cls.Net.forward / forward_cam on infer_cls.py's
multi-scale + flip inputs and infer_cls.py's CAM aggregation; resnet38_aff.Net.forward (pair
affinities and the dense `to_dense` matrix); infer_aff.py's transition matrix, the propagated
CAM and its argmax.
"""

from __future__ import annotations

import torch

from reprolab.models.segmentation.affinity import AffinityNet
from reprolab.models.segmentation.cam import CamNet, aggregate_cams
from reprolab.models.segmentation.dense_backbones import resnet38
from reprolab.models.segmentation.random_walk import (
    dense_affinity_matrix,
    propagate,
    random_walk_dense,
    random_walk_sparse,
    rw_cam_vector,
    transition_matrix,
)
from tests.parity._reference import assert_matches, load_reference
from tests.parity._seeded import seeded_state

HEAD = ("f8_3", "f8_4", "f8_5", "f9")


def _official_to_ours(name: str) -> str:
    if name.split(".")[0] in HEAD:
        return f"head.{name}"
    if name.startswith("fc8."):
        return name
    return f"backbone.trunk.{name}"


def _load_seeded(model: torch.nn.Module, official: torch.nn.Module, seed: int) -> None:
    """The seeded state under the official names (sorted-name draws), renamed onto ours."""
    state = seeded_state(official, seed)
    model.load_state_dict({_official_to_ours(k): v for k, v in state.items()})


class _OfficialNames(torch.nn.Module):
    """A module with the official state-dict names (in the official order) of ours, for seeding."""

    def __init__(self, ours: torch.nn.Module):
        super().__init__()
        self._names = {}
        for name, tensor in ours.state_dict().items():
            official = name.removeprefix("backbone.trunk.").removeprefix("head.")
            self._names[official] = tensor

    def state_dict(self, *args, **kwargs):  # noqa: D102 - seeded_state reads names and shapes only
        return dict(self._names)


def test_cam_matches_official():
    ref = load_reference("psa_parity")["cam"]
    model = CamNet(resnet38()).double().eval()
    _load_seeded(model, _OfficialNames(model), 121)
    with torch.no_grad():
        assert_matches(model(ref["inputs"][0][None]), ref["logits"], "resnet38_cls forward")
        raw = [model.forward_cam(x[None]) for x in ref["inputs"]]
    for k, (ours, theirs) in enumerate(zip(raw, ref["raw_cams"], strict=True)):
        assert_matches(ours[0], theirs, f"forward_cam of input {k}")
    cam = aggregate_cams(raw, tuple(ref["size"]), ref["labels"], [k % 2 == 1 for k in range(len(raw))])
    assert_matches(cam, ref["norm_cam"], "infer_cls.py norm_cam")


def test_affinity_matches_official():
    ref = load_reference("psa_parity")["affinity"]
    model = AffinityNet(resnet38()).double().eval()
    _load_seeded(model, _OfficialNames(model), 122)
    with torch.no_grad():
        aff = model(ref["input"])
    assert_matches(aff, ref["aff"], "resnet38_aff pair affinities")
    height, width = ref["input"].shape[-2] // 8, ref["input"].shape[-1] // 8
    assert_matches(dense_affinity_matrix(aff[0], 5, height, width), ref["aff_mat"], "to_dense affinity matrix")


def test_random_walk_matches_official():
    ref = load_reference("psa_parity")
    rw, aff_mat = ref["random_walk"], ref["affinity"]["aff_mat"]
    cam = torch.zeros(20, *rw["cam"].shape[-2:], dtype=torch.float64)
    cam[rw["cam_classes"]] = rw["cam"]
    trans = transition_matrix(aff_mat, rw["beta"])
    assert_matches(trans, rw["transition"], "transition matrix")
    vec = rw_cam_vector(cam, rw["alpha"], 8).reshape(21, -1)
    assert_matches(vec, rw["cam_vec"], "avg-pooled CAM with background")
    height, width = rw["cam_rw"].shape[-2:]
    assert_matches(random_walk_dense(vec, trans, rw["logt"]).view(21, height, width), rw["cam_rw"], "dense walk")
    aff = ref["affinity"]["aff"][0]
    assert_matches(random_walk_sparse(vec, aff, 5, height, width, rw["beta"], rw["logt"]).view(21, height, width),
                   rw["cam_rw"], "sparse walk")
    scores = propagate(cam, aff, 5, 8, alpha=rw["alpha"], beta=rw["beta"], logt=rw["logt"])
    assert_matches(scores.sum(0), rw["upsampled_channel_sum"], "upsampled walk")
    assert torch.equal(scores.argmax(0), rw["prediction"])
