"""A selected gate that will count fewer labelled images than its ``min_images``, said at startup (hunt 35, F4).

The gates that count the run's labelled images (a family's ``counts_labelled``, :class:`CountsLabelled`) end
``not_judged`` when fewer than their ``min_images``: known as soon as the subset's size is, before any model loads,
yet found otherwise only after every test of theirs ran. What each counts is its descriptor's: all N of them, or
``min(cap, N)`` where a bound of its own (deployment's and corruption's ``images``) caps the subset, or none where a
run option gives it images of its own (corruption on an ImageNet-C folder). The pytest side says it once,
prominently, on the terminal and in the report's ``run.notes`` (plugins/data_check.py); not an exit 4: a small subset
on purpose (a smoke run, the suite's own tests) keeps what it measured (where a gate's tests measure below its
floor: ``CountsLabelled.measures``; the note says which do not), and the verdict is ``incomplete`` with the
reason all the same. A cap alone below ``min_images`` is a gate never judged whatever the run: said too, naming the
cap as the fix; a warning, not a refusal, for the same reason (what it measures is still recorded).

Only where the count is certain: N is only where ``--audit-samples`` chose it, and in a shard a family that splits
its images (``splits_by_image``) judges its share there and ``visionaudit merge`` all of them; one that does not
runs whole in shard 1, on all N.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from visionaudit.data.image_sets import LABELLED
from visionaudit.errors import ConfigError
from visionaudit.families.registry import families
from visionaudit.families.thresholds import Bounds

# A run option's value by its settings name (``"imagenet_c"``): a CountsLabelled's ``unless``.
Option = Callable[[str], Any]


def _no_option(name: str) -> Any:
    return None


def _registry_order(found: dict[str, Any]) -> dict[str, Any]:
    order = list(families())
    return dict(sorted(found.items(), key=lambda kv: order.index(kv[0])))


def _counted(meta: Mapping[str, Mapping[str, Any]], bounds: Bounds, option: Option):
    """Each test of ``meta`` (the collection's family, model, data and control flag per test) whose gate counts the
    run's labelled images: its family, descriptor and bounds (``min_images`` readable), and its model."""
    known = families()
    for m in meta.values():
        family, model = m.get("audit"), m.get("model")
        counts = known[family].counts_labelled if family in known else None
        if counts is None or not model or m.get("control") or (counts.unless and option(counts.unless)):
            continue
        if "data" in m and LABELLED not in m["data"]:
            continue  # a test of it that reads other images (the baseline's shape-bias comparisons)
        try:
            thresholds = bounds(family, model)
            minimum, cap = int(thresholds["min_images"]), int(thresholds[counts.cap]) if counts.cap else 0
        except (ConfigError, KeyError, TypeError, ValueError):
            continue  # said where the test reads its bounds
        yield family, known[family], counts, thresholds, minimum, cap, model


def capped_below_floor(meta: Mapping[str, Mapping[str, Any]], bounds: Bounds,
                       option: Option = _no_option) -> dict[str, tuple[str, int, int]]:
    """Each family of ``meta`` whose own cap on the labelled images it counts is below its ``min_images`` for some
    model: ``(cap's key, the smallest such cap, the largest such minimum)``, in the registry's order. Never judged,
    whatever --audit-samples."""
    found: dict[str, tuple[str, int, int]] = {}
    for family, _, counts, _, minimum, cap, _ in _counted(meta, bounds, option):
        if 0 < cap < minimum:
            _, low, high = found.get(family, (counts.cap, cap, minimum))
            found[family] = (counts.cap, min(low, cap), max(high, minimum))
    return _registry_order(found)


def below_floor(meta: Mapping[str, Mapping[str, Any]], n_images: int, bounds: Bounds, option: Option = _no_option, *,
                shard: bool = False) -> dict[str, int]:
    """Each family of ``meta`` that will count fewer than its ``min_images`` of ``n_images`` labelled images for some
    model, though its cap alone would not (:func:`capped_below_floor`), with the largest such minimum, in the registry's
    order. In a shard (``shard``) only the families that run whole there (not ``splits_by_image``)."""
    floors: dict[str, int] = {}
    for family, fam, counts, thresholds, minimum, cap, _ in _counted(meta, bounds, option):
        # a model whose cap alone is below its minimum is capped_below_floor's; the family's other models are not
        if 0 < cap < minimum or (shard and fam.splits_by_image):
            continue
        if counts.count(thresholds, n_images) < minimum:
            floors[family] = max(minimum, floors.get(family, 0))
    return _registry_order(floors)


Who = dict[str, tuple[list[str], list[str], list[str]]]  # family -> (models below, all its models, below by their table)


def _who(meta: Mapping[str, Mapping[str, Any]], bounds: Bounds, option: Option, below: Callable[..., bool],
         skip: Callable[..., bool], by_cap: bool = False) -> Who:
    """Per family: its models for which ``below(counts, thresholds, minimum, cap)`` (and not ``skip(fam, minimum, cap)``),
    all its counted models, and those of the models below whose floor (``by_cap``: cap) is their own table's (not
    [audits.FAMILY]'s), so that a note of a run of several models names whose gate goes unjudged and which table to
    change."""
    out: Who = {}
    for family, fam, counts, thresholds, minimum, cap, model in _counted(meta, bounds, option):
        models_below, every, own = out.setdefault(family, ([], [], []))
        if model not in every:
            every.append(model)
        if skip(fam, minimum, cap):
            continue
        if below(counts, thresholds, minimum, cap) and model not in models_below:
            models_below.append(model)
            key = counts.cap if by_cap else "min_images"
            try:  # the keys its own table sets where known (a table may set [audits.FAMILY]'s value again), else by value
                sets = getattr(thresholds, "own", None)
                mine = key in sets if sets is not None else int(bounds(family, "")[key]) != (cap if by_cap else minimum)
            except (ConfigError, KeyError, TypeError, ValueError):
                mine = False
            if mine:
                own.append(model)
    return {f: v for f, v in out.items() if v[0]}


def floor_models(meta: Mapping[str, Mapping[str, Any]], n_images: int, bounds: Bounds, option: Option = _no_option, *,
                 shard: bool = False) -> Who:
    """:func:`_who` of :func:`below_floor`'s families."""
    return _who(meta, bounds, option, lambda counts, thresholds, minimum, cap: counts.count(thresholds, n_images) < minimum,
                lambda fam, minimum, cap: 0 < cap < minimum or (shard and fam.splits_by_image))


def capped_models(meta: Mapping[str, Mapping[str, Any]], bounds: Bounds, option: Option = _no_option) -> Who:
    """:func:`_who` of :func:`capped_below_floor`'s families."""
    return _who(meta, bounds, option, lambda counts, thresholds, minimum, cap: 0 < cap < minimum, lambda *_: False,
                by_cap=True)


def _gates(families: Iterable[str], models: Who) -> str:
    """``accuracy, robustness (of m2 only)``: the families, each with its models where not all of them."""
    partial = {f: models[f][0] for f in families if f in models and set(models[f][0]) != set(models[f][1])}
    return ", ".join(f + (f" (of {', '.join(partial[f])} only)" if f in partial else "") for f in families)


def _tables(family: str, models: Who, key: str, shared: str) -> list[str]:
    """Where ``family``'s ``key`` is set for its models below: ``shared`` ([audits.FAMILY]'s), their own tables'."""
    below, _, own = models.get(family, ([], [], []))
    return ([] if below and set(own) == set(below) else [shared]) + [f"{m}'s own [models] table's {family} {key}"
                                                                      for m in own]


def floor_note(samples: int, floors: dict[str, int], models: Who | None = None) -> str:
    """The note: which families will not be judged (``models``, :func:`floor_models`: for which of their models, where
    not all), and the three fixes."""
    models = models or {}
    names = _gates(floors, models)
    need = max(floors.values())
    mins = ", ".join(f"{f} {n}" for f, n in floors.items())
    deselect = " and ".join(f"not {f}" for f in floors)
    tables = ", ".join(t for f in floors for t in _tables(f, models, "min_images", f"[audits.{f}] min_images"))
    return (f"--audit-samples {samples:,} is below min_images ({mins}; audit.toml): the {names} gate"
            f"{'s' if len(floors) > 1 else ''} will not be judged (not_judged, verdict incomplete){_what_runs(floors)}; "
            f"use --audit-samples {need} or more, or lower min_images in audit.toml ({tables}), or deselect them "
            f"(-m \"{deselect}\")")


def _what_runs(floors: dict[str, int]) -> str:
    """Whether the tests of the gates in ``floors`` still measure: accuracy's and robustness's do and record it;
    corruption's and deployment's stop at the count (``CountsLabelled.measures``): no measurement of theirs is recorded."""
    known = families()
    measure = [f for f in floors if f not in known or not known[f].counts_labelled or known[f].counts_labelled.measures]
    stop = [f for f in floors if f not in measure]
    whose = lambda names: " and ".join(f"{f}'s" for f in names)  # noqa: E731
    if not stop:
        return f", though {'their' if len(floors) > 1 else 'its'} tests run and record what they measure"
    if not measure:
        return f" and {'their' if len(floors) > 1 else 'its'} tests will not measure (they stop at the count)"
    return (f", though {whose(measure)} tests run and record what they measure; {whose(stop)} tests will not measure "
            "(they stop at the count)")


def capped_note(capped: dict[str, tuple[str, int, int]], models: Who | None = None) -> str:
    """The note for gates whose own cap is below their ``min_images``: the cap is the fix, not --audit-samples
    (``models``, :func:`capped_models`: for which of their models, where not all, and whose tables)."""
    models = models or {}
    parts = [f"{' and '.join(_tables(f, models, key, f'[audits.{f}] {key}'))} = {cap} is below its min_images ({minimum})"
             for f, (key, cap, minimum) in capped.items()]
    raises = ", ".join(f"{' and '.join(_tables(f, models, key, f'[audits.{f}] {key}'))} to {minimum} or more"
                       for f, (key, _, minimum) in capped.items())
    plural = len(capped) > 1
    return (f"{'; '.join(parts)} (audit.toml): the {_gates(capped, models)} gate{'s' if plural else ''} will never be judged "
            f"(not_judged, verdict incomplete), whatever --audit-samples: {'they count' if plural else 'it counts'} "
            f"at most that many labelled images; raise {raises}, or lower min_images there")


def sample_floor_note(samples: int | None, n_images: int, meta: Mapping[str, Mapping[str, Any]], bounds: Bounds, *,
                      shard: bool = False, option: Option = _no_option) -> str | None:
    """The note for a run of ``n_images`` labelled images, or None. Gates their own cap leaves below the floor always;
    the others only where ``--audit-samples`` (``samples``) chose that many (a set smaller than asked was said already;
    raising --audit-samples would not help it); ``shard``: this run is a shard; ``option``: the run's options."""
    notes = []
    if capped := capped_below_floor(meta, bounds, option):
        notes.append(capped_note(capped, capped_models(meta, bounds, option)))
    if samples and samples == n_images and (floors := below_floor(meta, n_images, bounds, option, shard=shard)):
        notes.append(floor_note(samples, floors, floor_models(meta, n_images, bounds, option, shard=shard)))
    return "; and ".join(notes) or None
