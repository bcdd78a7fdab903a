"""The corruption conditions a run reads: every model's configured ones (the tests' parameters, and the ImageNet-C
folder's reference, fixtures/corruption.py), and the ``--audit-imagenet-c`` condition folders the collected tests read,
from the collection's family and parameters per test: what the startup check opens (plugins/data_check.py,
visionaudit/families/image_check.py)."""

from __future__ import annotations

from typing import Any, Mapping

from visionaudit.families.baseline import ALL_COMPARED
from visionaudit.families.corruption import check_severities
from visionaudit.families.thresholds import Bounds


def imagenet_c_conditions(meta: Mapping[str, Mapping[str, Any]], bounds: Bounds) -> list[tuple[str, int]]:
    """The (corruption, severity) folders the tests of ``meta`` read on an ImageNet-C folder: a condition's test (and
    the baseline's comparison of it) its own; the mCE (and the baseline's comparison of it) each its model scores."""
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
            table = bounds("corruption", m.get("model") or "")
            out.update(dict.fromkeys((c, s) for c in table["corruptions"] for s in check_severities(table["severities"])))
    return sorted(out)


def configured_conditions(config: Any) -> list[tuple[str, int]]:
    """Every (corruption, severity) some model of the run is configured to score: the family's defaults under
    ``[audits.corruption]``, and each model's own table (a model skips those not in its own list). ``config``: the run's
    ``visionaudit.config.AuditConfig`` (a layer above this one: not imported)."""
    tables = [dict(config.thresholds("corruption", ""))] + [per.get("corruption", {}) for per in config.models.values()]
    names: dict[str, None] = {}
    severities: set[int] = set()
    for t in tables:
        for name in list(t.get("corruptions", ())) + list(t.get("extras", ())):
            names[name] = None
        severities |= set(check_severities(t.get("severities", ())))
    return [(c, s) for c in names for s in sorted(severities)]
