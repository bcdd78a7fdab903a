"""The checks that partial reports are the shards of one run (``visionaudit merge``, :mod:`visionaudit.report.merge`):
same shard count, each shard once, same seed, subset, images, versions, models and image sets."""

from __future__ import annotations

from typing import Any, Sequence

from visionaudit.errors import VisionAuditError
from visionaudit.families.baseline.pairing import NOT_A_REPORT, is_report, shape_problem
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
        elif problem := shape_problem(part):
            problems.append(f"{name} is not a whole visionaudit report: {problem}")
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


def models_by_id(parts: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Each model id's entries, (part name, entry) in part order, over the parts that have it."""
    by_id: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for part, name in zip(parts, names):
        for model, info in part.get("models", {}).items():
            by_id.setdefault(model, []).append((name, info))
    return by_id


def _never_loaded(info: dict[str, Any]) -> bool:
    """No test of the model ran in that part (``loaded`` false, ``error`` null): nothing of it was read there."""
    return info.get("loaded") is False and not info.get("error")


def model_entry(entries: Sequence[tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """The part whose entry stands for a model in the merge, every other part being compared with it and the merged
    ``models`` showing it: the first that loaded the model (a sha256, else recorded classes, else neither unloaded nor
    failed), else the first. Not simply part 1: a part that never loaded it could vouch for nothing."""
    for loaded in (lambda e: e.get("sha256"), lambda e: e.get("classes"),
                   lambda e: e.get("loaded") is not False and not e.get("error")):
        found = next(((n, e) for n, e in entries if loaded(e)), None)
        if found:
            return found
    return entries[0]


def merged_models(parts: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """The merged report's ``models``: each model's :func:`model_entry`."""
    return {model: model_entry(entries)[1] for model, entries in models_by_id(parts, names).items()}


def _check_models(parts: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """A model id is one model in every part: the same weights, classes and spec (with ``?name=`` a model's id no longer
    says its spec, so shards run with another ``?resize=`` under one name would otherwise merge as one model). Every
    part is compared with the part that loaded it (:func:`model_entry`), class names with the first that recorded them,
    so every two parts that loaded it agree. Of the same weights (sha256 equal in both parts), or where one part never
    loaded the model (no test of it ran there), the model file's path may differ, and ``?classes=``'s where both
    parts recorded the same class names or one never loaded it: shards run in other checkouts (a CI runner's
    /builds/RUNNER/N/...) name one file by two absolute paths."""
    problems = []
    for model, entries in models_by_id(parts, names).items():
        first_name, first = model_entry(entries)
        named_by, named = next(((n, e) for n, e in entries if _label_space(e) is not None), (first_name, first))
        for name, info in entries:
            weights_differ = bool(info.get("sha256") and first.get("sha256") and info["sha256"] != first["sha256"])
            if weights_differ:
                problems.append(f"model {model} has other weights in {name} (sha256 {info['sha256'][:12]}...) than in "
                                f"{first_name} ({first['sha256'][:12]}...): run every shard on the same model file")
            classes = _label_space(named), _label_space(info)
            if name != named_by and None not in classes and classes[0] != classes[1]:
                problems.append(f"model {model} has other classes in {name} than in {named_by} "
                                f"({_classes_differ(*classes, named_by, name)}): give every shard the same class names "
                                "(?classes=, --audit-classes)")
            if name != first_name:
                problems += filter(None, [_spec_differs(model, first, info, first_name, name, weights_differ),
                                          _outputs_differ(model, first, info, first_name, name)])
    return problems


def _outputs_differ(model: str, a: dict[str, Any], b: dict[str, Any], a_name: str, b_name: str) -> str | None:
    """Two parts that read the model's outputs in two forms (logits, probabilities: their logarithms); an entry without
    ``outputs`` (before stop 45, or never loaded) is not compared."""
    if not a.get("outputs") or not b.get("outputs") or a["outputs"] == b["outputs"]:
        return None
    return (f"model {model} returns {a['outputs']} in {a_name} and {b['outputs']} in {b_name} (as each part's load found, "
            "or its ?outputs= said): its numbers were read in two forms; run every shard with ?outputs= in its spec")


def _one_file(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two parts' entries of a model may name its file by two paths: the same weights (sha256), or one part
    never loaded it (nothing of it was read there)."""
    return _never_loaded(a) or _never_loaded(b) or bool(a.get("sha256")) and a.get("sha256") == b.get("sha256")


def _not_compared(a: dict[str, Any], b: dict[str, Any], a_name: str, b_name: str) -> str:
    """Why two entries' weights could not be compared (the model file's path then counts), for the refusal."""
    why = [f"it did not load in {n}" if e.get("error") else f"{n} recorded no sha256 of it"
           for e, n in ((a, a_name), (b, b_name)) if not e.get("sha256")]
    return f" ({'; '.join(why)}: its weights could not be compared)" if why else ""


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
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return f"their class lists differ ({', '.join(keys)})"  # the names agree: ids, or a named label space's


def _spec_differs(model: str, a: dict[str, Any], b: dict[str, Any], a_name: str, b_name: str,
                  weights_differ: bool) -> str | None:
    """The refusal where two entries' specs do not name one model, else None: equal as written, or, of one file
    (:func:`_one_file`), equal but for the model file's path (and ``?classes=``'s, the class names being compared by
    :func:`_label_space`, or not read where a part never loaded it). Where the weights differ (said on its own line)
    only what else differs."""
    if not a.get("spec") or not b.get("spec") or a["spec"] == b["spec"]:
        return None
    said = f"model {model} is {a['spec']} in {a_name} and {b['spec']} in {b_name}: "
    if not weights_differ and not _one_file(a, b):
        return said + "run every shard with the same --model" + _not_compared(a, b, a_name, b_name)
    try:
        (a_form, a_options), (b_form, b_options) = form_and_options(a["spec"]), form_and_options(b["spec"])
    except VisionAuditError:  # a spec this version does not read (the parts came from another): compared as written
        return None if weights_differ else said + "run every shard with the same --model"
    # ?classes= given in one part and not in the other is a difference whatever was read (review 38c F5)
    if ("classes" in a_options) == ("classes" in b_options) and (
            None not in (_label_space(a), _label_space(b)) or _never_loaded(a) or _never_loaded(b)):
        a_options.pop("classes", None), b_options.pop("classes", None)
    keys = [k for k in sorted(set(a_options) | set(b_options)) if a_options.get(k) != b_options.get(k)]
    differs = [f"?{k}= is {a_options.get(k, 'not given')} in {a_name} and {b_options.get(k, 'not given')} in {b_name}"
               for k in keys]
    if a_form != b_form:
        differs.insert(0, f"the model is {a_form} in {a_name} and {b_form} in {b_name}, {MODEL_PATH} being its file")
    if not differs:
        return None
    paths = [k for k in keys if _paths_only(k, a_options.get(k), b_options.get(k))]
    fixes = ["run every shard with the same --model"] if len(paths) < len(differs) else []
    if paths:  # the same string in every shard, as docs/ci.md says: read from the working directory, the checkout
        fixes.append(f"write {', '.join(f'?{k}=' for k in paths)}'s path relative to the checkout (the same string in "
                     "every shard)")
    return said + ", and ".join(fixes) + f" ({'; '.join(differs)}; of the spec only the model file's own path may " \
        "differ between shards)"


def _paths_only(key: str, a: str | None, b: str | None) -> bool:
    """Whether an option's two values differ only in a path: ``?classes=``'s file, or the model file of the spec that
    ``?reference=`` or ``?arch=`` is."""
    if a is None or b is None:
        return False
    if key == "classes":
        return True
    try:
        return key in ("reference", "arch") and form_and_options(a) == form_and_options(b)
    except VisionAuditError:
        return False


def respelled_models(parts: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Notes for the merged run: each model whose parts named its file by other paths (:func:`_spec_differs` let them
    merge), saying why each was let be; the merged models section shows :func:`model_entry`'s part's entry."""
    notes = []
    for model, entries in models_by_id(parts, names).items():
        first_name, first = model_entry(entries)
        others = [(n, e) for n, e in entries if n != first_name and e.get("spec") not in (None, first.get("spec"))]
        if others and first.get("spec"):
            why = [f"{n} never loaded it: none of its tests ran there" if _never_loaded(e)
                   else f"{first_name} never loaded it: none of its tests ran there" if _never_loaded(first)
                   else f"{n}: the same weights, sha256 equal" for n, e in others]
            notes.append(f"model {model} was given as {first['spec']} in {first_name}, "
                         + ", ".join(f"{e['spec']} in {n}" for n, e in others)
                         + f" (from other paths; {'; '.join(dict.fromkeys(why))}); models.{model} shows {first_name}'s entry")
    return notes
