"""``--audit-json PATH``: the machine-readable report of a run; plus the terminal and CI step summaries.

Works in the controller process only. Worker results arrive as ordinary test reports (the audit
record rides in ``user_properties``), so a run with ``-n 0`` and one with ``-n 2`` give the same
report apart from timings and worker fields. The file is written atomically at session end, also
after Ctrl-C or a crashed worker, and says what did not finish.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from visionaudit.recording import to_jsonable

from .recording import record_of
from .settings import get_settings

SCHEMA_VERSION = 1
STATE_KEY = pytest.StashKey["ReportState"]()
# The metric the summaries show for each audit family.
KEY_METRICS = {
    "accuracy": "clean_top1",
    "conversion": "max_abs_diff",
    "channel_bias": "shares",
    "robustness": "drop",
    "shape_bias": "shape_bias",
}
_RANK = {"error": 4, "failed": 3, "passed": 1, "skipped": 0}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("visionaudit").addoption(
        "--audit-json", default=None, metavar="PATH", help="write the audit report (JSON) to PATH"
    )


class ReportState:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.start = time.time()
        self.collected: list[str] = []
        self.entries: dict[str, dict[str, Any]] = {}
        self.crashed: list[str] = []
        self.seen: set[str] = set()  # every test with a report, audit or not
        self.models: dict[str, dict[str, Any]] = {}
        self.data: dict[str, Any] | None = None

    # -- collecting ---------------------------------------------------------------------------------

    def add(self, report: pytest.TestReport) -> None:
        self.seen.add(report.nodeid)
        rec = record_of(report)
        entry = self.entries.get(report.nodeid)
        if entry is None:
            if rec is None:
                return  # not an audit
            entry = self.entries[report.nodeid] = {
                "nodeid": report.nodeid,
                "audit": rec["audit"],
                "model": rec["model"],
                "params": rec["params"],
                "outcome": "passed",
                "duration": 0.0,
                "metrics": {},
                "thresholds": {},
                "tables": {},
                "message": None,
                "worker": None,
            }
        entry["duration"] += float(getattr(report, "duration", 0.0) or 0.0)
        node = getattr(report, "node", None)  # set by xdist on reports from workers
        entry["worker"] = node.gateway.id if node is not None else None
        if rec is not None:
            entry["model"] = rec["model"] or entry["model"]  # an audit may name its own model (controls)
            for key in ("metrics", "thresholds", "tables"):
                entry[key].update(rec[key])
            if rec.get("model_info") and rec["model"]:
                self.models[rec["model"]] = rec["model_info"]
        outcome = _outcome(report)
        if outcome and (_RANK[outcome] > _RANK[entry["outcome"]] or outcome == "skipped"):
            entry["outcome"] = outcome
            entry["message"] = _message(report)

    # -- writing ------------------------------------------------------------------------------------

    def build(self, exitstatus: int | None, interrupted: bool) -> dict[str, Any]:
        settings = get_settings(self.config)
        audits = [self.entries[k] for k in sorted(self.entries)]
        not_run = sorted(n for n in self.collected if n not in self.seen)
        # Every model an audit loaded (configured ones and an audit's own, like the channel-bias
        # controls), then the configured ones that never loaded, with the reason.
        models: dict[str, Any] = dict(sorted(self.models.items()))
        for mid in settings.models:
            if mid not in models:
                errors = [e["message"] for e in audits if e["model"] == mid and e["outcome"] == "error"]
                models[mid] = {"spec": mid, "loaded": False, "error": errors[0] if errors else None}
        end = time.time()
        return {
            "schema_version": SCHEMA_VERSION,
            "run": {
                "start": _iso(self.start),
                "end": _iso(end),
                "duration": round(end - self.start, 3),
                "command": " ".join([Path(sys.argv[0]).name, *map(str, self.config.invocation_params.args)]),
                "exit_status": int(exitstatus) if exitstatus is not None else None,
                "versions": _versions(self.config.rootpath),
                "platform": platform.platform(),
                "devices": sorted({m["device"] for m in models.values() if m.get("device")}) or [settings.device],
                "gpus": _gpu_names(),
                "workers": len(self.config.getvalue("tx") or ()) if self.config.pluginmanager.has_plugin("dsession") else 0,
                "seed": settings.seed,
                "samples": settings.samples,
                "config_file": str(settings.config.path) if settings.config.path else None,
            },
            "models": models,
            "audits": audits,
            "summary": _summary(audits),
            "aggregates": _aggregates(audits),
            "incomplete": {
                "interrupted": interrupted,
                "crashed": sorted(set(self.crashed)),
                "not_run": not_run,
            },
        }


def _outcome(report: pytest.TestReport) -> str | None:
    if report.when == "call":
        return "passed" if report.passed else ("failed" if report.failed else "skipped")
    if report.failed:
        return "error"
    if report.skipped:
        return "skipped"
    return None


def _message(report: pytest.TestReport) -> str | None:
    if report.passed:
        return None
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    text = crash or getattr(report, "longreprtext", "") or str(longrepr)
    # The assertion's own message is the readable part; pytest's introspection follows it.
    text = text.split("\nassert ")[0].split("\n +  where")[0]
    return text.strip()[-2000:] or None


def _summary(audits: list[dict[str, Any]]) -> dict[str, Any]:
    by_audit: dict[str, Counter] = defaultdict(Counter)
    by_model: dict[str, Counter] = defaultdict(Counter)
    for e in audits:
        by_audit[e["audit"]][e["outcome"]] += 1
        by_model[str(e["model"])][e["outcome"]] += 1
    return {
        "total": len(audits),
        "by_outcome": dict(Counter(e["outcome"] for e in audits)),
        "by_audit": {k: dict(v) for k, v in sorted(by_audit.items())},
        "by_model": {k: dict(v) for k, v in sorted(by_model.items())},
    }


def _aggregates(audits: list[dict[str, Any]]) -> dict[str, Any]:
    """Results across models: the channel-bias zoo table (mean and std of shares per group)."""
    from visionaudit.channel_bias import PUBLISHED_ZOO_MEAN, PUBLISHED_ZOO_STD, zoo_summary

    groups: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for e in audits:
        m = e["metrics"]
        if e["audit"] == "channel_bias" and "shares" in m and "group" in m:
            groups[m["group"]][str(e["model"])] = m["shares"]  # one row per model
    out: dict[str, Any] = {}
    if groups:
        out["channel_bias"] = {
            name: zoo_summary(list(by_model.values())) | {"model_ids": sorted(by_model)} for name, by_model in sorted(groups.items())
        }
        out["channel_bias"]["published_torchvision_zoo"] = {"models": 31, "mean": list(PUBLISHED_ZOO_MEAN), "std": list(PUBLISHED_ZOO_STD)}
    robustness = _robustness_aggregate(audits)
    if robustness:
        out["robustness"] = robustness
    return out


def _robustness_aggregate(audits: list[dict[str, Any]]) -> dict[str, Any]:
    """Holm over each model's transforms (written back into its entries as ``significant``), and the
    study's per-class test across models for each transform."""
    from visionaudit.robustness import classes_affected, holm_over_transforms

    by_model: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for e in audits:
        if e["audit"] == "robustness" and isinstance(e["metrics"].get("p_value"), (int, float)) and "transform" in e["params"]:
            by_model[str(e["model"])][e["params"]["transform"]] = e
    if not by_model:
        return {}
    out: dict[str, Any] = {"models": {}, "across_models": {}}
    for model, entries in sorted(by_model.items()):
        alpha = next((e["thresholds"]["alpha"] for e in entries.values() if "alpha" in e["thresholds"]), 0.05)
        holm = holm_over_transforms({t: e["metrics"]["p_value"] for t, e in entries.items()}, alpha)
        for t, e in entries.items():
            e["metrics"].update(holm[t])
        out["models"][model] = {
            t: {"drop": entries[t]["metrics"].get("drop"), "p_value": entries[t]["metrics"]["p_value"], **holm[t]}
            for t in sorted(entries)
        }
    transforms = sorted({t for entries in by_model.values() for t in entries})
    for t in transforms:
        rows = [entries[t]["tables"] for entries in by_model.values() if t in entries]
        if len(rows) >= 2 and all("classwise_clean" in r for r in rows):
            as_float = lambda v: float(v) if not isinstance(v, str) else float("nan")  # noqa: E731
            result = classes_affected([[as_float(v) for v in r["classwise_clean"]] for r in rows],
                                      [[as_float(v) for v in r["classwise_transformed"]] for r in rows])
            out["across_models"][t] = result
    return out


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")


def _versions(root: Path) -> dict[str, Any]:
    import torch
    import torchvision

    import visionaudit

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "python": platform.python_version(),
        "pytest": pytest.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "visionaudit": visionaudit.__version__,
        "visionaudit_commit": commit,
    }


def _gpu_names() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(to_jsonable(data), f, indent=2, sort_keys=False, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- rows for people --------------------------------------------------------------------------------


def summary_rows(audits: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per (model, audit): verdict, the key metric over its tests, and the bound."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in audits:
        groups[(str(e["model"]), e["audit"])].append(e)
    rows = []
    for (model, audit), entries in sorted(groups.items()):
        worst = max(entries, key=lambda e: _RANK[e["outcome"]])["outcome"]
        key = KEY_METRICS.get(audit)
        values = [e["metrics"][key] for e in entries if key and key in e["metrics"]]
        # The bounds the key metric was held to (other tests of the family hold other metrics).
        keyed = [e for e in entries if key and key in e["metrics"]] or entries
        bounds: dict[str, list[Any]] = defaultdict(list)
        for e in keyed:
            for k, v in e["thresholds"].items():
                if v not in bounds[k]:
                    bounds[k].append(v)
        passed = sum(e["outcome"] == "passed" for e in entries)
        rows.append({
            "model": model,
            "audit": audit,
            "metric": f"{key}={_fmt_values(values)}" if values else "-",
            "bound": ", ".join(f"{k}={_fmt_values(v)}" for k, v in sorted(bounds.items())) or "-",
            "verdict": {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}[worst],
            "tests": f"{passed}/{len(entries)} passed",
        })
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _fmt_values(values: list[Any]) -> str:
    if len(values) == 1:
        return _fmt(values[0])
    nums = [v for v in values if isinstance(v, (int, float))]
    if len(nums) == len(values):
        return f"{_fmt(min(nums))}..{_fmt(max(nums))}"
    return f"{_fmt(values[0])} (+{len(values) - 1} more)"


def _table(rows: list[dict[str, str]], cols: list[str]) -> list[str]:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
    return lines


# -- hooks --------------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        state = ReportState(config)
        config.stash[STATE_KEY] = state
        config.pluginmanager.register(ReportHooks(state), "visionaudit-report")


class ReportHooks:
    """Controller-side hooks feeding one :class:`ReportState`."""

    def __init__(self, state: ReportState) -> None:
        self.state = state

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.state.collected:
            self.state.collected = [item.nodeid for item in session.items]

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        if not self.state.collected:
            self.state.collected = list(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report, sched) -> None:
        self.state.crashed.append(crashitem)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.state.add(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state = self.state
        state.data = state.build(exitstatus, interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)
        path = session.config.getoption("audit_json")
        if path:
            write_atomically(Path(path), state.data)
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file and state.data["audits"]:
            with open(summary_file, "a") as f:
                f.write(markdown_summary(state.data))


def markdown_summary(data: dict[str, Any]) -> str:
    rows = summary_rows(data["audits"])
    lines = ["## visionaudit", "", "| model | audit | key metric | bound | verdict | tests |", "|---|---|---|---|---|---|"]
    lines += [f"| `{r['model']}` | {r['audit']} | {r['metric']} | {r['bound']} | **{r['verdict']}** | {r['tests']} |" for r in rows]
    inc = data["incomplete"]
    if inc["interrupted"] or inc["crashed"] or inc["not_run"]:
        lines += ["", f"Incomplete: interrupted={inc['interrupted']}, crashed={len(inc['crashed'])}, not run={len(inc['not_run'])}"]
    return "\n".join(lines) + "\n\n"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    data = state.data if state is not None else None
    if not data or not data["audits"]:
        return
    tr = terminalreporter
    tr.write_sep("=", "visionaudit summary")
    for line in _table(summary_rows(data["audits"]), ["model", "audit", "metric", "bound", "verdict", "tests"]):
        tr.write_line(line)
    for name, agg in data["aggregates"].get("channel_bias", {}).items():
        tr.write_line(f"channel bias, {name} ({agg['models']} models): mean R,G,B {_fmt(agg['mean'])}"
                      + (f", std {_fmt(agg['std'])}" if agg["std"] else ""))
    for model, transforms in data["aggregates"].get("robustness", {}).get("models", {}).items():
        hit = [t for t, r in transforms.items() if r["significant"]]
        tr.write_line(f"robustness, {model}: significant drop (Holm, McNemar) under {', '.join(hit) or 'no transform'}")
    for t, r in data["aggregates"].get("robustness", {}).get("across_models", {}).items():
        tr.write_line(f"robustness across {r['models']} models, {t}: {r['classes_affected']} classes change significantly")
    if any(a["audit"] == "shape_bias" and "shape_bias" in a["metrics"] for a in data["audits"]):
        from visionaudit.shape_bias import REFERENCES

        tr.write_line("shape bias, published (Geirhos et al. 2019): " + ", ".join(f"{k} {v:.1%}" for k, v in REFERENCES.items()))
    inc = data["incomplete"]
    if inc["crashed"]:
        tr.write_line(f"crashed (worker died): {', '.join(inc['crashed'])}")
    if inc["not_run"]:
        tr.write_line(f"not run: {len(inc['not_run'])} test(s)" + (" (interrupted)" if inc["interrupted"] else ""))
    path = config.getoption("audit_json")
    if path:
        tr.write_line(f"report: {path}")
