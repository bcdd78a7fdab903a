"""How much memory one process may keep in decoded images (the decode budget).

Image sets that fit are decoded once and kept for every audit (:func:`visionaudit.data.image_sets.load_images`);
a set larger than the budget is streamed in batches (:mod:`visionaudit.data.streaming`). The budget is
``--audit-decode-memory``, else audit.toml's ``[run] decode_memory``, else ``$VISIONAUDIT_DECODE_MEMORY``,
else :func:`default_budget`: 2 GiB, or a quarter of the memory available now shared by the run's
processes when that is less. 2 GiB holds about 14,000 images at 224 x 224 (ImageNet's 50,000 stream);
a quarter of what is available leaves the rest for the models, their activations and the other workers
(a 7 GiB two-core CI runner with two workers gives each about 0.8 GiB: still the 1,000-image sample
and the 1,280 cue-conflict stimuli decoded once).
"""

from __future__ import annotations

import os
import re

from visionaudit.devices import available_memory
from visionaudit.errors import ConfigError

DECODE_MEMORY_ENV = "VISIONAUDIT_DECODE_MEMORY"
DEFAULT_CAP = 2 * 2**30
SHARE_OF_AVAILABLE = 0.25
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"^\s*(?P<number>\d+(\.\d*)?|\.\d+)\s*(?P<unit>[kmgt]?)(i?b)?\s*$", re.IGNORECASE)

_explicit: int | None = None
_default: int | None = None


def parse_size(text: str | int, what: str = "--audit-decode-memory") -> int:
    """``2GiB``, ``512M``, ``1.5g``, ``800000000`` -> bytes (K, M, G, T are powers of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = _SIZE.match(str(text))
        if not m:
            raise ConfigError(f"{what} must be a size such as 2GiB, 512MiB or a number of bytes, got {text!r}")
        value = int(float(m["number"]) * _UNITS[m["unit"].lower()])
    if value <= 0:
        raise ConfigError(f"{what} must be more than 0 bytes, got {text!r}")
    return value


def default_budget(sharing: int = 1) -> int:
    """2 GiB, or a quarter of the available memory split over ``sharing`` processes when that is less;
    measured once per process, so the choice does not change in the middle of a run."""
    global _default
    if _default is None:
        free = available_memory("cpu")
        _default = DEFAULT_CAP if free is None else max(1, min(DEFAULT_CAP, int(free * SHARE_OF_AVAILABLE / max(1, sharing))))
    return _default


def set_budget(nbytes: int | None) -> int | None:
    """Fix this process's budget (the pytest plugin does, from its settings); None goes back to the default.
    Returns the one set before, to put back."""
    global _explicit
    previous, _explicit = _explicit, nbytes
    return previous


def budget() -> int:
    """Bytes of decoded images this process may keep: set, else ``$VISIONAUDIT_DECODE_MEMORY``, else the default."""
    if _explicit is not None:
        return _explicit
    env = os.environ.get(DECODE_MEMORY_ENV)
    return parse_size(env, DECODE_MEMORY_ENV) if env else default_budget()
