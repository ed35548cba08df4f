
import pytest
import torch

from reprolab import cli
from reprolab.config import resolved_config
from reprolab.engine import checkpoint
from reprolab.models.weights import load_matching_weights
from reprolab.tasks import build_task
from reprolab.tasks.video_classification import VideoClassification
from tests.data.test_video import FakeSplit, numbered_video

CLASSES = ["Moving something down", "Moving something up",
           "Pushing something from left to right", "Pushing something from right to left"]


@pytest.fixture
def fake_splits(monkeypatch):
    split = FakeSplit([numbered_video(frames=16, h=64, w=80) for _ in range(4)], [0, 1, 2, 3], CLASSES)
    monkeypatch.setattr("reprolab.data.reader.open_split", lambda dataset, name, profile: split)
    return split


def tiny_config(recipe="sthv1-selfy-tsm-r50-8f", *overrides):
    return resolved_config(recipe, "tiny", list(overrides), None)


def test_registry_maps_the_recipe_task_to_the_video_trainer(video_root):
    assert isinstance(build_task(tiny_config()), VideoClassification)
    with pytest.raises(NotImplementedError, match="no trainer"):
        build_task({"task": "detection", "recipe": "x"})


def test_datasets_follow_the_recipe_and_protect_mirror_classes(video_root, fake_splits):
    task = build_task(tiny_config())
    train = task.build_dataset("train")
    assert train.no_flip_classes == {2, 3}
    assert train[(0, 1)]["frames"].shape == (8, 3, 56, 56)
    evaluation = task.build_dataset("eval")
    assert evaluation[0]["frames"].shape == (1, 8, 3, 56, 56)
    assert task.describe_split(evaluation, "eval").name == "validation"
    no_selective = build_task(tiny_config("sthv1-selfy-tsm-r50-8f", "data.selective_flip=false"))
    assert no_selective.build_dataset("train").no_flip_classes == frozenset()


def test_model_and_multi_view_prediction(video_root, fake_splits):
    task = build_task(tiny_config("sthv1-selfy-tsm-r50-8f", "+eval.clips=2", "eval.crops=3"))
    model = task.build_model().eval()
    assert model.fc.out_features == 4
    evaluation = task.build_dataset("eval")
    batch = {"frames": torch.stack([evaluation[i]["frames"] for i in range(2)]),
             "label": torch.tensor([0, 1])}
    assert batch["frames"].shape == (2, 6, 8, 3, 56, 56)
    with torch.no_grad():
        logits, labels = task.predict(model, batch)
        by_hand = model(batch["frames"][0]).mean(dim=0)
    assert logits.shape == (2, 4) and labels.tolist() == [0, 1]
    torch.testing.assert_close(logits[0], by_hand)
    assert task.eval_batch_size() == 1  # batch 8 // 6 views


def test_full_profile_needs_the_imagenet_weights_and_says_how_to_fetch_them(video_root, fake_splits):
    task = build_task(resolved_config("sthv1-selfy-tsm-r50-8f", "full", [], None))
    with pytest.raises(cli.MissingDataError, match="reprolab data fetch weights-resnet50-imagenet"):
        task.check_data()


def test_fine_tuning_loads_every_tensor_but_the_new_classifier(video_root, fake_splits, tmp_path):
    source = build_task(tiny_config()).build_model()
    path = checkpoint.save(tmp_path / "final.pt", {"model": {
        **source.state_dict(), "fc.weight": torch.zeros(7, source.fc.in_features), "fc.bias": torch.zeros(7)}})
    target = build_task(tiny_config()).build_model()
    skipped = load_matching_weights(target, path)
    assert skipped == ["fc.bias", "fc.weight"]
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(target.state_dict()[key], value)


# That each video recipe's tiny profile learns (SELFY, MotionSqueeze, TSM above chance, TSN not) is
# asserted per recipe by tests/test_smoke.py, end to end through `reprolab reproduce`.
