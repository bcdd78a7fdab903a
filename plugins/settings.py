"""Settings: command line over audit.toml's [run] over built-in defaults; validated once at configure,
before any model loads (a bad spec or config exits 4 with its message)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import pytest

from visionaudit.cli.options import empty_option
from visionaudit.config import CONFIG_FILE, AuditConfig, load_config
from visionaudit.data import decode_budget, decoding
from visionaudit.data.label_space import read_classes_file
from visionaudit.data.shards import Shard, parse_shard
from visionaudit.data.user_cache import OFFLINE_ENV, offline
from visionaudit.devices import check_device
from visionaudit.errors import CheckpointError, ConfigError, SpecError, VisionAuditError
from visionaudit.families.baseline.pairing import merge_first
from visionaudit.families.corruption.imagenet_c import check_root
from visionaudit.files import blocking_file
from visionaudit.models import logit_cache
from visionaudit.models.checkpoints import refuse_pickled, refuse_unreadable
from visionaudit.models.classes import check_before_load
from visionaudit.models.factories import factory_problem
from visionaudit.models.hf import assumed_preprocessing_note, check_preprocessing
from visionaudit.models.hub import check_available
from visionaudit.models.model_names import named_spec
from visionaudit.models.preprocessing_before_load import (
    check_image_classifier,
    check_resize,
    check_timm_input,
)
from visionaudit.models.specs import (
    DEFAULT_MODEL,
    ModelSpec,
    parse_spec,
    reference_spec,
)

SETTINGS_KEY = pytest.StashKey["Settings"]()
STARTUP_USAGE_ERROR_KEY = pytest.StashKey[str]()  # what stopped the run at startup, for the report
PREVIOUS_KEY = pytest.StashKey[tuple]()  # the decode budget, logit cache and image-size limit before this run, put back after it


@dataclass(frozen=True)
class Settings:
    models: tuple[str, ...]  # the models' ids (?name=, else the canonical spec): test ids, report keys, baseline pairing
    arch: str | None
    device: str
    data: str | None
    images: str
    samples: int | None
    seed: int
    batch_size: int | None
    config: AuditConfig
    timeout: float | None = None  # --audit-timeout: seconds per test
    imagenet_c: str | None = None  # --audit-imagenet-c: a downloaded ImageNet-C folder, checked at startup
    spellings: Mapping[str, str] = field(default_factory=dict)  # the model's id -> as the user wrote it
    canonicals: Mapping[str, str] = field(default_factory=dict)  # the model's id -> its canonical spec (the id unless ?name=)
    shard: Shard | None = None  # --audit-shard I/N: this job's share of the images (visionaudit/data/shards.py)
    offline: bool = False  # --audit-offline or VISIONAUDIT_OFFLINE=1: never download
    decode_memory: int | None = None  # bytes of decoded images per process; None: decode_budget's default
    cache: str | None = None  # the clean-logit cache directory; None: off
    classes: str | None = None  # --audit-classes / [run] classes: class names for models that carry none
    max_image_pixels: int | None = None  # images with more pixels are refused; None: decoding's default
    notes: tuple[str, ...] = ()  # known at startup, said once by the controller (plugins/run_notes.py): an assumed preprocessing

    @property
    def model_specs(self) -> tuple[str, ...]:
        """The models as specs (canonical, ``?name=`` kept): each parses to the model, its id the one in ``models``."""
        return tuple(named_spec(self.canonicals.get(m, m), m) for m in self.models)


def worker_index() -> int | None:
    """This process's pytest-xdist worker number (gw3 -> 3), or None outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else None


def worker_count() -> int:
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)


def get_settings(config: pytest.Config) -> Settings:
    return config.stash[SETTINGS_KEY]


# The run's options whose empty value is refused (visionaudit/cli/options.py says why and the fix), by dest and flag.
EMPTY_REFUSED = (("arch", "--arch"), ("audit_device", "--device"), ("audit_data", "--audit-data"),
                 ("audit_images", "--audit-images"), ("audit_classes", "--audit-classes"),
                 ("audit_config", "--audit-config"), ("audit_cache", "--audit-cache"),
                 ("audit_decode_memory", "--audit-decode-memory"), ("audit_imagenet_c", "--audit-imagenet-c"),
                 ("audit_baseline", "--audit-baseline"), ("audit_baseline_as", "--audit-baseline-as"),
                 ("audit_shape_bias_reference", "--audit-shape-bias-reference"))


def _refuse_empty(config: pytest.Config) -> None:
    problem = empty_option({flag: config.getoption(dest, None) for dest, flag in EMPTY_REFUSED})
    if problem:
        raise pytest.UsageError(problem)


def _resolve(config: pytest.Config) -> Settings:
    _refuse_empty(config)
    arch = config.getoption("arch")
    audit_config = load_config(_config_path(config), arch)
    run = audit_config.run
    spellings: dict[str, str] = {}
    canonicals: dict[str, str] = {}  # the model's id -> its canonical spec
    notes: list[str] = []
    no_downloads = offline(bool(config.getoption("audit_offline", False)))
    from_config = not config.getoption("model") and bool(run.get("models"))
    for spec in config.getoption("model") or run.get("models") or (DEFAULT_MODEL,):
        try:
            parsed = _named_by_config(parse_spec(spec, arch), audit_config)  # a typo fails the run at once; a repeat counts once
            if parsed.id not in spellings:
                _check_model(parsed, no_downloads)
        except VisionAuditError as e:
            if not from_config:
                raise
            raise audit_config.run_error("models", spec, e) from None  # said as written in audit.toml
        if parsed.id not in spellings:
            notes += [note] if (note := assumed_preprocessing_note(parsed)) else []
        elif canonicals[parsed.id] != parsed.canonical:  # one id, two models: their rows and tables would mix
            raise SpecError(_same_id(parsed, spellings[parsed.id], canonicals[parsed.id]))
        else:  # the same model again: audited once, said (no input is dropped without a word)
            where = "[run] models" if from_config else "--model"
            again = "is given twice" if spec == spellings[parsed.id] else f"is {spellings[parsed.id]}, given already"
            notes.append(f"{where} {spec} {again}: it is audited once, as {parsed.id}")
        spellings.setdefault(parsed.id, spec)
        canonicals.setdefault(parsed.id, parsed.canonical)
    samples = _number(config, "audit_samples", int, "a positive number of images")
    samples = samples if samples is not None else run.get("samples")
    batch_size = _number(config, "audit_batch_size", int, "a positive number of images per forward pass",
                         "; leave it out for the default (8 on CPU, 128 on GPU)")
    seed = _number(config, "audit_seed", int, "a whole number, 0 or more", positive=False)
    return Settings(
        models=tuple(spellings),
        arch=arch,
        device=_device(config, run, audit_config.path),
        data=config.getoption("audit_data") or run.get("data"),
        images=config.getoption("audit_images") or run.get("images") or "imagenet-sample",
        samples=samples,
        seed=seed if seed is not None else run.get("seed", 0),
        batch_size=batch_size if batch_size is not None else run.get("batch_size"),
        config=audit_config.with_names(canonicals),
        timeout=_number(config, "audit_timeout", float, "a positive number of seconds per test"),
        imagenet_c=_imagenet_c(config.getoption("audit_imagenet_c", None)),
        spellings=spellings,
        canonicals=canonicals,
        shard=_shard(config),
        offline=no_downloads,
        decode_memory=_decode_memory(config, run, audit_config.path),
        cache=_cache(config, run),
        classes=_class_files(config.getoption("audit_classes", None) or run.get("classes"), spellings, arch),
        max_image_pixels=_number(config, "audit_max_image_pixels", int,
                                 "a positive number of pixels") or run.get("max_image_pixels"),
        notes=tuple(notes),
    )


def _check_model(parsed: ModelSpec, no_downloads: bool) -> None:
    """A hub model's files: in the cache (fetched now if allowed), its image processor one the suite follows; a
    factory: its module on the import path and defining it (read, not imported: the controller runs no model code);
    the same for an ONNX file's ``?reference=`` model (the deployment audit loads it) and a state dict's
    architecture; a checkpoint that holds pickled objects (read, never unpickled); a timm name or tag timm has not, or
    a configuration whose input the suite does not make (before its weights are fetched); a ``?resize=`` below the
    crop known before the model loads; a torchvision model that is not an image classifier; else exit 4."""
    check_image_classifier(parsed)  # first: before the class checks read a segmentation model's labels as its classes
    check_timm_input(parsed)
    check_available(parsed, no_downloads)
    check_preprocessing(parsed)
    check_resize(parsed)
    _check_factory(parsed, f"--model {parsed.raw}")
    _check_checkpoint(parsed, f"--model {parsed.raw}")
    if "arch" in parsed.options and parsed.kind == "state_dict":
        try:
            arch = parse_spec(parsed.options["arch"])
        except VisionAuditError:
            arch = None  # loading names the architecture's problem
        if arch is not None:
            _check_factory(arch,
                           f"--model {parsed.raw}: its architecture {parsed.options['arch']} (--arch, or ?arch= in the spec)")
    if "reference" in parsed.options:
        reference = reference_spec(parsed)
        try:
            check_image_classifier(reference, who="")  # the message below names the spec
            check_timm_input(reference, who="")
            check_available(reference, no_downloads)
            check_preprocessing(reference)
            check_resize(reference, who="")
            _check_factory(reference, "")
            _check_checkpoint(reference, "")
        except VisionAuditError as e:
            raise VisionAuditError(f"--model {parsed.raw}: its ?reference={parsed.options['reference']} (the torch model "
                                   f"the ONNX file was exported from) is refused: {e}") from None


def _check_checkpoint(spec: ModelSpec, what: str) -> None:
    """A checkpoint that holds pickled objects (read, never unpickled), or cut short or damaged where that shows without
    reading its weights: refused now, not as its test's error."""
    if spec.kind in ("state_dict", "timm") and spec.path is not None:
        try:
            refuse_unreadable(spec.path)
            refuse_pickled(spec.path)
        except CheckpointError as e:
            raise CheckpointError(f"{what}: {e}" if what else str(e)) from None


def _check_factory(spec: ModelSpec, what: str) -> None:
    if spec.kind == "factory":
        problem = factory_problem(spec.name)
        if problem:
            raise SpecError(f"{what}: {problem}" if what else problem)


def _named_by_config(parsed: ModelSpec, config: AuditConfig) -> ModelSpec:
    """``parsed`` with the name its audit.toml table gives it (``name = "..."``), unless its spec names it already."""
    name = config.name_of(parsed.canonical)
    if not name or parsed.given_name == name:
        return parsed
    if parsed.given_name:
        raise SpecError(f'--model {parsed.raw} names the model {parsed.given_name}, and {config.path} names it {name} (its '
                        f'[models."{config.model_keys[config.table_of(parsed.canonical)]}"] table): give it one name')
    return replace(parsed, given_name=name)


def _same_id(parsed: ModelSpec, other_spelling: str, other_canonical: str) -> str:
    """Two models of the run with one id: two equal ``?name=``, or a name that is another model's spec."""
    return (f"{parsed.raw} and {other_spelling} are two models ({parsed.canonical} and {other_canonical}) "
            f"with one id, {parsed.id}: the id names a model in test ids, report rows and the baseline pairing, so it must be "
            "one model's; give one of them another ?name=")


def _class_files(run_classes: str | None, spellings: Mapping[str, str], arch: str | None) -> str | None:
    """The run's class file, after every class file of the run (``--audit-classes``, each ``?classes=``) was read
    once here: one that is missing, unreadable or empty, or whose length differs from outputs known before the
    model loads (visionaudit/models/classes.py), stops the run before any model loads."""
    if run_classes:
        read_classes_file(run_classes)
    for spelled in spellings.values():
        spec = parse_spec(spelled, arch)
        if "classes" in spec.options:
            read_classes_file(spec.options["classes"])
        check_before_load(spec, run_classes)  # a length known to differ from the outputs (torchvision, lite)
    return run_classes


def _shard(config: pytest.Config) -> Shard | None:
    text = config.getoption("audit_shard", None)
    if text is None:
        return None
    try:
        shard = parse_shard(text)
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    if config.getoption("audit_baseline", None):
        holds = "1/1 holds every image, but in a part's form" if shard.count == 1 else "it holds only some of the images"
        raise pytest.UsageError(f"--audit-shard {text} with --audit-baseline: a shard's report is never compared with a "
                                f"baseline ({holds}). Run without a baseline, {merge_first(shard.count)}: "
                                "python -m visionaudit compare BASELINE.json REPORT.json")
    return shard


def _config_path(config: pytest.Config) -> Path | None:
    """``--audit-config``, else the rootdir's audit.toml where one is there: a link to none (or a loop) is there too,
    and refused as unreadable (exit 4) rather than passed over for the defaults without a word."""
    path = config.getoption("audit_config")
    found = config.rootpath / CONFIG_FILE
    if path is None and (found.is_file() or found.is_symlink()):
        path = found
    return path


def _device(config: pytest.Config, run: Mapping, path: Path | None) -> str:
    """``--device``, else ``[run] device`` (of the file ``path``), else auto; checked: a typo or a missing GPU stops the
    run here, not in every test."""
    device = config.getoption("audit_device") or run.get("device") or "auto"
    from_file = not config.getoption("audit_device") and bool(run.get("device"))
    try:
        check_device(device, f'[run] device = "{device}"' if from_file else None)
    except VisionAuditError as e:
        if not from_file:
            raise
        # No --device was given: audit.toml's device, which must be said (a GPU runner's file on a CPU runner), with the
        # fix that leaves the file alone.
        raise ConfigError(f"{path}: {e} (in audit.toml; or give --device on the command line, which wins over it)") from None
    return device


def _decode_memory(config: pytest.Config, run: Mapping, path: Path | None = None) -> int | None:
    """``--audit-decode-memory``, else ``[run] decode_memory`` (of the file ``path``), else the environment's, in bytes;
    None: the default."""
    for value, where in ((config.getoption("audit_decode_memory"), "--audit-decode-memory"),
                         (run.get("decode_memory"), f"{path}: [run] decode_memory" if path else "[run] decode_memory"),
                         (os.environ.get(decode_budget.DECODE_MEMORY_ENV), f"${decode_budget.DECODE_MEMORY_ENV}")):
        if value:
            return decode_budget.parse_size(value, where)
    return None


def _cache(config: pytest.Config, run: Mapping) -> str | None:
    """The logit cache's folder; one under a file is refused now: each write would fail with a log line nobody sees,
    and every run would compute its logits again."""
    for value, where in ((config.getoption("audit_cache"), "--audit-cache"), (run.get("cache"), "[run] cache"),
                         (os.environ.get(logit_cache.CACHE_ENV), f"${logit_cache.CACHE_ENV}")):
        if value:
            blocking, error = blocking_file(Path(value).expanduser())
            if error is not None:
                raise pytest.UsageError(f"{where} {value}: {value} cannot be reached ({error.strerror or error}); give a "
                                        "folder you can write to, or leave the cache out")
            if blocking is not None:
                raise pytest.UsageError(f"{where} {value}: {blocking} is a file, not a folder; give the logit cache a "
                                        "folder (it is made if it is not there)")
            return value
    return None


def _imagenet_c(path: str | None) -> str | None:
    """The ImageNet-C folder, checked now: a wrong path stops the run before any model loads."""
    return None if path is None else str(check_root(Path(path)))


def _number(config: pytest.Config, dest: str, kind: type, what: str, fix: str = "", positive: bool = True) -> float | int | None:
    """An option's number, checked: ``--audit-samples -1`` or ``abc`` is a usage error naming the option."""
    text = config.getoption(dest, None)
    if text is None:
        return None
    flag = "--" + dest.replace("_", "-")
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{flag} must be {what}, got {text!r}{fix}") from None
    if value < 0 or (positive and value == 0):
        raise pytest.UsageError(f"{flag} must be {what}, got {text}{fix}")
    return value


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        settings = config.stash[SETTINGS_KEY] = _resolve(config)
    except (VisionAuditError, pytest.UsageError) as e:
        config.stash[STARTUP_USAGE_ERROR_KEY] = str(e)
        raise pytest.UsageError(str(e)) from None
    # Each process (controller and xdist workers alike) keeps its own decoded images and reads the same cache.
    config.stash[PREVIOUS_KEY] = (decode_budget.set_budget(settings.decode_memory
                                                           or decode_budget.default_budget(worker_count())),
                                  logit_cache.configure(settings.cache), decoding.set_max_image_pixels(settings.max_image_pixels),
                                  os.environ.get(OFFLINE_ENV))
    if settings.offline:  # --audit-offline reaches every loader (hub.downloads_off reads it), xdist workers included
        os.environ[OFFLINE_ENV] = "1"
    if not hasattr(config, "workerinput"):  # said once, by the controller
        for key, near, why in settings.config.mistyped_models(settings.models):
            # One audit.toml serves many runs: a table for another model is normal; one that looks like a typo is not.
            guess = f'did you mean "{near}"? ' if near != key else ""  # not the very text the user wrote
            config.issue_config_time_warning(pytest.PytestConfigWarning(
                f'{settings.config.path}: [models."{key}"] names no model of this run nor one that exists here; '
                f'{guess}Its bounds are not used: {why}'), stacklevel=2)


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(PREVIOUS_KEY, None)
    if previous is not None:  # a run inside another (pytester) leaves the outer one's settings as they were
        decode_budget.set_budget(previous[0])
        logit_cache.configure(previous[1])
        decoding.set_max_image_pixels(previous[2])
        if previous[3] is None:
            os.environ.pop(OFFLINE_ENV, None)
        else:
            os.environ[OFFLINE_ENV] = previous[3]
