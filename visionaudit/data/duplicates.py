"""The same image (the same bytes) under two labels of a labelled set: it cannot be top-1 right under both, so the set
caps clean top-1 below 1 whatever the model does. Said as a warning naming the files (``run.notes``), not a refusal:
public sets hold such copies (ImageNet's training set has exact duplicates across classes), the run's numbers are true
of the set as labelled, and a team may want to audit on it as it is; the warning says how far it caps top-1 and the fix.

Only files whose sizes match are hashed, so a set without duplicates costs one ``stat`` per file."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

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
    same image sits under two labels; None when none does."""
    groups = same_bytes_other_labels(paths, labels)
    if not groups:
        return None
    # In a group, at most the images of its most common label can be right: the rest are wrong for any model.
    lost = sum(len(g) - max(Counter(labels[i] for i in g).values()) for g in groups)
    said = [" = ".join(f"{ids[i]} ({labels[i]})" for i in g) for g in groups]
    return (f"{len(groups)} image(s) of {name} are under two or more labels (the same bytes): {first_few(said, sep='; ')}. "
            f"An image cannot be top-1 right under both labels, so {lost:,} of its {len(paths):,} images cannot be right "
            f"for any model (clean top-1 at most {(len(paths) - lost) / len(paths):.4f}); remove each copy from the class it "
            "does not belong to")
