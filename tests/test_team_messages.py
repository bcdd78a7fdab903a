"""hunt35: the messages a team's own (non-ImageNet) classifier gets for its commonest mistakes name the right fix.

Each test is a real run (pytest audits in a subprocess): a class file in the wrong order and a merely weak model
(F2), a class file one name short (F3), a model of 10 of the 16 shape-bias categories (F6, F9). F1 (options after a
?reference= with its own query) is tests/models/test_onnx_model.py's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.audit_runs import audit
from tests.sixteen_classifier import published_mapping, spec

TEN = ["bear", "bicycle", "bird", "boat", "bottle", "car", "cat", "chair", "dog", "truck"]  # 10 of the 16 categories


def _noise_folders(root: Path, classes: list[str], per_class: int) -> Path:
    """A folder per class of distinct noise images (the tiny model's predictions vary from image to image)."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def _text(proc) -> str:
    return proc.stdout + proc.stderr


def test_a_class_file_one_name_short_is_named_as_such(tmp_path):
    """F3: 9 names for a 10-output model, folders of the 10 classes: the folder the list lacks was reported as
    'rename the folders' only; the message now also says the class file may be incomplete, with its count."""
    images = _noise_folders(tmp_path / "images", TEN, 2)
    nine = tmp_path / "classes9.txt"
    nine.write_text("\n".join(TEN[:9]) + "\n")
    proc, _ = audit(tmp_path, tmp_path, "f3", "-m", "accuracy", f"--audit-images={images}",
                    model=f"tests.tiny_models:ten_classes?classes={nine}&size=32")
    text = _text(proc)
    assert proc.returncode == 4, text[-3000:]
    assert "'truck'" in text and "the class file is incomplete: it names 9 classes" in text


@pytest.mark.slow(data=False)
def test_a_weak_model_is_told_preprocessing_or_class_order(tmp_path):
    """F2, the other side: a model that is merely wrong (random weights, its errors spread) is told to check its
    preprocessing or its class order, and no class is said to be taken for another."""
    images = _noise_folders(tmp_path / "images", TEN[:3], 20)
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(TEN) + "\n")
    proc, data = audit(tmp_path, tmp_path, "weak", "-m", "accuracy", "-k", "clean_top1", f"--audit-images={images}",
                       model=f"tests.tiny_models:ten_classes?classes={classes}&size=32")
    text = _text(proc)
    assert proc.returncode == 1, text[-3000:]
    (entry,) = [e for e in data["audits"] if e["audit"] == "accuracy"]
    assert entry["outcome"] == "failed"
    assert "check its preprocessing or its class order" in entry["message"], entry["message"]
    assert "mostly predicted" not in entry["message"]


@pytest.fixture
def bird_and_dog(shared_data, tmp_path) -> Path:
    """The imagenet-sample images of the bird and dog categories, in folders named so."""
    wnids = (shared_data / "imagenet_wnids.txt").read_text().split()
    mapping = published_mapping()
    for category in ("bird", "dog"):
        (tmp_path / "images" / category).mkdir(parents=True)
        for i in mapping[category]:
            for src in (shared_data / "imagenet-sample").glob(f"{wnids[i]}_*"):
                (tmp_path / "images" / category / src.name).symlink_to(src)
    return tmp_path / "images"


@pytest.mark.slow  # a real model on the real images
def test_a_class_file_with_two_names_swapped_is_named_as_such(bird_and_dog, shared_data, tmp_path):
    """F2 (the hunt's repro): the 16-category classifier with bird and dog swapped in its class file. Only "check its
    preprocessing" was said; now each class taken wholesale for the other is named, and the class order asked."""
    names = list(published_mapping())
    b, d = names.index("bird"), names.index("dog")
    names[b], names[d] = names[d], names[b]
    swapped = tmp_path / "swapped.txt"
    swapped.write_text("\n".join(names) + "\n")
    proc, data = audit(tmp_path, shared_data, "swap", "-m", "accuracy", "-k", "clean_top1", f"--audit-images={bird_and_dog}",
                       model=spec(swapped))
    assert data is not None, _text(proc)[-3000:]
    (entry,) = [e for e in data["audits"] if e["audit"] == "accuracy"]
    message = entry["message"]
    assert entry["outcome"] == "failed" and entry["metrics"]["clean_top1"] < 0.2, message
    assert "bird's images are mostly predicted dog" in message and "dog's images are mostly predicted bird" in message
    assert "is its class list in the model's output order? If it is, check its preprocessing" in message


@pytest.mark.slow  # the shape-bias data
def test_a_model_of_ten_categories_is_told_shape_bias_cannot_be_measured(shared_data, tmp_path):
    """F6: every class of the model is a category; the six others have no class, so no category_map can help:
    said plainly. F9: the observers' data serves no model here, so no note about it."""
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(TEN) + "\n")
    proc, data = audit(tmp_path, shared_data, "f6", "-m", "shape_bias", "-n", "0",
                       model=f"tests.tiny_models:ten_classes?classes={classes}&size=32")
    text = _text(proc)
    assert data is not None, text[-3000:]
    entries = [e for e in data["audits"] if e["audit"] == "shape_bias"]
    assert entries and all(e["outcome"] == "skipped" for e in entries), text[-3000:]
    for e in entries:
        assert "cannot be measured" in e["message"] and "category_map" not in e["message"], e["message"]
        assert "airplane, clock, elephant, keyboard, knife, oven" in e["message"]
    assert "observers" not in text, text[-3000:]


@pytest.mark.slow(data=False)
def test_an_accuracy_row_not_judged_shows_the_same_bounds_as_judged(tmp_path):
    """F10: min_balanced_accuracy was recorded only when the row was judged; a not_judged row (too few images)
    showed the other bounds without it."""
    images = _noise_folders(tmp_path / "images", TEN[:3], 3)
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(TEN) + "\n")
    proc, data = audit(tmp_path, tmp_path, "few", "-m", "accuracy", "-k", "clean_top1", f"--audit-images={images}",
                       model=f"tests.tiny_models:ten_classes?classes={classes}&size=32")
    assert data is not None, _text(proc)[-3000:]
    (entry,) = [e for e in data["audits"] if e["audit"] == "accuracy"]
    assert entry["outcome"] == "not_judged", entry
    assert entry["thresholds"]["min_balanced_accuracy"] == entry["thresholds"]["min_top1"]  # unset: it is min_top1


def test_empty_class_folders_are_all_counted(tmp_path):
    """F10: 'its folders a, b, c, d, e hold none' named 5 of 7 empty folders with no word of the other 2."""
    for name in TEN[:7]:
        (tmp_path / "images" / name).mkdir(parents=True)
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(TEN) + "\n")
    proc, _ = audit(tmp_path, tmp_path, "empty", "-m", "accuracy", f"--audit-images={tmp_path / 'images'}",
                    model=f"tests.tiny_models:ten_classes?classes={classes}&size=32")
    text = _text(proc)
    assert proc.returncode == 4, text[-3000:]
    assert "bear, bicycle, bird, boat, bottle, and 2 more hold none" in text


@pytest.mark.slow(data=False)
def test_audit_classes_for_a_model_that_names_its_own_is_said_unused(tmp_path):
    """F10: --audit-classes is for a model that names no classes; given for one that does, it was ignored without
    a word."""
    images = _noise_folders(tmp_path / "images", ["tench", "goldfish"], 2)
    classes = tmp_path / "classes.txt"
    classes.write_text("tench\ngoldfish\n")
    proc, _ = audit(tmp_path, tmp_path, "own", "-m", "accuracy", "-k", "clean_top1", f"--audit-images={images}",
                    f"--audit-classes={classes}", model="efficientnet_lite0")
    text = _text(proc)
    assert "--audit-classes is not used for efficientnet_lite0: it names its own classes" in text, text[-3000:]
