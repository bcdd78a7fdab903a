"""What the collected tests are (family, model, parameters, the data each reads) and, before any test runs, whether
that data is there: with no data root given, what is missing is fetched into the user cache first
(visionaudit/data/provision.py); a data folder still missing stops the run with exit 4, naming each and how to get it.

Then the image sets the tests read are listed and opened (visionaudit/families/image_check.py: headers, the labelled
images' class names against the models' classes, visionaudit/models/label_check.py) and a shape-bias
``category_map`` is checked (visionaudit/families/shape_bias/map_check.py): a problem stops the run (exit 4) with every
problem in one message; the rest is said once (plugins/run_notes.py), a gate that will count fewer labelled images
than its ``min_images`` as a warning (visionaudit/families/sample_floor.py). The checks are the core's, on plain
arguments; this module holds their pytest side (settings in, problems raised, notes said, stash kept).
16-bit images holding 10 or 12 bits, found as the workers decode them, are said once at the end.

Under xdist only the workers collect, so each sends this to the controller (plugins/worker_channel.py) before
xdist reports its collection, and the controller checks when the first worker's arrives.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from visionaudit.data.decoding import narrow_sixteen_bit_note, take_narrow_sixteen_bit
from visionaudit.data.fetch import OBSERVERS
from visionaudit.data.image_sets import LABELLED, ImageSet
from visionaudit.data.label_space import LabelSpace
from visionaudit.data.provision import provide
from visionaudit.families.baseline import ALL_COMPARED, data_role
from visionaudit.families.corruption.conditions_read import (
    configured_conditions,
    imagenet_c_conditions,
)
from visionaudit.families.image_check import (
    OPTIONAL_DATA,
    RunImages,
    check_image_sets,
    labelled_count,
)
from visionaudit.families.sample_floor import sample_floor_note
from visionaudit.families.shape_bias import map_check
from visionaudit.files import to_jsonable
from visionaudit.models.label_check import uncovered_note

from .markers import family_of
from .record_transport import subject_of
from .run_notes import TerminalLog, say_once, warn_once
from .settings import get_settings
from .worker_channel import get_channel, send

STARTUP_ERROR_KEY = pytest.StashKey[str]()
CHECKED_KEY = pytest.StashKey[bool]()  # the image sets were listed and matched
NARROW_KEY = pytest.StashKey[dict]()  # 16-bit images holding 10 or 12 bits, found as any process decoded them
# The data each fixture reads: "labelled" is --audit-images, the rest are folders under the data root.
DATA_FIXTURES = {"labelled_images": (LABELLED,), "corrupted": (LABELLED,),  # corrupted: the kernels' inputs, or the originals
                 "cue_conflict_images": ("cue-conflict",), "human_observers": (OBSERVERS,)}  # of an ImageNet-C folder
OPTIONAL_KEY = pytest.StashKey[set]()  # the optional data already provided or said absent
ABSENT_KEY = pytest.StashKey[set]()  # the optional data said absent (a failed fetch may leave an empty folder)
SHAPE_ONLY = {"edges": "edges", "filled-silhouettes": "filled-silhouettes"}
SHAPE_BIAS_STIMULI = {"cue-conflict", *SHAPE_ONLY.values()}  # the data of the tests that map classes onto the 16 categories


def data_needs(item: pytest.Item) -> list[str]:
    names = getattr(item, "fixturenames", ())
    needs = [d for f in names for d in DATA_FIXTURES.get(f, ())]
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "shape_only_images" in names:
        needs += [params["stimuli"]] if params.get("stimuli") in SHAPE_ONLY else list(SHAPE_ONLY)
    if "compared_with_baseline" in names and params.get("comparison") in ALL_COMPARED:
        role = data_role(ALL_COMPARED[params["comparison"]])
        needs += [role] if role else []
    return sorted(set(needs))


def collection_meta(items: list[pytest.Item]) -> dict[str, dict[str, Any]]:
    out = {}
    for item in items:
        model, control, params = subject_of(item)
        meta = {"audit": family_of(item), "model": model, "params": params, "data": data_needs(item)}
        out[item.nodeid] = to_jsonable({**meta, "control": control} if control else meta)
    return out


def _as_written(config: pytest.Config, problems: list[str]) -> list[str]:
    """``problems`` told of audit.toml where the images or the data root came from its ``[run]`` (not the command line):
    the value as written there, and the rule its relative paths were read by."""
    if not problems:
        return problems
    audit_config = get_settings(config).config
    for key in ("images", "data"):
        if config.getoption(f"audit_{key}") is None and audit_config.run.get(key):
            problems = [p.replace(f"point --audit-{key} at", f"point [run] {key} in {audit_config.path} at") for p in problems]
            folder = audit_config.path.parent
            problems.append(f'[run] {key} = "{audit_config.run_written.get(key)}" comes from {audit_config.path}, whose relative '
                            f'paths are read from its folder {folder}{os.sep} (docs/config.md "Relative paths")')
    return problems


def check_data(config: pytest.Config, meta: dict[str, dict[str, Any]]) -> None:
    """Stop the run (exit 4) when data the collected tests need is missing; the collector calls it. Under
    ``--collect-only`` (a CI author's dry run of a command line) the data is only looked for, not fetched or read."""
    if config.stash.get(STARTUP_ERROR_KEY, None):
        return
    settings = get_settings(config)
    needs = {d for m in meta.values() for d in m.get("data", ())}
    if OBSERVERS in needs and not map_check.shape_bias_measurable(settings.model_specs, settings.classes,
                                                                   settings.config.thresholds):
        needs.discard(OBSERVERS)  # neither fetched nor noted: no model's shape bias can use them (hunt35 F9)
    if config.getoption("collectonly"):
        problems = _as_written(config, provide(settings.data, settings.images, needs - set(OPTIONAL_DATA), settings.offline,
                                               fetch=False))
        if problems:
            message = "the collected audits need data that is not there:\n  " + "\n  ".join(problems)
            config.stash[STARTUP_ERROR_KEY] = message
            raise pytest.UsageError(message)  # exit 4, said once by pytest as a run's refusal is (no summary runs here)
        if LABELLED in needs:  # the dry run warns as the run would: its subset's size is known from the listing alone
            _warn_sample_floor(config, meta, labelled_count(_run_images(settings)))
        return
    # Here, on the controller before any test runs (under xdist: at the first worker's collection), and once:
    # the next worker's check finds the data in place.
    problems = _as_written(config, provide(settings.data, settings.images, needs - set(OPTIONAL_DATA), settings.offline,
                                           TerminalLog(config)))
    if problems:
        message = "the collected audits need data that is not there (no test was run):\n  " + "\n  ".join(problems)
        config.stash[STARTUP_ERROR_KEY] = message
        raise pytest.UsageError(message)  # exit 4; said once, by the summary (terminal_summary.py)
    for need in sorted(needs & set(OPTIONAL_DATA) - config.stash.setdefault(OPTIONAL_KEY, set())):
        config.stash[OPTIONAL_KEY].add(need)  # tried once: a later worker's collection does not fetch again
        absent = provide(settings.data, settings.images, {need}, settings.offline, TerminalLog(config))
        if absent:
            config.stash.setdefault(ABSENT_KEY, set()).add(need)
            say_once(config, f"{OPTIONAL_DATA[need]} is not recorded: " + "; ".join(absent))
    # the ImageNet-C condition folders the corruption tests score
    imagenet_c = imagenet_c_conditions(meta, settings.config.thresholds) if settings.imagenet_c else []
    if (needs or imagenet_c) and not config.stash.get(CHECKED_KEY, False):  # once: the next worker's collection finds it done
        config.stash[CHECKED_KEY] = True
        checked = check_image_sets(_run_images(settings), needs, imagenet_c, OBSERVERS in config.stash.get(ABSENT_KEY, set()),
                                   configured_conditions(settings.config))
        for note in checked.notes:
            say_once(config, note)
        for warning in checked.warnings:
            warn_once(config, warning)
        problems, count = checked.problems, checked.labelled_count
        if problems:
            message = "the collected audits cannot read their images (no test was run):\n  " + "\n  ".join(problems)
            config.stash[STARTUP_ERROR_KEY] = message
            raise pytest.UsageError(message)  # exit 4; said once, by the summary (terminal_summary.py)
        _warn_sample_floor(config, meta, count)
        # Every shape-bias test reads the map (cue conflict, edges, silhouettes, and the baseline's comparisons of them)
        problems = (map_check.check_category_maps(settings.model_specs, settings.classes, settings.config.thresholds)
                    if needs & SHAPE_BIAS_STIMULI else [])
        if problems:
            message = "audit.toml does not fit the models' classes (no test was run):\n  " + "\n  ".join(problems)
            config.stash[STARTUP_ERROR_KEY] = message
            raise pytest.UsageError(message)  # exit 4; said once, by the summary (terminal_summary.py)


def _run_images(settings) -> RunImages:
    return RunImages(settings.data, settings.images, settings.samples, settings.seed, settings.model_specs,
                     settings.classes, settings.imagenet_c)


def _warn_sample_floor(config: pytest.Config, meta: dict[str, dict[str, Any]], count: int | None) -> None:
    """The warning that a selected gate will count fewer labelled images (``count``, None: not known) than its
    min_images (visionaudit/families/sample_floor.py)."""
    settings = get_settings(config)
    option = lambda name: getattr(settings, name, None)  # noqa: E731 (a descriptor's ``unless``: --audit-imagenet-c)
    if count is not None and (note := sample_floor_note(settings.samples, count, meta, settings.config.thresholds,
                                                        shard=settings.shard is not None, option=option)):
        warn_once(config, note)


def note_uncovered(config: pytest.Config, images: ImageSet, space: LabelSpace, missing: list[str], models: list[str]) -> None:
    """Say once that the images cover only some of a model's classes (which is fine: results are per class seen)."""
    note = uncovered_note(images, space, missing, models)
    if note:
        say_once(config, note)


def pytest_configure(config: pytest.Config) -> None:
    channel = get_channel(config)
    if channel is not None and not hasattr(config, "workerinput"):
        def handler(worker: str, message: dict[str, Any]) -> None:
            if message.get("kind") == "narrow_sixteen_bit":
                config.stash.setdefault(NARROW_KEY, {}).update(message["found"])
        channel.subscribe(handler)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item):
    """After each test, what its decoding found goes to the controller: the note is said once for the whole run,
    all processes' images counted together (:func:`pytest_sessionfinish`)."""
    try:
        return (yield)
    finally:
        found = take_narrow_sixteen_bit()
        if found:
            send(item.config, {"kind": "narrow_sixteen_bit", "found": found})


@pytest.hookimpl(tryfirst=True)  # before the report is built and written
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    channel = get_channel(config)
    if channel is not None:
        channel.poll()
    if hasattr(config, "workerinput"):
        return
    note = narrow_sixteen_bit_note(config.stash.get(NARROW_KEY, {}))
    if note:
        say_once(config, note, now=False)


@pytest.hookimpl(tryfirst=True)  # in a worker: before xdist tells the controller its collection is done
def pytest_collection_finish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        send(session.config, {"kind": "tests", "tests": collection_meta(session.items)})
