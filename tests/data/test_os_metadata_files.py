"""The operating systems' metadata files in image folders (macOS's .DS_Store, ._NAME AppleDouble files and a zip's
__MACOSX/ folder, Windows' Thumbs.db and desktop.ini) are skipped alike and counted in the run's notes
(visionaudit/data/system_files.py)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from visionaudit.data import image_sets as datasets
from visionaudit.families.image_check import RunImages, check_image_sets

APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "  # an AppleDouble header: no image


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)


def _metadata(root: Path, folder: str) -> list[str]:
    """What macOS and Windows leave in ``root`` and its class folder ``folder``, relative to root."""
    written = {f"{folder}/Thumbs.db": b"\xd0\xcf\x11\xe0", f"{folder}/desktop.ini": b"[.ShellClassInfo]\r\n",
               f"{folder}/._0.png": APPLEDOUBLE, f"{folder}/.DS_Store": b"\x00\x00\x00\x01Bud1",
               f"__MACOSX/{folder}/._0.png": APPLEDOUBLE, "._readme.png": APPLEDOUBLE, "THUMBS.DB": b"\xd0\xcf"}
    for name, data in written.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return sorted({n if not n.startswith("__MACOSX") else "__MACOSX/" for n in written})


def test_metadata_in_class_folders_is_skipped_and_counted_in_the_run_notes(tmp_path):
    for folder in ("cat", "dog"):
        for i in range(2):
            _png(tmp_path / "images" / folder / f"{i}.png")
    expected = _metadata(tmp_path / "images", "cat")
    found = datasets.labelled_images(tmp_path / "images")
    assert found.sample_ids == ("cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png")
    assert sorted(found.skipped) == expected
    checked = check_image_sets(RunImages(str(tmp_path), "images", None, 0, (), None, None), {"labelled"})
    assert checked.problems == []
    note = next(n for n in checked.notes if "metadata" in n)
    assert note.startswith(f"7 operating-system metadata file(s) under {tmp_path / 'images'} skipped, not images")
    assert all(name in note for name in expected)


def test_a_macosx_folder_counts_the_files_under_it(tmp_path):
    """Stop 44's notes: a zip's __MACOSX/ folder, holding an AppleDouble file for every file zipped, was counted as one
    metadata file. Each file under it is counted, and the folder named with its count."""
    root = tmp_path / "images"
    for folder in ("cat", "dog"):
        _png(root / folder / "0.png")
    for name in ("cat/._0.png", "dog/._0.png", "._cat", "._dog", "cat/.DS_Store"):  # 5 files, as macOS zips them
        (root / "__MACOSX" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "__MACOSX" / name).write_bytes(APPLEDOUBLE)
    (root / "cat" / "Thumbs.db").write_bytes(b"\xd0\xcf")
    checked = check_image_sets(RunImages(str(tmp_path), "images", None, 0, (), None, None), {"labelled"})
    note = next(n for n in checked.notes if "metadata" in n)
    assert note == (f"6 operating-system metadata file(s) under {root} skipped, not images (5 under __MACOSX/, "
                    "1 Thumbs.db): __MACOSX/ (5 files), cat/Thumbs.db"), note


def test_metadata_beside_flat_imagenet_files_is_skipped_not_refused(tmp_path):
    _png(tmp_path / "flat" / "n01440764_1.png")
    (tmp_path / "flat" / "._n01440764_1.png").write_bytes(APPLEDOUBLE)  # as a macOS copy to a USB disk leaves it
    (tmp_path / "flat" / "Thumbs.db").write_bytes(b"\xd0\xcf")
    found = datasets.labelled_images(tmp_path / "flat")
    assert found.sample_ids == ("n01440764_1.png",) and found.skipped == ("._n01440764_1.png", "Thumbs.db")
