"""``--audit-samples N`` below a selected family's ``min_images``, said at startup (hunt 35, F4).

The gates that count the run's labelled images (accuracy, robustness, corruption) end ``not_judged`` when
fewer than their ``min_images``: known as soon as the subset's size is, before any model loads, yet found
otherwise only after every test of theirs ran. Said once, prominently, on the terminal and in the report's
``run.notes``; not an exit 4: a small subset on purpose (a smoke run, the suite's own tests) keeps what it
measured, and the verdict is ``incomplete`` with the reason all the same. Only where the count is certain:
not in a shard (each judges its share, ``visionaudit merge`` all of them) and not for corruption scored on an
ImageNet-C folder (its own images).
"""

from __future__ import annotations

from typing import Any

from visionaudit.errors import ConfigError

from .settings import Settings

# The families whose gate counts the run's labelled images (``require_count`` on them).
COUNTS_LABELLED = ("accuracy", "robustness", "corruption")


def below_floor(settings: Settings, meta: dict[str, dict[str, Any]], n_images: int) -> dict[str, int]:
    """Each selected family (of :data:`COUNTS_LABELLED`) whose ``min_images`` is above ``n_images`` for some
    model of its tests, with the largest such minimum; empty where the count is not certain."""
    if settings.shard is not None:
        return {}
    floors: dict[str, int] = {}
    for m in meta.values():
        family, model = m.get("audit"), m.get("model")
        if family not in COUNTS_LABELLED or not model or m.get("control"):
            continue
        if family == "corruption" and settings.imagenet_c:
            continue
        try:
            minimum = int(settings.config.thresholds(family, model)["min_images"])
        except (ConfigError, KeyError, TypeError, ValueError):
            continue  # said where the test reads its bounds
        if minimum > n_images:
            floors[family] = max(minimum, floors.get(family, 0))
    return dict(sorted(floors.items(), key=lambda kv: COUNTS_LABELLED.index(kv[0])))


def floor_note(samples: int, floors: dict[str, int]) -> str:
    """The note: which families will not be judged, and the three fixes."""
    names = ", ".join(floors)
    need = max(floors.values())
    mins = ", ".join(f"{f} {n}" for f, n in floors.items())
    deselect = " and ".join(f"not {f}" for f in floors)
    return (f"--audit-samples {samples:,} is below min_images ({mins}; audit.toml): the {names} gate"
            f"{'s' if len(floors) > 1 else ''} will not be judged (not_judged, verdict incomplete), though "
            f"{'their' if len(floors) > 1 else 'its'} tests run; use --audit-samples {need} or more, or lower "
            f"min_images in audit.toml ([audits.{next(iter(floors))}] ...), or deselect them (-m \"{deselect}\")")


def sample_floor_note(settings: Settings, meta: dict[str, dict[str, Any]], n_images: int) -> str | None:
    """The note for a run of ``n_images`` labelled images, or None: only where ``--audit-samples`` chose that
    many (a set smaller than asked was said already; raising --audit-samples would not help it)."""
    if not settings.samples or settings.samples != n_images:
        return None
    floors = below_floor(settings, meta, n_images)
    return floor_note(settings.samples, floors) if floors else None
