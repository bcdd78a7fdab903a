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
written in another order match the model they name.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
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
from visionaudit.models.specs import canonical_spec, parse_spec

CONFIG_FILE = "audit.toml"

RUN_SCHEMA: dict[str, Field] = {
    "models": Field("list[str]", "model specs used when no --model is given"),
    "device": Field("str", "auto, cpu, cuda, cuda:N or mps"),
    "data": Field("str", "data root"),
    "images": Field("str", "labelled natural images: a folder under the data root, a path, or imagenette"),
    "samples": f.count("a fixed, seeded, class-stratified subset of this many images per image set"),
    "seed": f.whole("seed for subsets and transforms"),
    "batch_size": f.count("images per forward pass"),
    "decode_memory": Field("str", "decoded images kept per process, such as 2GiB; larger image sets are streamed"),
    "cache": Field("str", "directory of the clean-logit cache"),
    "classes": Field("str", "file of class names in output order, for models that carry none of their own"),
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

    def thresholds(self, audit: str, model_id: str) -> "Thresholds":
        """``audit``'s bounds for ``model_id`` (a canonical spec): the family's defaults, then ``[audits.NAME]``,
        then the model's own table."""
        known = families()
        if audit not in known:
            raise ConfigError(unknown_name("audit family", audit, known))
        merged = known[audit].defaults
        for layer in (self.audits.get(audit, {}), self.models.get(model_id, {}).get(audit, {})):
            for key, value in layer.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    # A per-name table (transforms, deployment forms) overrides the names it lists, and only those:
                    # replacing the whole table below it would drop the other names' bounds without a word.
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
        return Thresholds(audit, model_id, MappingProxyType(merged), self.path)

    def models_not_in(self, run_models: list[str] | tuple[str, ...]) -> list[str]:
        """Per-model tables (as written) whose model is not in ``run_models`` (canonical specs)."""
        return [self.model_keys[m] for m in self.models if m not in run_models]

    def mistyped_models(self, run_models: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
        """``(table key as written, the run's model it is close to)`` for each per-model table that looks like a typo.

        One audit.toml serves many runs, so a table for a model not in this run is normal and says nothing. A
        table is a likely typo when its model is close to one of the run's and cannot exist here (a file that is
        not there, a factory that does not import, a timm name timm does not know); lite and torchvision names
        were checked when the file was read."""
        out = []
        for model_id in self.models:
            near = closest(model_id, run_models) if model_id not in run_models else None
            if near is not None and not _could_exist(model_id):
                out.append((self.model_keys[model_id], near))
        return out


class Thresholds(Mapping[str, Any]):
    """One audit's bounds for one model: defaults with that model's overrides applied."""

    def __init__(self, audit: str, model_id: str, bounds: Mapping[str, Any], source: Path | None = None) -> None:
        self.audit, self.model_id, self.bounds, self.source = audit, model_id, bounds, source

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


def _could_exist(model_id: str) -> bool:
    """Whether the model a table names can be found here, judged without loading it."""
    import importlib
    import importlib.util

    try:
        spec = parse_spec(model_id)  # a file must exist and be of a kind that is read
    except VisionAuditError:
        return False
    if spec.kind == "factory":
        module, _, attr = spec.name.partition(":")
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except (ImportError, ValueError):  # a parent package that is not there
            return False
        try:
            return callable(getattr(importlib.import_module(module), attr, None))
        except Exception:  # noqa: BLE001  (it is there but fails to import: a run of it will say why, not a typo)
            return True
    if spec.kind == "timm":
        try:
            import timm
        except ImportError:
            return True  # cannot tell
        return bool(timm.list_models(spec.name)) or bool(timm.list_models(spec.name, pretrained=True))
    return True


def _canonical_key(key: str, arch: str | None, path: Path) -> str:
    try:
        return canonical_spec(key, arch)
    except VisionAuditError as e:
        raise ConfigError(f'{path}: [models."{key}"] does not name a model: {e}') from None


def load_config(path: str | Path | None, arch: str | None = None) -> AuditConfig:
    """Read and validate ``path``; ``None`` gives an empty config (the families' defaults apply).

    ``arch`` is the run's ``--arch``, folded into state-dict specs as it is for ``--model``.
    """
    if path is None:
        return AuditConfig(None)
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; pass --audit-config PATH or create {CONFIG_FILE}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory; pass --audit-config PATH/{CONFIG_FILE}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    for key in data:
        if key not in TOP_LEVEL:
            raise ConfigError(f"{path}: {unknown_name('top-level table', key, TOP_LEVEL)}")
    run = _check_table(data.get("run", {}), RUN_SCHEMA, "run", path)
    audits_raw = data.get("audits", {})
    if not isinstance(audits_raw, dict):
        raise ConfigError(f"{path}: [audits] must be a table of [audits.NAME] tables")
    audits = {name: _check_family_table(name, table, f"audits.{name}", path) for name, table in audits_raw.items()}
    models_raw = data.get("models", {})
    if not isinstance(models_raw, dict):
        raise ConfigError(f'{path}: [models] must hold [models."SPEC".AUDIT] tables')
    models: dict[str, dict[str, dict[str, Any]]] = {}
    written: dict[str, str] = {}
    for key, per_audit in models_raw.items():
        if not isinstance(per_audit, dict):
            raise ConfigError(f'{path}: models."{key}" must be a table of [models."{key}".AUDIT] tables')
        model_id = _canonical_key(key, arch, path)
        if model_id in written:
            raise ConfigError(f'{path}: [models."{written[model_id]}"] and [models."{key}"] name the same model ({model_id}); merge them')
        written[model_id] = key
        models[model_id] = {name: _check_family_table(name, table, f'models."{key}".{name}', path) for name, table in per_audit.items()}
    pairs = _baseline_pairs(data.get("baseline", {}), arch, path)
    return AuditConfig(path, MappingProxyType(run), MappingProxyType(audits), MappingProxyType(models), MappingProxyType(written),
                       MappingProxyType(pairs))


def _baseline_pairs(table: Any, arch: str | None, path: Path) -> dict[str, str]:
    """``[baseline.pairs]``: ``"NEW_SPEC" = "OLD_SPEC"``, both canonical (the run's model -> the baseline's)."""
    if not isinstance(table, dict) or set(table) - {"pairs"}:
        extra = next(iter(set(table) - {"pairs"})) if isinstance(table, dict) else str(table)
        raise ConfigError(f"{path}: [baseline] holds only a pairs table; {unknown_name('key', extra, ['pairs'])}")
    pairs = table.get("pairs", {})
    if not isinstance(pairs, dict) or not all(isinstance(v, str) for v in pairs.values()):
        raise ConfigError(f'{path}: [baseline.pairs] maps this run\'s model to the baseline\'s: "NEW_SPEC" = "OLD_SPEC"')
    return {_canonical_key(new, arch, path): _canonical_key(old, arch, path) for new, old in pairs.items()}
