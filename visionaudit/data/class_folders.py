"""Class folders of labelled images: ``<root>/<class>/*``, each image labelled by its folder's name (a class name
or a WNID). Every file that cannot be used is named, with every folder inside a class folder, in one refusal that
carries the folders' names, so the startup check names those matching no class of a model in the same message.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from visionaudit.data.system_files import system_kind
from visionaudit.errors import DataError, UnusableImages
from visionaudit.formatting import first_few

_FILE_TYPE = re.compile(r"\.[A-Za-z0-9]{1,8}")  # a suffix that names a file type (".md"), not ". Bernard"


def read_class_folders(root: Path, folders: list[Path], suffixes: set[str],
                       layouts: str) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """The images in ``folders`` (images end in ``suffixes``, any case) and their folders' names; an
    :class:`UnusableImages` naming every folder inside a class folder, every file in one that is not an image and
    every image beside them (it has no class)."""
    paths: list[Path] = []
    names: list[str] = []
    strays: list[Path] = []
    nested: list[Path] = []
    dangling = links_to_nothing(root, suffixes)  # a class folder's link to nothing, an image's
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or system_kind(path):
                continue  # .DS_Store, Thumbs.db, ._NAME and the like: no one's data (counted: system_files.skipped_in)
            if path.is_file() and path.suffix.lower() in suffixes:
                paths.append(path)
                names.append(folder.name)
            elif path.is_file():
                strays.append(path)
            elif path.is_dir():
                nested.append(path)
            elif not path.exists():
                dangling.append(path)
    strays += sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in suffixes and not system_kind(p))
    problems = []
    if nested:  # its images would be left out without a word, or given a class nobody chose
        problems.append(f"{len(nested)} folder(s) inside the class folders of {root}: "
                        f"{first_few([f'{p.relative_to(root)}/' for p in nested], sep=', ')}. Nested folders are not "
                        "read; move the images up into their class folder or list them in a CSV manifest.")
    if strays:
        problems.append(f"{len(strays)} file(s) of {root} cannot be used: "
                        f"{first_few([str(p.relative_to(root)) for p in strays], sep=', ')}. Each image goes in its "
                        "class's folder (an image beside the class folders has no class), and class folders hold only "
                        f"images ({', '.join(sorted(suffixes))}, any case).")
    if dangling:  # a DVC or git-annex file not fetched, a mount not there: its images would be left out without a word
        problems.append(dangling_links(root, dangling))
    if problems:
        raise UnusableImages(problems, root, names, paths=paths)
    if not paths:
        raise DataError(f"no images under {root}: its folders {first_few([f.name for f in folders], 5, ', ')} hold none. "
                        f"Expected {layouts}")
    return tuple(paths), tuple(names)


def links_to_nothing(root: Path, suffixes: set[str]) -> list[Path]:
    """The symbolic links at ``root`` that lead to nothing and would have been read had they led somewhere: a name
    that is no file type's (a class folder: ``St. Bernard`` too, whose "suffix" is no file type; ``LICENSE`` likewise,
    which cannot be told from a class) or ending in one of ``suffixes``. Hidden names (an Emacs lock file is always a
    link to nothing) and other files (``README.md``) are ignored, as their real files are."""
    return [p for p in sorted(root.iterdir())
            if not p.name.startswith(".") and (not _FILE_TYPE.fullmatch(p.suffix) or p.suffix.lower() in suffixes)
            and not p.exists()]


def dangling_links(root: Path, links: list[Path]) -> str:
    """The refusal of symbolic links under ``root`` that lead to nothing (a missing target, a loop)."""
    named = [f"{p.relative_to(root)} -> {os.readlink(p)}" for p in links]
    return (f"{len(links)} symbolic link(s) of {root} lead to nothing: {first_few(named, sep=', ')}. Their images are not "
            "there (a DVC or git-annex file not fetched, a mount missing, a loop): restore them or remove the links.")
