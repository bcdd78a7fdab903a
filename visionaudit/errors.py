"""Errors the suite raises on bad input, and the "did you mean" helper their messages use.

Each message names the problem and the fix; callers show it as is, without a traceback.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable


class VisionAuditError(Exception):
    """Base class: bad input that a user can fix."""


class SpecError(VisionAuditError):
    """A model spec that cannot be parsed or resolved."""


class CheckpointError(VisionAuditError):
    """A checkpoint that is missing, unsafe to load, corrupt or does not fit the architecture."""


class DataError(VisionAuditError):
    """A data directory or image that is missing, unreadable or empty."""


class UnusableImages(DataError):
    """Labelled images with entries that cannot be used (rows, files, folders), every one named in ``problems``,
    and the class names all their entries give (``labels``; ``numeric``: a CSV's, which may be output indices), so
    that the startup check names the ones matching no class of a model in the same message, not on the next run;
    ``paths``: the usable images, whose headers that check reads too (an unreadable file said in the same message)."""

    def __init__(self, problems: Iterable[str], root: Path, labels: Iterable[str], numeric: bool = False,
                 paths: Iterable[Path] = ()) -> None:
        self.problems, self.root, self.labels, self.numeric = tuple(problems), root, tuple(labels), numeric
        self.paths = tuple(paths)
        super().__init__(" ".join(self.problems))

    def __reduce__(self):  # rebuilt from its fields, not from the joined message (xdist, multiprocessing)
        return (type(self), (self.problems, self.root, self.labels, self.numeric, self.paths))


class ConfigError(VisionAuditError):
    """An audit.toml with unknown keys or wrong types."""


class DeviceError(VisionAuditError):
    """A device that was asked for and is not there."""


class ModelOutputError(VisionAuditError):
    """A model whose outputs cannot be audited (NaN, wrong shape, wrong class space)."""


# -- did you mean --------------------------------------------------------------------------------

# Characters typed for one another (an l or I for a 1, an O for a 0): difflib weighs min_topl as near min_top5 as
# min_top1, and broke the tie toward min_top5, a suggestion that would set another bound.
_LOOKALIKE = str.maketrans("liIoO", "11100")


def closest(word: str, allowed: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The allowed word nearest to ``word``: the one it spells but for lookalike characters (l, i and I for 1, o and O
    for 0), else difflib's ratio; None when nothing is as near as ``cutoff``."""
    allowed = list(allowed)
    alike = [a for a in allowed if isinstance(a, str) and a.translate(_LOOKALIKE) == word.translate(_LOOKALIKE)]
    if len(alike) == 1:
        return alike[0]
    matches = difflib.get_close_matches(word, allowed, n=1, cutoff=cutoff)
    return matches[0] if matches else None


def unknown_name(what: str, word: str, allowed: Iterable[str]) -> str:
    """``unknown <what> 'x'; allowed: a, b, c; did you mean 'b'?``"""
    allowed = list(allowed)
    near = closest(word, allowed)
    return f"unknown {what} {word!r}; allowed: {', '.join(allowed) or 'none'}" + (f"; did you mean {near!r}?" if near else "")


def empty_value(what: str, fix: str, leave_out: str | None = None) -> str:
    """``<what> is empty (an unset variable?); give <fix>[, or leave <leave_out> out]``: an empty path or value is most
    often a CI variable that was never set (`-o "$REPORT"`), and must not be read as the working directory."""
    return f"{what} is empty (an unset variable?); give {fix}" + (f", or leave {leave_out} out" if leave_out else "")
