"""What the collected tests are (family, model, parameters, the data each reads) and, before any test runs, whether
that data is there: with no data root given, what is missing is fetched into the user cache first
(visionaudit/data/provision.py); a data folder still missing stops the run with exit 4, naming each and how to get it.

Then each image set the tests read is listed, and the labelled images' class names are matched against the
classes of every model whose label space is known before it loads (visionaudit/models/classes.py): a folder
or CSV label that names no class stops the run (exit 4) naming it with the closest class; classes with no
images, and a subset larger than a set, are said once (terminal and the report's ``run.notes``). The headers of
the images the tests will decode are opened (visionaudit/data/header_check.py): unusable files stop the run (exit 4),
images with an EXIF orientation are said once; 16-bit images holding 10 or 12 bits, found as the workers decode
them, are said once at the end. A model whose classes are known only once loaded is checked as it loads, in its
worker (fixtures/models.py): a mismatch there is that model's failed load (its tests error, the others go on).
Under xdist only the workers collect, so each sends this to the controller (plugins/worker_channel.py) before
xdist reports its collection, and the controller checks when the first worker's arrives.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from visionaudit.data.decoding import narrow_sixteen_bit_note, take_narrow_sixteen_bit
from visionaudit.data.fetch import OBSERVERS
from visionaudit.data.header_check import check_headers
from visionaudit.data.image_sets import (
    LABELLED,
    ROLES,
    ImageSet,
    classes_without_images,
    data_root,
    run_image_set,
)
from visionaudit.data.label_space import LabelSpace, unmatched_message
from visionaudit.data.observers import ObserversAbsent, observer_files
from visionaudit.data.provision import provide
from visionaudit.errors import ConfigError, DataError, UnusableImages
from visionaudit.families.baseline import ALL_COMPARED, data_role
from visionaudit.families.corruption import check_severities
from visionaudit.families.corruption.folder import condition_images
from visionaudit.families.corruption.imagenet_c import condition_folder
from visionaudit.families.sample_floor import sample_floor_note
from visionaudit.families.shape_bias import categories_or_reason, check_category_map
from visionaudit.files import to_jsonable
from visionaudit.models.classes import imagenet_hint, known_before_load
from visionaudit.models.specs import parse_spec

from .markers import family_of
from .record_transport import subject_of
from .settings import SETTINGS_KEY, Settings, get_settings
from .worker_channel import get_channel, send

STARTUP_ERROR_KEY = pytest.StashKey[str]()
NOTES_KEY = pytest.StashKey[list]()  # things said once: the report's run.notes
CHECKED_KEY = pytest.StashKey[bool]()  # the image sets were listed and matched
PRINTED_KEY = pytest.StashKey[set]()  # the notes already on the terminal
LABELLED_COUNT_KEY = pytest.StashKey[int]()  # the labelled images the run's tests read (its --audit-samples subset)
NARROW_KEY = pytest.StashKey[dict]()  # 16-bit images holding 10 or 12 bits, found as any process decoded them
# The data each fixture reads: "labelled" is --audit-images, the rest are folders under the data root.
DATA_FIXTURES = {"labelled_images": (LABELLED,), "corrupted": (LABELLED,),  # corrupted: the kernels' inputs, or the originals
                 "cue_conflict_images": ("cue-conflict",), "human_observers": (OBSERVERS,)}  # of an ImageNet-C folder
# Data a test reads if it is there: absent and not fetchable (offline, a data root without it, a failed fetch),
# what it feeds is left out with the reason (said once), and the test runs. Its value: what is left out.
OPTIONAL_DATA = {OBSERVERS: "the error consistency with the human observers (shape bias is judged without it)"}
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


class _TerminalLog:
    """A text stream onto pytest's terminal, for the download's progress and terms (uncaptured, even mid-collection)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        for line in lines:
            if tr is None:
                continue
            if capman is not None:
                with capman.global_and_fixture_disabled():
                    tr.write_line(line)
            else:
                tr.write_line(line)
        return len(text)

    def flush(self) -> None:
        pass


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
    if OBSERVERS in needs and not _shape_bias_measurable(settings):
        needs.discard(OBSERVERS)  # neither fetched nor noted: no model's shape bias can use them (hunt35 F9)
    if config.getoption("collectonly"):
        problems = _as_written(config, provide(settings.data, settings.images, needs - set(OPTIONAL_DATA), settings.offline,
                                               fetch=False))
        if problems:
            message = "the collected audits need data that is not there:\n  " + "\n  ".join(problems)
            config.stash[STARTUP_ERROR_KEY] = message
            raise pytest.UsageError(message)  # exit 4, said once by pytest as a run's refusal is (no summary runs here)
        return
    # Here, on the controller before any test runs (under xdist: at the first worker's collection), and once:
    # the next worker's check finds the data in place.
    problems = _as_written(config, provide(settings.data, settings.images, needs - set(OPTIONAL_DATA), settings.offline,
                                           _TerminalLog(config)))
    if problems:
        message = "the collected audits need data that is not there (no test was run):\n  " + "\n  ".join(problems)
        config.stash[STARTUP_ERROR_KEY] = message
        raise pytest.UsageError(message)  # exit 4; said once, by the summary (terminal_summary.py)
    for need in sorted(needs & set(OPTIONAL_DATA) - config.stash.setdefault(OPTIONAL_KEY, set())):
        config.stash[OPTIONAL_KEY].add(need)  # tried once: a later worker's collection does not fetch again
        absent = provide(settings.data, settings.images, {need}, settings.offline, _TerminalLog(config))
        if absent:
            config.stash.setdefault(ABSENT_KEY, set()).add(need)
            say_once(config, f"{OPTIONAL_DATA[need]} is not recorded: " + "; ".join(absent))
    imagenet_c = imagenet_c_conditions(settings, meta)  # the ImageNet-C condition folders the corruption tests score
    if (needs or imagenet_c) and not config.stash.get(CHECKED_KEY, False):  # once: the next worker's collection finds it done
        config.stash[CHECKED_KEY] = True
        problems = check_image_sets(config, settings, needs, imagenet_c)
        if problems:
            message = "the collected audits cannot read their images (no test was run):\n  " + "\n  ".join(problems)
            config.stash[STARTUP_ERROR_KEY] = message
            raise pytest.UsageError(message)  # exit 4; said once, by the summary (terminal_summary.py)
        count = config.stash.get(LABELLED_COUNT_KEY, None)
        own = ("corruption",) if settings.imagenet_c else ()  # scored on the ImageNet-C folder's images, not the labelled
        if count is not None and (note := sample_floor_note(settings.samples, count, meta, settings.config.thresholds,
                                                            shard=settings.shard is not None, own_images=own)):
            say_once(config, note, now=False)  # run.notes; on the terminal now, marked so that it stands out
            _TerminalLog(config).write(f"WARNING: {note}\n")
            config.stash.setdefault(PRINTED_KEY, set()).add(note)
        # Every shape-bias test reads the map (cue conflict, edges, silhouettes, and the baseline's comparisons of them)
        problems = check_category_maps(settings) if needs & SHAPE_BIAS_STIMULI else []
        if problems:
            message = "audit.toml does not fit the models' classes (no test was run):\n  " + "\n  ".join(problems)
            config.stash[STARTUP_ERROR_KEY] = message
            raise pytest.UsageError(message)  # exit 4; said once, by the summary (terminal_summary.py)


def imagenet_c_conditions(settings: Settings, meta: dict[str, dict[str, Any]]) -> list[tuple[str, int]]:
    """The (corruption, severity) folders of ``--audit-imagenet-c`` the collected tests read: a condition's test (and the
    baseline's comparison of it) its own; the mCE (and the baseline's comparison of it) each its model scores."""
    if not settings.imagenet_c:
        return []
    out: dict[tuple[str, int], None] = {}
    for m in meta.values():
        params = m.get("params") or {}
        compared = ALL_COMPARED.get(params.get("comparison")) if m.get("audit") == "baseline" else None
        if compared is not None and compared.family != "corruption":
            continue
        if m.get("audit") == "corruption" and "corruption" in params:
            out[(params["corruption"], int(params["severity"]))] = None
        elif compared is not None and compared.kind == "error":  # condition "gaussian_noise-3"
            corruption, severity = compared.condition.rsplit("-", 1)
            out[(corruption, int(severity))] = None
        elif m.get("audit") == "corruption" or compared is not None:
            table = settings.config.thresholds("corruption", m.get("model") or "")
            out.update(dict.fromkeys((c, s) for c in table["corruptions"] for s in check_severities(table["severities"])))
    return sorted(out)


def check_image_sets(config: pytest.Config, settings: Settings, needs: set[str],
                     imagenet_c: list[tuple[str, int]] = ()) -> list[str]:
    """List each image set the tests read, match the labelled images' class names against every model's classes
    known before it loads, open the headers of the images they decode (``imagenet_c``: the ImageNet-C conditions'
    too); the problems, each naming its fix (the notes go to the terminal and the report)."""
    problems: list[str] = []
    try:
        root = data_root(settings.data)
    except DataError as e:
        return [str(e)]
    for role in [r for r in ROLES if r in needs]:
        try:
            whole = run_image_set(role, root, settings.images, None, settings.seed, download=False)
        except UnusableImages as e:  # its class names and its usable images' headers are checked now too: every
            # problem in one message. All its usable images: a refused set has no --audit-samples subset to draw.
            problems += [*e.problems, *_unmatched_labels(settings, e)]
            refusal = check_headers(ImageSet(Path(settings.images).stem, e.root, e.paths)).problem() if e.paths else None
            problems += [refusal] if refusal else []
            continue
        except DataError as e:
            problems.append(str(e))
            continue
        if settings.samples and settings.samples > len(whole):
            say_once(config, f"--audit-samples {settings.samples:,} is more than the {len(whole):,} images of {whole.name}: "
                             f"all {len(whole):,} are used")
        if role == LABELLED:
            problems += _check_labels(config, settings, whole)
        # The images this run's tests will decode (the subset they read), from their headers: a bad file stops the run
        # now rather than once a model has loaded (visionaudit/data/header_check.py).
        read = whole.stratified_subset(settings.samples, settings.seed)
        if role == LABELLED:
            config.stash[LABELLED_COUNT_KEY] = len(read)
        problems += _headers(config, read)
    for corruption, severity in imagenet_c:  # the files scored as they are (--audit-imagenet-c), checked alike
        if not condition_folder(Path(settings.imagenet_c), corruption, severity).is_dir():
            continue  # not downloaded: its test says so (skipped), the mCE leaves it out, naming it
        try:
            problems += _headers(config, condition_images(Path(settings.imagenet_c), corruption, severity, settings.samples,
                                                          settings.seed))
        except UnusableImages as e:
            refusal = check_headers(ImageSet(f"imagenet-c {corruption}/{severity}", e.root, e.paths)).problem() if e.paths else None
            problems += [*e.problems, *([refusal] if refusal else [])]
        except DataError as e:
            problems.append(str(e))
    if OBSERVERS in needs:  # verified here, once; an absent observer is said, not skipped silently
        try:
            note = observer_files(root / OBSERVERS).note()
            if note:
                say_once(config, note)
        except ObserversAbsent as e:  # optional; absent was said by check_data, an empty folder is said here
            if OBSERVERS not in config.stash.get(ABSENT_KEY, set()):
                say_once(config, f"{OPTIONAL_DATA[OBSERVERS]} is not recorded: {e}")
        except DataError as e:  # a file with other bytes: the fix named
            problems.append(str(e))
    return problems


def _headers(config: pytest.Config, images: ImageSet) -> list[str]:
    """The refusal of ``images``' unusable files, if any; their EXIF orientations said once."""
    headers = check_headers(images)
    refusal, note = headers.problem(), headers.orientation_note()
    if note:
        say_once(config, note)
    return [refusal] if refusal else []


def check_category_maps(settings: Settings) -> list[str]:
    """A shape-bias ``category_map`` typo (a class the model lacks, a category not of the 16), for each model whose
    classes are known before it loads (the others: when the model loads, as the test's error)."""
    problems = []
    for model_id in settings.models:
        try:
            spec = parse_spec(model_id)
            space = known_before_load(spec, settings.classes)
        except (ConfigError, ValueError, KeyError):
            continue  # said where the model loads
        if space is None:
            continue
        try:
            check_category_map(space, settings.config.thresholds("shape_bias", spec.id).get("category_map"))
        except ConfigError as e:
            problems.append(f"{model_id}: {e}")
    return problems


def _shape_bias_measurable(settings: Settings) -> bool:
    """Whether some model's shape bias may be measured: its classes unknown before it loads, or known and mapped
    onto the 16 categories (the observers' data serves only that)."""
    for model_id in settings.models:
        try:
            spec = parse_spec(model_id)
            space = known_before_load(spec, settings.classes)
            category_map = settings.config.thresholds("shape_bias", spec.id).get("category_map")
            if space is None or categories_or_reason(space, category_map)[0] is not None:
                return True
        except (ConfigError, ValueError, KeyError):
            return True  # said where the model loads (or by check_category_maps)
    return False


def _known_spaces(settings: Settings) -> dict[LabelSpace, list[str]]:
    """The label spaces of the run's models known before they load, each with its models."""
    spaces: dict[LabelSpace, list[str]] = {}
    for model_id in settings.models:
        try:
            space = known_before_load(parse_spec(model_id), settings.classes)
        except (ConfigError, ValueError, KeyError):
            continue  # said where the model loads
        if space is not None:
            spaces.setdefault(space, []).append(model_id)
    return spaces


def _unmatched_labels(settings: Settings, images: UnusableImages) -> list[str]:
    """The class names of labelled images that cannot be used as they are, matched all the same."""
    refusals = [(models, space, unmatched_message(space, images.labels, images.numeric, images.root))
                for space, models in _known_spaces(settings).items()]
    return [f"{', '.join(models)}: {refusal}{imagenet_hint(space)}" for models, space, refusal in refusals if refusal]


def _check_labels(config: pytest.Config, settings: Settings, images: ImageSet) -> list[str]:
    problems = []
    for space, models in _known_spaces(settings).items():
        if settings.classes and not space.source.startswith(("--audit-classes", "?classes=")):
            say_once(config, f"--audit-classes is not used for {', '.join(models)}: it names its own classes "
                             f"({space.source}); ?classes=FILE in its spec overrides them")
        try:
            missing = classes_without_images(images, space)
        except DataError as e:
            problems.append(f"{', '.join(models)}: {e}{imagenet_hint(space)}")
            continue
        note_uncovered(config, images, space, missing, models)
    return problems


def note_uncovered(config: pytest.Config, images: ImageSet, space: LabelSpace, missing: list[str], models: list[str]) -> None:
    """Say once that the images cover only some of a model's classes (which is fine: results are per class seen)."""
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10:,} more" if len(missing) > 10 else "")
        say_once(config, f"the labelled images {images.name} ({len(images):,} images) cover {len(space) - len(missing):,} of the "
                         f"{len(space):,} classes of {', '.join(models)}; {len(missing):,} class(es) have no images: {shown}")


def say_once(config: pytest.Config, note: str, now: bool = True) -> None:
    """A note for the report (``run.notes``) and the terminal (``now``, else in the summary), each said once.
    In a worker it goes to the controller."""
    if hasattr(config, "workerinput"):
        send(config, {"kind": "note", "note": note})
        return
    notes = config.stash.setdefault(NOTES_KEY, [])
    if note in notes:
        return
    notes.append(note)
    if now:
        _TerminalLog(config).write(f"note: {note}\n")
        config.stash.setdefault(PRINTED_KEY, set()).add(note)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """The notes that came from workers (said as they loaded a model), not printed yet."""
    printed = config.stash.get(PRINTED_KEY, set())
    for note in config.stash.get(NOTES_KEY, []):
        if note not in printed:
            terminalreporter.write_line(f"note: {note}")


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # what the settings found at startup (a model's assumed preprocessing)
        settings = config.stash.get(SETTINGS_KEY, None)
        for note in settings.notes if settings else ():
            say_once(config, note, now=False)  # the terminal reporter may not be there yet: said in the summary
    channel = get_channel(config)
    if channel is not None and not hasattr(config, "workerinput"):
        def handler(worker: str, message: dict[str, Any]) -> None:
            if message.get("kind") == "note":
                say_once(config, message["note"], now=False)  # not from this thread: in the summary
            elif message.get("kind") == "narrow_sixteen_bit":
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
