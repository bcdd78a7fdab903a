"""CSV manifests of labelled images: ``path,label`` rows (a ``path,label`` header is optional), each path
relative to the CSV's folder and inside it (no absolute paths, no ``..``, no symlinks out), each label a class
name or an output index of the model. Every unusable row is named; nothing is dropped without a word.
"""

from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

from visionaudit.errors import DataError, UnusableImages
from visionaudit.formatting import first_few

# The kinds of unusable row, in the order the refusal lists them (each kind's first rows, then a count).
KINDS = ("not a pair", "outside", "missing", "not an image", "repeat")


def in_another_normal_form(root: Path, rel: str, listings: dict[Path, dict[str, list[str]]] | None = None
                           ) -> list[Path] | None:
    """The files under ``root`` whose path is ``rel`` in another Unicode normal form (NFC, NFD: an accent composed or
    decomposed), component by component; None when a component matches nothing there. ``listings``: each folder's
    names by their NFC form, kept across the rows of one manifest (each folder listed once, not once per row)."""
    listings = {} if listings is None else listings

    def named(folder: Path, want: str) -> list[str]:
        if folder not in listings:
            listings[folder] = {}
            for c in folder.iterdir():
                listings[folder].setdefault(unicodedata.normalize("NFC", c.name), []).append(c.name)
        return listings[folder].get(want, [])

    found = [root]
    for part in Path(rel).parts:
        found = [p / n for p in found if p.is_dir()
                 for n in ([part] if (p / part).exists() else named(p, unicodedata.normalize("NFC", part)))]
        if not found:
            return None
    return [p.resolve() for p in found if p.is_file()] or None


def _forms(root: Path, found: list[Path] | None) -> str:
    """What a missing row's path matches in another Unicode normal form (:func:`in_another_normal_form`): several
    files, so that none is chosen."""
    if not found:
        return ""
    form = lambda p: next((f for f in ("NFC", "NFD") if unicodedata.is_normalized(f, str(p))), "mixed")  # noqa: E731
    names = " and ".join(f"{p.relative_to(root).as_posix() if p.is_relative_to(root) else p} ({form(p)})" for p in found)
    return (f" as written, but {len(found)} files match it in another Unicode normal form (an accent composed, NFC, or "
            f"decomposed, NFD: {names}); rename one of them, or write the path exactly as on disk")


def read_manifest(manifest: Path, suffixes: set[str]) -> tuple[Path, tuple[Path, ...], tuple[str, ...]]:
    """The manifest's folder (resolved), its image paths and their labels as written. Every unusable row (not a
    pair, outside the folder, missing, not an image: ``suffixes``, any case; a repeat) is named in one
    :class:`UnusableImages`, which carries every row's label for the check against the models' classes."""
    root = manifest.parent.resolve()
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            rows = [(n, r) for n, r in enumerate(csv.reader(f), start=1) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"CSV manifest {manifest} cannot be read ({e}); write one path,label row per image") from None
    if rows and [c.strip().lower() for c in rows[0][1][:2]] == ["path", "label"]:
        rows = rows[1:]
    paths: list[Path] = []
    names: list[str] = []
    labels: list[str] = []  # of every path,label row, usable or not: a wrong label is said with the row's other problem
    first: dict[Path, int] = {}
    listings: dict[Path, dict[str, list[str]]] = {}  # folders listed for paths in another normal form
    problems: dict[str, list[str]] = {kind: [] for kind in KINDS}
    kinds = ", ".join(sorted(suffixes))
    for line, row in rows:
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            problems["not a pair"].append(f"line {line}: {','.join(row)!r} is not one path,label pair")
            continue
        rel, label = row[0].strip(), row[1].strip()
        labels.append(label)
        path, found = (root / rel).resolve(), None
        if not path.is_file() and path.is_relative_to(root) and not Path(rel).is_absolute():
            found = in_another_normal_form(root, rel, listings)  # macOS zips write names decomposed (NFD), most tools composed
            path = found[0] if found and len(found) == 1 else path  # the one file it names, as named on disk
        if Path(rel).is_absolute() or not path.is_relative_to(root):
            problems["outside"].append(f"line {line}: {rel} is outside the manifest's folder {root} (paths are relative "
                                       "to it, inside it)")
        elif not path.is_file():
            problems["missing"].append(f"line {line}: no such file {rel}" + _forms(root, found))
        elif path.suffix.lower() not in suffixes:
            problems["not an image"].append(f"line {line}: {rel} is not an image (images end in {kinds}, any case)")
        elif path in first:
            problems["repeat"].append(f"line {line}: {rel} listed again (first on line {first[path]})")
        else:
            first[path] = line
            paths.append(path)
            names.append(label)
    count = sum(map(len, problems.values()))
    if count:
        shown = "; ".join(first_few(p) for p in problems.values() if p)
        raise UnusableImages([f"CSV manifest {manifest}: {count} row(s) unusable: {shown}. Fix or remove those rows"],
                             root, labels, numeric=True, paths=paths)
    if not paths:
        raise DataError(f"CSV manifest {manifest} lists no images; write one path,label row per image")
    return root, tuple(paths), tuple(names)
