"""Issue 25: models as their ecosystems name them: Hugging Face classifiers (``hf:FOLDER``, ``hf:ORG/NAME``) and timm's
pretrained tags, found in a Hugging Face cache the tests write (no network: ``HF_HUB_OFFLINE=1``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT
from tests.hub_models import (
    CLASSES,
    REVISION,
    cache_folder,
    sha256sum_lines,
    timm_random_weights,
    tiny_vit,
)
from visionaudit.errors import CheckpointError, SpecError
from visionaudit.models.hf import from_image_processor
from visionaudit.models.hub import HubUnavailable, check_available
from visionaudit.models.loading import as_logits, load_model, parse_spec
from visionaudit.models.specs import canonical_spec

TIMM_TAG = "test_efficientnet.r160_in1k"  # timm's own test architecture: 356k parameters


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory) -> Path:
    return tiny_vit(tmp_path_factory.mktemp("hf") / "tiny-vit")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache of the test's own, and downloads off (huggingface_hub's own switch)."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home / "hub"


# --- spec forms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, canonical", [
    ("hf:google/vit-base-patch16-224", "hf:google/vit-base-patch16-224"),
    ("hf:google/vit-base-patch16-224@main", "hf:google/vit-base-patch16-224"),  # main is the default revision
    ("hf:google/vit-base-patch16-224@v1.0?size=224", "hf:google/vit-base-patch16-224@v1.0?size=224"),
    ("hf:./models/x/../vit", "hf:./models/vit"),  # a folder that reads like ORG/NAME keeps its ./
    ("hf:/abs/folder/", "hf:/abs/folder"),
    ("timm:resnet18", "timm:resnet18"),  # as main writes it: a baseline naming it still pairs (the tag is in architecture)
    ("timm:resnet18.a1_in1k", "timm:resnet18.a1_in1k"),
    ("w.pt?arch=timm:resnet18", "w.pt?arch=timm:resnet18"),  # as an architecture too
    ("timm:resnet18:none", "timm:resnet18:none"),
])
def test_canonical_forms_of_hub_specs(spec, canonical):
    assert canonical_spec(spec) == canonical
    assert canonical_spec(canonical) == canonical


def test_an_hf_folder_must_be_a_save_pretrained_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist; hf:PATH names a folder written by save_pretrained"):
        parse_spec(f"hf:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="has no config.json, so it is not a save_pretrained folder"):
        parse_spec(f"hf:{tmp_path / 'empty'}")
    (tmp_path / "empty" / "config.json").write_text("{}")
    spec = parse_spec(f"hf:{tmp_path / 'empty'}")
    with pytest.raises(CheckpointError, match="holds no model.safetensors or pytorch_model.bin"):
        check_available(spec)  # at startup, not in every test


# --- the image processor's rule in the suite's preprocessing --------------------------------------


def test_processor_rules_by_hand():
    vit = from_image_processor({"image_processor_type": "ViTImageProcessor", "size": {"height": 384, "width": 384},
                                "resample": 2, "rescale_factor": 1 / 255, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}, "vit")
    assert (vit.resize_size, vit.crop_size, vit.keep_aspect, vit.interpolation) == (384, 384, False, "bilinear")
    assert vit.geometry.to_dict() == {"size": 384, "interpolation": "bilinear", "crop": False, "crop_offset": "floor"}
    deit = from_image_processor({"image_processor_type": "DeiTImageProcessor", "size": {"height": 256, "width": 256},
                                 "do_center_crop": True, "crop_size": {"height": 224, "width": 224}, "resample": 3}, "deit")
    assert (deit.resize_size, deit.crop_size, deit.keep_aspect, deit.interpolation) == (256, 224, False, "bicubic")
    convnext = from_image_processor({"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 224},
                                     "crop_pct": 0.875, "resample": 3}, "convnext")
    assert (convnext.resize_size, convnext.crop_size, convnext.keep_aspect) == (256, 224, True)  # int(224 / 0.875)
    big = from_image_processor({"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 384},
                                "crop_pct": 0.875, "resample": 3}, "convnext")
    assert (big.resize_size, big.crop_size, big.keep_aspect) == (384, 384, False)  # warped from 384 on
    # A rescale factor of 1 (values in 0..255) folds into mean and std: (x - m) / s = (x / 255 - m / 255) / (s / 255).
    raw = from_image_processor({"image_processor_type": "ViTImageProcessor", "size": {"height": 8, "width": 8}, "rescale_factor": 1.0, "image_mean": [127.5] * 3,
                                "image_std": [51.0] * 3}, "raw")
    assert raw.mean == pytest.approx((0.5,) * 3) and raw.std == pytest.approx((0.2,) * 3)
    off = from_image_processor({"image_processor_type": "ViTImageProcessor", "size": {"height": 8, "width": 8}, "do_normalize": False}, "off")
    assert (off.mean, off.std) == ((0.0,) * 3, (1.0,) * 3)
    # LeViT: the short side to int(256 / 224 * S) = 256 for S = 224 (LevitImageProcessor.resize), then the crop.
    levit = from_image_processor({"image_processor_type": "LevitImageProcessor", "size": {"shortest_edge": 224}, "do_center_crop": True,
                                  "crop_size": {"height": 224, "width": 224}, "resample": 3}, "levit")
    assert (levit.resize_size, levit.crop_size, levit.keep_aspect, levit.interpolation) == (256, 224, True, "bicubic")
    # PoolFormer: the short side to int(S / crop_pct) = int(224 / 0.9) = 248 (PoolFormerImageProcessor.resize); a square
    # size is read as its side, the aspect kept (not warped as ViT's is).
    for size in ({"shortest_edge": 224}, {"height": 224, "width": 224}):
        pool = from_image_processor({"image_processor_type": "PoolFormerImageProcessorPil", "size": size, "crop_pct": 0.9,
                                     "do_center_crop": True, "crop_size": {"height": 224, "width": 224}, "resample": 3}, "pool")
        assert (pool.resize_size, pool.crop_size, pool.keep_aspect) == (248, 224, True), size
    vit_kind = {"image_processor_type": "ViTImageProcessor"}
    fix = r"\?size=N&resize=N&interpolation=bilinear\|bicubic\|nearest&mean=R,G,B&std=R,G,B"
    for bad, why in [(vit_kind | {"size": {"height": 224, "width": 320}}, "not square"),
                     (vit_kind | {"size": {"longest_edge": 224}}, "caps the longest edge.*" + fix),
                     (vit_kind | {"size": {"shortest_edge": 224, "longest_edge": 1333}, "do_center_crop": True,
                                  "crop_size": {"height": 224, "width": 224}}, "caps the longest edge.*" + fix),
                     (vit_kind | {"size": {"height": 8, "width": 8}, "resample": 1}, "LANCZOS"),
                     ({"image_processor_type": "MobileViTImageProcessor", "size": {"shortest_edge": 288}, "do_center_crop": True,
                       "crop_size": {"height": 256, "width": 256}, "do_flip_channel_order": True}, "MobileViTImageProcessor is not one.*" + fix),
                     (vit_kind | {"size": {"height": 8, "width": 8}, "do_flip_channel_order": True}, "flips the channels.*" + fix),
                     ({"size": {"height": 8, "width": 8}}, "of no named type.*" + fix),
                     ({"image_processor_type": "PoolFormerImageProcessor", "size": {"height": 224, "width": 224}, "crop_pct": 0.9,
                       "do_center_crop": False}, "without a square crop.*" + fix)]:
        with pytest.raises(SpecError, match=why):
            from_image_processor(bad, "bad")


def test_a_warped_geometry_decodes_as_resize_then_floor_crop(tmp_path):
    """keep_aspect=False: the whole image to resize x resize, then the centre crop at (side - crop) // 2; by hand with PIL."""
    import numpy as np
    from PIL import Image

    from visionaudit.data.decoding import decode_image
    from visionaudit.preprocessing import Geometry

    rng = np.random.default_rng(0)
    path = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 256, (50, 90, 3), dtype=np.uint8)).save(path)
    got = decode_image(path, Geometry(33, 30, "bilinear", crop=False, floor_crop=True))
    expected = np.asarray(Image.open(path).convert("RGB").resize((33, 33), Image.BILINEAR))[1:31, 1:31]  # (33 - 30) // 2 = 1
    assert torch.equal(got, torch.from_numpy(expected.copy()).permute(2, 0, 1))
    rounded = decode_image(path, Geometry(33, 30, "bilinear", crop=False))  # torchvision's round(1.5) = 2
    assert torch.equal(rounded, torch.from_numpy(np.asarray(Image.open(path).convert("RGB").resize((33, 33), Image.BILINEAR))[2:32, 2:32].copy()).permute(2, 0, 1))


# --- hf:FOLDER --------------------------------------------------------------------------------------


def test_an_hf_folder_loads_with_its_classes_preprocessing_and_identity(vit_folder):
    from transformers import ViTForImageClassification

    model = load_model(f"hf:{vit_folder}", "cpu")
    assert model.id == f"hf:{vit_folder}" and model.architecture == "hf:ViTForImageClassification"
    assert model.label_space.names == CLASSES and "id2label" in model.label_space.source and not model.imagenet_classes
    pre = model.preprocessing
    assert (pre.crop_size, pre.resize_size, pre.keep_aspect, pre.mean, pre.std) == (64, 64, False, (0.45, 0.5, 0.55), (0.2, 0.25, 0.3))
    assert "ViTImageProcessor" in pre.source
    files = sorted(vit_folder.iterdir())
    assert [p.name for p in files] == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert model.sha256 == sha256sum_lines(files)  # sha256sum config.json model.safetensors preprocessor_config.json | sha256sum
    assert model.sha256_of.startswith(f"{vit_folder}: config.json, model.safetensors, preprocessor_config.json")
    # The weights are the saved ones, and the logits are unwrapped from the output: a model built from the same seed.
    torch.manual_seed(0)
    reference = ViTForImageClassification(ViTForImageClassification.config_class.from_pretrained(vit_folder)).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(as_logits(model.module(x)), reference(x).logits, atol=1e-6)
    assert model.to_dict()["preprocessing"]["keep_aspect"] is False  # the report says the image is warped, not cropped


def test_the_same_model_through_a_hub_cache_with_downloads_off(vit_folder, hub_cache):
    snapshot = cache_folder(hub_cache, "tiny-org/tiny-vit", vit_folder)
    spec = parse_spec("hf:tiny-org/tiny-vit")
    assert (spec.kind, spec.name, spec.path) == ("hf", "tiny-org/tiny-vit", None)
    check_available(spec)  # found: nothing to fetch, nothing refused
    model = load_model(spec, "cpu")
    assert model.label_space.names == CLASSES
    assert model.sha256 == sha256sum_lines(list(vit_folder.iterdir()))  # the same files: the same identity as the folder
    assert model.sha256_of.startswith(f"{snapshot}: ")
    folder_model = load_model(f"hf:{vit_folder}", "cpu")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(as_logits(model.module(x)), as_logits(folder_model.module(x)))
    assert model.preprocessing.to_dict() | {"source": ""} == folder_model.preprocessing.to_dict() | {"source": ""}
    # Its classes are known before it loads (the controller matches the images' folders against them at startup).
    from visionaudit.models.classes import known_before_load, outputs_before_load

    for known in (spec, parse_spec(f"hf:{vit_folder}")):
        assert known_before_load(known).names == CLASSES and outputs_before_load(known) == len(CLASSES)
    assert known_before_load(parse_spec("hf:tiny-org/not-cached")) is None  # not on disk: known once it loads
    # A revision: the snapshot named by it, and one the cache does not hold is refused with the command.
    assert load_model(f"hf:tiny-org/tiny-vit@{REVISION}", "cpu").sha256 == model.sha256
    with pytest.raises(HubUnavailable, match=r"hf download tiny-org/tiny-vit --revision v2"):
        check_available(parse_spec("hf:tiny-org/tiny-vit@v2"))


@pytest.mark.parametrize("switch", ["HF_HUB_OFFLINE", "VISIONAUDIT_OFFLINE", "--audit-offline"])
def test_an_absent_hub_model_with_downloads_off_names_the_command(hub_cache, monkeypatch, switch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    if switch != "--audit-offline":
        monkeypatch.setenv(switch, "1")
    with pytest.raises(HubUnavailable) as refused:
        check_available(parse_spec("hf:tiny-org/absent"), offline=switch == "--audit-offline")
    message = str(refused.value)
    assert "the Hugging Face repo tiny-org/absent is not in the cache" in message
    assert "(it lacks config.json; model.safetensors or pytorch_model.bin)" in message
    assert "hf download tiny-org/absent" in message and "huggingface-cli download tiny-org/absent" in message
    assert str(hub_cache) in message


def test_an_absent_hub_model_stops_the_run_at_startup_with_exit_4(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
           "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "-n", "0", "--model", "hf:tiny-org/absent",
           "-k", "accuracy", f"--audit-json={tmp_path / 'r.json'}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out[-3000:]
    assert "hf download tiny-org/absent" in out and "Traceback" not in out


# --- timm pretrained tags ---------------------------------------------------------------------------


def test_a_timm_pretrained_tag_through_a_hub_cache(hub_cache):
    reference, weights = timm_random_weights(hub_cache, TIMM_TAG)
    spec = parse_spec("timm:test_efficientnet")  # the default tag: the id as written, the tag in the architecture
    assert spec.id == "timm:test_efficientnet" and spec.weights == "pretrained"
    check_available(spec)
    model = load_model(spec, "cpu")
    x = torch.rand(2, 3, 160, 160)
    with torch.no_grad():
        assert torch.equal(model.module(x), reference(x))  # the random weights written into the cache, read back
    pre = model.preprocessing  # timm's resolved data config: 160 px, crop_pct 0.95, bicubic
    assert (pre.crop_size, pre.resize_size, pre.interpolation) == (160, int(160 / 0.95), "bicubic")
    assert model.label_space.imagenet1k and "imagenet-1k" in model.label_space.source
    import hashlib

    assert model.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest() and model.sha256_of == str(weights)
    assert model.architecture == f"timm:{TIMM_TAG}" == load_model(f"timm:{TIMM_TAG}", "cpu").architecture


def test_timm_refusals_come_at_startup(hub_cache):
    with pytest.raises(SpecError, match=r"timm has no pretrained tag 'nope' for test_efficientnet; known: test_efficientnet.r160_in1k"):
        check_available(parse_spec("timm:test_efficientnet.nope"))
    with pytest.raises(SpecError, match=r"timm has no model 'test_efficientnett'; did you mean timm:test_efficientnet"):
        check_available(parse_spec("timm:test_efficientnett"))
    with pytest.raises(HubUnavailable, match=r"the Hugging Face repo timm/test_resnet.r160_in1k is not in the cache .* \(it lacks "
                                             r"model.safetensors or pytorch_model.bin\).*hf download timm/test_resnet.r160_in1k"):
        check_available(parse_spec("timm:test_resnet.r160_in1k"))
    check_available(parse_spec("timm:test_resnet:none"))  # random weights: nothing to fetch


# --- the model's id where the suite keys things by it ------------------------------------------------


def test_audit_toml_tables_name_hub_models_in_their_canonical_form(tmp_path):
    from visionaudit.config import load_config

    toml = tmp_path / "audit.toml"
    toml.write_text('[models."hf:tiny-org/tiny-vit@main".accuracy]\nmin_top1 = 0.5\n'
                    '[models."timm:resnet18".accuracy]\nmin_top1 = 0.6\n')
    config = load_config(toml)
    assert config.thresholds("accuracy", "hf:tiny-org/tiny-vit")["min_top1"] == 0.5
    assert config.thresholds("accuracy", "timm:resnet18")["min_top1"] == 0.6  # as main names it: old tables still apply
    toml.write_text('[models."timm:resnet18".accuracy]\nmin_top1 = 0.6\n[models."timm:resnet18.a1_in1k".accuracy]\nmin_top1 = 0.7\n')
    config = load_config(toml)  # the tag written out is another spec (which tag is the default depends on timm's version)
    assert (config.thresholds("accuracy", "timm:resnet18")["min_top1"], config.thresholds("accuracy", "timm:resnet18.a1_in1k")["min_top1"]) == (0.6, 0.7)
    # A baseline written by a suite that knew no tags names timm:resnet18: [baseline.pairs] can still name it.
    toml.write_text('[baseline.pairs]\n"timm:resnet18.a1_in1k" = "timm:resnet18"\n')
    assert dict(load_config(toml).baseline_pairs) == {"timm:resnet18.a1_in1k": "timm:resnet18"}


def test_the_logit_cache_key_covers_every_file_of_an_hf_model(tmp_path, vit_folder):
    """The processor's file is part of the model: another mean is another entry, though the weights are the same."""
    from visionaudit.models import logit_cache

    folder = tmp_path / "m"
    folder.mkdir()
    for p in vit_folder.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    first = load_model(f"hf:{folder}", "cpu")
    config = json.loads((folder / "preprocessor_config.json").read_text())
    config["image_mean"] = [0.5, 0.5, 0.5]
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    second = load_model(f"hf:{folder}", "cpu")
    assert first.id == second.id and first.sha256 != second.sha256

    class Images:  # what the key reads of an image set
        name, sample_ids, paths = "x", ["a.png"], [tmp_path / "a.png"]

        def __len__(self):
            return 1

    (tmp_path / "a.png").write_bytes(b"not read")
    entries = [logit_cache.entry(tmp_path, m, Images(), m.preprocessing.geometry, 8) for m in (first, second)]
    assert entries[0].path != entries[1].path
    assert entries[0].key["model"]["sha256"] == first.sha256 and "preprocessor_config.json" in entries[0].key["model"]["sha256_of"]
    assert entries[0].key["model_code"]["module"].startswith("transformers.")  # transformers' version is in the key


def test_class_folders_that_match_no_id2label_name_stop_the_run_at_startup(tmp_path, vit_folder):
    """The model's classes are read from its config.json on the controller, before any model loads."""
    import numpy as np
    from PIL import Image

    for name in ("zebra", "banana"):
        (tmp_path / "images" / name).mkdir(parents=True)
        Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(tmp_path / "images" / name / "a.png")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "-n", "0", "--model", f"hf:{vit_folder}",
           f"--audit-images={tmp_path / 'images'}", "-k", "test_clean_top1", f"--audit-json={tmp_path / 'r.json'}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out[-3000:]
    assert "banana" in out and "Loading weights" not in out and "Traceback" not in out, out[-3000:]


def test_the_colour_space_folds_run_on_an_hf_model(vit_folder):
    """ViT checks the input's channels against the num_channels its embeddings and config keep: the folded copy says
    1 (and the expansion back 3), the original still 3. The fold is exact: the original on the gray image stacked
    three times gives the folded model's logits on the gray image."""
    from visionaudit.families.conversion import gray_to_rgb, rgb_to_gray

    model = load_model(f"hf:{vit_folder}", "cpu")
    gray = rgb_to_gray(model.module, model.preprocessing)
    assert gray.model.config.num_channels == 1 and model.module.config.num_channels == 3
    g = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        stacked = as_logits(model.module(model.preprocessing.normalize(255 * g.expand(-1, 3, -1, -1))))
        folded = as_logits(gray.model(gray.preprocessing.normalize(255 * g)))
    assert torch.allclose(stacked, folded, atol=1e-5), (stacked - folded).abs().max()
    assert gray_to_rgb(gray.model, gray.preprocessing).model.config.num_channels == 3


def test_downloads_happen_on_first_use_when_allowed_and_never_when_off(vit_folder, hub_cache, monkeypatch):
    """huggingface_hub's downloader replaced by one that writes the file into the cache (as a download does) and
    records the call: online, only what the cache lacks is fetched, once; offline, nothing is asked for; a failed
    download names the command."""
    import huggingface_hub

    from tests.hub_models import write_cache_entry

    calls = []

    def fake_download(repo_id, filename, *, revision=None, cache_dir=None, **_):
        calls.append(filename)
        snapshot = write_cache_entry(Path(cache_dir), repo_id, {filename: (vit_folder / filename).read_bytes()})
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    spec = parse_spec("hf:tiny-org/fetched")
    with pytest.raises(HubUnavailable):
        check_available(spec, offline=True)
    assert calls == []  # --audit-offline: nothing asked of the network
    check_available(spec)
    assert sorted(calls) == ["config.json", "model.safetensors", "preprocessor_config.json"]  # not pytorch_model.bin
    check_available(spec)
    assert len(calls) == 3  # found in the cache the second time
    assert load_model(spec, "cpu").sha256 == sha256sum_lines(list(vit_folder.iterdir()))

    def failing(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", failing)
    with pytest.raises(HubUnavailable, match=r"could not download config.json of tiny-org/other \(OSError: Network is "
                                             r"unreachable\); fetch it where the network works: hf download tiny-org/other"):
        check_available(parse_spec("hf:tiny-org/other"))

    def unreachable(*args, **kwargs):  # what huggingface_hub raises when the hub cannot be reached: a 404's subclass
        from huggingface_hub.errors import LocalEntryNotFoundError

        raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    with pytest.raises(HubUnavailable, match=r"could not reach the Hugging Face Hub for config.json of tiny-org/third .*"
                                             r"hf download tiny-org/third"):  # not "the repo has no config.json"
        check_available(parse_spec("hf:tiny-org/third"))


# --- review fixes: startup refusals, --audit-offline in the loaders, one snapshot, the suite's own weight loader ---


def _copy(folder: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    for p in folder.iterdir():
        (to / p.name).write_bytes(p.read_bytes())
    return to


def test_an_image_processor_the_suite_does_not_follow_is_refused_at_startup(tmp_path, vit_folder):
    """MobileViT's processor flips RGB to BGR and LeViT-like rules are its own: refused before any model loads, naming
    the query; with the whole preprocessing in the query the processor is not read."""
    from visionaudit.models.hf import check_preprocessing

    folder = _copy(vit_folder, tmp_path / "m")
    config = json.loads((folder / "preprocessor_config.json").read_text())
    config.update(image_processor_type="MobileViTImageProcessor", do_flip_channel_order=True)
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    with pytest.raises(SpecError, match=rf"--model hf:{folder}: .*MobileViTImageProcessor is not one .*\?size=N&resize=N&interpolation="):
        check_preprocessing(parse_spec(f"hf:{folder}"))
    given = f"hf:{folder}?size=64&resize=64&interpolation=bilinear&mean=0.5,0.5,0.5&std=0.25,0.25,0.25"
    check_preprocessing(parse_spec(given))
    pre = load_model(given, "cpu").preprocessing
    assert (pre.crop_size, pre.resize_size, pre.interpolation, pre.mean, pre.std) == (64, 64, "bilinear", (0.5,) * 3, (0.25,) * 3)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "-n", "0", "--model", f"hf:{folder}",
           "-k", "test_clean_top1", f"--audit-json={tmp_path / 'r.json'}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4 and "MobileViTImageProcessor" in out and "Traceback" not in out, out[-3000:]


def test_a_bad_reference_is_refused_at_startup_naming_reference(tmp_path, hub_cache):
    from plugins.settings import _check_model

    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 192])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(SpecError, match=r"its \?reference=torchvision:resnet1 is refused: .*did you mean torchvision:resnet18"):
        parse_spec(f"{path}?reference=torchvision:resnet1")
    spec = parse_spec(f"{path}?reference=hf:tiny-org/absent")  # parses; its files are looked for at startup
    with pytest.raises(Exception, match=r"its \?reference=hf:tiny-org/absent .*is refused: .*hf download tiny-org/absent"):
        _check_model(spec, False)


def test_audit_offline_reaches_the_loader_in_a_worker(tmp_path, vit_folder):
    """A cached hub model without its (optional) processor file: the startup check passes offline, and the worker's
    load must not ask the network for the file either. huggingface_hub's downloader is replaced, in the run's
    processes, by one that leaves a mark."""
    cache = tmp_path / "hf" / "hub"
    write_cache_entry = __import__("tests.hub_models", fromlist=["write_cache_entry"]).write_cache_entry
    write_cache_entry(cache, "tiny-org/tiny-vit", {n: (vit_folder / n).read_bytes() for n in ("config.json", "model.safetensors")})
    mark = tmp_path / "asked-the-network"
    (tmp_path / "netguard.py").write_text(
        "import huggingface_hub\n"
        "def _no(*a, **k):\n"
        f"    open({str(mark)!r}, 'a').write(repr(a) + '\\n')\n"
        "    raise OSError('no network in this test')\n"
        "huggingface_hub.hf_hub_download = _no\n")
    images = tmp_path / "images"
    from PIL import Image

    for name in CLASSES:
        (images / name).mkdir(parents=True)
        Image.new("RGB", (64, 64), (100, 120, 140)).save(images / name / "a.png")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(cache), "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    for var in ("HF_HUB_OFFLINE", "VISIONAUDIT_OFFLINE", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "-p", "netguard", "-n", "1", "--device", "cpu",
           "--model", "hf:tiny-org/tiny-vit?size=64&resize=64", "--audit-offline", f"--audit-images={images}", "-k", "test_clean_top1",
           f"--audit-json={tmp_path / 'r.json'}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert not mark.exists(), mark.read_text() + out[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    # The model loaded and measured in the worker (3 images: too few to judge, which is not what this test is about).
    assert [(t["outcome"], t["worker"], "clean_top1" in t["metrics"]) for t in report["audits"]] == [("not_judged", "gw0", True)], out[-3000:]


def test_hub_files_come_from_one_snapshot(vit_folder, hub_cache, monkeypatch):
    """config.json cached from an older commit; the hub's main moved on, so the weights download into a newer snapshot
    (and refs/main follows, as huggingface_hub does): the lookup is repeated at the new commit, which gets its own
    config.json. A downloader that leaves the files apart is refused naming the command."""
    import huggingface_hub

    from tests.hub_models import write_cache_entry

    old, new = "1" * 40, "2" * 40
    write_cache_entry(hub_cache, "tiny-org/moved", {n: (vit_folder / n).read_bytes() for n in ("config.json", "preprocessor_config.json")}, old)
    calls = []

    def download(repo_id, filename, *, revision=None, cache_dir=None, move_ref=True, **_):
        calls.append(filename)
        if (Path(cache_dir) / ("models--" + repo_id.replace("/", "--")) / "snapshots" / new / filename).exists():
            return str(Path(cache_dir) / ("models--" + repo_id.replace("/", "--")) / "snapshots" / new / filename)
        snapshot = write_cache_entry(Path(cache_dir), repo_id, {filename: (vit_folder / filename).read_bytes()}, new)
        if not move_ref:
            (Path(cache_dir) / ("models--" + repo_id.replace("/", "--")) / "refs" / "main").write_text(old)
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    from visionaudit.models.hub import hf_repo_files

    got = hf_repo_files(parse_spec("hf:tiny-org/moved"), offline=False)
    assert {p.parent.name for p in got.files.values()} == {new}, got.files
    assert sorted(got.files) == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert load_model("hf:tiny-org/moved", "cpu").sha256 == sha256sum_lines(list(vit_folder.iterdir()))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: download(*a, **k, move_ref=False))
    write_cache_entry(hub_cache, "tiny-org/apart", {"config.json": (vit_folder / "config.json").read_bytes()}, old)
    with pytest.raises(HubUnavailable, match=r"come from different commits .*hf download tiny-org/apart"):
        hf_repo_files(parse_spec("hf:tiny-org/apart"), offline=False)


class _NotAWeight:  # pickled into a .bin: a safe load (weights_only=True) refuses it
    pass


def test_timm_cached_bin_weights_are_read_by_the_suite_not_unpickled_by_timm(hub_cache, monkeypatch):
    """timm's pretrained weights cached as pytorch_model.bin: read with the suite's own loader (weights_only=True):
    plain tensors load and give the model; pickled objects are refused with the suite's message."""
    import timm
    from timm.models import get_pretrained_cfg

    from tests.hub_models import write_cache_entry
    from visionaudit.models import checkpoints

    torch.manual_seed(0)
    reference = timm.create_model(TIMM_TAG, pretrained=False).eval()
    import io

    buffer = io.BytesIO()
    torch.save(reference.state_dict(), buffer)
    repo = get_pretrained_cfg(TIMM_TAG).hf_hub_id
    snapshot = write_cache_entry(hub_cache, repo, {"pytorch_model.bin": buffer.getvalue()})
    read = []
    real = checkpoints.load_state_dict
    monkeypatch.setattr(checkpoints, "load_state_dict", lambda p: read.append(Path(p)) or real(p))
    model = load_model(f"timm:{TIMM_TAG}", "cpu")
    assert read == [snapshot / "pytorch_model.bin"]
    x = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        assert torch.equal(model.module(x), reference(x))
    buffer = io.BytesIO()
    torch.save({"state_dict": reference.state_dict(), "extra": _NotAWeight()}, buffer)
    (snapshot / "pytorch_model.bin").unlink()
    write_cache_entry(hub_cache, repo, {"pytorch_model.bin": buffer.getvalue()})
    with pytest.raises(CheckpointError, match="holds pickled Python objects that a safe load refuses"):
        load_model(f"timm:{TIMM_TAG}", "cpu")
