"""``visionaudit merge``: the partial reports of one sharded run (``--audit-shard I/N``) joined into the
report the unsharded run writes.

Nothing is averaged: each split test's per-image arrays (kept in the parts by visionaudit/families/assessment.py)
are put back in the whole set's order and judged again by the same assessor a normal run calls, so every
statistic (McNemar, bootstrap intervals, t-tests, Holm over transforms, verdicts) is computed once, from
all images. Tests that do not split by image ran whole in shard 1 and are taken from it. Parts that do
not belong together (another seed, subset, data, model weights, spec or classes, thresholds or suite version; a shard
missing or given twice) are refused with every difference named. A test that ended otherwise than judged in a part
(an error, a timeout, an interruption after its per-image data was stored) is judged again all the same, and the
merged run's notes name the part, the test and how it ended there. Two things may differ between parts, since they
are properties of each shard's machine and move no result: a threshold field declared ``changes_no_result`` (the
corruption family's ``batches_ahead``), and what a part's run could not follow there (``not_honoured``: the merged
entries say every part's reasons).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from visionaudit.config import Thresholds
from visionaudit.data.fingerprint import SampleSet
from visionaudit.families.assessment import (
    NotApplicable,
    NotJudged,
    PerImage,
    decode_arrays,
    find_assessor,
)
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import families
from visionaudit.report.assembly import (
    SEVERITY,
    assemble,
    notes_but_unselected_models,
    short_reason,
)
from visionaudit.report.merge_parts import (
    Unmergeable,
    check_parts,
    merged_models,
    respelled_models,
)
from visionaudit.selection import merged_selection


def merged_samples(parts: Sequence[dict[str, Any]]) -> dict[str, SampleSet]:
    """Each image set as the unsharded run names it: all ids, in the whole set's order."""
    out = {}
    for role in sorted({r for p in parts for r in p.get("samples", {})}):
        sets = [p["samples"][role] for p in parts if role in p.get("samples", {})]
        whole = sets[0]["shard"]["whole"]
        ids: list[str | None] = [None] * whole["n"]
        for s in sets:
            for position, sample_id in zip(s["shard"]["positions"], s["ids"]):
                ids[position] = sample_id
        if any(i is None for i in ids):  # a part that recorded no outcome on this set: not every image is known
            continue
        first = sets[0]
        out[role] = SampleSet(role, first["name"], tuple(ids), whole["fingerprint"], first.get("subset"), first["seed"],
                              first["protocol"])
    return out


# Per-image arrays a part may lack because the suite that wrote it predates them (the schema that added each): the
# merge leaves them out and says so. Any other array missing from a part is a part that does not belong.
LATER_ARRAYS = {"labels": 5, "top1": 6}


def _merged_arrays(pieces: list[tuple[dict[str, Any], dict[str, Any]]], n: int, nodeid: str = "",
                   names: Sequence[str] = (), notes: list[str] | None = None) -> dict[str, np.ndarray]:
    """Per-image arrays of the parts (``(shard_data, samples section)`` each) in the whole set's order. An array some
    parts lack would leave the others' images unset: one of :data:`LATER_ARRAYS` is left out with a note appended to
    ``notes`` (naming the parts that lack it), any other is :class:`Unmergeable`."""
    names = list(names) or [f"part {k}" for k in range(1, len(pieces) + 1)]
    held = [set(data["arrays"]) for data, _ in pieces]
    every = set().union(*held) if held else set()
    left_out = set()
    for key in sorted(every):
        lacking = [name for name, h in zip(names, held) if key not in h]
        if not lacking:
            continue
        if key not in LATER_ARRAYS:
            raise Unmergeable(f"{nodeid}: {', '.join(lacking)} lack(s) the per-image array {key!r} that the other parts hold; "
                              "were all shards run with the same suite version and options?")
        left_out.add(key)
        if notes is not None:
            notes.append(f"{nodeid}: per-image {key!r} left out of the merge: {', '.join(lacking)} lack(s) it (written "
                         f"before schema {LATER_ARRAYS[key]}, or not recorded there)")
    out: dict[str, np.ndarray] = {}
    for data, section in pieces:
        arrays = decode_arrays(data["arrays"])
        positions = np.asarray(section["shard"]["positions"], dtype=np.int64)
        for key, values in arrays.items():
            if key in left_out:
                continue
            if values.size != positions.size:
                raise Unmergeable(f"per-image array {key!r} holds {values.size} values for the part's {positions.size} images")
            if key not in out:
                out[key] = np.empty(n, dtype=values.dtype)
            out[key][positions] = values
    return out


def _observer_set(context: dict[str, Any]) -> str:
    """The human observers a shape-bias part was judged with, in words (the error consistency is over them)."""
    observers = context.get("observers")
    if not isinstance(observers, dict) or observers.get("absent"):
        return "none (texture-vs-shape-raw absent)"
    return ", ".join(sorted(observers.get("subjects") or {})) or "none"


def _same_observers(nodeid: str, data: list[dict[str, Any]], names: Sequence[str]) -> None:
    """Parts whose shape-bias error consistency is over other observers (another data root) cannot be merged: the
    merge would recompute it over one part's observers only."""
    if not any("observers" in (d.get("context") or {}) for d in data):
        return
    sets = [_observer_set(d.get("context") or {}) for d in data]
    if len(set(sets)) > 1:
        first = sets[0]
        other = next(k for k, s in enumerate(sets) if s != first)
        raise Unmergeable(f"{nodeid}: the parts hold different human observers' decisions ({names[0]}: {first}; "
                          f"{names[other]}: {sets[other]}); run every shard on the same data root's texture-vs-shape-raw "
                          "(python -m visionaudit fetch texture-vs-shape-raw) and merge those parts")


# Under this key a part's context says which settings its run could not follow on its machine (setting -> what ran
# instead, in words; the corruption family's jpeg_on_device and batches_ahead). A property of each shard's machine,
# not of what was measured: parts may differ in it, and the merged run says every part's reasons.
NOT_HONOURED = "not_honoured"


def _without_not_honoured(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_not_honoured(v) for k, v in value.items() if k != NOT_HONOURED}
    return value


def _with_not_honoured(first: Any, contexts: Sequence[Any], names: Sequence[str]) -> Any:
    """``first`` (a part's context) with, wherever a part's context says ``not_honoured``, the union of what the
    parts say there: each reason once, followed by the parts that gave it unless every part did."""
    if not isinstance(first, dict):
        return first
    out = {k: _with_not_honoured(v, [c.get(k) if isinstance(c, dict) else None for c in contexts], names)
           for k, v in first.items() if k != NOT_HONOURED}
    said = [c.get(NOT_HONOURED) if isinstance(c, dict) else None for c in contexts]
    if any(said):
        union: dict[str, dict[str, list[str]]] = {}
        for name, reasons in zip(names, said):
            for setting, why in (reasons or {}).items():
                union.setdefault(setting, {}).setdefault(why, []).append(name)
        out[NOT_HONOURED] = {
            setting: "; ".join(why if len(by) == len(names) else f"{why} ({', '.join(by)})" for why, by in reasons.items())
            for setting, reasons in union.items()}
    return out


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two values differ, as dotted keys (the values themselves where short)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in _differences(a.get(k), b.get(k),
                                                                                  f"{path}.{k}" if path else str(k))]
    if a == b:
        return []
    shown = f"{a!r} vs {b!r}"
    return [f"{path or 'value'} ({shown})" if len(shown) <= 80 else path or "value"]


def _same(nodeid: str, what: str, values: Sequence[Any], names: Sequence[str]) -> None:
    """:class:`Unmergeable` naming the differing keys and the parts when the parts judged the test differently."""
    for name, value in zip(names[1:], values[1:]):
        if value != values[0]:
            differences = _differences(values[0], value)
            # a setting whose effect depends on the shard's device (jpeg_on_device gives nvJPEG only on CUDA): the same
            # audit.toml is not enough, the devices must be of one kind too
            device = (" on the same kind of device (or with jpeg_on_device = false)"
                      if any(d.split(" ")[0].endswith("jpeg_codec") for d in differences) else "")
            raise Unmergeable(f"{nodeid}: the parts judged it with different {what}, {names[0]} vs {name}: "
                              f"{', '.join(differences)}; run every shard with the same audit.toml and options (and "
                              f"suite version){device} and merge those parts")


def _note_speed_settings(family: str, speed_only: set[str], data: list[dict[str, Any]], names: Sequence[str],
                         notes: list[str]) -> None:
    """A speed setting the parts ran with different values of: said once per family in the merged run's notes (the
    merged entries carry the first part's value, which would otherwise stand for every part)."""
    for key in sorted(speed_only):
        values: dict[str, list[str]] = {}
        for name, d in zip(names, data):
            values.setdefault(repr(d["thresholds"].get(key)), []).append(name)
        if len(values) > 1:
            note = (f"{family}: the parts ran with different {key} (" + "; ".join(f"{v} in {', '.join(by)}" for v, by in
                    values.items()) + f"), a setting of speed that moves no result; the merged entries show {names[0]}'s")
            if note not in notes:
                notes.append(note)


def _judge(nodeid: str, entries: list[dict[str, Any]], parts: Sequence[dict[str, Any]], samples: dict[str, SampleSet],
           names: Sequence[str], notes: list[str] | None = None) -> dict[str, Any]:
    """One split test judged again on every shard's per-image data (what the merge left out appended to ``notes``)."""
    base = entries[0]
    data = [e["shard_data"] for e in entries]
    _same_observers(nodeid, data, names)
    family = families().get(str(base["audit"]))
    speed_only = {k for k, f in (family.thresholds.items() if family is not None else ()) if f.changes_no_result}
    _same(nodeid, "assessor", [d["assessor"] for d in data], names)
    _same(nodeid, "set", [d["set"] for d in data], names)
    _same(nodeid, "thresholds", [{k: v for k, v in d["thresholds"].items() if k not in speed_only} for d in data], names)
    _same(nodeid, "context", [_without_not_honoured(d["context"]) for d in data], names)
    if notes is not None:
        _note_speed_settings(str(base["audit"]), speed_only, data, names, notes)
    context = _with_not_honoured(data[0]["context"], [d["context"] for d in data], names)
    role = data[0]["set"]
    if role not in samples:
        raise Unmergeable(f"{nodeid}: the parts do not together hold every image of {role}")
    pieces = [(d, p["samples"][role]) for d, p in zip(data, parts)]
    arrays = _merged_arrays(pieces, len(samples[role].ids), nodeid, names, notes)
    record = AuditRecord(audit=base["audit"], model=base["model"], params=dict(base.get("params") or {}))
    # A bound added to the family after the part was written (a version-3 part has no min_class_images) is
    # judged at its descriptor default, as the run that wrote the part would have had it.
    bounds = {**(family.defaults if family is not None else {}), **data[0]["thresholds"]}
    thresholds = Thresholds(str(base["audit"]), str(base["model"] or ""), bounds)
    outcome, message = "passed", None
    try:  # the assessor by its stored name, "<family>.<test name>", from its family's descriptor
        judge = find_assessor(data[0]["assessor"])
    except ValueError as e:
        raise Unmergeable(f"{nodeid}: {e}") from None
    try:
        judge(record, PerImage(samples[role], arrays), thresholds, context)
    except NotJudged as e:
        outcome, message = "not_judged", f"not judged: {e}"
    except NotApplicable as e:  # as a run skips it (fixtures/recording.py)
        outcome, message = "skipped", str(e)
    except AssertionError as e:
        outcome, message = "failed", f"AssertionError: {e}"
    except Exception as e:  # noqa: BLE001 - the assessor's own error (as a run's "error"): the entry's, not a traceback
        outcome, message = "error", f"the merge's judgement raised {type(e).__name__}: {e}"
    entry = {"nodeid": nodeid, "audit": base["audit"], "model": base["model"], "params": base.get("params") or {},
             "outcome": outcome, "duration": round(sum(float(e.get("duration") or 0.0) for e in entries), 3),
             "metrics": record.metrics, "thresholds": record.thresholds, "tables": record.tables, "message": message,
             "worker": None}
    if record.outcomes:
        entry["outcomes"] = record.outcomes
    return entry


# How a part's test ends once its gate was judged there. Any other end (an error, a timeout, an interruption) came
# after its per-image data was whole: assess() (visionaudit/families/assessment.py) stores it in one piece, from a
# finished measurement, before it judges, and _merged_arrays holds each array to one value per image of its part.
JUDGED_ENDS = ("passed", "failed", "not_judged", "skipped")


def _ended_otherwise(nodeid: str, found: dict[int, dict[str, Any]], names: Sequence[str], count: int,
                     merged: dict[str, Any]) -> list[str]:
    """A note per part in which the test ended otherwise than judged, naming the part, its outcome and message, and what
    the merge made of it: the merged entry alone would read as if every part had ended well."""
    notes = []
    for index, entry in sorted(found.items()):
        if entry.get("outcome") in JUDGED_ENDS:
            continue
        said = short_reason(entry.get("message"))
        notes.append(f"{nodeid}: it ended {entry.get('outcome')} in {names[index - 1]} (shard {index}/{count}"
                     + (f": {said}" if said else "") + "); its per-image data there was complete (stored whole before its "
                     f"gate was judged, one value per image of the part), so the merge judged it on every shard's images: "
                     f"{merged['outcome'].replace('_', ' ')}")
    return notes


def _unjudgeable(nodeid: str, entries: dict[int, dict[str, Any]], count: int) -> dict[str, Any]:
    """A split test some shard could not measure: the worst shard's outcome, named."""
    index, worst = max(entries.items(), key=lambda kv: SEVERITY.get(kv[1]["outcome"], 0))
    message = f"shard {index}/{count}: {worst.get('message') or worst['outcome']}"
    out = {k: v for k, v in worst.items() if k not in ("shard_data", "outcomes")}
    return {**out, "metrics": {}, "tables": {}, "message": message, "worker": None}


def merge_reports(parts: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """The report of the unsharded run, from its N partial reports (in any order)."""
    if not parts:
        raise Unmergeable("no partial reports to merge")
    indices = check_parts(parts, names)
    order = sorted(range(len(parts)), key=lambda k: indices[k])
    parts, names = [parts[k] for k in order], [names[k] for k in order]
    count = len(parts)
    samples = merged_samples(parts)
    by_test: dict[str, dict[int, dict[str, Any]]] = {}
    for index, part in enumerate(parts, 1):
        for entry in part.get("audits", []):
            by_test.setdefault(entry["nodeid"], {})[index] = entry
    entries, notes = [], []
    for nodeid, found in sorted(by_test.items()):
        if all("shard_data" in e for e in found.values()):
            if len(found) != count:
                missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in found]
                raise Unmergeable(f"{nodeid} splits by image but is not in shard(s) {', '.join(missing)}: were the shards "
                                  "run with the same -k/-m selection?")
            entries.append(_judge(nodeid, [found[i] for i in sorted(found)], parts, samples, names, notes))
            notes += _ended_otherwise(nodeid, found, names, count, entries[-1])
        elif set(found) == {1}:  # a test that does not split by image: it ran whole in shard 1
            entries.append({k: v for k, v in found[1].items() if k != "shard_data"})
        else:
            entries.append(_unjudgeable(nodeid, found, count))
    models = merged_models(parts, names)  # each from the first part that loaded it
    first_run = parts[0].get("run") or {}
    runs = [p.get("run") or {} for p in parts]
    configs: dict[str, list[str]] = {}
    for r, name in zip(runs, names):
        configs.setdefault(str(r.get("config_file")), []).append(name)
    if len(configs) > 1:  # their bounds were checked equal above, bar speed settings; the paths still differ
        notes.append("the parts were run with different config files (" + "; ".join(
            f"{c} in {', '.join(by)}" for c, by in configs.items()) + f"); run.config_file shows {names[0]}'s")
    notes += respelled_models(parts, names)
    # Every part's notes, once each in shard order, naming the parts when not all said it; the unselected-models note is
    # derived again over all parts by assemble() (a part 2..N cannot tell).
    said: dict[str, list[str]] = {}
    for r, name in zip(runs, names):
        for note in dict.fromkeys(notes_but_unselected_models(r)):
            said.setdefault(note, []).append(name)
    carried = [n if len(by) == count else f"{', '.join(by)}: {n}" for n, by in said.items()]
    selection, differently = merged_selection(runs, names, len(entries))  # -k/-m: each part's, said once
    notes += differently
    run = {**first_run, "shard": None, "merged_from": list(names),
           "start": min(r.get("start") or "" for r in runs) or None, "end": max(r.get("end") or "" for r in runs) or None,
           "duration": round(sum(float(r.get("duration") or 0.0) for r in runs), 3),
           "command": "visionaudit merge " + " ".join(names), "selection": selection,
           # every part's timings (each measured on its part's images), its workers named by the part
           "phases": [{**p, "worker": f"{name}: {p.get('worker')}"} for r, name in zip(runs, names)
                      for p in (r.get("phases") or []) if isinstance(p, dict)],
           "notes": carried + notes}  # and what the merge said
    stopped = any((p.get("incomplete") or {}).get("interrupted") for p in parts)
    errors = [f"{n}: {p['error']}" for p, n in zip(parts, names) if p.get("error")]
    # As in a normal run, the report names the image sets that per-image outcomes refer to.
    referred = {e["outcomes"]["set"] for e in entries if e.get("outcomes")}
    report = assemble(run, models, entries, stopped=stopped, error="; ".join(errors) or None,
                      samples={role: s.to_dict() for role, s in samples.items() if role in referred})
    report["run"]["exit_status"] = 0 if report["verdict"] == "pass" else 1
    return report
