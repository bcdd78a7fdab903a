"""The paths in a spec, apart from parsing specs (:mod:`specs`): a spec and a path as written in audit.toml, read from
the file's folder and spelled as read from the working directory (docs/config.md "Relative paths"); a spec with every
path absolute (matching audit.toml's tables); what a spec says besides where its model file is (merging shards)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

from visionaudit.models.specs import (
    CHECKPOINT_SUFFIXES,
    LITE_SIZES,
    ONNX_SUFFIX,
    OTHER_FORMATS,
    REPO_ID,
    parse_canonical,
    query_string,
)


class ReadFromWorkingDirectory(ValueError):
    """A relative path in audit.toml that is not there read from the file's folder but is read from the working
    directory: the reading before stop 34. Refused, not guessed: either reading may be the one meant, and taking
    the wrong one would apply (or drop) a model's bounds without a word."""

    def __init__(self, written: str, from_file: str, fix: str) -> None:
        super().__init__(written)
        self.written, self.from_file, self.fix = written, from_file, fix


def in_working_directory(base: str | os.PathLike) -> bool:
    """Whether the folder ``base`` is the working directory, as a folder and not as text (a symlinked path to it is)."""
    try:
        return os.path.samefile(base or ".", ".")
    except OSError:
        return False


def path_from(path: str, base: str | os.PathLike) -> str:
    """``path`` as written in a file in the folder ``base`` (audit.toml's), spelled as read from the working directory:
    relative to it (so a report does not depend on where the checkout lies), absolute when it cannot be (another
    drive); an absolute or ``~`` path, and any path when ``base`` is the working directory, is kept as written.
    Raises :class:`ReadFromWorkingDirectory` for a path that is only there read from the working directory."""
    if os.path.isabs(os.path.expanduser(path)) or in_working_directory(base):
        return path  # read from here already: kept as written
    folder = os.path.realpath(base)  # a symlinked path to the folder spells its files as the folder's own path does
    joined = os.path.normpath(os.path.join(folder, path))
    if not os.path.lexists(joined):
        if os.path.exists(path):
            raise ReadFromWorkingDirectory(path, _spelled(joined), os.path.relpath(os.path.abspath(path), folder))
    elif os.path.exists(path) and os.path.samefile(joined, path):
        return path  # the same file read from here: kept as written (a model's id does not change)
    return _spelled(joined)


def _spelled(joined: str) -> str:
    try:
        return os.path.relpath(joined)
    except ValueError:  # Windows: another drive
        return joined


def spec_from(spec: str, base: str | os.PathLike) -> str:
    """``spec`` as written in a file in the folder ``base`` (audit.toml's), with every relative path in it (the model
    file, a timm checkpoint, an ``hf:`` folder, ``?classes=``, and those of ``?arch=`` and ``?reference=``) read from
    ``base`` and spelled as :func:`path_from` spells it; told apart as :func:`specs.parse_canonical` tells them,
    looking in ``base``."""
    if in_working_directory(base):
        return spec  # the file in the working directory: the spec reads as written (the report keeps its spelling)
    body, _, query = spec.strip().partition("?")
    options = {k.strip(): v.strip() for k, v in parse_qsl(query, keep_blank_values=True)} if query else {}
    if options.get("classes"):
        options["classes"] = path_from(options["classes"], base)
    for key in ("arch", "reference"):
        if options.get(key):
            options[key] = spec_from(options[key], base)
    if body.replace("-", "_") in LITE_SIZES or body.startswith("torchvision:"):
        pass
    elif body.startswith("timm:"):
        name, _, ckpt = body[5:].partition(":")
        if ckpt and ckpt.lower() != "none":
            body = f"timm:{name}:{path_from(ckpt, base)}"
    elif body.startswith("hf:"):
        target = body[3:]
        if target and (target.startswith(("/", ".", "~")) or os.path.isdir(os.path.join(base, os.path.expanduser(target)))
                       or not REPO_ID.match(target.partition("@")[0])):
            folder = path_from(target, base)
            body = "hf:" + (os.path.join(".", folder) if REPO_ID.match(folder) else folder)  # still a folder when read back
    elif (Path(body).suffix.lower() in CHECKPOINT_SUFFIXES | set(OTHER_FORMATS) | {ONNX_SUFFIX} or os.sep in body
          or os.path.exists(os.path.join(base, os.path.expanduser(body)))):
        body = path_from(body, base)
        if os.sep not in body and not Path(body).suffix:
            body = os.path.join(".", body)  # a file without a known suffix stays a file when read from here
    return body + ("?" + "&".join(f"{k}={v.replace('&', '%26')}" for k, v in options.items()) if options else "")


def resolved_spec(spec: str) -> str:
    """``spec``'s canonical form with every path in it absolute, read from the working directory as ``--model``'s
    are (the model file, a timm checkpoint, an ``hf:`` folder, ``?classes=``, and those of ``?arch=`` and
    ``?reference=``): two spellings of the same files give one string. For matching (audit.toml's per-model
    tables) only, never an id: the id keeps the path as written, so a report does not depend on where it ran."""
    body, options = _paths_written(spec, lambda path: os.path.abspath(os.path.expanduser(path)), nested=True)
    return body + ("?" + query_string(options) if options else "")


MODEL_PATH = "FILE"  # what stands for the model's own file or folder in :func:`form_and_options`


def form_and_options(spec: str) -> tuple[str, dict[str, str]]:
    """What ``spec`` says of a model besides where its own file is: its canonical form without the query, the path
    of its model file (or ``hf:`` folder, or timm checkpoint) written :data:`MODEL_PATH`, and its options as in the
    canonical form (``?classes=``'s path, ``?arch=`` and ``?reference=`` as written there). For two runs of the same
    weights (equal sha256) read from different folders: ``visionaudit merge`` (the shards' checkouts)."""
    return _paths_written(spec, lambda path: path, nested=False, model_path=MODEL_PATH)


def _paths_written(spec: str, written: Callable[[str], str], nested: bool,
                   model_path: str | None = None) -> tuple[str, dict[str, str]]:
    """``spec``'s canonical form without its query, and its options, with each path in them ``written(path)``: the
    model file, a timm checkpoint, an ``hf:`` folder (each ``model_path`` instead where given), ``?classes=``, and
    with ``nested`` those of ``?arch=`` and ``?reference=``."""
    parsed = parse_canonical(spec, None)
    options = dict(parsed.options)
    if options.get("classes"):
        options["classes"] = written(options["classes"])
    for key in ("arch", "reference") if nested else ():
        if key in options:
            body, inner = _paths_written(options[key], written, nested)
            options[key] = body + ("?" + query_string(inner) if inner else "")
    own = model_path if model_path is not None else written(str(parsed.path)) if parsed.path is not None else ""
    body = parsed.canonical.partition("?")[0]
    if parsed.kind == "file" or (parsed.kind == "hf" and parsed.path is not None):
        body = ("hf:" if parsed.kind == "hf" else "") + own
    elif parsed.kind == "timm" and parsed.path is not None:
        body = f"timm:{parsed.name}:{own}"
    return body, options
