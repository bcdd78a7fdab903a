"""CSV manifests of labelled images: ``path,label`` rows (a ``path,label`` header is optional), each path
relative to the CSV's folder and inside it (no absolute paths, no ``..``, no symlinks out), each label a class
name or an output index of the model. Every unusable row is named; nothing is dropped without a word.
"""

from __future__ import annotations

import csv
from pathlib import Path

from visionaudit.errors import DataError


def read_manifest(manifest: Path, suffixes: set[str]) -> tuple[Path, tuple[Path, ...], tuple[str, ...]]:
    """The manifest's folder (resolved), its image paths and their labels as written; a DataError naming every
    unusable row (not a pair, outside the folder, missing, not an image: ``suffixes``, any case) or repeat."""
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
    problems: list[str] = []
    kinds = ", ".join(sorted(suffixes))
    for line, row in rows:
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            problems.append(f"line {line}: {','.join(row)!r} is not one path,label pair")
            continue
        rel, label = row[0].strip(), row[1].strip()
        path = (root / rel).resolve()
        if Path(rel).is_absolute() or not path.is_relative_to(root):
            problems.append(f"line {line}: {rel} is outside the manifest's folder {root} (paths are relative to it, inside it)")
        elif not path.is_file():
            problems.append(f"line {line}: no such file {rel}")
        elif path.suffix.lower() not in suffixes:
            problems.append(f"line {line}: {rel} is not an image (images end in {kinds}, any case)")
        else:
            paths.append(path)
            names.append(label)
    if problems:
        raise DataError(f"CSV manifest {manifest}: {len(problems)} row(s) unusable: " + "; ".join(problems[:10])
                        + (" ..." if len(problems) > 10 else "") + ". Fix or remove those rows")
    if not paths:
        raise DataError(f"CSV manifest {manifest} lists no images; write one path,label row per image")
    if len(set(paths)) != len(paths):
        seen: set[Path] = set()
        twice = sorted({p.relative_to(root).as_posix() for p in paths if p in seen or seen.add(p)})  # type: ignore[func-returns-value]
        raise DataError(f"CSV manifest {manifest} lists {', '.join(twice[:5])} more than once; list each image once")
    return root, tuple(paths), tuple(names)
