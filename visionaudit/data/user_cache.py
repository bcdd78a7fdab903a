"""Where data goes when no data root is given (a per-user cache), and whether downloading is allowed.

``VISIONAUDIT_CACHE`` names the cache; by default it is the platform's cache directory, as platformdirs
would choose it (XDG on Linux, ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows): eight lines here
instead of a dependency.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CACHE_ENV = "VISIONAUDIT_CACHE"
OFFLINE_ENV = "VISIONAUDIT_OFFLINE"
APP = "visionaudit"


def platform_cache_dir() -> Path:
    """The platform's per-user cache directory for this application."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
        return Path(base) / APP / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / APP
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / APP


def cache_dir() -> Path:
    """``$VISIONAUDIT_CACHE``, else the platform's cache directory (it may not exist yet)."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else platform_cache_dir()


def offline(flag: bool = False) -> bool:
    """True when downloads are forbidden: ``--audit-offline`` or ``VISIONAUDIT_OFFLINE`` set to 1/true/yes."""
    return flag or os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
