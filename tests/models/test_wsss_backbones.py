"""The WSSS backbones: the MXNet reader and ResNet-38 name mapping, freezing, strides, detaching."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from reprolab.errors import NotBuiltError
from reprolab.models.backbones import backbone_input_config, create_backbone
from reprolab.models.backbones.resnet38 import (
    ResNet38d,
    load_resnet38_imagenet,
    resnet38_name,
    resnet38_state_from_mxnet,
)
from reprolab.models.backbones.resnet50_irn import CAM_DETACH, DETACH_ALL, ResNet50IRN
from reprolab.models.backbones.vgg16_largefov import VGG16LargeFOV
from reprolab.models.mxnet_params import read_ndarray_file

FLAGS = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.int32): 4}


def pack_array(array: np.ndarray, version: str) -> bytes:
    """One array as apache/mxnet ndarray.cc NDArray::Save writes it (V2), or the pre-V1 layout."""
    array = np.ascontiguousarray(array)
    if version == "v2":
        head = struct.pack("<Iii", 0xF993FAC9, 0, array.ndim) + struct.pack(f"<{array.ndim}q", *array.shape)
    else:  # pre-V1: ndim as the first word, uint32 dims
        head = struct.pack("<I", array.ndim) + struct.pack(f"<{array.ndim}I", *array.shape)
    context = struct.pack("<ii", 1, 0)  # cpu(0)
    return head + context + struct.pack("<i", FLAGS[array.dtype]) + array.astype(array.dtype.newbyteorder("<")).tobytes()


def write_params(path, arrays: dict[str, np.ndarray], version: str = "v2") -> None:
    blob = struct.pack("<QQQ", 0x112, 0, len(arrays))
    blob += b"".join(pack_array(a, version) for a in arrays.values())
    blob += struct.pack("<Q", len(arrays))
    for name in arrays:
        blob += struct.pack("<Q", len(name.encode())) + name.encode()
    path.write_bytes(blob)


@pytest.mark.parametrize("version", ["v2", "legacy"])
def test_ndarray_file_round_trip(tmp_path, version):
    rng = np.random.default_rng(0)
    arrays = {"arg:w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
              "aux:m": rng.normal(size=(5,)), "arg:i": np.arange(6, dtype=np.int32).reshape(2, 3)}
    write_params(tmp_path / "x.params", arrays, version)
    loaded = read_ndarray_file(tmp_path / "x.params")
    assert list(loaded) == list(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array)


def test_ndarray_file_errors_name_the_file(tmp_path):
    (tmp_path / "bad.params").write_bytes(struct.pack("<QQ", 0x999, 0))
    with pytest.raises(ValueError, match="bad.params: not an MXNet NDArray file"):
        read_ndarray_file(tmp_path / "bad.params")
    write_params(tmp_path / "cut.params", {"arg:w": np.ones((8, 8), np.float32)})
    (tmp_path / "cut.params").write_bytes((tmp_path / "cut.params").read_bytes()[:60])
    with pytest.raises(ValueError, match="cut.params: truncated"):
        read_ndarray_file(tmp_path / "cut.params")


def mxnet_name(ours: str) -> str:
    """The ademxapp name of one of our ResNet-38 tensors (the inverse of resnet38_name)."""
    module, leaf = ours.rsplit(".", 1)
    bn = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_var"}
    if module == "conv1a":
        return "arg:conv1a_weight"
    if module == "bn7":
        return ("aux:" if leaf.startswith("running") else "arg:") + f"bn7_{bn[leaf]}"
    block, layer = module.split(".")
    level, _, index = block[1:].partition("_")
    unit = f"{level}a" if not index else f"{level}b{index}"
    kind, branch = layer.split("_", 1)
    if kind == "conv":
        return f"arg:res{unit}_{branch}_weight"
    return ("aux:" if leaf.startswith("running") else "arg:") + f"bn{unit}_{branch}_{bn[leaf]}"


@pytest.fixture(scope="module")
def resnet38():
    return ResNet38d()


def test_resnet38_names_map_one_to_one(resnet38):
    names = [k for k in resnet38.state_dict() if not k.endswith("num_batches_tracked")]
    assert [resnet38_name(mxnet_name(n)) for n in names] == names
    assert mxnet_name("b4_5.bn_branch2b1.running_var") == "aux:bn4b5_branch2b1_moving_var"
    assert resnet38_name("arg:res7a_branch2b2_weight") == "b7.conv_branch2b2.weight"
    assert resnet38_name("arg:linear1000_weight") is None
    with pytest.raises(ValueError, match="not a ResNet-38"):
        resnet38_name("arg:bn_data_gamma")


def test_resnet38_loads_a_params_file(tmp_path, resnet38):
    """A small .params with real names and shapes: values land on the right tensors."""
    own = resnet38.state_dict()
    picked = ["conv1a.weight", "b2.bn_branch2a.running_mean", "b2.conv_branch1.weight",
              "b4_5.conv_branch2b1.weight", "b7.bn_branch2b2.weight", "bn7.running_var"]
    rng = np.random.default_rng(1)
    arrays = {mxnet_name(n): rng.normal(size=tuple(own[n].shape)).astype(np.float32) for n in picked}
    arrays["arg:linear1000_bias"] = np.zeros(1000, np.float32)
    write_params(tmp_path / "part.params", arrays)
    state = resnet38_state_from_mxnet(tmp_path / "part.params")
    assert sorted(state) == sorted(picked)
    for n in picked:
        assert np.array_equal(state[n].numpy(), arrays[mxnet_name(n)])
    with pytest.raises(ValueError, match=r"part.params does not fit ResNet-38: .*missing"):
        load_resnet38_imagenet(resnet38, tmp_path / "part.params")


def test_resnet38_stride_8_frozen_bn(resnet38):
    resnet38.train()
    assert all(not m.training for m in resnet38.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert resnet38.b6.dropout_2b1.training
    assert not any(p.requires_grad for p in resnet38.conv1a.parameters())
    assert not resnet38.bn7.weight.requires_grad and resnet38.b3.conv_branch2a.weight.requires_grad
    with torch.no_grad():
        features = resnet38.eval()(torch.randn(1, 3, 64, 48))
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "conv4": (1, 512, 8, 6), "conv5": (1, 1024, 8, 6), "conv6": (1, 4096, 8, 6)}


def test_resnet50_irn_strides_and_detach():
    torch.manual_seed(0)
    model = ResNet50IRN(detach_after=CAM_DETACH).train()
    x = torch.randn(1, 3, 64, 64)
    out = model(x)
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        "x1": (64, 16, 16), "x2": (256, 16, 16), "x3": (512, 8, 8), "x4": (1024, 4, 4), "x5": (2048, 4, 4)}
    out["x5"].sum().backward()
    assert model.layer3[0].conv1.weight.grad is not None and model.layer2[0].conv1.weight.grad is None
    assert model.layer3[0].bn1.weight.grad is not None  # FixedBatchNorm: affine trains
    assert not model.conv1.weight.requires_grad
    with torch.no_grad():  # statistics fixed: train and eval agree, running stats unchanged
        before = model.bn1.running_mean.clone()
        assert torch.equal(model.train()(x)["x5"], model.eval()(x)["x5"])
        assert torch.equal(model.bn1.running_mean, before)
    frozen = ResNet50IRN(detach_after=DETACH_ALL)
    assert not frozen(x)["x5"].requires_grad
    with pytest.raises(ValueError, match="unknown stages"):
        ResNet50IRN(detach_after=("layer9",))


def test_vgg16_largefov_stride_8_and_caffe_init_not_built():
    model = VGG16LargeFOV(fc6_dilation=12, pool5=True).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 48))
    assert tuple(out["conv5fc"].shape) == (1, 1024, 8, 6) and tuple(out["conv4"].shape) == (1, 512, 8, 6)
    with pytest.raises(NotBuiltError, match="caffemodel"):
        create_backbone("vgg16_largefov", weights="vgg16_20M.caffemodel")
    assert backbone_input_config("vgg16_largefov")["channel_order"] == "BGR"
    assert backbone_input_config("resnet50_irn")["mean"] == (0.485, 0.456, 0.406)
