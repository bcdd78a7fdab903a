"""Errors the suite raises on bad input, and the "did you mean" helper their messages use.

Each message names the problem and the fix; callers show it as is, without a traceback.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class VisionAuditError(Exception):
    """Base class: bad input that a user can fix."""


class SpecError(VisionAuditError):
    """A model spec that cannot be parsed or resolved."""


class CheckpointError(VisionAuditError):
    """A checkpoint that is missing, unsafe to load, corrupt or does not fit the architecture."""


class DataError(VisionAuditError):
    """A data directory or image that is missing, unreadable or empty."""


class ConfigError(VisionAuditError):
    """An audit.toml with unknown keys or wrong types."""


class DeviceError(VisionAuditError):
    """A device that was asked for and is not there."""


class ModelOutputError(VisionAuditError):
    """A model whose outputs cannot be audited (NaN, wrong shape, wrong class space)."""


# -- did you mean --------------------------------------------------------------------------------

def closest(word: str, allowed: Iterable[str]) -> str | None:
    """The allowed word nearest to ``word`` (difflib's ratio), or None when nothing is near."""
    matches = difflib.get_close_matches(word, list(allowed), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_name(what: str, word: str, allowed: Iterable[str]) -> str:
    """``unknown <what> 'x'; allowed: a, b, c; did you mean 'b'?``"""
    allowed = list(allowed)
    near = closest(word, allowed)
    return f"unknown {what} {word!r}; allowed: {', '.join(allowed) or 'none'}" + (f"; did you mean {near!r}?" if near else "")
