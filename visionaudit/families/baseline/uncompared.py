"""Why a baseline comparison is not made: a side lacks what it compares (:func:`missing`, and :func:`absent`: how a
saved report's entries of that test ended), or too few paired images to judge a change on (:func:`too_few`, the
family's ``min_images``); and how a result says so (:func:`not_compared`). Whose side it is decides the outcome:
"candidate" (this run could, or should, have measured it) is not judged, never a pass; "baseline" and "setup" skip."""

from __future__ import annotations

from collections import Counter
from typing import Any

from visionaudit.families.baseline.compared import CLASS_KINDS, Compared
from visionaudit.families.baseline.statistics import Result, shape_bias_hits
from visionaudit.families.corruption.scoring import condition_name
from visionaudit.families.outcomes import Outcome
from visionaudit.selection import is_subset


def missing(old: Any, new: Any, c: Compared) -> tuple[str, str] | None:
    """Why ``c`` cannot be compared (``old``, ``new``: the sides' ``ModelOutcomes``, untyped here: the family's
    module imports this one), and whose side lacks it: "baseline" (it never measured this: nothing
    to hold the candidate to), "candidate" (this run could not measure it), or "setup"."""
    for side, o in (("baseline", old), ("candidate", new)):
        if c.kind == "vector" and o.shares is None:
            return (f"the {side} has no channel shares (its channel_bias audit did not run, or the first conv "
                    "does not take RGB)"), side
        if c.kind == "error" and c.condition not in o.outcomes and o.ended is None:  # this run's side
            return o.corruption_absent or (
                f"this run did not score {c.condition} (not in this model's [audits.corruption] corruptions, extras and "
                "severities, not in the ImageNet-C folder (--audit-imagenet-c), or the corruption is not available here)"), side
        if c.kind != "vector" and c.condition not in o.outcomes:
            return f"the {side} has no per-image outcomes for {c.condition} ({absent(o, c)})", side
    if c.kind in CLASS_KINDS:
        for side, o in (("baseline", old), ("candidate", new)):
            if o.classes is None:  # a report from before schema 5, or merged from such parts (a run always has them)
                why = (f"the {side} report's accuracy entry has no per-image classes (outcomes.labels): a run before "
                       f"schema 5, or merged from such parts; run the {side}'s accuracy audit with this version to "
                       f"compare {c.name.replace('_', ' ')}")
                return why, "baseline" if side == "baseline" else "setup"
    if c.kind in ("shape_bias", "category") and old.stimulus_protocol != new.stimulus_protocol:
        return (f"the stimuli were scored another way: {old.stimulus_protocol} in the baseline, {new.stimulus_protocol} here "
                "(shape_bias stimulus_geometry and aggregation in audit.toml)", "setup")
    return None


def absent(o: Any, c: Compared, per_condition: bool = True) -> str:
    """Why a side holds no outcomes of ``c``'s condition: how its report's entries of that test ended, when known.
    ``per_condition``: ``c``'s condition is one test's parameter (a transform, a corruption condition), so a report whose
    entries of that test are all of other conditions did not run this one (a subset, ``-k rotation``): said as not in
    that run, never as "recorded none", which is a test that ran and recorded nothing."""
    if o.ended is None:
        return f"its {c.family} audit did not run or failed to"
    # not selected, not empty; short: the summary cuts a reason at 200 characters, and the header gives the numbers
    by = ", ".join((o.selection or {}).get("by") or []) or "a plugin's deselection"
    not_there = f"was not in that run (a subset, by {by})" if is_subset(o.selection) else "was not in that run"
    if not o.ran.get(c.family):
        return f"its {c.family} audit {not_there}"
    what = f"its {c.condition} test ({c.test})"
    known = o.tested.get(c.test, set())
    if c.test not in o.ran[c.family] or (per_condition and None not in known and c.condition not in known):
        return f"{what} {not_there}"  # the family ran, this test (or this condition of it) did not
    if per_condition and c.condition in known:
        counts = Counter(o.ended.get((c.test, c.condition), ()))
    else:  # entries without a known condition (one per model: clean, cue-conflict), or all of the test's conditions
        counts = Counter(x for (test, condition), ended in o.ended.items() if test == c.test
                         and (not per_condition or condition is None) for x in ended)
    if not counts:
        return f"{what} recorded none"
    return f"{what} ended " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))


def entry_condition(entry: dict[str, Any]) -> str | None:
    """The condition a report entry measured: its outcomes' own, else its parameters' (a transform, shape-only stimuli, a
    corruption at a severity), else None (a test of one condition per model, such as clean top-1)."""
    condition = (entry.get("outcomes") or {}).get("condition")
    params = entry.get("params") or {}
    if condition is None and "transform" in params:
        condition = params["transform"]
    elif condition is None and "stimuli" in params:
        condition = params["stimuli"]
    elif condition is None and {"corruption", "severity"} <= set(params):
        condition = condition_name(str(params["corruption"]), int(params["severity"]))
    return None if condition is None else str(condition)


def not_compared(r: Result, why: str, side: str = "setup") -> Result:
    """``r`` marked not compared: ``why`` is its reason, ``side`` the side that lacks it ("setup", "baseline",
    "candidate")."""
    r.missing = r.reason = why
    r.missing_side = side
    return r


# A comparison's images, as the reason names them.
_WHAT = {"shape_bias": "conflicting cue-conflict images", "category": "stimuli", "summary": "images (each with every condition)"}


def images(c: Compared, old: Outcome, new: Outcome, paired: bool = True) -> int:
    """The images ``c`` is judged on: paired, this run's (the same as the baseline's); unpaired, the smaller side's.
    Shape bias counts its conflicting cue-conflict images (those whose shape and texture differ: the others drop out)."""
    count = lambda o: shape_bias_hits(o.ids, o.values)[0].size if c.kind == "shape_bias" else len(o.ids)  # noqa: E731
    return count(new) if paired else min(count(old), count(new))


def too_few(c: Compared, n: int, minimum: int, paired: bool = True) -> str | None:
    """Why ``c`` is not judged on ``n`` images (paired; unpaired: the smaller side's) when that is fewer than
    ``minimum`` (``min_images``), or None. A change over a handful of images says nothing either way, yet "unchanged"
    on it would pass: a gate passed on almost nothing. Channel shares are weights, not images: never too few."""
    if c.kind == "vector" or n >= minimum:
        return None
    what = _WHAT.get(c.kind, "images")
    counted = f"{n} paired {what}" if paired else f"{n} {what} on the smaller side (unpaired)"
    return (f"{counted}; this comparison needs at least {minimum} (min_images in [audits.baseline], audit.toml): a change "
            "over so few says nothing either way; compare releases scored on more images (a larger --audit-samples for "
            "both) or, knowingly, lower min_images")
