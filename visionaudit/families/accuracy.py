"""Clean accuracy: top-k of logits against the labels, in the model's own label space; the family under every
other audit.

Top-1 is the gate under every other audit; beside it, top-5 (only when the model has more than five classes:
with five or fewer it is always 1), the accuracy of each class (named by the model's class names) and the
balanced accuracy (the mean of the per-class accuracies over the classes that have images), each with a bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from visionaudit.data.image_sets import subset_of
from visionaudit.families import thresholds as f
from visionaudit.families.assessment import PerImage, require_count
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import CountsLabelled, Family, register_family
from visionaudit.formatting import first_few
from visionaudit.models.topk import (  # noqa: F401 (public here too)
    top1_accuracy,
    top1_correct,
    topk_accuracy,
    topk_hits,
)
from visionaudit.stats import wilson_interval

if TYPE_CHECKING:  # only tensors' own methods are called: the descriptor is read on the xdist controller without torch
    import torch

TOP5_MIN_CLASSES = 6  # top-5 of five classes or fewer is every class: always right, so it is not recorded


def clean_outcomes(sample_set: Any, logits: torch.Tensor, labels: torch.Tensor) -> PerImage:
    """What :func:`assess_clean_top1` judges: per image, top-1 right (``correct``), the label among the 5
    largest logits (``top5``, only when there are more than 5 classes), the label (``labels``, the output
    index) and the top-1 output index (``top1``), on ``sample_set`` (the images ``logits`` scored)."""
    arrays = {"correct": top1_correct(logits, labels), "labels": np.asarray(labels.cpu(), dtype=np.int64),
              "top1": np.asarray(logits.argmax(1).cpu(), dtype=np.int64)}
    if logits.shape[1] >= TOP5_MIN_CLASSES:
        arrays["top5"] = topk_hits(logits, labels, 5).cpu().numpy()
    return PerImage(sample_set, arrays)


def per_class(correct: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{class name: {"index", "n_images", "correct", "accuracy"}}`` for every class with images, in output order."""
    correct, labels = np.asarray(correct, dtype=bool), np.asarray(labels, dtype=np.int64)
    totals = np.bincount(labels, minlength=len(class_names))
    hits = np.bincount(labels, weights=correct.astype(np.float64), minlength=len(class_names))
    return {str(class_names[i]): {"index": i, "n_images": int(totals[i]), "correct": int(hits[i]),
                                  "accuracy": float(hits[i] / totals[i])}
            for i in range(len(totals)) if totals[i] > 0}


def balanced_accuracy(classes: Mapping[str, Mapping[str, Any]]) -> float:
    """The mean of the per-class accuracies over the classes that have images (each class counts once)."""
    return float(np.mean([c["accuracy"] for c in classes.values()])) if classes else float("nan")


def worst_classes(classes: Mapping[str, Mapping[str, Any]], k: int = 5, gate: int = 0) -> list[str]:
    """The ``k`` classes of lowest accuracy (more images first among ties, then output order), named; a class
    with fewer than ``gate`` images (``min_class_images``: not held to ``min_class_accuracy``) marked so."""
    ranked = sorted(classes.items(), key=lambda kv: (kv[1]["accuracy"], -kv[1]["n_images"], kv[1]["index"]))
    return [f"{name} {c['accuracy']:.2f} ({c['correct']}/{c['n_images']}{', too few to gate' if c['n_images'] < gate else ''})"
            for name, c in ranked[:k]]


def top1_shortfall(k: int, n: int, bound: float, preprocessing: Any, whole: int | None = None, confused: str = "") -> str:
    """What a top-1 of ``k`` right of ``n`` below ``bound`` says. The gate holds the measured top-1 to the bound (its
    plain meaning); this says whether the shortfall could be chance: within the 95 % Wilson interval, a correct
    model of accuracy ``bound`` falls this low on ``n`` images often (lite0, 0.879 on all 1,000 images, gets 0.840
    on a 50-image subset), so more images decide: a larger subset or the full set when the ``n`` were drawn from
    ``whole`` images (--audit-samples), else only a larger labelled set; above the interval, look at the
    preprocessing or the class order, the class order first where ``confused`` (:func:`wholesale_confusions`) names
    classes taken wholesale for others."""
    low, high = wilson_interval(k, n)
    interval = f"{k}/{n} right, 95 % Wilson interval [{low:.3f}, {high:.3f}]"
    if bound <= high:
        decide = (f"--audit-samples N (up to {whole:,}) or the full set decide" if whole is not None and whole > n
                  else "a larger labelled set decides")
        return f"{interval} includes it: the shortfall is within sampling error on {n} images; {decide}"
    if confused:  # the order first (its mark), yet names in order do not clear the preprocessing: both can be wrong
        return (f"{interval}, all below it: {confused}: is its class list in the model's output order? If it is, check its "
                f"preprocessing: {preprocessing}")
    return f"{interval}, all below it: check its preprocessing or its class order: {preprocessing}"


def wholesale_confusions(labels: np.ndarray, top1: np.ndarray | None, names: list[str], most: int = 3) -> str:
    """The classes whose images are mostly (over half, at least 3 images) predicted as one other class, that class
    taken by one of them only and its own images (if any) not mostly predicted as it: the mark of a class list out of
    the model's output order (two names swapped), not of a weak model or a wrong preprocessing (those spread their
    errors, or pull several classes to one that keeps its own images).
    '' when there are none or ``top1`` is not recorded."""
    if top1 is None or not len(labels):
        return ""
    taken: dict[int, list[tuple[int, int, int]]] = {}
    right: dict[int, bool] = {}  # a class whose own images are mostly predicted as it
    for c in np.unique(labels):
        predicted = top1[labels == c]
        values, counts = np.unique(predicted, return_counts=True)
        d, k = int(values[counts.argmax()]), int(counts.max())
        right[int(c)] = 2 * int(np.sum(predicted == c)) > len(predicted)
        if d != c and len(predicted) >= 3 and 2 * k > len(predicted):
            taken.setdefault(d, []).append((int(c), k, len(predicted)))
    # The name a class is taken for is not the right name of images of its own (a weak model's pull to one class)
    pairs = [(c, d, k, n) for d, cs in taken.items() if len(cs) == 1 and not right.get(d, False) for c, k, n in cs]
    if not pairs:
        return ""
    return first_few([f"{names[c]}'s images are mostly predicted {names[d]} ({k}/{n})" for c, d, k, n in sorted(pairs)],
                     most, ", ")


def balanced_shortfall(balanced: float, bound: float, classes: Mapping[str, Mapping[str, Any]], k: int, n: int,
                       gate: int) -> str:
    """What a balanced accuracy below ``bound`` says. With as many images in every class it *is* top-1 (``k`` of
    ``n``), the same images: a bound inside top-1's Wilson interval is within the same sampling error, and a worst
    list of classes of one or two images each would read as a second finding. With classes of unequal sizes no
    interval is given: per-class proportions of a few images each (0/1, 1/1) have no sound normal approximation."""
    head = f"balanced accuracy {balanced:.3f} (mean over {len(classes)} classes) is below min_balanced_accuracy {bound}"
    sizes = {c["n_images"] for c in classes.values()}
    if len(sizes) == 1 and bound <= wilson_interval(k, n)[1]:
        return (f"{head}: the same {n} images, {sizes.pop()} per class, so it equals top-1 {k}/{n}: likewise within "
                f"sampling error")
    return f"{head}; worst: {', '.join(worst_classes(classes, gate=gate))}"


def assess_clean_top1(record: AuditRecord, measured: PerImage, thresholds: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """``measured.arrays``: ``correct`` (top-1 right, per image), ``top5`` (label among the 5 largest logits; absent
    for 5 classes or fewer) and ``labels`` (output indices); ``context["class_names"]``: the model's classes
    as people read them, in output order (absent in a report of version 3: the classes are named by index)."""
    sample_set, arrays = measured.sample_set, measured.arrays
    correct = arrays["correct"]
    record.metric("n_images", len(correct))
    # labels: per-class comparisons; top1 (absent in a shard part of schema 5): the images a release lost, named
    record.outcomes_on(sample_set, "clean", correct=correct, labels=arrays.get("labels"), top1=arrays.get("top1"))
    # Measured before the count is checked: a not_judged report keeps them (a baseline for a run of its size).
    top1 = record.metric("clean_top1", float(correct.mean()) if len(correct) else float("nan"))
    top5 = record.metric("top5", float(arrays["top5"].mean()) if len(correct) else float("nan")) if "top5" in arrays else None
    classes: dict[str, dict[str, Any]] | None = None
    if "labels" in arrays:
        labels = arrays["labels"]
        names = context.get("class_names") or [str(i) for i in range(int(labels.max()) + 1 if labels.size else 0)]
        classes = per_class(correct, labels, names)
        record.table("per_class", classes)
        record.metric("n_classes", len(names))
        record.metric("classes_with_images", len(classes))
        balanced = record.metric("balanced_accuracy", balanced_accuracy(classes))
        judged = {n: c for n, c in classes.items() if c["n_images"] >= thresholds["min_class_images"]}
        record.threshold("min_class_images", thresholds["min_class_images"])
        record.metric("classes_judged", len(judged))
        lowest = min(judged.items(), key=lambda kv: (kv[1]["accuracy"], kv[1]["index"])) if judged else None
        record.metric("lowest_class", None if lowest is None else {"class": lowest[0], **lowest[1]})
        below = [n for n, c in judged.items() if c["accuracy"] < thresholds["min_class_accuracy"]]
        record.threshold("min_class_accuracy", thresholds["min_class_accuracy"])
        record.metric("classes_below", below)
    # min_top1 is recorded before the count is checked, so that a not_judged entry shows the bound it was spared.
    min_top1 = record.threshold("min_top1", thresholds["min_top1"])
    # Unset, min_balanced_accuracy is min_top1; recorded now too, so a not_judged row shows the same bounds.
    min_balanced = min_top1 if thresholds.get("min_balanced_accuracy") is None else thresholds["min_balanced_accuracy"]
    if classes is not None:
        record.threshold("min_balanced_accuracy", min_balanced)
    # Unset, min_top5 gates nothing (top-5 is recorded) and min_balanced_accuracy is min_top1: the bounds added
    # with per-class accuracy never fail a model that min_top1 passes on a set of one image per class.
    min_top5 = thresholds.get("min_top5")
    if top5 is None and min_top5 is not None:  # no top-5 array (clean_outcomes): five classes or fewer
        n_classes = len(context.get("class_names") or []) or "five or fewer"
        record.not_applied("min_top5", f"the model has {n_classes} classes: every label is among its top five, so "
                                       "top-5 is always 1.0 and holds it to nothing")
    elif min_top5 is not None:  # before the count, as min_top1: a not_judged entry shows it too
        record.threshold("min_top5", min_top5)
    require_count(record, thresholds, len(correct), "labelled images")
    failures = []
    if top5 is not None and min_top5 is not None and not record.check_min("top5", top5, "min_top5", min_top5):
        failures.append(f"top-5 {top5:.3f} is below min_top5 {min_top5}")
    top1_ok = record.check_min("clean_top1", top1, "min_top1", min_top1)
    right = int(np.sum(correct))
    if classes is not None:
        if not record.check_min("balanced_accuracy", balanced, "min_balanced_accuracy", min_balanced):
            failures.append(balanced_shortfall(balanced, min_balanced, classes, right, len(correct),
                                               thresholds["min_class_images"]))
        if below:
            failures.append(f"{len(below)} of {len(judged)} classes with at least {thresholds['min_class_images']} images are "
                            f"below min_class_accuracy {thresholds['min_class_accuracy']}: "
                            f"{', '.join(worst_classes({n: judged[n] for n in below}, 10))}")
    if not top1_ok:
        confused = wholesale_confusions(arrays["labels"], arrays.get("top1"), names) if classes is not None else ""
        why = top1_shortfall(right, len(correct), min_top1, context["preprocessing"], subset_of(sample_set.name), confused)
        raise AssertionError(f"{context['model']}: clean top-1 {top1:.3f} on {context['set_name']} is below min_top1 "
                             f"{min_top1} ({why})"
                             + "".join(f"; {m}" for m in failures))
    if failures:
        raise AssertionError(f"{context['model']} on {context['set_name']}: " + "; ".join(failures))


def _summary_lines(report: dict[str, Any]) -> list[str]:
    """Per model: balanced accuracy over its classes, and its worst classes by name: of every class with images,
    as the balanced accuracy counts them, those with fewer than ``min_class_images`` (not gated) marked so."""
    lines = []
    for e in report.get("audits", []):
        if e.get("audit") != "accuracy" or e.get("control") or "balanced_accuracy" not in e.get("metrics", {}):
            continue
        m, classes = e["metrics"], e.get("tables", {}).get("per_class") or {}
        enough = e.get("thresholds", {}).get("min_class_images", 1)
        text = (f"accuracy, {e['model']}: balanced accuracy {m['balanced_accuracy']:.3f} over {len(classes)} classes with images"
                + (f" (of {m['n_classes']})" if m.get("n_classes") and m["n_classes"] != len(classes) else ""))
        lowest = min((c["accuracy"] for c in classes.values()), default=None)
        tied = sum(c["accuracy"] == lowest for c in classes.values())
        worst = ", ".join(worst_classes(classes, 3, gate=enough))  # more images first among ties: the surer ones
        text += ("" if lowest is None else f"; worst: {worst}" if tied <= 3 else
                 f"; worst: {tied:,} classes at {lowest:.2f}, among them {worst}")  # three of many would read as the three
        lines.append(text)
    return lines


FAMILY = register_family(Family(
    name="accuracy",
    gates="clean top-1 on labelled natural images, through the model's own preprocessing",
    key_metric="clean_top1",
    higher_is_better=True,
    counts_labelled=CountsLabelled(),
    splits_by_image=True,
    assessors={"clean_top1": assess_clean_top1},
    directions={"top5": True, "balanced_accuracy": True, "class_accuracy": True},  # class_accuracy: the baseline's
    metrics=("top5", "balanced_accuracy", "per_class", "lowest_class", "n_images"),
    thresholds={
        "min_top1": f.fraction("clean top-1 at least this", default=0.70),
        # No defaults: unset, top-5 is recorded, not gated, and balanced accuracy is held to min_top1.
        "min_top5": f.fraction("clean top-5 at least this (judged only for more than 5 classes; unset: recorded, "
                               "not gated)"),
        "min_balanced_accuracy": f.fraction("balanced accuracy (the mean of the per-class accuracies) at least this "
                                            "(unset: min_top1's value)"),
        "min_class_accuracy": f.fraction("every class with at least min_class_images images at least this accurate "
                                         "(0: per-class accuracy recorded, not gated)", default=0.0),
        "min_class_images": f.count("a class's accuracy is held to min_class_accuracy only with this many images",
                                    default=10),
        "min_images": f.min_images(default=50),
    },
    summary_lines=_summary_lines,
    html_section="visionaudit.html.sections:accuracy",
))


def class_names(model: Any) -> list[str]:
    """How the report and messages name a model's classes, in output order (``LabelSpace.label``: the name, with
    the WNID for ImageNet-1k); output indices when it has no label space."""
    space = getattr(model, "label_space", None)
    if space is None:
        return [str(i) for i in range(model.num_classes)]
    return [space.label(i) for i in range(len(space))]
