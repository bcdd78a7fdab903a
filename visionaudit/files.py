"""Files written whole or not at all, and read back by content: measured values as JSON, atomic writes,
sha256 of a file, a Git LFS pointer where a file goes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from visionaudit.errors import empty_value

LFS_POINTER = b"version https://git-lfs"  # a clone without `git lfs pull` leaves this text where the file goes


def is_lfs_pointer(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a Git LFS pointer (a text file standing for the real one) instead of its content; False
    when it cannot be read (the caller's own read says why)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(LFS_POINTER)) == LFS_POINTER
    except OSError:
        return False


def to_jsonable(value: Any) -> Any:
    """Numbers, strings, lists and dicts only; tensors and numpy values become Python ones.

    NaN and infinities become null (JSON has no such numbers): in the report, null in a number's
    place means "not a finite number" (an undefined ratio, a test that had no data).
    """
    torch = sys.modules.get("torch")  # not imported here: a process that never imported torch holds no tensor
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu().tolist()
    elif hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return str(value)


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename: never half a file."""
    write_text_atomically(Path(path), json.dumps(to_jsonable(data), indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half a file."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it private; a report is read by CI artifacts and colleagues
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def blocking_file(folder: Path) -> tuple[Path | None, OSError | None]:
    """The first of ``folder`` and its parents that is there and not a folder (nothing can be made under it), else None;
    with the OSError that looking raised instead (a name too long, a folder this user cannot enter): ``Path.exists``
    swallows only a missing path, and a check must say what it found, not end in a traceback."""
    try:
        return next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None), None
    except OSError as e:
        return None, e


def output_problem(path: str, flag: str, example: str, optional: bool = False) -> str | None:
    """What keeps a file from being written at ``path`` (given as ``flag``; ``optional``: the flag may be left out), in
    words with the fix; None when it can be. Its folder is made and a file tried in it now, before the work that fills
    it, which would otherwise end in a traceback and write nothing."""
    if not path.strip():  # an unset CI variable: `-o "$REPORT"`
        return empty_value(flag, f"a file path, such as {example}", flag if optional else None)
    target = Path(path)
    folder = target.parent
    blocking, error = blocking_file(folder)
    if error is None:
        try:
            directory = target.is_dir()
        except OSError as e:
            error = e
    if error is not None:
        return f"{flag} {path}: {path} cannot be reached ({error.strerror or error}); give a path in a folder you can write to"
    if directory:
        return f"{flag} {path} is a directory; give a file path, such as {target / example}"
    if blocking is not None:
        return f"{flag} {path}: {blocking} is a file, not a folder; give a path in a folder you can write to"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".visionaudit-write-check-"):
            pass
    except OSError as e:
        return (f"{flag} {path}: the file cannot be written there ({e.strerror or e}); give a path in a folder you can "
                "write to")
    return None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The file's sha256, read in chunks (weights and data files can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
