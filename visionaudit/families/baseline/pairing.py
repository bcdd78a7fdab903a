"""Whether a run can be compared image by image with a baseline report, and which model pairs with which.

Two runs pair when they scored the same images (the data fingerprint of each image set: sample ids and
file hashes), drew the same random transforms (seed and protocol version), on the same subset, and
fed the cue-conflict stimuli at the same geometry mode. A model's preprocessing is part of the model and
never a reason to refuse. Each problem is named with what to do about it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from visionaudit.data.fingerprint import PROTOCOL_VERSION, SampleSet
from visionaudit.errors import DataError, empty_value
from visionaudit.families.records import control_models
from visionaudit.version import OLDEST_READABLE, SCHEMA_VERSION

FIRST_WITH_OUTCOMES = OLDEST_READABLE  # schema 3 added per-image outcomes; 4 (the model's classes) reads the same


NOT_A_REPORT = "is not a visionaudit report (no schema_version or audits)"


def is_report(data: Any) -> bool:
    """A visionaudit report of some schema: what compare, html, merge and the baseline gate accept before they read
    its schema version (one check, one message: ``NOT_A_REPORT``)."""
    return isinstance(data, dict) and isinstance(data.get("schema_version"), int) and "audits" in data


WHOLE_REPORT_KEYS = ("run", "verdict", "aggregates")  # what every reader (html, compare, the gate) reads of any schema


JSON_TYPES = {bool: "true or false", int: "number", float: "number", str: "string", list: "list", type(None): "null"}


# What the readers index without looking, by its JSON type: a hand-edited file of another shape ended in a traceback.
SHAPES = (("run", dict), ("audits", list), ("models", dict), ("samples", dict), ("families", dict), ("aggregates", dict))


def _json_type(value: Any) -> str:
    words = JSON_TYPES.get(type(value), "value")
    return "an object" if isinstance(value, dict) else words if words in ("null", "true or false") else f"a {words}"


def shape_problem(data: dict[str, Any]) -> str | None:
    """What in a report's top-level sections is not of its JSON type (``audits`` a list of objects, ``models`` an object
    of objects, ``run.shard`` an object), in words, or None."""
    for key, kind in SHAPES:
        value = data.get(key)
        if value is not None and not isinstance(value, kind):
            return f"its {key} is {_json_type(value)}, not {'an object' if kind is dict else 'a list'}"
    entries = [(f"audits[{i}]", a) for i, a in enumerate(data.get("audits") or [])]
    entries += [(f"models[{m!r}]", e) for m, e in (data.get("models") or {}).items()]
    bad = next(((where, value) for where, value in entries if not isinstance(value, dict)), None)
    if bad is not None:
        return f"its {bad[0]} is {_json_type(bad[1])}, not an object"
    shard = (data.get("run") or {}).get("shard")
    if shard is not None and not (isinstance(shard, dict) and all(isinstance(shard.get(k), int) for k in ("index", "count"))):
        return f"its run.shard is {shard!r}, not an object of index and count"
    return None


def require_whole(data: Any, path: str | Path, what: str = "report") -> dict[str, Any]:
    """``data`` as given, or a DataError when it is not a JSON object or lacks what a report of every schema has (a
    hand-made or cut-down file would otherwise be read as a run with no verdict, or end in a KeyError or TypeError)."""
    if not isinstance(data, dict):
        raise DataError(f"{what} {path} is not a visionaudit report: it holds a JSON {JSON_TYPES.get(type(data), 'value')}, "
                        "not an object; give the --audit-json file a run wrote")
    missing = [key for key in WHOLE_REPORT_KEYS if key not in data]
    if missing:
        raise DataError(f"{what} {path} is not a whole visionaudit report: it has no {', '.join(missing)}; "
                        "give the --audit-json file a run wrote (or rebuilt by merge or report --from-journal)")
    problem = shape_problem(data)
    if problem:
        raise DataError(f"{what} {path} is not a whole visionaudit report: {problem}; give the --audit-json file a run "
                        "wrote (or rebuilt by merge or report --from-journal)")
    return data


def shard_part_why(count: int) -> str:
    """Why a shard's part (``--audit-shard I/count``) is not compared with a baseline: for compare, html and the gate."""
    if count == 1:  # every image, and the whole-run families: only the form is a part's
        return "it holds every image, but in a shard's part form, which is never compared with a baseline"
    return "it holds only that shard's images, and a shard is never compared with a baseline"


def merge_first(count: int) -> str:
    """What to do with a shard's part before a comparison: the one home of the merge command these messages give."""
    parts = "PART.json" if count == 1 else "PART.json ..."
    return (f"merge {'it' if count == 1 else 'the shards first'} (python -m visionaudit merge {parts} -o REPORT.json), "
            "then compare the merged report")


def refuse_shard_part(report: dict[str, Any], what: str) -> None:
    """A DataError when ``report`` is a shard's part (``--audit-shard I/N``): for N > 1 it holds only that shard's
    images, so comparing it would judge a release on part of them (a pass on 1/N of the images)."""
    shard = (report.get("run") or {}).get("shard")
    if shard:
        index, count = shard.get("index"), shard.get("count")
        which = ("the report of --audit-shard 1/1" if count == 1
                 else f"the partial report of shard {index}/{count} (--audit-shard)")
        raise DataError(f"{what} is {which}: {shard_part_why(count)}; {merge_first(count)}")


def read_report(path: str | Path, what: str = "baseline report") -> dict[str, Any]:
    """A saved ``--audit-json`` report that holds per-image outcomes, or a DataError saying why not."""
    if not str(path).strip():  # an unset CI variable (`compare "$PREV" report.json`): not the working directory
        raise DataError(empty_value(what, "the --audit-json file of a run"))
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist; give the --audit-json file of the release to compare with") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{what} {path} is not readable JSON ({e}); is it a visionaudit report?") from None
    if not is_report(data):
        raise DataError(f"{what} {path} {NOT_A_REPORT}")
    version = data["schema_version"]
    if version < FIRST_WITH_OUTCOMES:
        raise DataError(f"{what} {path} has report schema {version}, which holds no per-image outcomes (schema "
                        f"{FIRST_WITH_OUTCOMES} added them); run the baseline release's audit again with this version")
    if version > SCHEMA_VERSION:
        raise DataError(f"{what} {path} has report schema {version}, newer than this visionaudit's {SCHEMA_VERSION}; "
                        "upgrade visionaudit")
    return require_whole(data, path, what)


def model_pairs(run_models: Sequence[str], baseline: dict[str, Any], baseline_as: str | None = None,
                pairs: Mapping[str, str] | None = None, where: str = "the baseline",
                fix: str = "--audit-baseline-as SPEC (one model) or [baseline.pairs] in audit.toml",
                specs: Mapping[str, str] | None = None) -> dict[str, str]:
    """This run's model -> the baseline's: ``baseline_as`` (one model only), else ``[baseline.pairs]`` (keyed by the
    model's id or its spec), else the same id (``?name=``, else the canonical spec). ``specs``: the run's ids -> their
    canonical specs, for a model that pairs with nothing while the baseline has its spec under another id: said, never
    paired silently (two releases of one spec are the same model; two models of one name are the pairing asked for)."""
    if baseline_as and len(run_models) != 1:
        raise DataError(f"--audit-baseline-as pairs one model, and this run has {len(run_models)} ({', '.join(run_models)}); "
                        "pair several with a [baseline.pairs] table in audit.toml")
    controls = control_models(baseline)  # random-init controls: not releases
    known = [m for m, info in baseline.get("models", {}).items() if info.get("loaded", True) and m not in controls]
    out, problems, unloaded = {}, [], []
    specs = specs or {}
    for model in run_models:
        old = baseline_as or (pairs or {}).get(model) or (pairs or {}).get(specs.get(model, model), model)
        info = baseline.get("models", {}).get(old)
        if old not in known and isinstance(info, dict) and info.get("loaded", True) is False and old not in controls:
            # The baseline holds the model but never loaded it: pairing it with another would not help.
            # The error's first line: a load that crashed its worker has faulthandler's traceback after it.
            why = (f"its load error: {str(info['error']).splitlines()[0]}" if info.get("error") else
                   "no test got as far as loading it: that run stopped first, or -k/-m left it no test")
            unloaded.append(f"{model}: {where}'s {old} did not load in that run ({why}), so it holds nothing of it to "
                            "compare with; compare with a report of a run in which it loaded")
        elif old not in known:
            problems.append(f"{model}: {where} has no model {old}" + _same_spec(model, specs.get(model, model), baseline, known))
        out[model] = old
    if problems:
        raise DataError("; ".join(unloaded + problems) + f". {where[:1].upper()}{where[1:]} holds "
                                                         f"{', '.join(known) or 'no loaded model'}: pair with {fix}")
    if unloaded:
        raise DataError("; ".join(unloaded))
    return out


def baseline_only(baseline: dict[str, Any], pairs: Mapping[str, str]) -> list[str]:
    """The baseline's release models (loaded there; not its random-init controls) that no model of this run is paired
    with (``pairs``: this run's -> the baseline's): not compared, so said, never dropped without a word."""
    controls, paired = control_models(baseline), set(pairs.values())
    return [m for m, info in (baseline.get("models") or {}).items()
            if isinstance(info, dict) and info.get("loaded", True) and m not in controls and m not in paired]


def baseline_only_said(models: Sequence[str], old: str = "the baseline", new: str = "this run") -> str:
    """:func:`baseline_only`'s models in words: a release without them (said, not a failure), or one that holds them
    under another id (then pair them)."""
    them = "them" if len(models) > 1 else "it"
    return (f"{old}'s model{'s' if len(models) > 1 else ''} {', '.join(models)} {'have' if len(models) > 1 else 'has'} no "
            f"model of {new} paired with {them}: not compared (a release without {them}, or {new} holds {them} under "
            "another id: pair them)")


def _same_spec(model: str, spec: str, baseline: dict[str, Any], known: list[str]) -> str:
    """The rest of a no-partner problem when the baseline has ``model``'s spec (as its recorded ``spec``) under
    another id: a model renamed, or named in one release only."""
    same = [m for m in known if baseline["models"][m].get("spec") == spec]
    if not same:
        return ""
    rename = f"name it the same (?name={same[0]}) or " if same[0] != baseline["models"][same[0]].get("spec") else (
        "leave ?name= out (the baseline's model has none) or ")
    return f", but has this spec ({spec}) as {same[0]}: {rename}pair the two"


def _set_difference(role: str, old: SampleSet, new: SampleSet) -> str | None:
    if old.fingerprint == new.fingerprint:
        return None
    only_old, only_new = sorted(set(old.ids) - set(new.ids)), sorted(set(new.ids) - set(old.ids))
    text = f"{role} images differ (data fingerprint {old.fingerprint[:12]} vs {new.fingerprint[:12]}): "
    if only_old or only_new:
        example = (only_old or only_new)[0]
        return text + f"{len(only_old)} only in the baseline, {len(only_new)} only in this run (e.g. {example})"
    return text + f"the same {len(new.ids)} sample ids, but files with other contents (re-encoded or replaced images)"


def differences(baseline: dict[str, Any], run: Mapping[str, SampleSet], seed: int, subset: int | None) -> list[str]:
    """What stands between the baseline and this run's image sets ``run`` (by role); empty when they pair.
    (How a model's stimuli were scored, geometry mode and aggregation, is checked per comparison: it
    concerns three of them, not the run.)"""
    problems = []
    old_run = baseline.get("run", {})
    old_sets = {}
    for role, data in sorted((baseline.get("samples") or {}).items()):
        try:
            old_sets[role] = SampleSet.from_dict(role, data)
        except (KeyError, TypeError) as e:
            raise DataError(f"the baseline's samples.{role} is incomplete ({type(e).__name__}: {e}); is "
                            "the report intact?") from None
    # --audit-samples at or above a set's size takes it whole: when every set both hold has the same images (data
    # fingerprint), the numbers given differ but the images scored do not.
    common = [role for role in old_sets if role in run]
    same_images = bool(common) and all(old_sets[role].fingerprint == run[role].fingerprint for role in common)
    if old_run.get("seed", 0) != seed:
        problems.append(f"seed: the baseline ran with seed {old_run.get('seed')}, this run with {seed} (--audit-seed)")
    if old_run.get("samples") != subset and not same_images:
        show = lambda n: "the whole sets" if n is None else f"a subset of {n} images per set (--audit-samples {n})"  # noqa: E731
        problems.append(f"subset: the baseline scored {show(old_run.get('samples'))}, this run {show(subset)}")
    for role, old in old_sets.items():
        if old.protocol != PROTOCOL_VERSION:
            problems.append(f"protocol: the baseline drew its {role} transforms by protocol {old.protocol}, this visionaudit "
                            f"by {PROTOCOL_VERSION}; run the baseline release's audit again with this version")
        elif role in run and (old.subset == subset or same_images) and old.seed == seed:
            diff = _set_difference(role, old, run[role])
            if diff:
                problems.append(diff)
    return problems


def refusal(path: str | Path, problems: Sequence[str]) -> str:
    return (f"the baseline {path} cannot be compared image by image with this run:\n  " + "\n  ".join(problems) +
            "\nMake both runs on the same data, seed and subset, or pass --audit-baseline-unpaired to compare the "
            "proportions with unpaired tests (weaker: they cannot tell a real change from a reshuffle of images)")
