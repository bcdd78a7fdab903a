"""A user's ImageNet validation folder in its flat layouts (devkit ground truth, Kaggle's CSV), on
synthetic folders whose ILSVRC2012_ID order differs from the sorted-WNID order of class indices."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from visionaudit.data import image_sets as datasets
from visionaudit.errors import DataError

# The devkit numbers classes its own way: here ID 1 is parachute, ID 2 tench, ID 3 English springer.
# Their class indices (the sorted-WNID order every ImageNet model uses) are 701, 0 and 217.
SYNSETS = [(1, "n03888257", "parachute"), (2, "n01440764", "tench"), (3, "n02102040", "English springer"),
           (1001, "n00001740", "entity")]  # a non-leaf synset, as the real meta.mat lists after the 1,000 classes
GROUND_TRUTH = [2, 1, 3, 2]  # images 1..4: tench, parachute, English springer, tench
EXPECTED = (0, 701, 217, 0)
FIELDS = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children", "wordnet_height", "num_train_images"]


def write_meta(path: Path) -> None:
    """meta.mat in the devkit's structure: a synsets struct array (n x 1) with the devkit's fields."""
    synsets = np.zeros((len(SYNSETS), 1), dtype=[(f, object) for f in FIELDS])
    for i, (sid, wnid, words) in enumerate(SYNSETS):
        leaf = sid <= 1000
        synsets[i, 0] = (np.uint16(sid), wnid, words, f"gloss of {words}", np.uint16(0 if leaf else 3),
                         np.zeros((1, 0)) if leaf else np.array([1, 2, 3], dtype=np.uint16), np.uint8(0), np.uint16(1300))
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"synsets": synsets})


def write_images(folder: Path, n: int = 4) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, n + 1)]
    for p in paths:
        Image.new("RGB", (40, 30), (10, 20, 30)).save(p, format="JPEG")
    return paths


def write_truth(path: Path, ids=GROUND_TRUTH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}\n" for i in ids))


def labels_by_name(image_set: datasets.ImageSet) -> dict[str, int]:
    return {p.name: label for p, label in zip(image_set.paths, image_set.labels)}


def test_devkit_ground_truth_maps_through_the_wnid(tmp_path):
    val = tmp_path / "val"
    paths = write_images(val)
    write_truth(tmp_path / "ILSVRC2012_devkit_t12" / "data" / "ILSVRC2012_validation_ground_truth.txt")
    write_meta(tmp_path / "ILSVRC2012_devkit_t12" / "data" / "meta.mat")
    s = datasets.labelled_images(val)
    assert labels_by_name(s) == {p.name: e for p, e in zip(paths, EXPECTED)}
    # Reading the IDs as class indices (ID - 1) would have given 1, 0, 2, 1: the mapping must go through the WNID.
    assert s.labels != tuple(i - 1 for i in GROUND_TRUTH)


def test_devkit_archive_beside_the_images(tmp_path):
    val = tmp_path / "val"
    write_images(val)
    parts = tmp_path / "parts"
    write_truth(parts / "truth.txt")
    write_meta(parts / "meta.mat")
    with tarfile.open(tmp_path / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as tar:
        tar.add(parts / "truth.txt", "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt")
        tar.add(parts / "meta.mat", "ILSVRC2012_devkit_t12/data/meta.mat")
    assert datasets.labelled_images(val).labels == EXPECTED


@pytest.mark.parametrize("inside", ["ILSVRC2012_devkit_t12/data", "data"])
def test_the_devkit_unpacked_in_the_image_folder_labels_the_images_and_is_no_class(tmp_path, inside):
    """Where the labels are looked for first, the image folder itself: the devkit unpacked there (or its data/ alone) is
    a folder beside the flat images, which made the folder read as class folders (stop 43: every image refused as
    having no class, the devkit named as a nested folder)."""
    val = tmp_path / "val"
    paths = write_images(val)
    write_truth(val / inside / "ILSVRC2012_validation_ground_truth.txt")
    write_meta(val / inside / "meta.mat")
    s = datasets.labelled_images(val)
    assert labels_by_name(s) == {p.name: e for p, e in zip(paths, EXPECTED)}
    # A class folder beside them is still a class folder: the flat images then have no class, and are named.
    (val / "n01440764").mkdir()
    with pytest.raises(DataError, match=r"4 file\(s\) of .* cannot be used: ILSVRC2012_val_00000001.JPEG"):
        datasets.labelled_images(val)


def test_kaggle_solution_csv_four_folders_up(tmp_path):
    val = tmp_path / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    write_images(val, 3)
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\n"
        "ILSVRC2012_val_00000002,n03888257 10 20 30 40 n03888257 1 2 3 4\n"
        "ILSVRC2012_val_00000001,n02102040 5 5 50 50\n"
        "ILSVRC2012_val_00000003,n15075141 0 0 9 9\n"
        "ILSVRC2012_val_00000004,n01440764 0 0 9 9\n")  # an image this folder lacks: ignored
    s = datasets.labelled_images(val)
    assert labels_by_name(s) == {"ILSVRC2012_val_00000001.JPEG": 217, "ILSVRC2012_val_00000002.JPEG": 701,
                                 "ILSVRC2012_val_00000003.JPEG": 999}


def test_wnid_folders_need_no_devkit(tmp_path):
    for wnid in ("n03888257", "n01440764"):
        write_images(tmp_path / "val" / wnid, 1)
    assert datasets.labelled_images(tmp_path / "val").labels == (0, 701)  # folders in sorted order: tench first


def test_no_labels_names_the_files_and_the_fix(tmp_path):
    write_images(tmp_path / "val")
    with pytest.raises(DataError, match=r"holds ILSVRC2012_val_\* images but no labels for them: put the devkit's "
                                        r"ILSVRC2012_validation_ground_truth.txt and meta.mat .* or Kaggle's "
                                        r"LOC_val_solution.csv"):
        datasets.labelled_images(tmp_path / "val")


def test_ground_truth_without_meta_names_meta(tmp_path):
    write_images(tmp_path / "val")
    write_truth(tmp_path / "data" / "ILSVRC2012_validation_ground_truth.txt")
    with pytest.raises(DataError, match=rf"{tmp_path / 'data' / 'meta.mat'} is missing: .* put both in {tmp_path / 'data'}"):
        datasets.labelled_images(tmp_path / "val")


def test_image_beyond_the_ground_truth_is_named(tmp_path):
    write_images(tmp_path / "val", 5)
    write_truth(tmp_path / "val" / "ILSVRC2012_validation_ground_truth.txt")
    write_meta(tmp_path / "val" / "meta.mat")
    with pytest.raises(DataError, match="ILSVRC2012_val_00000005.JPEG: no label for ILSVRC2012_val_00000005"):
        datasets.labelled_images(tmp_path / "val")


def test_ground_truth_id_missing_from_meta_is_named(tmp_path):
    write_images(tmp_path / "val", 2)
    write_truth(tmp_path / "val" / "ILSVRC2012_validation_ground_truth.txt", [2, 7])
    write_meta(tmp_path / "val" / "meta.mat")
    with pytest.raises(DataError, match="line 2: '7' is not an ILSVRC2012_ID listed in meta.mat"):
        datasets.labelled_images(tmp_path / "val")

