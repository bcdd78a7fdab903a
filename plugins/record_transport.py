"""Carries each audit's record on its test reports, so it reaches the controller under xdist.

The record travels in ``report.user_properties`` as ``("visionaudit", dict)``: pytest serializes
that field with the report (pytest-xdist included), so no custom serialization hook is needed. Where the
reports are logged (the controller, or the one process), the dict becomes a :class:`JsonRecord`: junitxml
writes each property with ``str()``, and a plain dict would reach ``--junitxml`` as a Python repr
(``None``, ``True``, single quotes) that JSON parsers reject.
"""

from __future__ import annotations

import json

import pytest

from visionaudit.families.records import RECORD_KEY, AuditRecord
from visionaudit.files import to_jsonable
from visionaudit.models.controls import CONTROL_GROUP, control_spec

from .markers import family_of

RECORD_STASH = pytest.StashKey[AuditRecord]()
SAMPLES_SENT = pytest.StashKey[dict]()  # role + fingerprint -> the test whose reports carry its sample ids from this process
NOT_JUDGED_KEY = "not_judged"  # the record's field saying why a gate was not judged
USER_ERROR_KEY = "visionaudit-error"  # set by plugins/error_display.py: the test stopped on an error, not a failed gate
MODEL_KEY = "visionaudit-model"  # what became of a model in this process: its identity, or its load error
MODELS_STASH = pytest.StashKey[dict]()  # canonical spec -> the models section's entry (fixtures/models.py fills it)
MODELS_SENT = pytest.StashKey[set]()  # the specs whose entry a report of this process carried already


class JsonRecord(dict):
    """A record whose text (what junitxml writes) is JSON, non-finite numbers as null like the report's."""

    def __str__(self) -> str:
        return json.dumps(to_jsonable(dict(self)), allow_nan=False)


def record_of(report: pytest.TestReport) -> dict | None:
    """The audit record a report carries, or None."""
    for name, value in getattr(report, "user_properties", ()):
        if name == RECORD_KEY:
            return value
    return None


def user_error_of(report: pytest.TestReport) -> str | None:
    """The kind of bad-input error (DataError, ...) that stopped the test, if one did."""
    for name, value in getattr(report, "user_properties", ()):
        if name == USER_ERROR_KEY:
            return value
    return None


def model_of(report: pytest.TestReport) -> dict | None:
    """The models section's entry a report carries (a model loaded or failed to load in this process), or None."""
    for name, value in getattr(report, "user_properties", ()):
        if name == MODEL_KEY:
            return value
    return None


def note_model(config: pytest.Config, model_id: str, entry: dict) -> None:
    """Keep what became of ``model_id`` in this process (fixtures/models.py), for the next report to carry."""
    config.stash.setdefault(MODELS_STASH, {})[model_id] = entry


def _model_news(item: pytest.Item) -> dict | None:
    """The entry of this test's model, on the first report after its load (or failed load) in this process: the
    models section then says what happened to the model whatever the test did next (a data error, a skip)."""
    callspec = getattr(item, "callspec", None)
    model_id = callspec.params.get("model") if callspec else None
    entry = item.config.stash.get(MODELS_STASH, {}).get(model_id)
    sent = item.config.stash.setdefault(MODELS_SENT, set())
    if entry is None or model_id in sent:
        return None
    sent.add(model_id)
    return entry


def skeleton_record(item: pytest.Item) -> AuditRecord | None:
    """What is known of an audit test before it records anything (it may fail in setup)."""
    family = family_of(item)
    if family is None:
        return None
    model, control, params = subject_of(item)
    return AuditRecord(audit=family, model=model, params=params, control=control)


def subject_of(item: pytest.Item) -> tuple[str | None, str | None, dict]:
    """The model a test audits, its control group (a random-init control: the ``control_model`` fixture with an
    ``arch`` parameter) and its other parameters, from its parametrization alone: a test that never ran, or
    stopped before it built its control, is still reported under its model."""
    callspec = getattr(item, "callspec", None)
    params = dict(callspec.params) if callspec else {}
    model = params.pop("model", None)
    if model is None and "control_model" in getattr(item, "fixturenames", ()) and isinstance(params.get("arch"), str):
        return control_spec(params["arch"]), CONTROL_GROUP, params
    return model, None, params


def _once_per_process(item: pytest.Item, rec: dict) -> dict:
    """An image set's sample ids (up to megabytes at ImageNet scale) travel with the first test of this
    session's process that used it; the collector keeps them for the report's ``samples`` section."""
    sent = item.config.stash.setdefault(SAMPLES_SENT, {})
    samples = {role: s
               for role, s in rec["samples"].items() if sent.setdefault(role + s["fingerprint"], item.nodeid) == item.nodeid}
    return {**rec, "samples": samples}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    news = _model_news(item)
    if news is not None:
        report.user_properties.append((MODEL_KEY, news))
    record = item.stash.get(RECORD_STASH, None) or skeleton_record(item)
    if record is not None:
        # A snapshot per phase: what was measured up to this point, also when the test fails.
        report.user_properties = [p for p in report.user_properties if p[0] != RECORD_KEY]
        report.user_properties.append((RECORD_KEY, _once_per_process(item, record.to_dict())))
    return report



def json_properties(report: pytest.TestReport) -> None:
    """The report's record as a :class:`JsonRecord`; the collector calls it on the controller before junitxml
    reads the properties (not in a worker: xdist's serializer takes plain dicts only)."""
    report.user_properties = [(n, JsonRecord(v) if n == RECORD_KEY and type(v) is dict else v)
                              for n, v in getattr(report, "user_properties", ())]
