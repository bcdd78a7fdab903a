"""The corruption family in the baseline gate: each condition's error, and the mCE (or the mean error).

A condition (one corruption at one severity, scored on the same images by both releases) is compared by exact
McNemar on the paired right/wrong bits, its error's change with a paired bootstrap interval (as an accuracy, sign
turned). The summary over the conditions both releases scored, the mCE (AlexNet = 100) for an ImageNet-1k label
space or else the mean error, a weighted sum of the conditions' errors (its point values from the corruption
family's own code, ``summarize``, ``own_summary``, and the weights checked against it): p from an exact sign-flip
test on each image's weighted error change (Monte Carlo beyond 20 changed images), the interval from a paired
bootstrap over images (each resample draws the images once for both sides). Holm then runs over the model's whole
comparison set.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from visionaudit.families.baseline import resampling
from visionaudit.families.baseline.statistics import Result, accuracy_change
from visionaudit.families.corruption.imagenet_c import (
    ALL_CORRUPTIONS,
    BENCHMARK,
    SEVERITIES,
    summarize,
)
from visionaudit.families.corruption.scoring import condition_name, own_summary
from visionaudit.files import to_jsonable
from visionaudit.formatting import first_few

ROLE = "corruption"  # the sample set of the corruption family's per-image outcomes (kernels mode)
FOLDER_ROLE = "imagenet-c"  # ... of a downloaded ImageNet-C folder's (--audit-imagenet-c): other images, other measurement
ROLES = (ROLE, FOLDER_ROLE)
SUMMARIES = ("mce", "mean_error")  # the summary compared: mCE for ImageNet-1k label spaces, else the mean error


def comparison_name(corruption: str, severity: int) -> str:
    """The comparison's name and test id: ``corruption_fog_3``."""
    return f"corruption_{corruption}_{severity}"


def parse_condition(condition: str) -> tuple[str, int] | None:
    """``fog-3`` (the corruption family's condition name) -> ``("fog", 3)``; None for another name."""
    name, _, severity = condition.rpartition("-")
    if name in ALL_CORRUPTIONS and severity.isdigit() and int(severity) in SEVERITIES:
        return name, int(severity)
    return None


ALL_CONDITIONS = [(c, s) for c in ALL_CORRUPTIONS for s in SEVERITIES]  # what a report can hold


def scored_by(role: str) -> str:
    """How a side's corruption outcomes were measured, in words (its sample set's role)."""
    return ("a downloaded ImageNet-C folder (--audit-imagenet-c)" if role == FOLDER_ROLE
            else "the corruption kernels on the labelled images")


def not_paired(condition: str, old: Any, new: Any) -> str | None:
    """Why the two sides' outcomes of one condition (``Outcome``s) cannot be paired, or None: a kernels run against an
    ImageNet-C folder run (the ids may even match: the folder keeps the val names), or other images."""
    if old.role != new.role:
        return other_measurement(condition, old.role, new.role)
    if set(old.ids) != set(new.ids):
        return other_images(condition, old.ids, new.ids, new.role)
    return None


def other_measurement(what: str, old_role: str, new_role: str) -> str:
    """Why a corruption comparison cannot pair a kernels run with an ImageNet-C folder run: other images (the
    folder's JPEGs, not the labelled set's) and another measurement, so never compared."""
    return (f"the baseline scored {what} with {scored_by(old_role)}, this run with {scored_by(new_role)}: other images "
            "and another measurement, not compared; run both with --audit-imagenet-c (the same folder) or both without")


def summary_of(imagenet1k: bool) -> str:
    return "mce" if imagenet1k else "mean_error"


def report_summary(report: dict[str, Any], spec: str) -> str | None:
    """Which corruption summary ``spec``'s entries in a saved report stand for (``mce`` or ``mean_error``; None when
    it holds no corruption entry): an entry of a model of its own label space records ``alexnet_normalized`` false."""
    entries = [e for e in report.get("audits", []) if e.get("model") == spec and e.get("audit") == "corruption"
               and not e.get("control")]
    if not entries:
        return None
    return summary_of(all((e.get("metrics") or {}).get("alexnet_normalized", True) is not False for e in entries))


def report_conditions(report: dict[str, Any], specs: Sequence[str]) -> list[tuple[str, int]]:
    """The conditions whose per-image outcomes a saved report holds for any of ``specs`` (kernels or folder mode)."""
    found: set[tuple[str, int]] = set()
    for e in report.get("audits", []):
        o = e.get("outcomes") or {}
        if e.get("model") in specs and o.get("set") in ROLES:
            parsed = parse_condition(str(o.get("condition")))
            if parsed:
                found.add(parsed)
    return sorted(found, key=lambda k: (ALL_CORRUPTIONS.index(k[0]), k[1]))


def error_change(result: Result, ids: Sequence[str], old: np.ndarray, new: np.ndarray, resamples: int, seed: int) -> Result:
    """One condition's top-1 error, paired: exact McNemar on the right/wrong bits (as :func:`accuracy_change`), the
    error and its change (the accuracy's, sign turned) with a paired bootstrap interval."""
    accuracy_change(result, ids, old, new, resamples, seed)
    result.baseline, result.candidate = 1.0 - result.baseline, 1.0 - result.candidate
    result.delta = result.candidate - result.baseline
    lo, hi = result.ci
    result.ci = (0.0 - hi, 0.0 - lo)  # 0.0 - x: no "-0" for an unchanged error
    return result


def _summary(kind: str, errors: dict[str, dict[int, float]]) -> float:
    return summarize(errors, None).mce if kind == "mce" else own_summary(errors, None)["mean_error"]


def summary_keys(old: dict[tuple[str, int], Any], new: dict[tuple[str, int], Any]) -> tuple[list[tuple[str, int]], str]:
    """The benchmark conditions a paired summary uses: those both sides scored, of the corruptions scored at every
    severity both scored (the mCE needs one set of severities); and what was left out, said. No keys, and why, when
    one side is a kernels run and the other an ImageNet-C folder run, or no benchmark condition is in common."""
    roles = ["/".join(sorted({o.role for o in side.values()})) for side in (old, new)]
    if roles[0] != roles[1]:
        return [], other_measurement("its corruption conditions", *roles)
    common = set(old) & set(new)
    severities = sorted({s for c, s in common if c in BENCHMARK})
    used = [c for c in BENCHMARK if all((c, s) in common for s in severities) and severities]
    keys = [(c, s) for c in used for s in severities]
    if not keys:
        return [], ("no benchmark corruption condition was scored by both at the same severities: score the baseline's "
                    "corruptions and severities ([audits.corruption] corruptions, severities) to compare them")
    left = sorted((set(old) | set(new)) - set(keys), key=lambda k: (ALL_CORRUPTIONS.index(k[0]), k[1]))
    bench_left = [k for k in left if k[0] in BENCHMARK]
    said = (f"over the {len(keys)} benchmark conditions both scored ({len(used)} corruptions x severities "
            f"{', '.join(map(str, severities))})")
    if bench_left:
        said += ("; left out, not scored by both or not at every severity: "
                 + first_few([condition_name(*k) for k in bench_left], 8, ", "))
    return keys, said


def summary_weights(kind: str, keys: list[tuple[str, int]]) -> np.ndarray:
    """The summary as a weighted sum of the conditions' errors, one weight per key: the mCE is the mean over
    corruptions of 100 x the errors summed over severities / AlexNet's, so each error weighs 100 / (corruptions x
    AlexNet's summed errors of its corruption); the mean error weighs 1 / conditions. Linear: a resample's change
    is the resampled mean of each image's weighted error change (checked against ``summarize`` at the point)."""
    if kind == "mean_error":
        return np.full(len(keys), 1.0 / len(keys))
    from visionaudit.families.corruption.imagenet_c import ALEXNET_ERRORS

    severities: dict[str, list[int]] = {}
    for c, s in keys:
        severities.setdefault(c, []).append(s)
    return np.array([100.0 / (len(severities) * sum(ALEXNET_ERRORS[c][v - 1] for v in severities[c])) for c, _ in keys])


def summary_change(result: Result, kind: str, keys: list[tuple[str, int]], old: np.ndarray, new: np.ndarray,
                   resamples: int, seed: int, said: str = "", p_resamples: int | None = None) -> Result:
    """The mCE (``kind`` ``mce``) or mean error over ``keys``, paired: ``old`` and ``new`` are (conditions, images)
    right/wrong matrices, rows in ``keys``' order, columns the same images. The summary is a weighted sum of the
    conditions' errors, so the change is the mean of each image's weighted error change: p from the sign-flip test
    on the images whose weighted change is not 0 (swapping an image's two releases' outcomes, all its conditions
    together, turns its change's sign), exact up to ``SIGN_FLIP_EXACT`` such images, else from ``p_resamples``
    random sign patterns (at least ``resamples``: see :func:`resampling.p_resamples_for`); its floor with k changed
    images is 2 / 2^k, that of any valid paired test. The change's 95 % percentile interval comes from a paired
    bootstrap over the images (both sides resampled with the same draws, ``resamples`` draws); with few changed
    images it is approximate, and the verdict rests on the p-value."""
    old, new = np.asarray(old, dtype=np.float64), np.asarray(new, dtype=np.float64)
    n = old.shape[1]

    def summary(bits: np.ndarray) -> float:
        errors: dict[str, dict[int, float]] = {}
        for (c, s), e in zip(keys, 1.0 - bits.mean(axis=1)):
            errors.setdefault(c, {})[s] = float(e)
        return _summary(kind, errors)

    result.baseline, result.candidate = summary(old), summary(new)
    result.delta, result.n = result.candidate - result.baseline, int(n)
    weights = summary_weights(kind, keys)
    per_image = weights @ (old - new)  # each image's weighted error change (new error - old error)
    if n and not math.isclose(float(per_image.mean()), result.delta, rel_tol=1e-9, abs_tol=1e-9):
        raise AssertionError(f"the {kind}'s weights do not reproduce its change ({per_image.mean()} != {result.delta})")
    rng = np.random.default_rng(seed)
    changes = []
    rows = resampling.block_rows(n, 2000)  # blocks bound the (resamples, images) draw matrix's memory
    for start in range(0, resamples if n else 0, rows):
        idx = rng.integers(0, n, size=(min(rows, resamples - start), n))
        changes.append(per_image[idx].mean(axis=1))
    every = np.concatenate(changes) if changes else np.empty(0)
    total = max(resamples, p_resamples or 0)
    # Rounding leaves a tiny remainder where an image's conditions cancel exactly (lost in one, won in another of
    # the same weight): such an image changed nothing.
    changed = per_image[np.abs(per_image) > 1e-12 * max(1.0, float(np.abs(weights).sum()))]
    if every.size:
        lo, hi = np.percentile(every, [2.5, 97.5])
        result.ci = (float(lo), float(hi))
        result.p_value = resampling.sign_flip_p(np.abs(changed), np.sign(changed), total, seed)
        result.p_resamples = None if changed.size <= resampling.SIGN_FLIP_EXACT else total
    else:
        result.p_value = math.nan
    how = "exact" if changed.size <= resampling.SIGN_FLIP_EXACT else f"{total} random sign patterns"
    result.test = (f"sign-flip test on the {changed.size} images whose weighted error changed, {how}; interval: paired "
                   f"bootstrap over images ({resamples} resamples)" + (f", {said}" if said else ""))
    return result


def nothing_right_summary(kind: str, keys: list[tuple[str, int]], ids: Sequence[str]) -> str:
    """Why the summary over ``keys`` is not compared when neither release got an image right under any of them: no
    image could be lost (the sign-flip test sees 0 changed images, "unchanged"), as for one condition (compared.py's
    ``nothing_right``)."""
    summary = "mCE" if kind == "mce" else "mean error"
    return (f"neither release got an image right under any of the {len(keys)} conditions the {summary} averages (0 of "
            f"{len(ids)} in each, both sides): nothing a regression could be measured on; is the model broken "
            "(preprocessing, label map)?")


PROTOCOL_KEYS = ("decode", "jpeg_round_trip", "jpeg_quality", "jpeg_codec", "feed")  # of an entry's metrics ``protocol``
# Reports from before the codec was recorded made their round trip with libjpeg on the CPU (the only codec then).
LEGACY_JPEG_CODEC = "libjpeg"
# The model's own resize/crop of the 224 image: part of the model under test (a release may change its input size, as
# clean top-1 and the transforms are compared across), so recorded and named, never a reason not to compare.
INFORMATION_KEYS = ("feed",)


def protocol_of(metrics: dict[str, Any]) -> dict[str, Any]:
    """How a side's corruption images were made and fed, from a corruption entry's metrics (or the live
    ``Corrupted.protocol_metrics``): the source (``kernels`` or ``ImageNet-C folder``: the folder's path is not the
    protocol) and the decode, JPEG round trip and feed of ``protocol``. Empty when the entry records none."""
    out: dict[str, Any] = {}
    source = metrics.get("source")
    if isinstance(source, str):
        out["source"] = "ImageNet-C folder" if source.startswith("ImageNet-C folder") else source
    described = metrics.get("protocol")
    if isinstance(described, dict):
        out.update({k: described[k] for k in PROTOCOL_KEYS if k in described})
    return to_jsonable(out)  # as a report holds it (tuples as lists): the live side compares equal to its entries


def report_protocol(report: dict[str, Any], spec: str) -> dict[str, Any]:
    """``spec``'s corruption protocol in a saved report (:func:`protocol_of` of its first corruption entry that
    records one; every entry of a run records the same); empty when none does."""
    for e in report.get("audits", []):
        if e.get("model") == spec and e.get("audit") == "corruption" and not e.get("control"):
            found = protocol_of(e.get("metrics") or {})
            if found:
                return found
    return {}


def protocol_difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why two sides' corruption outcomes are not the same measurement (each differing protocol value, both named),
    or None. Only what both sides record is compared (a report that records nothing of it cannot be checked), but for
    the JPEG codec of a round trip made before it was recorded (:data:`LEGACY_JPEG_CODEC`)."""
    old, new = _with_codec(old), _with_codec(new)
    differ = [k for k in old if k in new and k not in INFORMATION_KEYS and old[k] != new[k]]
    if not differ:
        return None
    said = "; ".join(f"{k} {old[k]!r} in the baseline, {new[k]!r} here" for k in differ)
    return (f"the corruptions were measured another way ({said}): not the same measurement; measure them as the "
            "baseline did ([audits.corruption] jpeg_round_trip and jpeg_on_device, the kernels or --audit-imagenet-c)")


def _with_codec(protocol: dict[str, Any]) -> dict[str, Any]:
    if protocol.get("jpeg_round_trip") is True and "jpeg_codec" not in protocol:
        return {**protocol, "jpeg_codec": LEGACY_JPEG_CODEC}
    return protocol


def feed_note(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``; the model's feed ... in the baseline, ... here`` when the two sides' feeds differ (compared all the same:
    the feed is the model's), else empty."""
    if "feed" not in old or "feed" not in new or old["feed"] == new["feed"]:
        return ""
    return f"; the model's feed {old['feed']!r} in the baseline, {new['feed']!r} here (the model's own, compared across)"


def other_images(condition: str, old_ids: Sequence[str], new_ids: Sequence[str], role: str = ROLE) -> str:
    """Why a corruption condition scored on other images than the baseline's is not judged: this run's choice of
    images made it incomparable (a gate never passes on that), and the fix for how both sides were scored (``role``:
    the kernels' labelled subset, ``[audits.corruption] images``, or an ImageNet-C folder, which takes no ``images``)."""
    old_set, new_set = set(old_ids), set(new_ids)
    fix = ("score the same ImageNet-C folder as the baseline (--audit-imagenet-c) with the same --audit-samples and seed"
           if role == FOLDER_ROLE else
           f"set [audits.corruption] images = {len(old_set)} as in the baseline (and the same labelled set and seed)")
    return (f"this run scored {condition} on other images than the baseline ({len(old_set - new_set)} only in the baseline, "
            f"{len(new_set - old_set)} only here; {len(old_set)} images there, {len(new_set)} here): {fix} to compare it")
