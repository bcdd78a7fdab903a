"""What an audit measured, in a form that survives JSON and pytest-xdist's report transport."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from visionaudit.files import to_jsonable

NOT_APPLIED = "bounds_not_applied"  # the metric naming the configured bounds that did not apply, with why
RECORD_KEY = "visionaudit"  # the user_properties entry that carries a record on the test report


@dataclass
class AuditRecord:
    """Metrics, the bounds they were held to, and tables, for one audit of one model."""

    audit: str
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, Any] | None = None  # LoadedModel.to_dict(), for the report's models section
    control: str | None = None  # the control group of a model the audit built itself (random-init controls)
    not_judged: str | None = None  # why the gate was not judged (too little data), when it was not
    outcomes: dict[str, Any] | None = None  # per-image results of the condition it measured (visionaudit/families/outcomes.py)
    samples: dict[str, Any] = field(default_factory=dict)  # role -> the image set they refer to (the report's `samples`)
    shard_data: dict[str, Any] | None = None  # in a shard: what visionaudit merge re-judges (visionaudit/families/assessment.py)

    def metric(self, name: str, value: Any) -> Any:
        self.metrics[name] = to_jsonable(value)
        return value

    def threshold(self, name: str, bound: Any) -> Any:
        self.thresholds[name] = to_jsonable(bound)
        return bound

    def table(self, name: str, rows: Any) -> None:
        """A per-class (or per-anything) table: a list of rows or a mapping."""
        self.tables[name] = to_jsonable(rows)

    def outcomes_on(self, sample_set: Any, condition: str, correct: Any = None, decisions: Any = None,
                    labels: Any = None, top1: Any = None) -> None:
        """Keep per-image results (``correct`` bits or 16-way ``decisions``) of ``condition`` on ``sample_set``
        (a ``fingerprint.SampleSet``), for a later paired comparison; ``labels``: each image's class (output index),
        for the per-class comparisons; ``top1``: the model's top-1 output index per image, which the baseline gate
        names for the images a release lost."""
        from visionaudit.families.outcomes import (
            encode_bits,
            encode_decisions,
            encode_labels,
        )

        encoded = encode_bits(correct) if decisions is None else encode_decisions(decisions)
        if encoded["n"] != len(sample_set.ids):
            raise ValueError(f"{encoded['n']} outcomes for the {len(sample_set.ids)} images of {sample_set.role}")
        self.outcomes = {"set": sample_set.role, "condition": condition, **encoded}
        for key, values in (("labels", labels), ("top1", top1)):  # both packed as output indices
            if values is not None:
                self.outcomes[key] = encode_labels(values)
                if self.outcomes[key]["n"] != encoded["n"]:
                    raise ValueError(f"{self.outcomes[key]['n']} {key} values for the {encoded['n']} outcomes of {condition}")
        self.samples[sample_set.role] = sample_set.to_dict()

    def check_min(self, name: str, value: float, bound_name: str, bound: float) -> bool:
        """Record ``value`` and its lower ``bound``; True when it holds."""
        self.metric(name, value)
        self.threshold(bound_name, bound)
        return value >= bound

    def not_applied(self, bound_name: str, why: str) -> None:
        """A configured bound that cannot hold this model to anything (``min_top5`` on five classes or fewer): said in
        the entry's ``bounds_not_applied`` (bound -> why), and so in the terminal's row and the page, never passed."""
        self.metrics.setdefault(NOT_APPLIED, {})[bound_name] = why

    def check_max(self, name: str, value: float, bound_name: str, bound: float) -> bool:
        self.metric(name, value)
        self.threshold(bound_name, bound)
        return value <= bound

    def to_dict(self) -> dict[str, Any]:
        return {
            "audit": self.audit,
            "model": self.model,
            "params": to_jsonable(self.params),
            "metrics": dict(self.metrics),
            "thresholds": dict(self.thresholds),
            "tables": dict(self.tables),
            "model_info": self.model_info,
            "control": self.control,
            "not_judged": self.not_judged,
            "outcomes": self.outcomes,
            "samples": dict(self.samples),
            "shard_data": self.shard_data,
        }


def report_schema() -> dict[str, Any]:
    """The JSON Schema of the ``--audit-json`` report, shipped with the package."""
    import json
    from importlib import resources

    return json.loads(resources.files("visionaudit").joinpath("resources/report.schema.json").read_text())


# -- the models a report audited ----------------------------------------------------------------

def control_models(report: dict[str, Any]) -> set[str]:
    """The models a report audited as random-init controls (an audit's own models, not releases)."""
    return {e["model"] for e in report.get("audits", []) if e.get("control") and e.get("model")}


def audited_models(report: dict[str, Any]) -> list[str]:
    """The models the run audited, not the controls: the models section's order, then any others."""
    audited = {e["model"] for e in report.get("audits", []) if e.get("model") and not e.get("control")}
    return [m for m in report.get("models", {}) if m in audited] + sorted(audited - set(report.get("models", {})))
