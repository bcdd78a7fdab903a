"""The report: per-test entries in, the ``--audit-json`` document out; usable without pytest.

:func:`assemble` is the one place where results that need every test meet: counts per outcome,
family and model, and each family's cross-model aggregate (the channel-bias zoo table, robustness's
Holm correction and per-class tests), computed by the function the family's descriptor names.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from visionaudit.families.registry import families
from visionaudit.files import to_jsonable
from visionaudit.version import SCHEMA_VERSION

# Within one test, the worst phase wins (a passed call with a failed teardown is an error).
OUTCOME_RANK = {"error": 4, "failed": 3, "passed": 1, "skipped": 0}
# Across tests (summary rows, failures first): how bad each outcome is.
SEVERITY = {"crashed": 8, "timeout": 7, "error": 6, "failed": 5, "interrupted": 4, "not_run": 3, "not_judged": 2, "passed": 1,
            "skipped": 0}
FAILING = ("failed", "error", "crashed", "timeout")


def blank_entry(nodeid: str, meta: dict[str, Any], outcome: str, message: str | None = None) -> dict[str, Any]:
    """The entry of a test that left no report of its own (never started, or stopped while running)."""
    entry = {"nodeid": nodeid, "audit": meta.get("audit"), "model": meta.get("model"), "params": meta.get("params") or {},
             "outcome": outcome, "duration": 0.0, "metrics": {}, "thresholds": {}, "tables": {}, "message": message,
             "worker": None}
    if meta.get("control"):  # a random-init control: folds into its group's row like the finished ones
        entry["control"] = meta["control"]
    return entry


INTERRUPTED_MESSAGE = "it was running when the run stopped; its metrics are what it had recorded by then"


def settle(collected: list[str], meta: dict[str, dict[str, Any]], entries: dict[str, dict[str, Any]],
           finished: set[str]) -> list[dict[str, Any]]:
    """Every collected test with its true outcome at the end of a run: finished tests as they ended, those
    that began and never finished ``interrupted`` (their metrics kept), the rest ``not_run``."""
    out = dict(entries)
    for nodeid in collected or list(entries):
        if nodeid in finished:
            continue
        if nodeid in entries:
            out[nodeid] = {**entries[nodeid], "outcome": "interrupted", "message": INTERRUPTED_MESSAGE}
        else:
            out[nodeid] = blank_entry(nodeid, meta.get(nodeid, {}), "not_run")
    return list(out.values())


def unloaded_model(model_id: str, spelling: str, error: str | None, spec: str | None = None) -> dict[str, Any]:
    """The models section's entry of a configured model that never loaded; ``spec``: its canonical spec, when
    ``model_id`` is its ``?name=``."""
    named = {"name": model_id} if spec and spec != model_id else {}
    return {"spec": spec or model_id, **named, "spec_as_given": spelling, "loaded": False, "error": error}


def model_id_of(info: dict[str, Any]) -> str:
    """The id (the models section's key) of a model's entry: its ``name``, else its canonical spec."""
    return info.get("name") or info["spec"]


# Tests that ended without judging their gate (those that did not end are the incomplete section's).
ENDED_UNJUDGED = {"skipped", "not_judged"}


def verdict_reasons(audits: list[dict[str, Any]], run: dict[str, Any] | None = None,
                    models: dict[str, Any] | None = None, stopped: bool = False) -> list[str]:
    """Why a run is not a pass beyond its counts, one line each: a configured model that did not load (its error), a
    model whose tests all ended
    without a judgement (skipped, not judged), a configured model (``models``, the report's section) that no
    selected test audited, a gate that must judge something to pass (the baseline: a
    comparison set that compared nothing) and judged nothing, a baseline report (``run["baseline"]``) none of
    whose tests was selected, or that is itself not a pass and was not accepted. Tests that did not run are the
    incomplete section's, not these."""
    known = families()
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in audits:
        if e.get("model") and e.get("audit") and not e.get("control"):
            by_model[str(e["model"])].append(e)
    # A model found unusable only as it loaded (a class list of another length, a checkpoint that does not fit --arch):
    # its tests errored, the others went on; said first and as what it is, so that CI can tell it from a regression.
    reasons = [f"{model} did not load: {_load_error(model, info)}" for model, info in sorted((models or {}).items())
               if info.get("loaded") is False and info.get("error")]
    # Only a part that ended: one stopped (killed and rebuilt, Ctrl-C, a merge with an interrupted part) ran no test
    # because it was stopped, which the report's incomplete section says, not because the selection left it none.
    if ((run or {}).get("shard") or (run or {}).get("merged_from")) and not stopped and not any(e.get("audit") for e in audits):
        reasons.append(_shard_ran_nothing(run or {}))  # a shard's part, or the merge of parts that all held none
    # On a failed run the failures are the reason: the gates not judged beside them are the report's, not the line's.
    failing = any(e["outcome"] in FAILING for e in audits)
    for model, entries in sorted(by_model.items()):
        unjudged = [name for name in sorted({e["audit"] for e in entries})
                    if name in known and known[name].needs_a_judgement
                    and {e["outcome"] for e in entries if e["audit"] == name} <= ENDED_UNJUDGED]
        gates = [f"{model}: its {name} gate judged none of its {len(gate)} test(s) ({_ended(gate)})"
                 for name in unjudged for gate in [[e for e in entries if e["audit"] == name]]]
        if not gates and {e["outcome"] for e in entries} <= ENDED_UNJUDGED:
            reasons.append(f"{model}: none of its {len(entries)} test(s) judged anything ({_ended(entries)})")
            continue
        reasons += gates
        # A gate with too few images (not_judged) makes the run incomplete whatever else passed: say why.
        not_judged = [e for e in entries if e["outcome"] == "not_judged" and e["audit"] not in unjudged and not failing]
        if not_judged:
            names = sorted({e["audit"] for e in not_judged})
            text, _, others = first_reason(not_judged)
            reasons.append(f"{model}: its {', '.join(names)} gate{'s' if len(names) > 1 else ''} not judged "
                           f"({len(not_judged)} test(s))" + (f": {text}" if text else "")
                           + (f"; +{others} other reason{'s' if others > 1 else ''}" if others else ""))
    # A configured model -k/-m left no test: nothing judged it, and a pass would read as if it covered it (compare says the same).
    reasons += [f"{model}: no test of it was selected (-k/-m, test paths), so nothing judged it; {UNSELECTED_FIX}"
                for model in unselected_models(models or {}, audits, run)]
    controls = [e for e in audits if e.get("control") and e["outcome"] == "not_judged" and not failing]
    if controls:  # a control's gate not judged also makes the run incomplete
        text, _, others = first_reason(controls)
        reasons.append(f"{len(controls)} test(s) of random-init controls not judged" + (f": {text}" if text else "")
                       + (f"; +{others} other reason{'s' if others > 1 else ''}" if others else ""))
    baseline = (run or {}).get("baseline") or {}
    if baseline and audits and not any(e.get("audit") == "baseline" and not e.get("control") for e in audits):
        # The gate the user asked for compared nothing (-k/-m left none of its tests): as compare says, not a pass.
        reasons.append(f"--audit-baseline {baseline.get('path')} was given, but no baseline test was selected (-k/-m left "
                       "none): nothing was compared with it; select them (-m baseline) or leave --audit-baseline out")
    if baseline and baseline.get("verdict") != "pass" and not baseline.get("accepted"):
        reasons.append(f"the baseline {baseline.get('path')} has verdict {baseline['verdict']}, not pass: comparisons with it "
                       "cannot make a pass (--audit-accept-incomplete-baseline accepts it, and the report says so)")
    return reasons


def _shard_ran_nothing(run: dict[str, Any]) -> str:
    """Why a shard's part holds no test, and that it is a part all the same: ``visionaudit merge`` joins it; or why
    the merge of such parts (``run["merged_from"]``) holds none."""
    shard, chosen = run.get("shard"), run.get("selection") or {}
    by = " ".join(chosen.get("by") or []) or "the selection"
    if not shard:
        return f"none of the {len(run['merged_from'])} merged parts ran a test: {by} left them none"
    later = "; the tests that do not split by image run whole in shard 1" if int(shard.get("index") or 1) != 1 else ""
    return (f"shard {shard.get('index')}/{shard.get('count')} ran no test: {by} left it none{later}; visionaudit merge "
            "joins this part with the others' and judges the run")


def _load_error(model: str, info: dict[str, Any]) -> str:
    """A model's load error (the models section's ``error``) as a short reason: its exception's type, then its
    message without the model's name it repeats ("cannot load model X: model X has 10 outputs ...")."""
    text = str(info["error"])
    kind = re.match(r"([A-Z][A-Za-z]*): ", text)
    text = text[kind.end():] if kind else text
    names = [n for n in (model, info.get("spec_as_given")) if n]
    for prefix in [f"cannot load model {n}: " for n in names] + [f"model {n}: " for n in names] + [f"model {n} " for n in names]:
        text = text.removeprefix(prefix)
    return (f"({kind.group(1)}) " if kind else "") + short_reason(text, model).rstrip(" :")


# A reason longer than this is shortened: long parenthesized lists dropped, then cut at a word.
REASON_CHARS = 300


def short_reason(message: str | None, model: Any = None) -> str:
    """A test's message as one short line for a summary: its first line, without the model's name in front
    (a row or reason names it) nor a leading "not judged: " (the outcome says it); when long, parenthesized
    lists of more than 40 characters left out, then cut at a word (the report holds the whole message)."""
    text = (message or "").strip().splitlines()[0].strip() if (message or "").strip() else ""
    text = re.sub(r"^not judged:\s*", "", text)
    if model and text.startswith(str(model)):
        text = text[len(str(model)):].lstrip(" :")
    if len(text) > REASON_CHARS:
        text = re.sub(r"\s*\([^()]{40,}\)", "", text)
    if len(text) > REASON_CHARS:
        text = text[:REASON_CHARS].rsplit(" ", 1)[0].rstrip(" ,;:") + " ..."
    return text


def first_reason(entries: list[dict[str, Any]]) -> tuple[str, int, int]:
    """The first of ``entries``' reasons (:func:`short_reason` of each message, so that the same reason
    given by several models or tests counts once), how many entries give it, how many other reasons they give."""
    reasons = Counter(short_reason(e.get("message"), e.get("model")) for e in entries)
    reasons.pop("", None)
    if not reasons:
        return "", 0, 0
    first = next(iter(reasons))
    return first, reasons[first], len(reasons) - 1


def unselected_models(models: dict[str, Any], audits: list[dict[str, Any]], run: dict[str, Any] | None = None) -> list[str]:
    """The configured models that no selected test audited (-k/-m or test paths left them none, so they never loaded;
    not one that failed to load, nor one whose tests ran and stopped before loading it). Empty when the run selected no
    audit at all (that run is incomplete for its own reason), and in shards 2..N of a sharded run (``run["shard"]``):
    there a model whose selected tests all run whole in shard 1 has none, but the selection did give it tests; the
    merge judges that over all parts. The run's verdict and ``visionaudit compare`` both read this."""
    shard = (run or {}).get("shard") or {}
    audits = [e for e in audits if e.get("audit")]  # audit tests only (a test of the suite itself is none)
    audited = {e.get("model") for e in audits}
    if not audits or int(shard.get("index") or 1) != 1:
        return []
    return sorted(m for m, info in models.items() if info.get("loaded") is False and not info.get("error") and m not in audited)


UNSELECTED_FIX = "select its tests, or give only the models to audit with --model (it replaces [run] models)"


def unselected_models_note(models: dict[str, Any], audits: list[dict[str, Any]], run: dict[str, Any] | None = None) -> str | None:
    """A note naming each configured model that no selected test audited: nothing judged it, so the run is no pass of
    it (:func:`verdict_reasons` says so too). None when there is none."""
    unselected = unselected_models(models, audits, run)
    if not unselected:
        return None
    them = "it" if len(unselected) == 1 else "them"
    return (f"no test of {', '.join(unselected)} was selected (-k/-m, test paths): nothing judged {them}, so the run is "
            f"not a pass; select {'its' if them == 'it' else 'their'} tests, or give only the models to audit with "
            "--model (it replaces [run] models)")


# run's copy of its unselected-models note, if it has one: the note is derived from the whole run's tests and models, so
# what derives it again (a merge over all parts, a rebuild) finds the one to replace by this key, not by its wording.
UNSELECTED_NOTE_KEY = "unselected_models_note"


def _worded_as_before_the_key(note: str) -> bool:
    """The note's wordings in reports written before :data:`UNSELECTED_NOTE_KEY` (frozen: no report lacks it now)."""
    return note.startswith("no selected test audited ") or (
        note.startswith("no test of ") and " was selected (-k/-m, test paths): nothing judged " in note)


def notes_but_unselected_models(run: dict[str, Any]) -> list[str]:
    """``run``'s notes without its unselected-models note (:func:`unselected_models_note`): the one its
    ``unselected_models_note`` records, or in a report written before that key, one in the wordings of then."""
    notes = list(run.get("notes") or [])
    if UNSELECTED_NOTE_KEY in run:
        return [n for n in notes if n != run[UNSELECTED_NOTE_KEY]]
    return [n for n in notes if not _worded_as_before_the_key(n)]


def with_unselected_models_note(run: dict[str, Any], models: dict[str, Any], audits: list[dict[str, Any]]) -> dict[str, Any]:
    """``run`` with :func:`unselected_models_note` in its notes and as its ``unselected_models_note`` (null when there
    is none), in place of any it carried (a merge or a rebuild derives it again)."""
    note = unselected_models_note(models, audits, run)
    notes = notes_but_unselected_models(run) + ([note] if note is not None else [])
    return {**run, **({"notes": notes} if notes or "notes" in run else {}), UNSELECTED_NOTE_KEY: note}


def _ended(entries: list[dict[str, Any]]) -> str:
    """``14 skipped, first: <its message>``."""
    counts = Counter(e["outcome"].replace("_", " ") for e in entries)
    first = next((e.get("message") for e in entries if e.get("message")), None)
    text = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    return text + (f"; first: {first.splitlines()[0][:200]}" if first else "")


def verdict(audits: list[dict[str, Any]], stopped: bool, broken: bool = False, reasons: list[str] | None = None) -> str:
    """fail: a gate failed, a test could not run as it should, or the run itself was broken (a test file
    that does not import); incomplete: not every gate was judged (the run stopped, tests did not run, or
    had too little data) or something that must be judged was not (``reasons``: :func:`verdict_reasons`);
    pass otherwise: never on nothing."""
    outcomes = {e["outcome"] for e in audits}
    if broken or outcomes & set(FAILING):
        return "fail"
    if stopped or not audits or outcomes & {"interrupted", "not_run", "not_judged"} or reasons:
        return "incomplete"
    return "pass"


def incomplete_section(audits: list[dict[str, Any]], stopped: bool, stopped_by: dict[str, str] | None = None) -> dict[str, Any]:
    """What did not finish; ``stopped_by``: the failed test after which -x/--maxfail stopped the run (not an
    interruption)."""
    by = lambda outcome: sorted(e["nodeid"] for e in audits if e["outcome"] == outcome)  # noqa: E731
    section = {"interrupted": stopped and stopped_by is None, "interrupted_tests": by("interrupted"), "crashed": by("crashed"),
               "timeout": by("timeout"), "not_run": by("not_run")}
    if stopped_by is not None:
        section["stopped_by"] = stopped_by
    return section


def summarize(audits: list[dict[str, Any]]) -> dict[str, Any]:
    by_audit: dict[str, Counter] = defaultdict(Counter)
    by_model: dict[str, Counter] = defaultdict(Counter)
    for e in audits:
        by_audit[str(e["audit"])][e["outcome"]] += 1
        by_model[str(e["model"])][e["outcome"]] += 1
    return {
        "total": len(audits),
        "by_outcome": dict(Counter(e["outcome"] for e in audits)),
        "by_audit": {k: dict(v) for k, v in sorted(by_audit.items())},
        "by_model": {k: dict(v) for k, v in sorted(by_model.items())},
    }


def aggregate(audits: list[dict[str, Any]]) -> dict[str, Any]:
    """Each family's cross-model results, keyed by family; a family may add metrics to its entries."""
    out: dict[str, Any] = {}
    for name, family in families().items():
        entries = [e for e in audits if e["audit"] == name]
        if family.aggregate is not None and entries:
            result = family.aggregate(entries)
            if result:
                out[name] = to_jsonable(result)
    return out


def families_in(audits: list[dict[str, Any]]) -> dict[str, Any]:
    """The descriptors (key metric, direction) of the families this report holds."""
    known = families()
    return {name: known[name].describe() for name in sorted({e["audit"] for e in audits if e["audit"]}) if name in known}


def assemble(run: dict[str, Any], models: dict[str, Any], audits: list[dict[str, Any]], stopped: bool = False,
             error: str | None = None, broken: bool = False, samples: dict[str, Any] | None = None,
             stopped_by: dict[str, str] | None = None) -> dict[str, Any]:
    """The report. ``stopped``: the run ended early (Ctrl-C, SIGTERM, killed, -x); ``error``: what stopped it at
    startup (a usage, config or missing-data error) or broke it (``broken``: a collection error);
    ``stopped_by``: the failed test after which -x/--maxfail stopped it."""
    audits = sorted(audits, key=lambda e: e["nodeid"])
    aggregates = aggregate(audits)  # before the entries are copied out: it may add metrics to them
    reasons = verdict_reasons(audits, run, models, stopped=stopped)
    run = with_unselected_models_note(run, models, audits)
    return to_jsonable({
        "schema_version": SCHEMA_VERSION,
        "verdict": verdict(audits, stopped or error is not None, broken, reasons),
        "verdict_reason": "; ".join(reasons) or None,
        "error": error,
        "run": run,
        "families": families_in(audits),
        "models": dict(sorted(models.items())),
        "samples": dict(sorted((samples or {}).items())),
        "audits": audits,
        "summary": summarize(audits),
        "aggregates": aggregates,
        "incomplete": incomplete_section(audits, stopped, stopped_by),
    })


def software_versions(root: Path | None = None) -> dict[str, Any]:
    """Python, torch, torchvision and visionaudit versions, and the suite's git commit when ``root`` is a checkout."""
    from visionaudit.version import __version__

    commit = None
    if root is not None:
        try:
            commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                    timeout=5).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pass
    return {
        "python": platform.python_version(),
        "torch": package_version("torch"),
        "torchvision": package_version("torchvision"),
        "visionaudit": __version__,
        "visionaudit_commit": commit,
    }


def package_version(name: str) -> str | None:
    """``name.__version__`` (torch's carries its build, ``2.5.1+cu124``, which the distribution's metadata may not), read
    from the package's ``version.py`` when it is not imported: the xdist controller reports it without importing torch."""
    module = sys.modules.get(name)
    if module is not None:
        return str(module.__version__)
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    try:
        text = (Path(spec.origin).parent / "version.py").read_text()
    except OSError:
        text = ""
    found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    if found:
        return found.group(1)
    return str(importlib.import_module(name).__version__)  # laid out otherwise: asked


