"""``audit.toml``: run defaults, and overrides of the audit families' thresholds, for every model or per model.

Each family declares its thresholds with their defaults (its descriptor, :mod:`visionaudit.families`); the
bounds that apply are the family's defaults, then ``[audits.NAME]``, then the model's own table:

```toml
[run]
models = ["efficientnet_lite0"]      # used when no --model is given

[audits.accuracy]                    # overrides for every model
min_top1 = 0.85

[models."torchvision:resnet50".accuracy]   # overrides for one model (any spelling of its spec)
min_top1 = 0.75
```

The config is closed: every key of every table is checked against the family's threshold schema
(:mod:`visionaudit.families`): unknown keys and nested keys, values outside an enumeration and
numbers out of range are errors naming the file, the table, the key, the allowed values and the
closest one, so a typo never silently loosens a gate. Per-model tables are keyed by the model's
canonical spec (:func:`visionaudit.models.specs.canonical_spec`), so ``efficientnet-lite0`` and a query
written in another order match the model they name; paths in a key and in a run's spec are compared by the files
they name (:func:`visionaudit.models.spec_paths.resolved_spec`), so ``?classes=team/classes.txt`` and the same file's
absolute path match too.

Relative paths in the file (``[run]``'s, the tables' specs, ``[baseline.pairs]``' new side) are read from the file's
folder, as most tools read their config, and spelled as read from the working directory, where the command line's
are read (:func:`visionaudit.models.spec_paths.spec_from`, docs/config.md "Relative paths").
"""

from __future__ import annotations

import functools
import json
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from visionaudit.errors import ConfigError, VisionAuditError, closest, unknown_name
from visionaudit.families import thresholds as f
from visionaudit.families.registry import families
from visionaudit.families.thresholds import Field
from visionaudit.models.factories import factory_problem
from visionaudit.models.model_ids import model_id as id_of_written
from visionaudit.models.model_names import MODEL_NAME, MODEL_NAME_RULE, given_name
from visionaudit.models.spec_paths import (
    ReadFromWorkingDirectory,
    path_from,
    resolved_spec,
    spec_from,
)
from visionaudit.models.specs import (
    canonical_spec,
    parse_spec,
    said_of_a_written_spec,
)

CONFIG_FILE = "audit.toml"

RUN_SCHEMA: dict[str, Field] = {
    "models": Field("list[str]", "model specs used when no --model is given", minimum=1),
    "device": Field("str", "auto, cpu, cuda, cuda:N or mps", minimum=1),
    "data": Field("str", "data root", minimum=1),
    "images": Field("str", "labelled natural images: a folder under the data root, a path, or imagenette", minimum=1),
    "samples": f.count("a fixed, seeded, class-stratified subset of this many images per image set"),
    "seed": f.whole("seed for subsets and transforms"),
    "batch_size": f.count("images per forward pass"),
    "decode_memory": Field("str", "decoded images kept per process, such as 2GiB; larger image sets are streamed", minimum=1),
    "cache": Field("str", "directory of the clean-logit cache", minimum=1),
    "classes": Field("str", "file of class names in output order, for models that carry none of their own", minimum=1),
    "max_image_pixels": f.count("refuse images of more than this many pixels (a guard against decompression bombs)"),
}
TOP_LEVEL = ("run", "audits", "models", "baseline")


def _check_table(table: Any, schema: Mapping[str, Field], where: str, path: Path,
                 moved: Mapping[str, str] | None = None) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{where}] must be a table")
    for key, value in table.items():
        if moved and key in moved:
            raise ConfigError(f"{path}: {where}.{key} has moved to {moved[key]}; move it there")
        if key not in schema:
            raise ConfigError(f"{path}: [{where}] {unknown_name('key', key, schema)}")
        problem = schema[key].problem(value)
        if problem:
            raise ConfigError(f"{path}: {where}.{key} = {value!r} {problem}")
    return dict(table)


def _check_family_table(name: str, table: Any, where: str, path: Path) -> dict[str, Any]:
    known = families()
    if name not in known:
        raise ConfigError(f"{path}: [{where}] {unknown_name('audit family', name, known)}")
    family = known[name]
    return _check_table(table, family.thresholds, where, path, family.moved_keys)


@dataclass(frozen=True)
class AuditConfig:
    path: Path | None
    run: Mapping[str, Any] = field(default_factory=dict)
    audits: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    models: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)  # canonical spec -> family -> bounds
    model_keys: Mapping[str, str] = field(default_factory=dict)  # canonical spec -> the table key as written
    baseline_pairs: Mapping[str, str] = field(default_factory=dict)  # [baseline.pairs]: this run's spec -> the baseline's
    resolved: Mapping[str, str] = field(default_factory=dict)  # resolved_spec of a table's key -> its canonical spec
    run_written: Mapping[str, Any] = field(default_factory=dict)  # [run] as written (its paths read from the file's folder)
    names: Mapping[str, str] = field(default_factory=dict)  # a named model's id (?name=) -> its canonical spec (with_names)
    model_names: Mapping[str, str] = field(default_factory=dict)  # a table's canonical spec -> its name = "..." (name_of)

    def name_of(self, canonical: str) -> str:
        """The name the per-model table of the model ``canonical`` gives it (``name = "..."``), "" for none."""
        table = self.table_of(canonical)
        return self.model_names.get(table, "") if table else ""

    def with_names(self, specs: Mapping[str, str]) -> "AuditConfig":
        """This config for a run whose models have these ids (-> canonical spec): a named model's table is its spec's
        (a table says what a model is held to; its name is what people call it)."""
        return replace(self, names=MappingProxyType({i: c for i, c in specs.items() if i != c}))

    def run_error(self, key: str, spelled: Any, error: Exception) -> ConfigError:
        """``error``'s problem with the ``[run] key`` value (``spelled`` as read from the working directory) that caused
        it, as written in this file, and the rule its relative paths were read by (not the command line's)."""
        written = self.run_written.get(key, spelled)
        if key == "models" and spelled in self.run.get("models", ()):
            written = written[list(self.run["models"]).index(spelled)]
        problem = said_of_a_written_spec(error, spelled)
        folder = self.path.parent if self.path else Path(".")
        return ConfigError(f'{self.path}: [run] {key} "{written}": {problem} (relative paths in audit.toml are read from '
                           f'its folder {folder}{os.sep}, docs/config.md "Relative paths")')

    def table_of(self, model_id: str) -> str | None:
        """The per-model table (its canonical spec) for the run's ``model_id`` (a name stands for its spec): the one
        keyed by that spec, else the one whose key names the same files spelled another way (a relative and an
        absolute ``?classes=``)."""
        model_id = self.names.get(model_id, model_id)
        if model_id in self.models:
            return model_id
        if not self.resolved or not model_id:
            return None
        return self.resolved.get(_resolved(model_id) or "")

    def thresholds(self, audit: str, model_id: str) -> "Thresholds":
        """``audit``'s bounds for ``model_id`` (a canonical spec): the family's defaults, then ``[audits.NAME]``,
        then the model's own table."""
        known = families()
        if audit not in known:
            raise ConfigError(unknown_name("audit family", audit, known))
        merged = known[audit].defaults
        table = self.table_of(model_id)
        for layer in (self.audits.get(audit, {}), self.models[table].get(audit, {}) if table else {}):
            for key, value in layer.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    # A per-name table (transforms, deployment forms) overrides the names it lists, and only those:
                    # replacing the whole table below it would drop the other names' bounds without a word.
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
        own = frozenset(self.models[table].get(audit, {})) if table else frozenset()
        return Thresholds(audit, model_id, MappingProxyType(merged), self.path, own)

    def models_not_in(self, run_models: list[str] | tuple[str, ...]) -> list[str]:
        """Per-model tables (as written) that apply to none of ``run_models`` (canonical specs)."""
        used = {self.table_of(m) for m in run_models}
        return [self.model_keys[m] for m in self.models if m not in used]

    def mistyped_models(self, run_models: list[str] | tuple[str, ...]) -> list[tuple[str, str, str]]:
        """``(table key as written, the run's model it is close to, why it names no model here)`` for each per-model
        table that applies to none of the run's models and looks like a typo.

        One audit.toml serves many runs, so a table for a model not in this run is normal and says nothing. A
        table is a likely typo when its model is close to one of the run's and cannot exist here (a file that is
        not there, a ``?classes=`` file that is not there, a factory its module does not define, a timm name timm
        does not know); lite and torchvision names were checked when the file was read. Closeness is judged on
        the paths read from the working directory, so a relative key is compared with an absolute spec."""
        run = {(_resolved(self.names.get(m, m)) or m): m for m in run_models}  # a name: its spec's files
        used = {self.table_of(m) for m in run_models}
        out = []
        for model_id in self.models:
            if model_id in used:
                continue
            near = closest(_resolved(model_id) or model_id, run)
            why = _why_not_here(model_id) if near is not None else None
            if why is not None:
                out.append((self.model_keys[model_id], run[near], why))
        return out


class Thresholds(Mapping[str, Any]):
    """One audit's bounds for one model: defaults with that model's overrides applied."""

    def __init__(self, audit: str, model_id: str, bounds: Mapping[str, Any], source: Path | None = None,
                 own: frozenset[str] | None = None) -> None:  # own: the keys the model's own table sets (None: not known)
        self.audit, self.model_id, self.bounds, self.source, self.own = audit, model_id, bounds, source, own

    def __repr__(self) -> str:
        return f"Thresholds({self.audit!r}, {self.model_id!r}, {dict(self.bounds)!r})"

    def __getitem__(self, key: str) -> Any:
        try:
            return self.bounds[key]
        except KeyError:
            families()[self.audit].field(key)  # a key the family does not declare is a programming error
            raise ConfigError(
                f"{self.source or CONFIG_FILE} sets no {key} for the {self.audit} audit (model {self.model_id}), and the "
                f"family gives no default; add it under [audits.{self.audit}]"
            ) from None

    def entry(self, key: str, name: str, fallback: str | None = None) -> Any:
        """``bounds[key][name]`` of a per-name table (a transform, a deployment form), else ``bounds[fallback]``."""
        table = self.get(key) or {}
        if name in table:
            return table[name]
        if fallback is not None:
            return self[fallback]
        raise ConfigError(f"{self.source or CONFIG_FILE} sets no {key} for {name} in the {self.audit} audit "
                          f"(model {self.model_id}); add {name} = ... to {key} under [audits.{self.audit}]")

    def get(self, key: str, default: Any = None) -> Any:
        return self.bounds.get(key, default)

    def __iter__(self):
        return iter(self.bounds)

    def __len__(self) -> int:
        return len(self.bounds)


def _resolved(model_id: str) -> str | None:
    """``model_id`` with its paths read from the working directory (for matching only), None when it is no spec."""
    return _resolved_in(model_id, os.getcwd())


@functools.lru_cache(maxsize=256)
def _resolved_in(model_id: str, cwd: str) -> str | None:  # cwd: part of the key, since relative paths start there
    try:
        return resolved_spec(model_id)
    except VisionAuditError:
        return None


def _why_not_here(model_id: str) -> str | None:
    """Why the model a table names cannot be found here, judged without loading it (nor importing a factory's
    module); None when it could be."""
    try:
        spec = parse_spec(model_id)  # a file must exist and be of a kind that is read
    except VisionAuditError as e:  # said of the table's key, not of a --model
        return said_of_a_written_spec(e, model_id)
    classes = spec.options.get("classes")
    if classes and not Path(classes).expanduser().is_file():
        relative = "" if Path(classes).expanduser().is_absolute() else f", read from the working directory {Path.cwd()}"
        return f"its ?classes= file {classes} is not there{relative}"
    if spec.kind == "factory":
        return factory_problem(spec.name)
    if spec.kind == "timm":
        from visionaudit.models.timm_configs import unknown_name

        try:
            return unknown_name(spec.name, model_id)
        except ImportError:
            return None  # cannot tell
    for key in ("arch", "reference"):
        if key in spec.options:
            why = _why_not_here(spec.options[key])
            if why is not None:
                return f"its ?{key}={spec.options[key]}: {why}"
    return None


def _canonical_key(key: str, arch: str | None, path: Path) -> str:
    try:
        return canonical_spec(key, arch)
    except VisionAuditError as e:
        # A conditional hint: most mistyped specs ("resnet50") also read as names, and get a "did you mean" too.
        named = (f'; if "{key}" is a model\'s name: a table is keyed by the model\'s spec, [models."SPEC"], with '
                 f'name = "{key}" in it') if MODEL_NAME.match(key) else ""
        raise ConfigError(f'{path}: [models."{key}"] does not name a model: {said_of_a_written_spec(e, key)}{named}') from None


def load_config(path: str | Path | None, arch: str | None = None, flag: str = "--audit-config") -> AuditConfig:
    """Read and validate ``path``; ``None`` gives an empty config (the families' defaults apply).

    ``arch`` is the run's ``--arch``, folded into state-dict specs as it is for ``--model``; ``flag``: the option named.
    """
    if path is None:
        return AuditConfig(None)
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; pass {flag} PATH or create {CONFIG_FILE}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory; pass {flag} PATH/{CONFIG_FILE}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    except OSError as e:  # a path under a file, a symlink loop, a name too long, no permission: not a traceback
        raise ConfigError(f"config file {path} cannot be read ({e.strerror or e}); pass {flag} PATH of a readable "
                          f"{CONFIG_FILE}") from None
    for key in data:
        if key not in TOP_LEVEL:
            raise ConfigError(f"{path}: {unknown_name('top-level table', key, TOP_LEVEL)}")
    base = path.parent  # relative paths in the file are read from its folder, as most tools read theirs
    run_written = _check_table(data.get("run", {}), RUN_SCHEMA, "run", path)
    run = _run_paths(run_written, base, path)
    audits_raw = data.get("audits", {})
    if not isinstance(audits_raw, dict):
        raise ConfigError(f"{path}: [audits] must be a table of [audits.NAME] tables")
    audits = {name: _check_family_table(name, table, f"audits.{name}", path) for name, table in audits_raw.items()}
    models_raw = data.get("models", {})
    if not isinstance(models_raw, dict):
        raise ConfigError(f'{path}: [models] must hold [models."SPEC".AUDIT] tables')
    models: dict[str, dict[str, dict[str, Any]]] = {}
    written: dict[str, str] = {}
    resolved: dict[str, str] = {}  # the key's paths read from the working directory -> its canonical spec
    model_names: dict[str, str] = {}  # canonical spec -> the name its table gives it
    for key, per_audit in models_raw.items():
        if not isinstance(per_audit, dict):
            raise ConfigError(f'{path}: models."{key}" must be a table of [models."{key}".AUDIT] tables')
        model_id = _canonical_key(_from_folder(spec_from, key, base, path, f'[models."{key}"]'), arch, path)
        if model_id in written:
            raise ConfigError(f'{path}: [models."{written[model_id]}"] and [models."{key}"] name the same model '
                              f'({model_id}); merge them')
        same_files = _resolved(model_id) or model_id
        if same_files in resolved:
            raise ConfigError(f'{path}: [models."{written[resolved[same_files]]}"] and [models."{key}"] name the same model '
                              f'(the same files: {same_files}); merge them')
        written[model_id], resolved[same_files] = key, model_id
        table_name = _table_name(key, per_audit, path)
        if table_name in model_names.values():
            other = next(written[m] for m, n in model_names.items() if n == table_name)
            raise ConfigError(f'{path}: [models."{other}"] and [models."{key}"] both name their model {table_name}; '
                              "a name is one model's id: give each its own")
        model_names.update({model_id: table_name} if table_name else {})
        models[model_id] = {name: _check_family_table(name, table, f'models."{key}".{name}', path)
                            for name, table in per_audit.items() if name != "name"}
    pairs = _baseline_pairs(data.get("baseline", {}), arch, path, base)
    return AuditConfig(path, MappingProxyType(run), MappingProxyType(audits), MappingProxyType(models), MappingProxyType(written),
                       MappingProxyType(pairs), MappingProxyType(resolved), MappingProxyType(run_written),
                       model_names=MappingProxyType(model_names))


def _table_name(key: str, table: dict[str, Any], path: Path) -> str:
    """The name a ``[models."SPEC"]`` table gives its model: ``name = "NAME"`` in it, or ``?name=`` in its key; "" for
    none."""
    written = table.get("name")
    if written is not None and (not isinstance(written, str) or not MODEL_NAME.match(written)):
        raise ConfigError(f'{path}: [models."{key}"] name = {json.dumps(written)} is not a model name; '
                          f'a name is {MODEL_NAME_RULE}')
    try:
        in_key = given_name(key)
    except VisionAuditError as e:
        raise ConfigError(f'{path}: [models."{key}"]: {said_of_a_written_spec(e, key)}') from None
    if written and in_key and written != in_key:
        raise ConfigError(f'{path}: [models."{key}"] names its model twice, {in_key} in the key and name = "{written}"; give one')
    return written or in_key


def _from_folder(read, written: str, base: Path, path: Path, where: str) -> str:
    """``read(written, base)`` (:func:`spec_from` or :func:`path_from`), refused with its fix when a relative path in
    it is only there read from the working directory (the reading before stop 34)."""
    try:
        return read(written, base)
    except ReadFromWorkingDirectory as e:
        raise ConfigError(
            f'{path}: {where}: relative paths in audit.toml are read from its folder {base}{os.sep} since '
            f'stop 34 (docs/config.md "Relative paths"); {e.from_file} is not there but {e.written} is (read from the '
            f'working directory): write "{e.fix}" (or an absolute path)') from None


def _run_paths(run: dict[str, Any], base: Path, path: Path) -> dict[str, Any]:
    """``[run]``'s paths read from the config file's folder ``base`` (spelled as read from the working directory, where
    the command line's are read): the models' specs, ``data``, ``cache``, ``classes``, and ``images`` unless it names
    a folder under the data root (``imagenette``, or a name that is no path here)."""
    out = dict(run)
    if isinstance(out.get("models"), list):
        out["models"] = [_from_folder(spec_from, m, base, path, f'[run] models "{m}"') for m in out["models"]]
    for key in ("data", "cache", "classes"):
        if out.get(key):
            out[key] = _from_folder(path_from, out[key], base, path, f'[run] {key} = "{out[key]}"')
    images = out.get("images")
    if images and images != "imagenette" and (images.startswith((".", "~")) or os.path.isabs(images)
                                                or (base / images).exists() or Path(images).exists()):
        out["images"] = _from_folder(path_from, images, base, path, f'[run] images = "{images}"')
    return out


def _baseline_pairs(table: Any, arch: str | None, path: Path, base: Path) -> dict[str, str]:
    """``[baseline.pairs]``: ``"NEW_SPEC" = "OLD"``: this run's model (a spec; its ``?name=`` is its id) -> the
    baseline's id (a spec or a name). NEW names a model of this run, its paths read from the file's folder ``base`` as
    ``[run] models``' are; OLD is the baseline report's model id, as that report spells it (compared as text, not read here)."""
    if not isinstance(table, dict) or set(table) - {"pairs"}:
        extra = next(iter(set(table) - {"pairs"})) if isinstance(table, dict) else str(table)
        raise ConfigError(f"{path}: [baseline] holds only a pairs table; {unknown_name('key', extra, ['pairs'])}")
    pairs = table.get("pairs", {})
    if not isinstance(pairs, dict) or not all(isinstance(v, str) for v in pairs.values()):
        raise ConfigError(f'{path}: [baseline.pairs] maps this run\'s model to the baseline\'s: "NEW_SPEC" = "OLD_SPEC"')
    return {_pair_id(new, arch, path, base): _pair_id(old, arch, path) for new, old in pairs.items()}


def _pair_id(written: str, arch: str | None, path: Path, base: Path | None = None) -> str:
    """A side of a pair: this run's model (``base`` given: a spec, its paths read from there) or the baseline's (a spec
    or a bare name, as written: a baseline's model need not parse here; one the baseline lacks is refused as the run
    starts, plugins/baseline.py); its id, refused as written in the file, not as a ``--model``."""
    where = f'[baseline.pairs] "{written}"'
    spec = written if base is None else _from_folder(spec_from, written, base, path, where)
    try:
        return id_of_written(spec, arch) if base is None else given_name(written) or canonical_spec(spec, arch)
    except VisionAuditError as e:
        said = said_of_a_written_spec(e, spec).removeprefix(f"--model {written.strip()}: ")
        raise ConfigError(f"{path}: {where}: {said}") from None
