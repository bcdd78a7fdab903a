"""The checks that partial reports are the shards of one run (``visionaudit merge``, :mod:`visionaudit.report.merge`):
same shard count, each shard once, same seed, subset, images, versions, models and image sets."""

from __future__ import annotations

from typing import Any, Sequence

from visionaudit.errors import VisionAuditError
from visionaudit.families.baseline.pairing import NOT_A_REPORT, is_report
from visionaudit.models.spec_paths import MODEL_PATH, form_and_options
from visionaudit.version import OLDEST_READABLE, SCHEMA_VERSION


class Unmergeable(VisionAuditError):
    """The parts are not the shards of one run; the message names every difference."""


def _shard_of(part: dict[str, Any], name: str) -> tuple[int, int]:
    shard = (part.get("run") or {}).get("shard")
    if not shard:
        raise Unmergeable(f"{name} is not a partial report: it was not run with --audit-shard I/N")
    return int(shard["index"]), int(shard["count"])


def check_parts(parts: Sequence[dict[str, Any]], names: Sequence[str]) -> list[int]:
    """The parts' shard indices, in order; :class:`Unmergeable` when they are not the N shards of one run."""
    problems: list[str] = []
    for part, name in zip(parts, names):
        if not is_report(part):
            problems.append(f"{name} {NOT_A_REPORT}")
            continue
        version = part["schema_version"]
        if not OLDEST_READABLE <= version <= SCHEMA_VERSION:
            problems.append(f"{name} has schema {version}; this suite reads schemas {OLDEST_READABLE} to {SCHEMA_VERSION}")
    if problems:
        raise Unmergeable("; ".join(problems))
    shards = [_shard_of(p, n) for p, n in zip(parts, names)]
    counts = {c for _, c in shards}
    if len(counts) > 1:
        problems.append("the parts split the images differently: " + ", ".join(f"{n} is shard {i}/{c}"
                                                                               for n, (i, c) in zip(names, shards)))
    else:
        count = counts.pop()
        seen: dict[int, str] = {}
        for name, (index, _) in zip(names, shards):
            if index in seen:
                problems.append(f"shard {index}/{count} given twice ({seen[index]} and {name})")
            seen[index] = name
        missing = [i for i in range(1, count + 1) if i not in seen]
        if missing:
            problems.append(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: run them and pass their reports too")
    for key, what in (("seed", "seed (--audit-seed)"), ("samples", "subset (--audit-samples)"),
                      ("images", "labelled images (--audit-images)")):
        values = {n: (p.get("run") or {}).get(key) for p, n in zip(parts, names)}
        if len({repr(v) for v in values.values()}) > 1:
            problems.append(f"{what} differs: " + ", ".join(f"{n}: {v}" for n, v in values.items()))
    for key in ("visionaudit", "torch", "torchvision"):
        values = {n: ((p.get("run") or {}).get("versions") or {}).get(key) for p, n in zip(parts, names)}
        if len(set(values.values())) > 1:
            problems.append(f"{key} version differs: " + ", ".join(f"{n}: {v}" for n, v in values.items()))
    problems += _check_models(parts, names) + _check_samples(parts, names)
    if problems:
        raise Unmergeable("the reports are not the shards of one run:\n  " + "\n  ".join(problems))
    return [i for i, _ in shards]


def _check_samples(parts: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    problems = []
    roles = sorted({r for p in parts for r in p.get("samples", {})})
    for role in roles:
        sets = {n: p["samples"][role] for p, n in zip(parts, names) if role in p.get("samples", {})}
        if any("shard" not in s for s in sets.values()):
            problems.append(f"samples.{role} of {', '.join(n for n, s in sets.items() if 'shard' not in s)} has no shard section")
            continue
        for key in ("subset", "seed", "protocol"):
            if len({repr(s.get(key)) for s in sets.values()}) > 1:
                problems.append(f"samples.{role}: {key} differs between parts")
        wholes = {(s["shard"]["whole"]["n"], s["shard"]["whole"]["fingerprint"]) for s in sets.values()}
        if len(wholes) > 1:
            problems.append(f"samples.{role}: the parts were cut from different image sets (data fingerprints differ)")
            continue
        n = wholes.pop()[0]
        positions = [q for s in sets.values() for q in s["shard"]["positions"]]
        if len(positions) != len(set(positions)):
            problems.append(f"samples.{role}: an image is in two parts")
        for name, s in sets.items():
            if len(s["shard"]["positions"]) != len(s["ids"]):
                problems.append(f"samples.{role} of {name}: {len(s['ids'])} ids but {len(s['shard']['positions'])} positions")
        if len(sets) == len(parts) and sorted(positions) != list(range(n)):
            problems.append(f"samples.{role}: the parts hold {len(set(positions))} of the set's {n} images")
    return problems


def _check_models(parts: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """A model id is one model in every part: the same weights, classes and spec (with ``?name=`` a model's id no longer
    says its spec, so shards run with another ``?resize=`` under one name would otherwise merge as one model). Of the
    same weights (sha256 equal in both parts), or where one part never loaded the model (no test of it ran there), the
    model file's path may differ, and ``?classes=``'s where both parts recorded the same class names: shards run in
    other checkouts (a CI runner's /builds/RUNNER/N/...) name one file by two absolute paths."""
    problems = []
    first, first_name = parts[0].get("models", {}), names[0]
    for part, name in zip(parts[1:], names[1:]):
        for model, info in part.get("models", {}).items():
            other = first.get(model)
            if not other:
                continue
            if info.get("sha256") and other.get("sha256") and info["sha256"] != other["sha256"]:
                problems.append(f"model {model} has other weights in {name} (sha256 {info['sha256'][:12]}...) than in "
                                f"{first_name} ({other['sha256'][:12]}...)")
            classes = _label_space(other), _label_space(info)
            if None not in classes and classes[0] != classes[1]:
                problems.append(f"model {model} has other classes in {name} than in {first_name} "
                                f"({_classes_differ(*classes, first_name, name)}): give every shard the same class names "
                                "(?classes=, --audit-classes)")
            differs = _spec_differs(other, info, first_name, name)
            if differs is not None:
                problems.append(f"model {model} is {other['spec']} in {first_name} and {info['spec']} in {name}: run every "
                                f"shard with the same --model{differs}")
    return problems


def _one_file(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two parts' entries of a model may name its file by two paths: the same weights (sha256), or one part
    never loaded it (``loaded`` false, ``error`` null: no test of it ran there, so nothing of it was read)."""
    never_loaded = any(e.get("loaded") is False and not e.get("error") for e in (a, b))
    return never_loaded or bool(a.get("sha256")) and a.get("sha256") == b.get("sha256")


def _label_space(info: dict[str, Any]) -> dict[str, Any] | None:
    """A model entry's classes as compared between parts: all but where the names were read from (``source``: the
    class file's path, which may differ between checkouts); None where the part recorded none (schema 3, not loaded)."""
    classes = info.get("classes")
    return {k: v for k, v in classes.items() if k != "source"} if classes else None


def _classes_differ(a: dict[str, Any], b: dict[str, Any], a_name: str, b_name: str) -> str:
    if a.get("count") != b.get("count"):
        return f"{a.get('count')} classes in {a_name}, {b.get('count')} in {b_name}"
    names = a.get("names"), b.get("names")
    if None not in names:
        i = next((i for i, (x, y) in enumerate(zip(*names)) if x != y), None)
        if i is not None:
            return f"output {i} is {names[0][i]!r} in {a_name}, {names[1][i]!r} in {b_name}"
    return "their class names differ"


def _spec_differs(a: dict[str, Any], b: dict[str, Any], a_name: str, b_name: str) -> str | None:
    """None where the two entries' specs name one model: equal as written, or, of one file (:func:`_one_file`), equal but
    for the model file's path (and ``?classes=``'s, the class names being compared by :func:`_label_space`); else what
    differs, for the refusal (empty where that is the spec as a whole)."""
    if not a.get("spec") or not b.get("spec") or a["spec"] == b["spec"]:
        return None
    if not _one_file(a, b):
        return ""
    try:
        (a_form, a_options), (b_form, b_options) = form_and_options(a["spec"]), form_and_options(b["spec"])
    except VisionAuditError:  # a spec this version does not read (the parts came from another): compared as written
        return ""
    if _label_space(a) is not None and _label_space(b) is not None:
        a_options.pop("classes", None), b_options.pop("classes", None)
    differs = [f"?{k}= is {a_options.get(k, 'not given')} in {a_name} and {b_options.get(k, 'not given')} in {b_name}"
               for k in sorted(set(a_options) | set(b_options)) if a_options.get(k) != b_options.get(k)]
    if a_form != b_form:
        differs.insert(0, f"the model is {a_form} in {a_name} and {b_form} in {b_name}, {MODEL_PATH} being its file")
    if not differs:
        return None
    return f" ({'; '.join(differs)}; of the spec only the model file's own path may differ between shards)"


def respelled_models(parts: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Notes for the merged run: each model whose parts named its file by other paths (:func:`_spec_differs` let them
    merge); the merged models section shows the first part's entry."""
    notes = []
    for model, info in parts[0].get("models", {}).items():
        others = [(p["models"][model]["spec"], n) for p, n in zip(parts[1:], names[1:])
                  if model in p.get("models", {}) and p["models"][model].get("spec") not in (None, info.get("spec"))]
        if others and info.get("spec"):
            notes.append(f"model {model} was given as {info['spec']} in {names[0]}, "
                         + ", ".join(f"{spec} in {n}" for spec, n in others)
                         + f" (the same model, from other folders); models.{model} shows {names[0]}'s entry")
    return notes
