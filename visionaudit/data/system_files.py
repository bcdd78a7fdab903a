"""The operating systems' metadata files that turn up in image folders: nobody's data, skipped, and counted so that a
run says how many it skipped (``run.notes``) rather than dropping anything without a word.

macOS writes ``.DS_Store`` into folders it shows, and ``._NAME`` AppleDouble files (``NAME``'s resource fork) beside
files it copies to other disks, which its zip archives hold in a ``__MACOSX/`` folder; Windows writes ``Thumbs.db``
(``ehthumbs.db``) and ``desktop.ini``. None is an image or a class."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from visionaudit.formatting import first_few

MACOSX = "__MACOSX"
_FILES = {".ds_store": ".DS_Store", "thumbs.db": "Thumbs.db", "ehthumbs.db": "ehthumbs.db", "desktop.ini": "desktop.ini"}


def system_kind(path: Path) -> str | None:
    """What operating-system metadata ``path`` is (the note's word for it), None when it is none (by its name)."""
    if path.name == MACOSX:
        return "__MACOSX/"
    if path.name.startswith("._"):
        return "._NAME (AppleDouble)"
    return _FILES.get(path.name.lower())  # Windows' names in any case: its file system ignores case


def skipped_in(root: Path, folders: Sequence[Path] = ()) -> tuple[str, ...]:
    """The operating-system metadata in ``root`` and in each of ``folders`` (its class folders), relative to ``root``
    (a folder's with a trailing ``/``)."""
    found = [p for folder in (root, *folders) for p in sorted(folder.iterdir()) if system_kind(p)]
    return tuple(p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in found)


def skipped_note(root: Path, skipped: Sequence[str]) -> str | None:
    """The ``run.notes`` line for the metadata ``skipped`` under ``root`` (paths relative to it, a folder's with a
    trailing ``/``); None when none. A skipped folder (``__MACOSX/``) counts the files under it, each one skipped."""
    if not skipped:
        return None
    files = {p: _files_under(root / p) if p.endswith("/") else 1 for p in skipped}
    kinds: Counter = Counter()
    for p, n in files.items():
        kinds[system_kind(Path(p))] += n
    counted = ", ".join(f"{n} {'under ' if str(kind).endswith('/') else ''}{kind}"
                        for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], str(kv[0]))))
    named = [f"{p} ({n} file{'s' if n != 1 else ''})" if p.endswith("/") else p for p, n in files.items()]
    return (f"{sum(files.values())} operating-system metadata file(s) under {root} skipped, not images ({counted}): "
            f"{first_few(named, sep=', ')}")


def _files_under(folder: Path) -> int:
    try:
        return sum(1 for p in folder.rglob("*") if not p.is_dir())
    except OSError:  # unreadable: as one skipped entry
        return 1
