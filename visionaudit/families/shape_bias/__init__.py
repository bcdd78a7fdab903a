"""Shape bias on cue-conflict stimuli, computed as Geirhos et al. (ICLR 2019) compute it.

Images whose shape and texture categories agree are dropped; among the rest, a decision equal to the
shape category is a shape hit, one equal to the texture category a texture hit, and
``shape_bias = shape_hits / (shape_hits + texture_hits)``; anything else (another category, or no
response in human data) counts as neither.

**Stimulus geometry.** The published protocol (texture-vs-shape, and the model-vs-human toolbox after
it) feeds the 224x224 stimuli to every model unchanged: no resize, no crop, only the normalization.
That is the default here (``native``). A model that cannot take 224x224 input (a ViT with fixed position
embeddings) sets ``stimulus_geometry = "model_input"``: the whole stimulus is resized to its input size
with its interpolation, still uncropped. The natural-image geometry (resize 256, crop 224) is never
used for stimuli: it cuts away their border and moves the number (lite0: 0.2195 cropped, 0.2405 native).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from visionaudit import stats
from visionaudit.data.imagenet16 import AGGREGATIONS, decide
from visionaudit.data.imagenet16 import categories as category_names
from visionaudit.errors import DataError, ModelOutputError
from visionaudit.families import thresholds as f
from visionaudit.families.assessment import NotApplicable, PerImage, require_count
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import Family, register_family
from visionaudit.families.shape_bias.categories import (  # noqa: F401 (public here)
    ShapeCategories,
    check_category_map,
    shape_categories,
)
from visionaudit.families.shape_bias.consistency import observer_consistency
from visionaudit.preprocessing import Geometry, whole_image

if TYPE_CHECKING:  # torch and the models are imported where images are scored: the descriptor is read on the xdist
    import torch  # controller, which never imports torch (benchmarks/phases.py times the start-up)

    from visionaudit.models.loading import LoadedModel

# Published reference points, as fractions. The CNNs' are the torchvision models' values from the README of
# github.com/rgeirhos/texture-vs-shape (Geirhos et al. 2019's repository): "standard ResNet-50 21.39%", SIN-trained
# model_A 81.37%, and "using torchvision ... AlexNet is 25.3%, for VGG-16 it is 9.2%". They are NOT the paper's
# Fig. 4 values for AlexNet and VGG-16 (Caffe models, 42.9 % and 17.2 %): do not "correct" them to those. Humans:
# the paper's observers (their raw data give 95.8 %, the mean of 10 subjects).
REFERENCES = {
    "humans (average)": 0.96,
    "AlexNet": 0.253,
    "torchvision ResNet-50": 0.214,
    "VGG-16": 0.092,
    "ResNet-50 trained on Stylized-ImageNet": 0.814,
}
REFERENCES_SOURCE = ("Geirhos et al. 2019; humans: the paper's observers; CNNs: its texture-vs-shape README, "
                     "torchvision models")
STIMULUS_SIZE = 224  # the stimuli's own size (cue-conflict, edges, filled silhouettes)
GEOMETRIES = ("native", "model_input")
CHANCE_CUE = 2 / 16  # a uniform random decision hits the shape or the texture of a conflict image
CHANCE_CATEGORY = 1 / 16  # ... or the category of a shape-only image
CI_METHOD = "wilson"


@dataclass(frozen=True)
class ShapeBiasResult:
    shape_bias: float  # NaN when there is neither a shape nor a texture hit
    shape_hits: int
    texture_hits: int
    n_conflict: int  # images whose shape and texture differ
    n_excluded: int  # images whose shape and texture agree
    shape_fraction: float
    texture_fraction: float
    neither_fraction: float  # another category, or no response
    shape_bias_ci: tuple[float, float]  # 95 % Wilson interval of shape_hits / (shape_hits + texture_hits)
    per_category: dict[str, dict[str, Any]]  # shape category -> shape_hits, texture_hits, n_conflict, shape_bias
    n_no_response: int = 0  # conflict images without a response (human data: "na")
    cue_information_p: float = field(default=math.nan)  # P(shape+texture hits >= observed | uniform random decisions)

    def to_dict(self) -> dict:
        return asdict(self)


def _ratio(a: int, b: int) -> float:
    return a / (a + b) if a + b else math.nan


def shape_bias(decisions: Sequence[str | None], shapes: Sequence[str], textures: Sequence[str]) -> ShapeBiasResult:
    """``decisions``: a category per image, or None for no response (counted as neither)."""
    if not (len(decisions) == len(shapes) == len(textures)):
        raise ValueError(f"{len(decisions)} decisions for {len(shapes)} shapes and {len(textures)} textures")
    shape_hits = texture_hits = n_conflict = no_response = 0
    per: dict[str, list[int]] = {}
    for decision, shape, texture in zip(decisions, shapes, textures):
        if shape == texture:
            continue
        n_conflict += 1
        hits = per.setdefault(shape, [0, 0, 0])
        hits[2] += 1
        if decision is None:
            no_response += 1
        elif decision == shape:
            shape_hits += 1
            hits[0] += 1
        elif decision == texture:
            texture_hits += 1
            hits[1] += 1
    if n_conflict == 0:
        raise DataError("no cue-conflict images left after dropping those whose shape and texture agree")
    return ShapeBiasResult(
        shape_bias=_ratio(shape_hits, texture_hits),
        shape_hits=shape_hits,
        texture_hits=texture_hits,
        n_conflict=n_conflict,
        n_excluded=len(decisions) - n_conflict,
        shape_fraction=shape_hits / n_conflict,
        texture_fraction=texture_hits / n_conflict,
        neither_fraction=(n_conflict - shape_hits - texture_hits) / n_conflict,
        shape_bias_ci=stats.wilson_interval(shape_hits, shape_hits + texture_hits),
        per_category={c: {"shape_hits": s, "texture_hits": t, "n_conflict": n, "shape_bias": _ratio(s, t)}
                      for c, (s, t, n) in sorted(per.items())},
        n_no_response=no_response,
        cue_information_p=stats.binomial_greater_p(shape_hits + texture_hits, n_conflict, CHANCE_CUE),
    )


def category_hits(decisions: Sequence[str], categories: Sequence[str]) -> int:
    """How many decisions equal the image's category (shape-only stimuli)."""
    if len(decisions) != len(categories):
        raise ValueError(f"{len(decisions)} decisions for {len(categories)} images")
    return sum(d == c for d, c in zip(decisions, categories))


def above_chance_p(hits: int, n: int, chance: float = CHANCE_CATEGORY) -> float:
    """One-sided binomial p-value that ``hits`` of ``n`` is above what ``chance`` per image gives."""
    return stats.binomial_greater_p(hits, n, chance)


def stimulus_geometry(model: LoadedModel, mode: str = "native") -> Geometry:
    """How the stimuli reach ``model`` (see the module docstring); ``native`` refuses a model that
    cannot take them at 224x224, naming the option that resizes them."""
    if mode not in GEOMETRIES:
        raise ValueError(f"stimulus geometry must be one of {', '.join(GEOMETRIES)}, got {mode!r}")
    if mode == "model_input":
        return whole_image(model.input_size, model.preprocessing.interpolation)
    if model.input_size != STIMULUS_SIZE:
        import torch

        from visionaudit.models.probe import as_logits

        x = torch.zeros(1, model.preprocessing.channels, STIMULUS_SIZE, STIMULUS_SIZE, device=model.device)
        try:
            with torch.inference_mode():
                out = as_logits(model.module(model.preprocessing.normalize(x)))
            ok = isinstance(out, torch.Tensor) and out.shape == (1, model.num_classes)
            reason = f"it returned {tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}"
        except Exception as e:  # the model's own error, whatever its type
            ok, reason = False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
        if not ok:
            raise ModelOutputError(
                f"{model.id} cannot take the {STIMULUS_SIZE}x{STIMULUS_SIZE} stimuli unchanged, as the published protocol "
                f"feeds them ({reason}); to resize them (uncropped) to its {model.input_size}x{model.input_size} input instead, "
                f'set stimulus_geometry = "model_input" under [models."{model.spec.canonical}".shape_bias] in audit.toml'
            )
    return whole_image(STIMULUS_SIZE, model.preprocessing.interpolation)


def stimulus_context(model: LoadedModel, mode: str, geometry: Geometry, aggregation: str,
                     categories: ShapeCategories | None = None) -> dict[str, Any]:
    """What the assessors record of how the stimuli were scored (a later comparison must share it), and where the
    16-category mapping came from when it is not ImageNet-1k's."""
    context = {"model": model.id, "stimulus_geometry": {"mode": mode, **geometry.to_dict()}, "aggregation": aggregation}
    if categories is not None and not categories.imagenet:
        context["category_mapping"] = categories.to_dict()
    return context


def categories_or_reason(label_space: Any, category_map: Mapping[str, str] | None = None) -> tuple[ShapeCategories | None, str]:
    """:func:`shape_categories`, or None with the reason the family does not apply to this label space."""
    try:
        return shape_categories(label_space, category_map), ""
    except NotApplicable as e:
        return None, str(e)


def _decide(logits: torch.Tensor, aggregation: str, categories: ShapeCategories | None) -> list[str]:
    return decide(logits, aggregation) if categories is None else categories.decide(logits, aggregation)


def cue_conflict_outcomes(sample_set: Any, image_set: Any, logits: torch.Tensor, aggregation: str,
                          categories: ShapeCategories | None = None) -> PerImage:
    """What :func:`assess_shape_bias` judges: the 16-way decision from ``logits`` (through ``categories``, the
    model's classes of each category; ImageNet-1k's when None), the shape category and the texture of each
    cue-conflict image of ``image_set`` (``sample_set`` names them)."""
    return PerImage(sample_set, {"decisions": _decide(logits, aggregation, categories), "categories": image_set.categories,
                                 "textures": image_set.textures})


def shape_only_outcomes(sample_set: Any, image_set: Any, logits: torch.Tensor, aggregation: str,
                        categories: ShapeCategories | None = None) -> PerImage:
    """What :func:`assess_shape_only` judges: the 16-way decision and the category of each shape-only stimulus."""
    return PerImage(sample_set, {"decisions": _decide(logits, aggregation, categories), "categories": image_set.categories})


def _summary_lines(report: dict) -> list[str]:
    if not any(a["audit"] == "shape_bias" and a["metrics"].get("shape_bias") is not None for a in report["audits"]):
        return []
    lines = [f"shape bias, published ({REFERENCES_SOURCE}): " + ", ".join(f"{k} {v:.1%}" for k, v in REFERENCES.items())]
    consistency = [a for a in report["audits"] if a["audit"] == "shape_bias" and not a.get("control")
                   and isinstance(a["metrics"].get("human_error_consistency"), (int, float))]
    if consistency:
        observers = consistency[0]["metrics"].get("observers_error_consistency")
        lines.append("error consistency with the human observers (mean kappa, Geirhos et al. 2020): "
                     + ", ".join(f"{a['model']} {a['metrics']['human_error_consistency']:.3f}" for a in consistency)
                     + (f"; the observers with each other {observers:.3f}" if isinstance(observers, (int, float)) else ""))
    return lines


def _record_geometry(record: AuditRecord, context: Mapping[str, Any]) -> None:
    record.metric("stimulus_geometry", context["stimulus_geometry"])  # a later comparison must share the mode
    record.metric("aggregation", context["aggregation"])  # ... and how 1,000 classes become 16 categories
    if context.get("category_mapping"):  # a model of its own label space: which of its classes make each category
        record.metric("category_mapping", context["category_mapping"])


def _record_consistency(record: AuditRecord, ids: Sequence[str], decisions: list[str], shapes: list[str],
                        observers: Mapping[str, Any]) -> None:
    """The model's error consistency with each human observer and their mean, beside the observers' own
    (visionaudit/families/shape_bias/consistency.py)."""
    found = observer_consistency(ids, decisions, shapes, observers)
    record.metric("human_error_consistency", found["mean"])
    record.metric("human_error_consistency_ci", found["mean_ci"])
    record.metric("observers_error_consistency", found["observers_mean"])
    record.metric("error_consistency_detail", found["detail"])
    record.table("error_consistency", found["per_observer"])
    record.table("observers_error_consistency", found["observers_pairwise"])


def assess_shape_bias(record: AuditRecord, measured: PerImage, thresholds: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """``measured.arrays``: 16-way ``decisions``, shape ``categories`` and ``textures`` per cue-conflict image."""
    sample_set, arrays = measured.sample_set, measured.arrays
    model = context["model"]
    _record_geometry(record, context)
    decisions = list(arrays["decisions"])
    record.outcomes_on(sample_set, "cue-conflict", decisions=decisions)
    result = shape_bias(decisions, list(arrays["categories"]), list(arrays["textures"]))
    for name in ("shape_bias_ci", "shape_hits", "texture_hits", "n_conflict", "shape_fraction", "texture_fraction",
                 "neither_fraction", "per_category"):
        record.metric(name, getattr(result, name))
    record.metric("shape_bias_ci_method", CI_METHOD)
    record.table("references", REFERENCES)
    observers = context.get("observers")
    if observers and observers.get("absent"):  # optional data: why the error consistency is not there, and the fix
        record.metric("error_consistency_detail", {"reason": observers["absent"]})
    elif observers:  # recorded, not judged: no bound by default
        _record_consistency(record, sample_set.ids, decisions, list(arrays["categories"]), observers)
    record.metric("shape_bias", result.shape_bias)  # kept when not judged (too few images), as measured
    # The bounds before the count: a not_judged entry records what it would have been held to, as every family's does.
    alpha = record.threshold("chance_alpha", thresholds["chance_alpha"])
    record.threshold("min", thresholds["min"])
    record.threshold("max", thresholds["max"])
    require_count(record, thresholds, result.n_conflict, "cue-conflict images with conflicting cues")
    informative = record.metric("cue_information_p", result.cue_information_p) < alpha
    in_range = record.check_min("shape_bias", result.shape_bias, "min", thresholds["min"])
    in_range &= record.check_max("shape_bias", result.shape_bias, "max", thresholds["max"])
    hits = result.shape_hits + result.texture_hits
    if not informative:
        raise AssertionError(
            f"{model}: its decisions carry no cue information: {hits} of {result.n_conflict} decisions hit the shape "
            f"or the texture ({hits / result.n_conflict:.3f}), where uniform random decisions hit {CHANCE_CUE:.3f} "
            f"({CHANCE_CUE * result.n_conflict:.0f} expected); one-sided binomial p = {result.cue_information_p:.3g}, "
            f"not below {alpha}. Its shape bias ({result.shape_bias:.3f}) means nothing")
    if math.isnan(result.shape_bias):
        raise AssertionError(f"{model} made neither a shape nor a texture decision on {result.n_conflict} images")
    if not in_range:
        raise AssertionError(
            f"{model}: shape bias {result.shape_bias:.3f} (95% {CI_METHOD} "
            f"{result.shape_bias_ci[0]:.3f}..{result.shape_bias_ci[1]:.3f}) is outside [{thresholds['min']}, "
            f"{thresholds['max']}] "
            f"({result.shape_hits} shape vs {result.texture_hits} texture decisions of {result.n_conflict})")


def assess_shape_only(record: AuditRecord, measured: PerImage, thresholds: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """16-way accuracy on shape-only stimuli (``context["stimuli"]``: edges or filled-silhouettes)."""
    sample_set, arrays = measured.sample_set, measured.arrays
    stimuli, metric = context["stimuli"], context["metric"]
    _record_geometry(record, context)
    decisions = list(arrays["decisions"])
    record.outcomes_on(sample_set, stimuli, decisions=decisions)
    hits = category_hits(decisions, list(arrays["categories"]))
    accuracy = hits / len(decisions) if decisions else math.nan
    record.metric("n_images", len(decisions))
    record.metric(metric, accuracy)  # kept when not judged (too few images), as measured
    alpha = record.threshold("chance_alpha", thresholds["chance_alpha"])  # before the count, as above
    bound = record.threshold(f"min_{metric}", thresholds[f"min_{metric}"])
    require_count(record, thresholds, len(decisions), f"{stimuli} stimuli")
    p = record.metric("p_above_chance", above_chance_p(hits, len(decisions), CHANCE_CATEGORY))
    ok = record.check_min(metric, accuracy, f"min_{metric}", bound)
    if not (ok and p < alpha):
        raise AssertionError(
            f"{context['model']}: 16-way accuracy {accuracy:.3f} on {stimuli} ({hits} of {len(decisions)}), where chance gives "
            f"{CHANCE_CATEGORY:.4f}: one-sided binomial p = {p:.3g} (must be below {alpha}); min_{metric} {bound}")


FAMILY = register_family(Family(
    name="shape_bias",
    gates="Geirhos et al. (ICLR 2019) shape bias on the 1,280 cue-conflict stimuli (fed at 224x224, uncropped, as "
          "published), above-chance cue use, and 16-way accuracy above chance on the shape-only stimuli",
    key_metric="shape_bias",
    higher_is_better=True,
    splits_by_image=True,
    assessors={"cue_conflict": assess_shape_bias, "shape_only": assess_shape_only},
    directions={"edges_accuracy": True, "silhouettes_accuracy": True},
    metrics=("shape_bias_ci", "shape_hits", "texture_hits", "n_conflict", "shape_fraction", "texture_fraction",
             "neither_fraction", "per_category", "cue_information_p", "stimulus_geometry", "edges_accuracy",
             "silhouettes_accuracy", "human_error_consistency", "human_error_consistency_ci", "observers_error_consistency",
             "error_consistency_detail"),
    thresholds={
        "min": f.fraction("shape bias at least this (a shape-bias-trained model sets a high min)", default=0.05),
        "max": f.fraction("shape bias at most this", default=0.95),
        "aggregation": f.choice(AGGREGATIONS, "1,000 probabilities to 16 categories: mean (the authors'), sum or max",
                                default="mean"),
        "stimulus_geometry": f.choice(GEOMETRIES, "native: the 224x224 stimuli unchanged (published); model_input: "
                                                  "resized, uncropped, to the model's input size", default="native"),
        "chance_alpha": f.level("one-sided binomial tests against chance: cue use (2/16) and shape-only accuracy (1/16)",
                                default=0.01),
        "category_map": f.text_map(sorted(category_names()), "a model of its own label space: class name -> one of the 16 "
                                   "categories (several classes may map to one; aggregated as `aggregation` says); "
                                   "unused for ImageNet-1k models", default={}),
        "min_images": f.min_images("stimuli (conflicting ones for shape bias)", default=50),
        "min_edges_accuracy": f.fraction("16-way accuracy on the edge stimuli", default=0.0625),
        "min_silhouettes_accuracy": f.fraction("16-way accuracy on the filled silhouettes", default=0.0625),
    },
    summary_lines=_summary_lines,
    html_section="visionaudit.html.shape_bias_section:shape_bias",
))
