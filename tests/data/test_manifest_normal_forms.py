"""A CSV manifest whose paths are in another Unicode normal form than the files on disk (NFC in the CSV, NFD names
from a macOS zip, or the reverse) reads the one file each names, or says which files and the fix
(visionaudit/data/manifest.py)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from PIL import Image

from visionaudit.data import image_sets as datasets
from visionaudit.errors import UnusableImages

NFC = unicodedata.normalize("NFC", "Crème brûlée")
NFD = unicodedata.normalize("NFD", "Crème brûlée")


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)


@pytest.mark.parametrize(("on_disk", "in_csv"), [(NFD, NFC), (NFC, NFD)], ids=["nfd-files-nfc-csv", "nfc-files-nfd-csv"])
def test_a_path_in_another_normal_form_reads_the_one_file_it_names(tmp_path, on_disk, in_csv):
    assert on_disk != in_csv
    _png(tmp_path / on_disk / f"{on_disk} 1.png")
    _png(tmp_path / "plain" / "2.png")
    (tmp_path / "labels.csv").write_text(f"{in_csv}/{in_csv} 1.png,dessert\nplain/2.png,other\n", encoding="utf-8")
    found = datasets.labelled_images(tmp_path / "labels.csv")
    assert found.sample_ids == (f"{on_disk}/{on_disk} 1.png", "plain/2.png")  # the file as on disk
    assert found.label_names == ("dessert", "other")
    assert found.paths[0].is_file()


def test_a_path_matching_two_files_in_other_normal_forms_names_both_and_the_fix(tmp_path):
    mixed = unicodedata.normalize("NFC", "Crème ") + unicodedata.normalize("NFD", "brûlée")  # neither: both files match it
    _png(tmp_path / f"{NFC}.png")
    _png(tmp_path / f"{NFD}.png")
    (tmp_path / "labels.csv").write_text(f"{mixed}.png,dessert\n", encoding="utf-8")
    with pytest.raises(UnusableImages) as e:
        datasets.labelled_images(tmp_path / "labels.csv")
    message = str(e.value)
    assert f"line 1: no such file {mixed}.png as written, but 2 files match it in another Unicode normal form" in message
    assert f"{NFC}.png (NFC)" in message and f"{NFD}.png (NFD)" in message
    assert "rename one of them, or write the path exactly as on disk" in message


def test_many_rows_in_another_normal_form_list_each_folder_once(tmp_path, monkeypatch):
    """Review 44 F4: each row in the other normal form listed and normalized its folders again (rows x folder size: a
    macOS zip's 50,000 NFD names under 1,000 class folders, 50 million normalizations); each folder is listed once."""
    for c in range(3):
        for i in range(20):
            _png(tmp_path / f"{on_disk(c)}" / f"{i}.png")
    (tmp_path / "labels.csv").write_text("".join(f"{in_csv(c)}/{i}.png,c{c}\n" for c in range(3) for i in range(20)),
                                         encoding="utf-8")
    listed: list[Path] = []
    iterdir = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: (listed.append(self), iterdir(self))[1])
    found = datasets.labelled_images(tmp_path / "labels.csv")
    assert len(found) == 60 and all(p.is_file() for p in found.paths)
    assert len(listed) == len(set(listed)) <= 4, listed  # the root and at most each class folder, once


def on_disk(c: int) -> str:
    return f"{NFD} {c}"


def in_csv(c: int) -> str:
    return f"{NFC} {c}"
