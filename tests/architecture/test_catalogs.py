"""Every name a recipe can use is listed by its catalog and builds (timm's list_models() test)."""

from __future__ import annotations

import pytest
import torch

from reprolab.catalog import Catalog, UnknownNameError
from reprolab.data.label_spaces import (
    LABEL_SPACES,
    LabelSpace,
    build_label_space,
    list_label_spaces,
)
from reprolab.models import create_model, list_models
from reprolab.models.backbones import create_backbone, list_backbones
from reprolab.models.losses import build_loss, list_losses
from reprolab.tasks import TASKS, list_tasks

ENHANCERS = {"urie_skunet"}  # image -> (enhanced image, residual), no classes


@pytest.mark.parametrize("name", sorted(ENHANCERS))
def test_every_enhancer_builds_and_keeps_the_image_shape(name):
    model = create_model(name).eval()
    with torch.no_grad():
        enhanced, residual = model(torch.randn(1, 3, 32, 32))
    assert enhanced.shape == residual.shape == (1, 3, 32, 32)


@pytest.mark.parametrize("name", [n for n in list_models() if n not in ENHANCERS])
def test_every_model_builds_and_runs(name):
    model = create_model(name, num_classes=3, num_segments=2, width_multiplier=0.25).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 2, 3, 32, 32))
    assert logits.shape == (1, 3)
    assert {"mean", "std", "channel_order", "input_size"} <= set(model.pretrained_cfg)


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_builds_with_its_input_config(name):
    backbone = create_backbone(name)
    assert backbone.feature_dim > 0
    assert {"mean", "std", "channel_order", "scale", "input_size"} <= set(backbone.input_config)


@pytest.mark.parametrize("name", list_losses())
def test_every_loss_builds(name):
    assert isinstance(build_loss(name, num_classes=4, embedding_size=8), torch.nn.Module)


def test_every_task_is_a_registered_class():
    assert list_tasks() == ["box-regression", "deeplab-v2", "domain-adaptation", "enhancement", "irnet",
                            "log-ratio", "metric-learning", "psa-affinity",
                            "semantic-segmentation", "video-classification", "wsss-cam", "wsss-video-decoder"]
    for name in list_tasks():
        task = TASKS.get(name)
        assert {"Model", "Data", "Eval"} <= set(dir(task))


def test_every_label_space_is_a_label_space():
    # Building one needs a prepared split with its annotations: tests/tasks/test_log_ratio_*.py.
    assert list_label_spaces() == ["caption", "layout", "pose"]
    assert all(issubclass(LABEL_SPACES.get(name), LabelSpace) for name in list_label_spaces())
    assert build_label_space({"name": "pose"}, []).split == []


def test_an_unknown_name_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="unknown model 'selfy_tsm_resnet5'; did you mean selfy_tsm_resnet50"):
        create_model("selfy_tsm_resnet5", num_classes=2)


def test_a_name_registers_once():
    catalog = Catalog("thing")
    catalog.register(len)
    with pytest.raises(ValueError, match="registered twice"):
        catalog.register(len)
    assert catalog.names() == ["len"] and "len" in catalog
