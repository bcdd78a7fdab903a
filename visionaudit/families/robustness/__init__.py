"""Transform robustness: accuracy with and without each transform, on the same images, paired.

Per model and transform: ``clean_top1``, ``top1``, ``drop``, ``drop_ci`` (95 % paired bootstrap over
images), ``flip_rate`` (share of images whose prediction changes), ``p_value`` (exact McNemar on the
paired correct/incorrect outcomes) and ``p_value_ttest`` (the study's two-sided t-test on class-wise
accuracies). ``significant`` is Holm-corrected over the transforms of one model
(:func:`holm_over_transforms`); across models, :func:`classes_affected` is the study's per-class test.
"""

from __future__ import annotations

import hashlib
import math
import weakref
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from visionaudit import stats
from visionaudit.data.label_space import names_of
from visionaudit.families import thresholds as f
from visionaudit.families.assessment import NotJudged, PerImage, require_count
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import CountsLabelled, Family, register_family
from visionaudit.families.robustness.transforms import TRANSFORMS
from visionaudit.families.robustness.transforms import get as get_transform
from visionaudit.formatting import first_few
from visionaudit.models.topk import top1_correct

if TYPE_CHECKING:  # torch and the models are imported where images are scored: the descriptor is read on the xdist
    import torch  # controller, which never imports torch (benchmarks/phases.py times the start-up)

    from visionaudit.models.loading import LoadedModel


@dataclass
class TransformResult:
    transform: str
    severity: float
    n_images: int
    clean_top1: float
    top1: float
    drop: float
    drop_ci: tuple[float, float]
    flip_rate: float
    p_value: float
    p_value_ttest: float
    discordant: tuple[int, int]  # (right -> wrong, wrong -> right)
    correct: np.ndarray = field(repr=False)  # per image, under the transform: what a baseline comparison pairs
    changed: np.ndarray = field(repr=False)  # per image: the prediction differs from the clean one
    classwise_clean: list[float] = field(repr=False)
    classwise_transformed: list[float] = field(repr=False)
    predicted: np.ndarray | None = field(default=None, repr=False)  # top-1 output index per image, when the run scored it


def evaluate_transform(
    model: LoadedModel,
    images: torch.Tensor,
    labels: torch.Tensor,
    clean_logits: torch.Tensor,
    transform: str,
    severity: float = 1.0,
    seed: int = 0,
    batch_size: int | None = None,
    resamples: int = 2000,
    sample_ids: Sequence[str] | None = None,
) -> TransformResult:
    """One transform at one severity, paired with the clean pass (``clean_logits``, computed once).

    Random draws are seeded by ``(seed, sample id)`` (``ImageSet.sample_ids``; positions when not given),
    so an image sees the same transform in a subset, a shard or another run.
    """
    from visionaudit.models.inference import predict_logits

    kernel = get_transform(transform)
    ids = list(sample_ids) if sample_ids is not None else list(range(images.shape[0]))
    if len(ids) != images.shape[0]:
        raise ValueError(f"{len(ids)} sample ids for {images.shape[0]} images")
    logits = predict_logits(model, images, batch_size,
                            transform=lambda b, idx: kernel(b, [ids[i] for i in idx.tolist()], seed, severity),
                            what=transform if severity == 1.0 else f"{transform} x{severity:g}")
    clean_pred, pred = clean_logits.argmax(1), logits.argmax(1)
    result = transform_result(transform, severity, (clean_pred == labels).numpy(), (pred == labels).numpy(),
                              (clean_pred != pred).numpy(), labels.numpy(), model.num_classes, resamples, seed)
    return replace(result, predicted=pred.numpy().astype(np.int64))


def transform_result(transform: str, severity: float, before: np.ndarray, after: np.ndarray, changed: np.ndarray,
                     labels: np.ndarray, model_classes: int, resamples: int = 2000, seed: int = 0) -> TransformResult:
    """Every statistic of one transform from per-image data alone: right before and after, whether the
    prediction changed, and the labels (a run and a merge of shards both compute them here)."""
    before, after, changed = (np.asarray(a, dtype=bool) for a in (before, after, changed))
    labels = np.asarray(labels)
    b = int((before & ~after).sum())
    c = int((~before & after).sum())
    num_classes = max(model_classes, int(labels.max()) + 1 if labels.size else 0)
    cw_before = stats.classwise_accuracy(before, labels, num_classes)
    cw_after = stats.classwise_accuracy(after, labels, num_classes)
    return TransformResult(
        transform=transform,
        severity=severity,
        n_images=len(labels),
        clean_top1=float(before.mean()),
        top1=float(after.mean()),
        # (b - c) / n, counted then divided once: clean_top1 - top1 in float is off by a few ulps (23/60 - 20/60 =
        # 0.050000000000000044), enough to fail a drop exactly at its bound
        drop=(b - c) / before.size if before.size else math.nan,
        drop_ci=stats.paired_bootstrap_ci(before, after, resamples=resamples, seed=seed),
        flip_rate=float(changed.mean()),
        p_value=stats.mcnemar_exact(b, c),
        p_value_ttest=stats.ttest_two_sided(cw_before, cw_after),
        discordant=(b, c),
        correct=after,
        changed=changed,
        classwise_clean=cw_before.tolist(),
        classwise_transformed=cw_after.tolist(),
    )


_RESULTS: "weakref.WeakKeyDictionary[LoadedModel, dict[tuple, TransformResult]]" = weakref.WeakKeyDictionary()


def cached_transform(model: LoadedModel, set_key: Any, images: torch.Tensor, labels: torch.Tensor, clean_logits: torch.Tensor,
                     transform: str, severity: float = 1.0, seed: int = 0, resamples: int = 2000,
                     sample_ids: Sequence[str] | None = None) -> TransformResult:
    """:func:`evaluate_transform`, once per (model, image set, transform, severity, seed, resamples) in a
    process: the robustness audit and the baseline comparison share the forward passes."""
    per_model = _RESULTS.setdefault(model, {})
    key = (set_key, transform, severity, seed, resamples)
    if key not in per_model:
        per_model[key] = evaluate_transform(model, images, labels, clean_logits, transform, severity, seed=seed,
                                            resamples=resamples, sample_ids=sample_ids)
    return per_model[key]


def severity_key(severity: float) -> str:
    return f"{severity:g}"


def transform_arrays(results: Sequence[TransformResult], clean: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The per-image data :func:`assess_transform` judges: clean right/wrong, labels, and per severity
    right/wrong and changed predictions under the transform."""
    arrays = {"clean": np.asarray(clean, dtype=bool), "labels": np.asarray(labels)}
    for r in results:
        arrays[f"correct@{severity_key(r.severity)}"] = r.correct
        arrays[f"changed@{severity_key(r.severity)}"] = r.changed
        if r.severity == 1.0 and r.predicted is not None:  # the severity a baseline compares: its images named
            arrays["top1"] = r.predicted
    return arrays


def transform_outcomes(sample_set: Any, results: Sequence[TransformResult], clean_logits: torch.Tensor,
                       labels: torch.Tensor) -> PerImage:
    """What :func:`assess_transform` judges, on ``sample_set``: :func:`transform_arrays` with the clean pass's
    right/wrong from ``clean_logits``."""
    return PerImage(sample_set, transform_arrays(results, top1_correct(clean_logits, labels), labels))


def assess_transform(record: AuditRecord, measured: PerImage, thresholds: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """One transform of one model, at every severity of ``thresholds["severities"]``."""
    sample_set, arrays = measured.sample_set, measured.arrays
    transform = context["transform"]
    # The bounds first: a not_judged entry records what it would have been held to (no image at all included).
    record.threshold("alpha", thresholds["alpha"])  # on every entry with a p-value: Holm's and the per-class test's level
    bound = record.threshold("max_drop", thresholds.entry("max_drop_by_transform", transform, fallback="max_drop"))
    if not len(arrays["labels"]):
        require_count(record, thresholds, 0, "labelled images")  # nothing measured to keep
    results = [transform_result(transform, severity, arrays["clean"], arrays[f"correct@{severity_key(severity)}"],
                                arrays[f"changed@{severity_key(severity)}"], arrays["labels"], context["model_classes"],
                                thresholds["bootstrap_resamples"], context["seed"])
               for severity in thresholds["severities"]]
    main = next((r for r in results if r.severity == 1.0), results[0])
    if main.severity == 1.0:  # what a later release is compared with, image by image
        record.outcomes_on(sample_set, transform, correct=main.correct, top1=arrays.get("top1"))
    for name in ("severity", "n_images", "clean_top1", "top1", "drop_ci", "flip_rate", "p_value", "p_value_ttest", "discordant"):
        record.metric(name, getattr(main, name))
    record.table("classwise_clean", main.classwise_clean)
    record.table("classwise_transformed", main.classwise_transformed)
    if len(results) > 1:
        record.table("severity_sweep",
                     [{"severity": r.severity, "top1": r.top1, "drop": r.drop, "p_value": r.p_value} for r in results])
    record.metric("drop", main.drop)  # all of it kept when not judged (too few images), as measured
    require_count(record, thresholds, len(arrays["labels"]), "labelled images")  # not_judged: the bounds above recorded

    names = context.get("class_names")
    if names is not None:  # the classes by name (a partial report of version 3 has none)
        record.metric("label_space", label_space_key(names))
        record.metric("most_affected_classes", most_affected(main.classwise_clean, main.classwise_transformed, names))
    require_clean_correct(record, thresholds, int(np.count_nonzero(arrays["clean"])), main.clean_top1)
    failed = [] if record.check_max("drop", main.drop, "max_drop", bound) else [f"above max_drop {bound}"]
    message = (f"{context['model']}: {transform} lowers top-1 by {main.drop:.3f} (95% CI "
               f"{main.drop_ci[0]:.3f}..{main.drop_ci[1]:.3f})")
    if names is not None and record.metrics["most_affected_classes"]:
        message += "; most affected classes: " + ", ".join(
            f"{c['class']} {c['clean']:.2f} -> {c['transformed']:.2f}" for c in record.metrics["most_affected_classes"])
    if transform in thresholds["not_significant"]:  # the test's own p: Holm's (`significant`) is known only in the report
        alpha = thresholds["alpha"]
        if record.check_min("p_value", main.p_value, "alpha", alpha) or main.drop <= 0:
            message += f" (McNemar p = {main.p_value:.3g}, not significant at alpha {alpha})"
        else:  # each failed check named: a drop above max_drop alone once read as a significance failure
            failed.append(f"McNemar p = {main.p_value:.3g} is below alpha {alpha} (uncorrected): it must not change top-1 "
                          "significantly (not_significant)")
    if failed:
        raise AssertionError(f"{message}: {'; '.join(failed)}")


def require_clean_correct(record: AuditRecord, thresholds: Mapping[str, Any], correct: int, clean_top1: float) -> None:
    """A transform can only take away images the model got right on the clean pass: over fewer than
    ``min_correct_images`` of them a drop (bounded by clean top-1) and McNemar judge nothing, so the gate is not
    judged rather than passed (a model that gets nothing right has no drop to lose)."""
    minimum = thresholds["min_correct_images"]
    if correct < minimum:
        record.not_judged = (f"{correct} images right on the clean pass (clean top-1 {clean_top1:.3f}): a drop over so few "
                             f"judges nothing; this gate needs at least {minimum} (min_correct_images in audit.toml; is the "
                             "model broken?)")
        raise NotJudged(record.not_judged)


def label_space_key(names: Sequence[str]) -> str:
    """A short fingerprint of a model's class names in output order: the per-class test across models pairs
    only models with the same classes."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def most_affected(clean: Sequence[float], transformed: Sequence[float], names: Sequence[str], k: int = 3) -> list[dict[str, Any]]:
    """The ``k`` classes whose accuracy falls most under the transform (those with images), named."""
    drops = [(c - t, i) for i, (c, t) in enumerate(zip(clean, transformed)) if c == c and t == t and c - t > 0]
    return [{"class": names[i] if i < len(names) else str(i), "clean": clean[i], "transformed": transformed[i]}
            for _, i in sorted(drops, key=lambda d: (-d[0], d[1]))[:k]]


def holm_over_transforms(p_values: dict[str, float], alpha: float = 0.05) -> dict[str, dict[str, float | bool]]:
    """``{transform: {"p_value_holm": adjusted p, "significant": bool}}`` for one model."""
    return {name: {"p_value_holm": p, "significant": sig} for name, (p, sig) in stats.holm(p_values, alpha).items()}


def classes_affected(clean: list[list[float]], transformed: list[list[float]], alpha: float = 0.05) -> dict:
    """The study's per-class test across models: for each class, clean accuracies of the models vs
    transformed ones, two-sided t-test; returns the count and the classes with p < ``alpha``, uncorrected (the
    study's count, kept as such: it describes where a transform bites, it gates nothing), with the number of classes
    tested (those with a p-value) and ``alpha``, so that a reader sees the about alpha x tested classes that
    cross it by chance alone (50 of 1,000 at 0.05). Classes whose accuracies have no spread on either side (every
    model right before and wrong after: [1, 1] vs [0, 0]) get p = 0 (an infinite t), as scipy gives.

    ``clean`` and ``transformed`` hold one class-wise accuracy list per model (two models at least).
    """
    a = np.asarray(clean, dtype=np.float64)
    b = np.asarray(transformed, dtype=np.float64)
    if a.shape[0] < 2:
        raise ValueError("the per-class test across models needs at least two models")
    p_values = [stats.ttest_two_sided(a[:, k], b[:, k]) for k in range(a.shape[1])]
    affected = [k for k, p in enumerate(p_values) if p < alpha]  # NaN (nothing to test) is never below
    return {"classes_affected": len(affected), "classes": affected, "models": int(a.shape[0]),
            "classes_tested": sum(1 for p in p_values if not np.isnan(p)), "alpha": alpha}


def _aggregate(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Holm over each model's transforms (written back into its entries as ``p_value_holm`` and
    ``significant``), and the study's per-class test across models for each transform."""
    by_model: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for e in entries:
        p = e["metrics"].get("p_value")
        if isinstance(p, (int, float)) and not isinstance(p, bool) and "transform" in e["params"]:
            by_model[str(e["model"])][e["params"]["transform"]] = e
    if not by_model:
        return None
    out: dict[str, Any] = {"models": {}, "across_models": {}}
    alphas: dict[str, float] = {}
    for model, per in sorted(by_model.items()):
        alpha = alphas[model] = next((e["thresholds"]["alpha"] for e in per.values() if "alpha" in e["thresholds"]), 0.05)
        holm = holm_over_transforms({t: e["metrics"]["p_value"] for t, e in per.items()}, alpha)
        for t, e in per.items():
            e["metrics"].update(holm[t])
        out["models"][model] = {t: {"drop": per[t]["metrics"].get("drop"), "p_value": per[t]["metrics"]["p_value"], **holm[t]}
                                for t in sorted(per)}
    nan = float("nan")
    as_float = lambda v: nan if v is None or isinstance(v, str) else float(v)  # noqa: E731  (null is NaN)
    for t in sorted({t for per in by_model.values() for t in per}):
        # Only models with the same classes are paired class by class (entries without a label space: by class count).
        groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for per in by_model.values():
            if t in per:
                tables = per[t]["tables"]
                groups[per[t]["metrics"].get("label_space") or len(tables.get("classwise_clean", ()))].append(per[t])
        for key, group in groups.items():
            rows = [e["tables"] for e in group]
            if len(rows) >= 2 and all("classwise_clean" in r and "classwise_transformed" in r for r in rows):
                # The models' configured alpha (docs: p < `alpha`); models judged at different levels: the strictest,
                # their levels recorded beside it (the summary line says whose it is)
                levels = sorted({alphas[str(e["model"])] for e in group})
                result = classes_affected([[as_float(v) for v in r["classwise_clean"]] for r in rows],
                                          [[as_float(v) for v in r["classwise_transformed"]] for r in rows], levels[0])
                if len(levels) > 1:
                    result["alphas"] = levels
                if len(groups) > 1:  # models of several label spaces: one test per label space, its models named
                    result["of_models"] = sorted(str(e["model"]) for e in group)
                    out["across_models"].setdefault(t, {"by_label_space": {}})["by_label_space"][str(key)] = result
                else:
                    out["across_models"][t] = result
    return out


def _summary_lines(report: dict[str, Any]) -> list[str]:
    agg = report["aggregates"].get("robustness", {})
    # A model none of whose robustness tests was judged (too few images: not_judged) is held to nothing: no line.
    judged = {str(e["model"]) for e in report.get("audits", [])
              if e.get("audit") == "robustness" and e["outcome"] in ("passed", "failed")}
    lines = []
    for model, per in agg.get("models", {}).items():
        if model in judged:
            significant = [t for t, r in per.items() if r["significant"]]
            lines.append(f"robustness, {model}: significant drop (Holm, McNemar) under {', '.join(significant)}" if significant
                         else f"robustness, {model}: no transform has a significant drop (Holm, McNemar)")
    for t, r in agg.get("across_models", {}).items():
        for result in (r["by_label_space"].values() if "by_label_space" in r else [r]):
            named = class_labels(report, result.get("of_models"), result["classes"])
            models = f"{result['models']} models" + (f" ({', '.join(result['of_models'])})" if result.get("of_models") else "")
            lines.append(f"robustness across {models}, {t}: {_affected_text(result)}"
                         + (f": {first_few(named, 5, ', ')}" if named else ""))
    return lines


def _affected_text(result: dict[str, Any]) -> str:
    """How many classes crossed the per-class t-test's alpha, said as what it is: uncorrected, with the count chance
    alone gives (a report before the count of classes tested was recorded: without it)."""
    alpha, tested = result.get("alpha", 0.05), result.get("classes_tested")
    of = f" of {tested}" if isinstance(tested, int) else ""
    chance = f", about {alpha * tested:.3g} expected by chance alone" if isinstance(tested, int) else ""
    levels = result.get("alphas") or []
    smallest = f" (the smallest of its models' alpha, {', '.join(f'{a:g}' for a in levels)})" if len(levels) > 1 else ""
    return (f"{result['classes_affected']}{of} classes differ at p < {alpha:g}{smallest} (the study's per-class t-test, "
            f"uncorrected for the classes tested{chance})")


def class_labels(report: dict[str, Any], models: Sequence[str] | None, indices: Sequence[int]) -> list[str]:
    """Class indices as the report's models section names them (the first model of ``models`` that has names)."""
    for model in (models or list(report.get("models", {}))):
        # As written, or rebuilt for a named label space whose names the report omits (timm's ImageNet-21k).
        names, ids = names_of((report.get("models", {}).get(model) or {}).get("classes")) or (None, None)
        if names:
            return [str(i) if i >= len(names) else f"{names[i]} ({ids[i]})" if ids else names[i] for i in indices]
    return [str(i) for i in indices]


FAMILY = register_family(Family(
    name="robustness",
    gates="top-1 under nine transforms (rotation, brightness, histogram equalization, horizontal flip, translation, zoom, "
          "perspective, vertical flip, HistEq+Zoom+Brightness), paired with the shared clean pass",
    key_metric="drop",
    higher_is_better=False,
    counts_labelled=CountsLabelled(),
    splits_by_image=True,
    assessors={"transform": assess_transform},
    directions={"top1": True, "clean_top1": True, "flip_rate": False},
    metrics=("clean_top1", "top1", "drop_ci", "flip_rate", "p_value", "p_value_ttest", "significant", "p_value_holm"),
    thresholds={
        "max_drop": f.signed_fraction("default bound on the top-1 drop of every transform", default=0.5),
        "max_drop_by_transform": f.per_name(TRANSFORMS, f.signed_fraction(), "per transform, overriding max_drop",
                                            default={"vertical_flip": 0.7, "histeq_zoom_brightness": 0.7,
                                                     "horizontal_flip": 0.05}),
        "not_significant": f.names(TRANSFORMS, "transforms whose drop must not be significant (McNemar)",
                                   default=["horizontal_flip"]),
        "alpha": f.level("significance level of the McNemar tests, Holm's correction and the per-class test across models",
                         default=0.05),
        "severities": f.numbers("severity sweep; 1.0 is the documented default magnitude", minimum=0.0, exclusive_minimum=True,
                                default=[1.0]),
        "bootstrap_resamples": f.count("resamples of the paired bootstrap interval", default=2000),
        "min_images": f.min_images(default=50),
        "min_correct_images": f.count("fewer images right on the clean pass than this (the images a transform can take "
                                      "away) and the gate is not judged (outcome not_judged): a drop over a handful of "
                                      "right images, or none, says nothing", default=20),
    },
    aggregate=_aggregate,
    summary_lines=_summary_lines,
    html_section="visionaudit.html.sections:robustness",
))
