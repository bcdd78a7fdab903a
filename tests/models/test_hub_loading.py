"""Issue 25: Hugging Face classifiers (``hf:FOLDER``, ``hf:ORG/NAME``) and timm's pretrained tags loaded, from a Hugging
Face cache the tests write (no network: ``HF_HUB_OFFLINE=1``): downloads on first use when allowed and never when off,
every file from one snapshot, timm's cached weights read by the suite's own loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.hub_models import (
    CLASSES,
    REVISION,
    TIMM_TAG,
    cache_folder,
    sha256sum_lines,
    timm_random_weights,
)
from visionaudit.errors import CheckpointError
from visionaudit.models.hub import HubUnavailable, check_available
from visionaudit.models.loading import as_logits, load_model, parse_spec

# --- hf:FOLDER --------------------------------------------------------------------------------------


def test_an_hf_folder_loads_with_its_classes_preprocessing_and_identity(vit_folder):
    from transformers import ViTForImageClassification

    model = load_model(f"hf:{vit_folder}", "cpu")
    assert model.id == f"hf:{vit_folder}" and model.architecture == "hf:ViTForImageClassification"
    assert model.label_space.names == CLASSES and "id2label" in model.label_space.source and not model.imagenet_classes
    pre = model.preprocessing
    assert (pre.crop_size, pre.resize_size, pre.keep_aspect, pre.mean, pre.std) == (64, 64, False, (0.45, 0.5, 0.55),
                                                                                    (0.2, 0.25, 0.3))
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


def test_hub_files_come_from_one_snapshot(vit_folder, hub_cache, monkeypatch):
    """config.json cached from an older commit; the hub's main moved on, so the weights download into a newer snapshot
    (and refs/main follows, as huggingface_hub does): the lookup is repeated at the new commit, which gets its own
    config.json. A downloader that leaves the files apart is refused naming the command."""
    import huggingface_hub

    from tests.hub_models import write_cache_entry

    old, new = "1" * 40, "2" * 40
    write_cache_entry(hub_cache, "tiny-org/moved",
                      {n: (vit_folder / n).read_bytes() for n in ("config.json", "preprocessor_config.json")}, old)
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
