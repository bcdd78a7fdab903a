"""The same image (the same bytes) under two labels of a labelled set: it cannot be top-1 right under both, so the set
caps clean top-1 below 1 whatever the model does. Said as a warning naming the files (``run.notes``), not a refusal:
public sets hold such copies (ImageNet's training set has exact duplicates across classes), the run's numbers are true
of the set as labelled, and a team may want to audit on it as it is; the warning says how far it caps top-1 and the fix.
Two labels that are one class name spelled two ways (``Cat/``, ``cat/``) are said as such: they cap nothing.

Only files whose sizes match are hashed, so a set without duplicates costs one ``stat`` per file."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from visionaudit.data.label_space import loose
from visionaudit.formatting import first_few


def same_bytes_other_labels(paths: Sequence[Path], labels: Sequence[str]) -> list[list[int]]:
    """Groups of indices into ``paths`` whose files hold the same bytes under more than one label, in path order."""
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, path in enumerate(paths):
        try:
            by_size[path.stat().st_size].append(i)
        except OSError:  # not there or not readable: the header check names it
            continue
    groups = []
    for same_size in by_size.values():
        if len({labels[i] for i in same_size}) < 2:  # one label: no conflict, whatever the bytes
            continue
        for same_start in _grouped(same_size, lambda i: _digest(paths[i], _START)):  # then the whole file
            groups += [g for g in _grouped(same_start, lambda i: _digest(paths[i])) if len({labels[i] for i in g}) > 1]
    return sorted(groups)


_START = 8192  # bytes hashed first: a set's JPEGs of one size rarely share their start, so most are never read whole


def _digest(path: Path, size: int = -1) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read(size)).hexdigest()
    except OSError:  # unreadable: the same as no other file (the header check names it)
        return f"unreadable {path}"


def _grouped(indices: list[int], key) -> list[list[int]]:
    """``indices`` grouped by ``key``, groups of one left out."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for i in indices:
        by_key[key(i)].append(i)
    return [g for g in by_key.values() if len(g) > 1]


def duplicates_warning(name: str, ids: Sequence[str], paths: Sequence[Path], labels: Sequence[str]) -> str | None:
    """The warning for a labelled set (``ids`` its sample ids, ``labels`` its class names as the data gives them) whose
    same image sits under two labels; None when none does. Labels that match as one class name (``loose``: ``Cat/`` and
    ``cat/``, an accent composed in one folder's name and decomposed in the other's) are one class spelled two ways,
    said so: as one class, the copies cap nothing (a model that names both is told apart by the label check)."""
    groups = same_bytes_other_labels(paths, labels)
    if not groups:
        return None
    spelled = [g for g in groups if len({loose(labels[i]) for i in g}) == 1]
    conflicts = [g for g in groups if g not in spelled]
    said = []
    if conflicts:
        # In a group, at most the images of its most common class can be right: the rest are wrong for any model.
        lost = sum(len(g) - max(Counter(loose(labels[i]) for i in g).values()) for g in conflicts)
        said.append(f"{len(conflicts)} image(s) of {name} are under two or more labels (the same bytes): "
                    f"{_groups(conflicts, ids, labels)}. An image cannot be top-1 right under both labels, so {lost:,} "
                    f"of its {len(paths):,} images cannot be right for any model (clean top-1 at most "
                    f"{(len(paths) - lost) / len(paths):.4f}); remove each copy from the class it does not belong to")
    if spelled:
        spellings = sorted({", ".join(_shown(labels[i]) for i in sorted({labels[i]: i for i in g}.values())) for g in spelled})
        said.append(f"{len(spelled)} image(s) of {name} are under two spellings of what is probably one class (the same "
                    f"bytes): {_groups(spelled, ids, labels)}. Class names match ignoring case, spaces, -, _ and how an "
                    f"accent is written, so these folders are read as one class ({first_few(spellings, sep='; ')}), each "
                    "copy counted once per folder: keep one folder, under one spelling")
    return ". ".join(said)


def _groups(groups: list[list[int]], ids: Sequence[str], labels: Sequence[str]) -> str:
    return first_few([" = ".join(f"{ids[i]} ({_shown(labels[i])})" for i in g) for g in groups], sep="; ")


def _shown(label: str) -> str:
    """A label as a message shows it: as written, or escaped (``ascii``: two spellings of an accent print alike)."""
    return label if label.isascii() else ascii(label)
