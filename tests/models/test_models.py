"""Model specs and loading: every spec form, checked against the module it should produce."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT
from tests.models.reference_nets import X, resnet18, sha256
from visionaudit.errors import CheckpointError, ModelOutputError, SpecError
from visionaudit.models.inference import predict_logits
from visionaudit.models.loading import load_model, parse_spec


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
    assert "Check --arch (or ?arch= in the spec)" in msg


def test_a_timm_checkpoint_of_another_architecture_is_told_to_check_the_spec_not_arch(tmp_path):
    """Stop 40: timm:NAME:PATH names its architecture in the spec; the advice said "Check --arch", which it has not."""
    timm = pytest.importorskip("timm", reason="timm is in the test extra; install visionaudit[test]")
    from safetensors.torch import save_file

    path = tmp_path / "r34.safetensors"
    save_file(timm.create_model("resnet34", pretrained=False).state_dict(), str(path))
    with pytest.raises(CheckpointError) as e:
        load_model(f"timm:resnet18:{path}", "cpu")
    msg = str(e.value)
    assert f"checkpoint {path} does not match the architecture timm:resnet18" in msg
    assert "Check the architecture in the spec (timm:resnet18:PATH): it must name" in msg and "--arch (" not in msg


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
    # Given as hf:FOLDER (stop 40, ft40): it passed the startup check and each test errored as transformers failed to
    # build it ("got multiple values for keyword argument 'num_classes'"); refused at startup the same way.
    with pytest.raises(CheckpointError) as as_hf:
        parse_spec(f"hf:{folder}")
    assert as_hf.value.args[0].split("--model '")[1].split("'")[0] == named and "model_args hold num_classes" in str(as_hf.value)
    classes = _classes_file(tmp_path, 5)
    loaded = load_model(named.replace("FILE", str(classes)), "cpu")
    with torch.no_grad():
        assert torch.equal(loaded.module(X), net(X))


def test_a_timm_folder_without_num_classes_in_model_args_still_loads_as_hf(tmp_path):
    """Review 40, F1: only model_args holding num_classes make transformers fail (it passes its own num_classes too);
    a save_for_hf folder without model_args (as earlier timm wrote them) loads as hf:FOLDER with its
    label_names, as before ft40, and was refused by ft40's first check."""
    timm = pytest.importorskip("timm", reason="timm is in the test extra; install visionaudit[test]")
    pytest.importorskip("transformers", reason="transformers is in the hf extra; install visionaudit[hf]")
    from timm.models import save_for_hf

    torch.manual_seed(6)
    net = timm.create_model("resnet18.a1_in1k", pretrained=False, num_classes=5).eval()
    folder = tmp_path / "timm-hub-form"
    save_for_hf(net, str(folder), model_config={"label_names": list("abcde")}, safe_serialization=True)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_args"]["num_classes"] == 5  # this timm writes them, and hf: of it is refused (tested above)
    del config["model_args"]
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_model(f"hf:{folder}", "cpu")
    assert loaded.label_space.names == ("a", "b", "c", "d", "e")
    with torch.no_grad():
        assert torch.allclose(loaded.module(X).logits, net(X), atol=1e-5)  # the weights, through transformers


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


def test_nan_outputs_are_refused():
    model = load_model("tests.tiny_models:nan_outputs", "cpu")
    with pytest.raises(ModelOutputError, match="NaN or infinite logits for image 0"):
        predict_logits(model, torch.zeros(3, 3, 224, 224, dtype=torch.uint8))


def test_a_gray_model_with_padding_before_its_first_conv_is_fed_gray():
    """Stop 44's notes: fit_input_channels found a 1-channel conv behind a padding module, but took the padded input for
    a changed one and fed the model RGB (its load failed). The suite's own gray fold of a model that pads its input
    (tests.tiny_models:padded_gray) is fed the luminance, and gives the RGB model's logits on gray images."""
    from tests.tiny_models import GRAY_MEAN, GRAY_STD

    gray = load_model("tests.tiny_models:padded_gray?size=32&resize=32", "cpu")
    assert gray.preprocessing.channels == 1 and gray.preprocessing.mean == pytest.approx((GRAY_MEAN,))
    means, stds = ",".join([repr(GRAY_MEAN)] * 3), ",".join([repr(GRAY_STD)] * 3)
    rgb = load_model(f"tests.tiny_models:padded_rgb?size=32&resize=32&mean={means}&std={stds}", "cpu")
    images = torch.randint(0, 256, (4, 1, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    expected = predict_logits(rgb, images.expand(-1, 3, -1, -1), batch_size=4)
    got = predict_logits(gray, images, batch_size=4)
    assert expected.std(dim=0).max() > 0  # the logits depend on the image
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got - expected).abs().max()
