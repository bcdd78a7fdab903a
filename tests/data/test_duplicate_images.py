"""The same image (the same bytes) under two labels of a labelled set is said as a warning naming the files and how
far it caps clean top-1 (visionaudit/data/duplicates.py), at startup (visionaudit/families/image_check.py)."""

from __future__ import annotations

from pathlib import Path

from visionaudit.data import image_sets as datasets
from visionaudit.data.duplicates import duplicates_warning, same_bytes_other_labels
from visionaudit.families.image_check import RunImages, check_image_sets


def _ppm(path: Path, last: int = 0, side: int = 64) -> Path:
    """A binary PPM of ``side`` x ``side`` grey pixels whose last byte is ``last``: every one the same size, and
    (64 x 64 x 3 = 12,288 bytes) the same first 8,192 bytes, so only the whole file tells two apart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = bytearray([128] * (side * side * 3))
    pixels[-1] = last
    path.write_bytes(b"P6\n%d %d\n255\n" % (side, side) + bytes(pixels))
    return path


def _team(root: Path) -> None:
    _ppm(root / "cat" / "a.ppm", last=1)
    _ppm(root / "dog" / "copy of a.ppm", last=1)  # a's bytes under another label
    _ppm(root / "bird" / "a again.ppm", last=1)  # and a third
    _ppm(root / "cat" / "b.ppm", last=2)
    _ppm(root / "cat" / "b twice.ppm", last=2)  # the same bytes under the same label: no conflict
    _ppm(root / "dog" / "c.ppm", last=3)  # the same size and start as the rest, other bytes at the end
    _ppm(root / "bird" / "d.ppm", last=4)


def test_the_same_bytes_under_two_labels_are_found_and_nothing_else(tmp_path):
    _team(tmp_path)
    found = datasets.labelled_images(tmp_path)
    groups = same_bytes_other_labels(found.paths, found.label_names)
    assert [[found.sample_ids[i] for i in g] for g in groups] == [["bird/a again.ppm", "cat/a.ppm", "dog/copy of a.ppm"]]


def test_a_labelled_set_with_an_image_under_two_labels_is_warned_of_at_startup_naming_the_files(tmp_path):
    _team(tmp_path / "team")
    checked = check_image_sets(RunImages(str(tmp_path), "team", None, 0, (), None, None), {"labelled"})
    assert checked.problems == []
    # 7 images; the three copies of a can be right under one label at most: 2 are wrong for any model, 5/7 at most
    assert checked.warnings == [
        "1 image(s) of team are under two or more labels (the same bytes): bird/a again.ppm (bird) = cat/a.ppm (cat) = "
        "dog/copy of a.ppm (dog). An image cannot be top-1 right under both labels, so 2 of its 7 images cannot be right "
        f"for any model (clean top-1 at most {5 / 7:.4f}); remove each copy from the class it does not belong to"]


def test_no_duplicates_no_warning(tmp_path):
    for i, label in enumerate(("cat", "dog", "bird")):
        _ppm(tmp_path / label / "x.ppm", last=i)
    found = datasets.labelled_images(tmp_path)
    assert duplicates_warning("set", found.sample_ids, found.paths, found.label_names) is None


def test_files_of_a_size_no_other_label_shares_are_never_opened(tmp_path, monkeypatch):
    """Review 44 (the brief's cost question): a large set without such copies costs a stat per file. Files whose size is
    unique, or shared under one label only, are never opened; same-size files under two labels whose first 8 KiB differ
    are read 8 KiB, not whole."""
    import builtins

    from visionaudit.data import duplicates

    for i in range(5):
        _ppm(tmp_path / "cat" / f"own size {i}.ppm", side=10 + i)  # sizes no other file has
    _ppm(tmp_path / "cat" / "x.ppm", side=40, last=1)
    _ppm(tmp_path / "cat" / "x again.ppm", side=40, last=1)  # one size, one label
    big = [_ppm(tmp_path / label / "big.ppm", side=128) for label in ("cat", "dog")]  # 49,167 bytes, one size
    big[1].write_bytes(big[1].read_bytes()[:20] + b"\x00" + big[1].read_bytes()[21:])  # differs in the first 8 KiB
    reads: list[tuple[str, int]] = []
    real_open = builtins.open

    class Counted:
        def __init__(self, f, name):
            self.f, self.name = f, name

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def read(self, size=-1):
            data = self.f.read(size)
            reads.append((self.name, len(data)))
            return data

    monkeypatch.setattr(duplicates, "open", lambda p, mode="r", *a, **k: Counted(real_open(p, mode, *a, **k), Path(p).parent.name
                                                                               + "/" + Path(p).name), raising=False)
    found = datasets.labelled_images(tmp_path)
    assert duplicates.same_bytes_other_labels(found.paths, found.label_names) == []
    assert sorted(reads) == [("cat/big.ppm", 8192), ("dog/big.ppm", 8192)]


def test_one_image_under_two_spellings_of_one_class_is_said_so_not_a_cap_on_top1(tmp_path):
    """Stop 44's notes: "Cat/" and "cat/" (or an accent composed in one folder's name, decomposed in the other's, as
    macOS zips write them) are one class as the labels are matched, but a copy in both was warned of as under two labels
    that cap clean top-1. Said as probably one class spelled two ways, with no cap; a real conflict beside it keeps its
    cap, counted by class."""
    import unicodedata

    root = tmp_path / "team"
    _ppm(root / "Cat" / "a.ppm", last=1)
    _ppm(root / "cat" / "a.ppm", last=1)
    nfc, nfd = (unicodedata.normalize(form, "café") for form in ("NFC", "NFD"))
    _ppm(root / nfc / "x.ppm", last=5)
    _ppm(root / nfd / "x.ppm", last=5)
    _ppm(root / "dog" / "c.ppm", last=3)
    _ppm(root / "cat" / "c.ppm", last=3)  # the same bytes under dog and cat: a conflict
    _ppm(root / "Cat" / "c.ppm", last=3)  # ... and under Cat, the same class as cat: still one image lost, not two
    checked = check_image_sets(RunImages(str(tmp_path), "team", None, 0, (), None, None), {"labelled"})
    assert checked.problems == []
    (warning,) = checked.warnings
    # 7 images; the copies of c can be right under the cat class (2 of them) at most: 1 is wrong for any model
    assert warning.startswith(
        "1 image(s) of team are under two or more labels (the same bytes): Cat/c.ppm (Cat) = cat/c.ppm (cat) = dog/c.ppm "
        f"(dog). An image cannot be top-1 right under both labels, so 1 of its 7 images cannot be right for any model "
        f"(clean top-1 at most {6 / 7:.4f})"), warning
    assert ("2 image(s) of team are under two spellings of what is probably one class (the same bytes): Cat/a.ppm (Cat) = "
            f"cat/a.ppm (cat); {nfd}/x.ppm ('cafe\\u0301') = {nfc}/x.ppm ('caf\\xe9'). Class names match ignoring case, "
            "spaces, -, _ and how an accent is written, so these folders are read as one class") in warning, warning
    assert "each copy counted once per folder: keep one folder, under one spelling" in warning
