"""Hugging Face classifiers in real audit runs (stop 34): a folder without its image processor is said to be
preprocessed as assumed (the report's run notes, the terminal, the step summary), and the TorchScript deployment form
of an ``hf:`` model is traced, run and judged on its logits, image by image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.audit_runs import audit
from tests.hub_models import CLASSES, tiny_vit
from tests.perturbed_torchscript import OFFSET
from visionaudit.report.summaries import markdown_summary, markdown_text

pytestmark = pytest.mark.slow  # the real images

# torchvision's ImageNet normalization and geometry (the published constants, not the suite's): what an hf: model
# without its image processor is fed
IMAGENET = "short side to 256, centre crop 224, bilinear, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)"


def _class_folders(shared_data: Path, root: Path, per_class: int) -> Path:
    """Real images in class-name folders named as the tiny models' id2label."""
    chosen = sorted((shared_data / "imagenet-sample").iterdir())[::50][:per_class * len(CLASSES)]
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for src in chosen[per_class * c:per_class * (c + 1)]:
            (root / name / src.name).symlink_to(src)
    return root


def test_an_hf_folder_without_its_image_processor_is_said_to_be_fed_imagenets_preprocessing(shared_data, tmp_path):
    bare = tiny_vit(tmp_path / "bare-vit", size=224)  # ImageNet's 224 crop: the model runs on what it is fed
    (bare / "preprocessor_config.json").unlink()
    kept = tiny_vit(tmp_path / "kept-vit", size=64, seed=1)  # beside it, one with its processor: nothing to say
    images = _class_folders(shared_data, tmp_path / "images", 2)
    proc, data = audit(tmp_path, shared_data, "bare", "-n", "0", f"--audit-images={images}", "-k", "test_clean_top1",
                       "--model", f"hf:{kept}", model=f"hf:{bare}")
    assert data is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    notes = [n for n in data["run"]["notes"] if "preprocessor_config.json" in n]
    assert len(notes) == 1, data["run"]["notes"]  # the bare folder's; not the one with its processor
    note = notes[0]
    assert note.startswith(f"hf:{bare}: no preprocessor_config.json was found in {bare}"), note
    assert IMAGENET in note, note
    assert f"processor.save_pretrained('{bare}')" in note and f"hf:{bare}?size=N&resize=N&interpolation=" in note
    # what the note says is what the model was fed
    fed = data["models"][f"hf:{bare}"]["preprocessing"]
    assert (fed["resize_size"], fed["crop_size"], fed["interpolation"]) == (256, 224, "bilinear")
    assert fed["mean"] == [0.485, 0.456, 0.406] and fed["std"] == [0.229, 0.224, 0.225]
    assert f"note: {note}" in proc.stdout  # printed, once
    assert proc.stdout.count(f"hf:{bare}: no preprocessor_config.json") == 1
    text = markdown_summary(data)  # the CI page (GITHUB_STEP_SUMMARY) says it too
    assert f"- note: {markdown_text(note)}" in text


def test_a_1_channel_hf_model_without_its_image_processor_is_fed_and_told_one_mean_and_std(shared_data, tmp_path):
    """fixsmall: the note said ImageNet's RGB mean and std, and the load fed them (3 channels) to a model whose patch
    convolution takes 1, which refused them. One channel: the BT.601 luminance of torchvision's constants, by hand
    0.299 * 0.485 + 0.587 * 0.456 + 0.114 * 0.406 = 0.458971 and 0.299 * 0.229 + 0.587 * 0.224 + 0.114 * 0.225 = 0.225609."""
    gray = tiny_vit(tmp_path / "gray-vit", size=224, channels=1)
    (gray / "preprocessor_config.json").unlink()
    images = _class_folders(shared_data, tmp_path / "images", 2)
    proc, data = audit(tmp_path, shared_data, "gray", "-n", "0", f"--audit-images={images}", "-k", "test_clean_top1",
                       model=f"hf:{gray}")
    assert data is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    fed = data["models"][f"hf:{gray}"]["preprocessing"]
    assert fed["input"] == "gray" and fed["mean"] == [pytest.approx(0.458971)] and fed["std"] == [pytest.approx(0.225609)], fed
    ran = [e for e in data["audits"] if e["audit"] == "accuracy"]
    assert ran and all(e["outcome"] != "error" for e in ran), ran  # the model ran on what it was fed
    note = next(n for n in data["run"]["notes"] if "preprocessor_config.json" in n)
    assert "short side to 256, centre crop 224, bilinear, mean (0.458971), std (0.225609)" in note, note
    assert "0.485" not in note and f"hf:{gray}?size=N&resize=N&interpolation=bilinear|bicubic|nearest&mean=M&std=S" in note
    assert f"note: {note}" in proc.stdout


def _forms(data: dict) -> dict[str, dict]:
    return {e["nodeid"].rsplit("-", 1)[1].rstrip("]"): e for e in data["audits"] if e["audit"] == "deployment"}


def test_the_torchscript_form_of_an_hf_classifier_is_traced_run_and_judged(shared_data, tmp_path):
    """A ViT classifier (random weights) saved with save_pretrained: its TorchScript form (traced for its logits) is
    compared with the model as loaded on 18 real images and passes; the same run with the traced module's logits
    moved by OFFSET on one class (tests/perturbed_torchscript.py) fails that form, by OFFSET, and no other."""
    folder = tiny_vit(tmp_path / "vit", size=64)
    images = _class_folders(shared_data, tmp_path / "images", 6)
    args = ("-n", "0", f"--audit-images={images}", "-k", "deployment")
    proc, data = audit(tmp_path, shared_data, "honest", *args, model=f"hf:{folder}")
    assert data is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    ts = _forms(data)["torchscript"]
    assert ts["outcome"] == "passed", (ts, proc.stdout[-3000:])
    assert ts["metrics"]["n_images"] == 18 and ts["metrics"]["max_abs_diff"] <= 1e-4
    assert ts["metrics"]["top1_agreement"] == 1.0

    proc, data = audit(tmp_path, shared_data, "perturbed", *args, "-p", "tests.perturbed_torchscript", model=f"hf:{folder}")
    assert data is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    forms = _forms(data)
    ts = forms["torchscript"]
    assert ts["outcome"] == "failed", ts
    assert abs(ts["metrics"]["max_abs_diff"] - OFFSET) < 1e-4, ts["metrics"]  # the offset, measured image by image
    assert "as torchscript: logits differ" in json.dumps(ts)
    assert forms["torch_export"]["outcome"] == "passed", forms["torch_export"]  # only the traced form was moved
