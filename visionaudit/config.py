"""``audit.toml``: run defaults, thresholds per audit, and overrides per model.

```toml
[run]
models = ["efficientnet_lite0"]      # used when no --model is given

[audits.accuracy]                    # defaults for every model
min_top1 = 0.85

[models."torchvision:resnet50".accuracy]   # overrides for one model id (its --model spec)
min_top1 = 0.75
```

Every key is declared in :data:`RUN_SCHEMA` or :data:`THRESHOLD_SCHEMA`: an unknown key or a wrong
type is an error naming the key and the file, so a typo never silently drops a bound.
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

from .errors import ConfigError

CONFIG_FILE = "audit.toml"

# type names: number (int or float), int, str, bool, list[str], list[number], dict[number]
RUN_SCHEMA: dict[str, str] = {
    "models": "list[str]",
    "device": "str",
    "data": "str",
    "images": "str",
    "samples": "int",
    "seed": "int",
    "batch_size": "int",
}

THRESHOLD_SCHEMA: dict[str, dict[str, str]] = {
    "accuracy": {
        "min_top1": "number",
    },
    "channel_bias": {
        "min_share": "number",  # every channel's share of |first-layer weights| at least this
        "max_share": "number",
        "max_ratio": "number",  # largest share / smallest share
        "control_tolerance": "number",  # random-init controls: each share within 1/3 +- this
        "functional_images": "int",  # images for ablation and gradient shares (stratified subset)
    },
    "conversion": {
        "max_abs_diff": "number",  # float32 logits, converted vs original (configured models)
        "max_rel_diff": "number",  # max |diff| / max |logit| (every model, random-init zoo included)
        "min_top1_agreement": "number",
        "real_images": "int",  # grayscale imagenet-sample images per configured model
        "zoo_images": "int",  # per random-init zoo architecture
        "random_images": "int",  # uniform random inputs, beside the real ones
        "deployment_images": "int",  # real images for the deployment conversions
        "deployment_max_abs_diff": "dict[number]",  # per deployment form
        "deployment_min_top1_agreement": "dict[number]",
    },
    "robustness": {
        "max_drop": "number",  # default bound on the top-1 drop of every transform
        "max_drop_by_transform": "dict[number]",  # per transform, overriding max_drop
        "not_significant": "list[str]",  # transforms whose drop must not be significant (McNemar)
        "alpha": "number",
        "severities": "list[number]",  # severity sweep; 1.0 is the documented default magnitude
        "bootstrap_resamples": "int",
    },
    "shape_bias": {
        "min": "number",  # a shape-bias-trained model sets a high min
        "max": "number",
        "aggregation": "str",  # mean (the authors'), sum or max
        "min_edges_accuracy": "number",
        "min_silhouettes_accuracy": "number",
    },
}


def _type_ok(value: Any, kind: str) -> bool:
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if kind == "number":
        return number(value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "list[number]":
        return isinstance(value, list) and all(number(v) for v in value)
    if kind == "dict[number]":
        return isinstance(value, dict) and all(number(v) for v in value.values())
    raise AssertionError(f"unknown schema type {kind}")


def _check_table(table: Any, schema: Mapping[str, str], where: str, path: Path) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{where}] must be a table")
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(f"{path}: unknown key {where}.{key}; known keys of [{where}]: {', '.join(sorted(schema)) or 'none'}")
        if not _type_ok(value, schema[key]):
            raise ConfigError(f"{path}: {where}.{key} = {value!r} has the wrong type; it must be {schema[key]}")
    return dict(table)


@dataclass(frozen=True)
class AuditConfig:
    path: Path | None
    run: Mapping[str, Any] = field(default_factory=dict)
    audits: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    models: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    def thresholds(self, audit: str, model_id: str) -> "Thresholds":
        if audit not in THRESHOLD_SCHEMA:
            raise ConfigError(f"audit {audit!r} has no threshold schema; known audits: {', '.join(sorted(THRESHOLD_SCHEMA))}")
        merged = dict(self.audits.get(audit, {}))
        merged.update(self.models.get(model_id, {}).get(audit, {}))
        return Thresholds(audit, model_id, MappingProxyType(merged), self.path)


class Thresholds(Mapping[str, Any]):
    """One audit's bounds for one model: defaults with that model's overrides applied."""

    def __init__(self, audit: str, model_id: str, bounds: Mapping[str, Any], source: Path | None) -> None:
        self.audit, self.model_id, self.bounds, self.source = audit, model_id, bounds, source

    def __repr__(self) -> str:
        return f"Thresholds({self.audit!r}, {self.model_id!r}, {dict(self.bounds)!r})"

    def __getitem__(self, key: str) -> Any:
        try:
            return self.bounds[key]
        except KeyError:
            raise ConfigError(
                f"{self.source or CONFIG_FILE} sets no {key} for the {self.audit} audit (model {self.model_id}); "
                f"add it under [audits.{self.audit}] (the suite's own audit.toml has the default)"
            ) from None

    def get(self, key: str, default: Any = None) -> Any:
        return self.bounds.get(key, default)

    def __iter__(self):
        return iter(self.bounds)

    def __len__(self) -> int:
        return len(self.bounds)


def load_config(path: str | Path | None) -> AuditConfig:
    """Read and validate ``path``; ``None`` gives an empty config (no thresholds)."""
    if path is None:
        return AuditConfig(None)
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; pass --audit-config PATH or create {CONFIG_FILE}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    unknown = sorted(set(data) - {"run", "audits", "models"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; known: run, audits, models")
    run = _check_table(data.get("run", {}), RUN_SCHEMA, "run", path)
    audits_raw = data.get("audits", {})
    if not isinstance(audits_raw, dict):
        raise ConfigError(f"{path}: [audits] must be a table of [audits.NAME] tables")
    audits = {}
    for name, table in audits_raw.items():
        if name not in THRESHOLD_SCHEMA:
            raise ConfigError(f"{path}: unknown audit [audits.{name}]; known audits: {', '.join(sorted(THRESHOLD_SCHEMA))}")
        audits[name] = _check_table(table, THRESHOLD_SCHEMA[name], f"audits.{name}", path)
    models_raw = data.get("models", {})
    if not isinstance(models_raw, dict):
        raise ConfigError(f'{path}: [models] must hold [models."SPEC".AUDIT] tables')
    models: dict[str, dict[str, dict[str, Any]]] = {}
    for model_id, per_audit in models_raw.items():
        if not isinstance(per_audit, dict):
            raise ConfigError(f'{path}: models."{model_id}" must be a table of [models."{model_id}".AUDIT] tables')
        models[model_id] = {}
        for name, table in per_audit.items():
            if name not in THRESHOLD_SCHEMA:
                raise ConfigError(f'{path}: unknown audit [models."{model_id}".{name}]; known audits: {", ".join(sorted(THRESHOLD_SCHEMA))}')
            models[model_id][name] = _check_table(table, THRESHOLD_SCHEMA[name], f'models."{model_id}".{name}', path)
    return AuditConfig(path, MappingProxyType(run), MappingProxyType(audits), MappingProxyType(models))
