"""``--audit-samples N`` below a selected family's ``min_images``, said at startup (hunt 35, F4).

The gates that count the run's labelled images (a family's ``counts_labelled``) end ``not_judged`` when fewer
than their ``min_images``: known as soon as the subset's size is, before any model loads, yet found otherwise only
after every test of theirs ran. The pytest side says it once, prominently, on the terminal and in the report's
``run.notes`` (plugins/data_check.py); not an exit 4: a small subset on purpose (a smoke run, the suite's own tests)
keeps what it measured, and the verdict is ``incomplete`` with the reason all the same. Only where the count is
certain: not in a shard (each judges its share, ``visionaudit merge`` all of them) and not for a family scoring
images of its own in this run (corruption on an ImageNet-C folder).
"""

from __future__ import annotations

from typing import Any, Callable, Collection, Mapping

from visionaudit.errors import ConfigError
from visionaudit.families.registry import families

# A family's bounds for a model (canonical spec): visionaudit.config.AuditConfig.thresholds.
Bounds = Callable[[str, str], Mapping[str, Any]]


def below_floor(meta: Mapping[str, Mapping[str, Any]], n_images: int, bounds: Bounds,
                own_images: Collection[str] = ()) -> dict[str, int]:
    """Each family of the collected tests (``meta``: the collection's family, model and control flag per test) that
    counts the run's labelled images and whose ``min_images`` is above ``n_images`` for some model of its tests, with
    the largest such minimum, in the registry's order; ``own_images``: families scoring other images this run."""
    known = families()
    floors: dict[str, int] = {}
    for m in meta.values():
        family, model = m.get("audit"), m.get("model")
        if family not in known or not known[family].counts_labelled or family in own_images or not model or m.get("control"):
            continue
        try:
            minimum = int(bounds(family, model)["min_images"])
        except (ConfigError, KeyError, TypeError, ValueError):
            continue  # said where the test reads its bounds
        if minimum > n_images:
            floors[family] = max(minimum, floors.get(family, 0))
    order = list(known)
    return dict(sorted(floors.items(), key=lambda kv: order.index(kv[0])))


def floor_note(samples: int, floors: dict[str, int]) -> str:
    """The note: which families will not be judged, and the three fixes."""
    names = ", ".join(floors)
    need = max(floors.values())
    mins = ", ".join(f"{f} {n}" for f, n in floors.items())
    deselect = " and ".join(f"not {f}" for f in floors)
    tables = ", ".join(f"[audits.{f}] min_images" for f in floors)
    return (f"--audit-samples {samples:,} is below min_images ({mins}; audit.toml): the {names} gate"
            f"{'s' if len(floors) > 1 else ''} will not be judged (not_judged, verdict incomplete), though "
            f"{'their' if len(floors) > 1 else 'its'} tests run; use --audit-samples {need} or more, or lower "
            f"min_images in audit.toml ({tables}), or deselect them (-m \"{deselect}\")")


def sample_floor_note(samples: int | None, n_images: int, meta: Mapping[str, Mapping[str, Any]], bounds: Bounds, *,
                      shard: bool = False, own_images: Collection[str] = ()) -> str | None:
    """The note for a run of ``n_images`` labelled images, or None: only where ``--audit-samples`` (``samples``) chose
    that many (a set smaller than asked was said already; raising --audit-samples would not help it), and not in a
    shard (``shard``: the count is the merge's)."""
    if not samples or samples != n_images or shard:
        return None
    floors = below_floor(meta, n_images, bounds, own_images)
    return floor_note(samples, floors) if floors else None
