"""``--audit-baseline PREV.json``: compare each model with the previous release, image by image.

At startup (before any model loads) the baseline is read and checked: a report that cannot be paired
with this run (other images, seed, subset, protocol or schema) stops it with exit code 4 naming what
differs, unless ``--audit-baseline-unpaired`` asks for unpaired tests. Without a baseline the comparison
tests are deselected. The comparisons themselves are tests of the ``baseline`` family (audits/test_baseline.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from visionaudit.data.fingerprint import SampleSet, sample_set
from visionaudit.data.image_sets import ROLES, data_root, missing_data, run_image_set
from visionaudit.errors import DataError, VisionAuditError
from visionaudit.families.baseline import outcomes_from_report
from visionaudit.families.baseline.pairing import (
    baseline_only,
    baseline_only_said,
    differences,
    model_pairs,
    read_report,
    refusal,
    refuse_shard_part,
)
from visionaudit.models.model_ids import model_id
from visionaudit.selection import subset_text

from .markers import family_of
from .run_notes import say_once
from .selection import deselect_own
from .settings import STARTUP_USAGE_ERROR_KEY, Settings, get_settings

BASELINE_KEY = pytest.StashKey["Baseline"]()
PAIRED_INPUT = "visionaudit_baseline_paired"  # the controller's pairing verdict, handed to xdist workers


@dataclass
class Baseline:
    path: Path
    report: dict[str, Any]
    pairs: dict[str, str]  # this run's model -> the baseline's
    paired: bool = True
    problems: list[str] = field(default_factory=list)  # why it does not pair (compared unpaired when asked)
    accepted: bool = False  # --audit-accept-incomplete-baseline: a baseline whose own verdict is not pass is taken

    def to_dict(self) -> dict[str, Any]:
        """The report's ``run.baseline``: the verdict of a run against it can pass only when this one did, or
        when a baseline that did not was accepted (visionaudit/report/assembly.py)."""
        return {"path": str(self.path), "verdict": self.report.get("verdict"), "accepted": self.accepted,
                "schema_version": self.report.get("schema_version")}  # the page: why its top-1 classes are missing


def get_baseline(config: pytest.Config) -> Baseline | None:
    return config.stash.get(BASELINE_KEY, None)


def _run_sample_sets(settings: Settings, roles: list[str]) -> dict[str, SampleSet]:
    """This run's image sets (those whose data is here), as the report will describe them."""
    out = {}
    for role in roles:
        if role in ROLES and not missing_data(settings.data, settings.images, {role}):
            try:
                image_set = run_image_set(role, data_root(settings.data), settings.images, settings.samples, settings.seed,
                                          download=False)
            except DataError:
                continue  # not here yet (Imagenette before its first download): its tests fetch it, then pair per image
            out[role] = sample_set(role, image_set, settings.samples, settings.seed)
    return out


def _canonical(spec: str | None) -> str | None:
    """``--audit-baseline-as`` as the model's id (its ``?name=``, else its canonical spec), as the baseline's models are
    keyed (as ``compare`` does); as given when it no longer parses here (the old model's files may be gone)."""
    if not spec:
        return spec
    try:
        return model_id(spec)
    except VisionAuditError:
        return spec


def _load(config: pytest.Config, path: str) -> Baseline:
    settings = get_settings(config)
    report = read_report(path)
    refuse_shard_part(report, f"baseline report {path}")
    pairs = model_pairs(settings.models, report, _canonical(config.getoption("audit_baseline_as")),
                        settings.config.baseline_pairs, specs=settings.canonicals)
    baseline = Baseline(Path(path), report, pairs,
                        accepted=bool(config.getoption("audit_accept_incomplete_baseline")) and report.get("verdict") != "pass")
    if hasattr(config, "workerinput"):
        baseline.paired = config.workerinput.get(PAIRED_INPUT, True)
        return baseline
    for old in set(pairs.values()):
        outcomes_from_report(report, old)  # a corrupt baseline stops the run here, not in its tests
    run_sets = _run_sample_sets(settings, sorted(report.get("samples") or {}))
    baseline.problems = differences(report, run_sets, settings.seed, settings.samples)
    if baseline.problems and not config.getoption("audit_baseline_unpaired"):
        raise VisionAuditError(refusal(path, baseline.problems))
    baseline.paired = not baseline.problems
    return baseline


@pytest.hookimpl(trylast=True)  # after plugins/settings.py has resolved the settings
def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("audit_baseline")
    if not path:
        for flag, dest in (("--audit-baseline-as", "audit_baseline_as"), ("--audit-baseline-unpaired", "audit_baseline_unpaired"),
                           ("--audit-accept-incomplete-baseline", "audit_accept_incomplete_baseline")):
            if config.getoption(dest):
                config.stash[STARTUP_USAGE_ERROR_KEY] = message = f"{flag} needs --audit-baseline PREV.json"
                raise pytest.UsageError(message)
        return
    try:
        config.stash[BASELINE_KEY] = baseline = _load(config, path)
    except VisionAuditError as e:
        config.stash[STARTUP_USAGE_ERROR_KEY] = str(e)
        raise pytest.UsageError(str(e)) from None
    # The baseline's models no model of this run pairs with are not compared: said (run.notes), unless
    # --audit-baseline-as picked the one pair.
    only = [] if config.getoption("audit_baseline_as") else baseline_only(baseline.report, baseline.pairs)
    if only and not hasattr(config, "workerinput"):
        say_once(config, baseline_only_said(only, f"the baseline {path}"), now=False)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    baseline = get_baseline(node.config)
    if baseline is not None:
        node.workerinput[PAIRED_INPUT] = baseline.paired


# First: pytest's stepwise (registered after the conftest plugins, so called before an untagged hook) would otherwise
# deselect baseline tests before they are known as the suite's own, counting them as the user's (review 41, F1).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if get_baseline(config) is not None:
        return
    skipped = [item for item in items if family_of(item) == "baseline"]
    if skipped:  # nothing to compare with: not tests that could run and did not
        deselect_own(config, skipped)
        items[:] = [item for item in items if family_of(item) != "baseline"]


def pytest_report_header(config: pytest.Config) -> list[str]:
    baseline = get_baseline(config)
    if baseline is None or hasattr(config, "workerinput"):
        return []
    lines = [f"baseline: {baseline.path} ({', '.join(f'{n} vs {o}' for n, o in baseline.pairs.items())})"]
    verdict = baseline.report.get("verdict")
    if verdict != "pass":
        lines.append("baseline: its own "
                     f"verdict is {verdict}; " + ("accepted (--audit-accept-incomplete-baseline)" if baseline.accepted
                     else "this run's verdict cannot be pass (--audit-accept-incomplete-baseline accepts it)"))
    if subset := subset_text((baseline.report.get("run") or {}).get("selection")):
        lines.append(f"baseline: {subset}; the tests it did not run are not compared (skipped, saying so)")
    if not baseline.paired:
        lines.append("baseline: UNPAIRED comparison (two-proportion tests), because " + "; ".join(baseline.problems))
    return lines
