"""The corruption family: top-1 error under ImageNet-C's corruptions, scored as the dataset was made.

Protocol (Hendrycks & Dietterich 2019; hendrycks/robustness ``make_imagenet_c.py`` and ``test.py``):

1. the labelled images are decoded as ImageNet-C was made from the validation set, whatever the model's
   own preprocessing: short side resized to 256 (PIL bilinear, antialiased), centre crop 224
   (:data:`PROTOCOL_GEOMETRY`, through visionaudit.data.decoding);
2. each corruption kernel (visionaudit.families.corruption.kernels) acts on the uint8 224x224 batch on the model's device,
   with draws seeded by (seed, sample id);
3. the JPEG round trip the dataset was stored with: PIL's ``save(quality=85, optimize=True)``; here
   torchvision's libjpeg encode and decode on the CPU, which give PIL's pixels exactly (a test checks
   it), or on request nvJPEG on the model's GPU, which does not (visionaudit.families.corruption.jpeg);
   ``jpeg_round_trip = false`` in audit.toml leaves it out, and every entry records which, with the codec;
4. the model is fed as the dataset is fed: a 224 model gets the 224 images unchanged (``test.py``'s
   CenterCrop(224) is a no-op on them); any other model gets its own rule applied to the 224 image
   (short side resized to its resize size with its interpolation, centre crop to its input size), and
   the entry records it (``feed``).

Clean baseline: the published clean error (AlexNet 43.478 %, the E_clean of the relative CE) is the
ordinary validation set at resize 256 / crop 224, not re-encoded (``test.py``'s ``clean_loader``), so the
clean pass here is steps 1 and 4 without corruption and without the JPEG round trip. The round trip's own
cost is measured beside it (``jpeg_only_error``, one more pass), so a reader sees how much of a
corruption's error is the re-encoding. With ``--audit-imagenet-c DIR`` the downloaded dataset's files are
scored instead of the kernels (visionaudit/families/corruption/folder.py).

Each pass's CPU work (the kernels' draws, the kernels that run on the CPU, the JPEG round trip) is done in threads
ahead of the device, batch by batch, with the same pixels as in turn (visionaudit.families.corruption.ahead; how
many, ``batches_ahead``: visionaudit.families.corruption.switch). A setting the run cannot follow (``jpeg_on_device``
on a model not on CUDA, ``batches_ahead`` on MPS or with nvJPEG) is recorded on every entry (``not_honoured``) and
said in the summary.
"""

from __future__ import annotations

import math
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from visionaudit.families import thresholds as f
from visionaudit.families.corruption.imagenet_c import (
    ALL_CORRUPTIONS,
    BENCHMARK,
    EXTRAS,
    NOT_COMPARABLE,
    summarize,
)

# Re-exported: the family's public names, whichever of its modules holds them.
from visionaudit.families.corruption.jpeg import (  # noqa: F401
    CPU_CODEC,
    CUDA_CODEC,
    JPEG_QUALITY,
    codec_for,
    jpeg_round_trip,
)
from visionaudit.families.corruption.judging import (  # noqa: F401
    Corrupted,
    assess_condition,
    assess_mce,
)
from visionaudit.families.corruption.missing import (
    holes,
    not_scored,
    scope_differs,
    summary_scope,
)
from visionaudit.families.corruption.scoring import (  # noqa: F401
    Condition,
    Unavailable,
    check_severities,
    condition_name,
    holm_over_conditions,
    mce_interval,
    own_summary,
    paired,
)
from visionaudit.families.corruption.switch import AUTO_AHEAD, MAX_AHEAD, resolve_ahead
from visionaudit.families.registry import CountsLabelled, Family, register_family
from visionaudit.preprocessing import Geometry

if TYPE_CHECKING:  # torch, torchvision and the models are imported where images are scored: the descriptor is read
    import torch  # on the xdist controller, which never imports torch (benchmarks/phases.py times the start-up)

    from visionaudit.models.loading import LoadedModel

PROTOCOL_GEOMETRY = Geometry(256, 224, "bilinear")  # torchvision's Resize(256) + CenterCrop(224) on PIL images


def feed_geometry(model: LoadedModel) -> Geometry | None:
    """How the 224 images reach ``model``: None when it takes 224 (as stored), else its own resize and crop."""
    pre = model.preprocessing
    return None if pre.crop_size == PROTOCOL_GEOMETRY.crop_size else pre.geometry


def describe_feed(model: LoadedModel, jpeg: bool, codec: str = CPU_CODEC) -> dict[str, Any]:
    """What the report records of the protocol, per entry (``codec``: the JPEG round trip's, see jpeg.py)."""
    feed = feed_geometry(model)
    return {"decode": PROTOCOL_GEOMETRY.to_dict(), "jpeg_round_trip": jpeg, "jpeg_quality": JPEG_QUALITY if jpeg else None,
            "jpeg_codec": codec if jpeg else None,
            "feed": "as stored (224)" if feed is None else {"resize": feed.resize_size, "size": feed.crop_size,
                                                            "interpolation": feed.interpolation}}


def to_model_input(batch: torch.Tensor, feed: Geometry | None) -> torch.Tensor:
    """The 224 batch as the model is fed it (see :func:`feed_geometry`)."""
    if feed is None:
        return batch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    out = F.resize(batch, [feed.resize_size], interpolation=InterpolationMode(feed.interpolation), antialias=True)
    return F.center_crop(out, [feed.crop_size, feed.crop_size])


def kernel_for(name: str) -> Callable:
    """The corruption's kernel, or :class:`Unavailable` with the kernels' reason."""
    from visionaudit.families.corruption import (
        kernels as corruptions,  # imported when first needed: the family's schema does not need the kernels
    )

    reason = corruptions.unavailable(name)
    if reason:
        raise Unavailable(reason)
    return corruptions.get(name)


class CorruptionRun:
    """One model on one image set under the protocol: the clean pass and each condition, computed once."""

    def __init__(self, model: LoadedModel, images: torch.Tensor, labels: torch.Tensor, sample_ids: Sequence[str],
                 seed: int = 0, jpeg: bool = True, jpeg_on_device: bool = False, ahead: int | str | None = None) -> None:
        """``jpeg_on_device``: the round trip with nvJPEG on a CUDA model's GPU (see jpeg.py); ``ahead``: batches
        prepared in threads ahead of the device (``batches_ahead``: None or "auto", the device's default; 0, each in
        turn; see switch.resolve_ahead). What was asked and could not be done is in :attr:`not_honoured`."""
        if images.shape[-2:] != (PROTOCOL_GEOMETRY.crop_size,) * 2:
            raise ValueError(f"the corruption protocol takes 224x224 images, got {tuple(images.shape[-2:])}")
        if len(sample_ids) != images.shape[0]:
            raise ValueError(f"{len(sample_ids)} sample ids for {images.shape[0]} images")
        self.model, self.images, self.labels, self.ids = model, images, labels, list(sample_ids)
        self.seed, self.jpeg, self.feed = seed, jpeg, feed_geometry(model)
        self.codec = codec_for(model.device, jpeg_on_device)
        # setting -> what ran instead, in words: every corruption entry records it and the run's summary says it
        self.not_honoured: dict[str, str] = {}
        if jpeg and jpeg_on_device and self.codec != CUDA_CODEC:
            self.not_honoured["jpeg_on_device"] = (f"jpeg_on_device is set but the model runs on {model.device.type}: "
                                                   f"the round trip used {self.codec}")
        # imported here: ahead.py imports torch, and the descriptor is read on the xdist controller
        from visionaudit.families.corruption.ahead import ReaderWait

        # without a round trip no codec runs (nvJPEG nowhere): nothing keeps the batches in turn
        self.ahead, why = resolve_ahead(model.device, ahead, self.codec if jpeg else CPU_CODEC)
        if why:
            self.not_honoured["batches_ahead"] = why
        # the reader's wait for the prepared batches, per pass (its ``what``): benchmarks/corruptions.py reads it; a
        # property of the machine, not of the model, so never in the report
        self.waits: dict[str, ReaderWait] = {}
        self._clean: np.ndarray | None = None
        self._jpeg_only: np.ndarray | None = None
        self._conditions: dict[tuple[str, int], Condition] = {}

    @property
    def n_images(self) -> int:
        return len(self.ids)

    def describe(self, jpeg: bool) -> dict[str, Any]:
        return describe_feed(self.model, jpeg, self.codec)

    def _correct(self, corrupt: Callable | None, jpeg: bool, what: str) -> np.ndarray:
        return self._predicted(corrupt, jpeg, what) == self.labels.numpy()

    def prepare(self, corrupt: Callable | None, jpeg: bool) -> Callable[[torch.Tensor, Sequence[int]], torch.Tensor] | None:
        """What a pass does to each batch before the model's feed (positions are the images' in ``images``): the
        corruption, then the JPEG round trip; None when it does nothing (the clean pass)."""
        if corrupt is None and not jpeg:
            return None

        def prepare(batch: torch.Tensor, positions: Sequence[int]) -> torch.Tensor:
            if corrupt is not None:
                batch = corrupt(batch, [self.ids[i] for i in positions])
            return jpeg_round_trip(batch, codec=self.codec) if jpeg else batch
        return prepare

    def _predicted(self, corrupt: Callable | None, jpeg: bool, what: str) -> np.ndarray:
        """The top-1 output index per image."""
        from visionaudit.families.corruption.ahead import PreparedBatches, ReaderWait
        from visionaudit.models.inference import predict_logits

        prepare = self.prepare(corrupt, jpeg)
        if prepare is not None and self.ahead:
            with PreparedBatches(self.images, prepare, self.model.device, self.ahead) as prepared:
                logits = predict_logits(self.model, prepared, transform=lambda batch, _: to_model_input(batch, self.feed),
                                        what=what)
            self.waits[what] = prepared.wait
        else:
            wait = ReaderWait()  # in turn the reader prepares each batch itself: all of it is waiting

            def transform(batch: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
                if prepare is not None:
                    start = time.perf_counter()
                    batch = prepare(batch, idx.tolist())
                    wait.add(time.perf_counter() - start)
                return to_model_input(batch, self.feed)
            logits = predict_logits(self.model, self.images, transform=transform, what=what)
            if prepare is not None:
                self.waits[what] = wait
        return logits.argmax(1).numpy().astype(np.int64)

    def clean(self) -> np.ndarray:
        """Right/wrong per image without corruption and without re-encoding (the published clean error)."""
        if self._clean is None:
            self._clean = self._correct(None, False, "ImageNet-C protocol, clean")
        return self._clean

    def jpeg_only(self) -> np.ndarray:
        """Right/wrong per image after the JPEG round trip alone: what re-encoding costs by itself."""
        if self._jpeg_only is None:
            self._jpeg_only = self._correct(None, True, "ImageNet-C protocol, JPEG round trip only")
        return self._jpeg_only

    def condition(self, corruption: str, severity: int) -> Condition:
        key = (corruption, severity)
        if key not in self._conditions:
            kernel = kernel_for(corruption)
            predicted = self._predicted(lambda b, ids: kernel(b, ids, self.seed, severity), self.jpeg,
                                        f"{corruption} severity {severity}")
            self._conditions[key] = paired(corruption, severity, predicted == self.labels.numpy(), self.clean(), predicted)
        return self._conditions[key]


_RUNS: "weakref.WeakKeyDictionary[LoadedModel, dict[tuple, CorruptionRun]]" = weakref.WeakKeyDictionary()


def cached_run(model: LoadedModel, set_key: Any, images: torch.Tensor, labels: torch.Tensor, sample_ids: Sequence[str],
               seed: int, jpeg: bool, jpeg_on_device: bool = False, ahead: int | str | None = None) -> CorruptionRun:
    """One :class:`CorruptionRun` per (model, image set, seed, JPEG round trip and codec) in a process: every test
    of the family (each condition, the mCE) shares its passes.

    ``ahead`` (``batches_ahead``) is not in the key: it changes when a batch is prepared, never its pixels (bit for
    bit the same, tests/families/corruption/test_corruption_ahead.py), so a run made with another value gives the same
    results. Nor is ``jpeg_on_device`` beyond the codec it gives. Both come from the model's own
    ``[audits.corruption]`` table, one per model in a run, so the run's :attr:`CorruptionRun.not_honoured` is the
    caller's too."""
    per_model = _RUNS.setdefault(model, {})
    key = (set_key, seed, jpeg, codec_for(model.device, jpeg_on_device))
    if key not in per_model:
        per_model[key] = CorruptionRun(model, images, labels, sample_ids, seed, jpeg, jpeg_on_device, ahead)
    return per_model[key]


def _aggregate(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Per model: Holm over its conditions (written back into their entries as ``p_value_holm`` and
    ``significant``) and the ImageNet-C summary (mCE, relative mCE, mean error, CE per corruption) from the
    conditions' errors, whichever workers measured them."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        if "corruption" in e["params"] and isinstance(e["metrics"].get("error"), (int, float)):
            by_model.setdefault(str(e["model"]), []).append(e)
    if not by_model:
        return None
    out: dict[str, Any] = {"models": {}}
    for model, conditions in sorted(by_model.items()):
        alpha = next((e["thresholds"]["alpha"] for e in conditions if "alpha" in e["thresholds"]), 0.05)
        named = {condition_name(e["params"]["corruption"], e["params"]["severity"]): e for e in conditions}
        holm = holm_over_conditions({k: e["metrics"].get("p_value") if e["metrics"].get("p_value") is not None else math.nan
                                     for k, e in named.items()}, alpha)
        for k, e in named.items():
            e["metrics"].update(holm.get(k, {}))
        errors: dict[str, dict[int, float]] = {}
        for e in conditions:
            errors.setdefault(e["params"]["corruption"], {})[int(e["params"]["severity"])] = float(e["metrics"]["error"])
        clean = next((e["metrics"].get("clean_error") for e in conditions if e["metrics"].get("clean_error") is not None), None)
        normalized = all(e["metrics"].get("alexnet_normalized", True) for e in conditions)
        summary_key = "mce" if normalized else "mean_error"
        mce_entry = next((e for e in entries if e["model"] == model and e["params"].get("corruption") is None
                          and summary_key in e["metrics"]), None)
        gaps = holes(model, entries, errors)
        # A corruption with a hole is left out of the summary, named with its missing conditions (the mCE needs the
        # same severities for every corruption), as one whose tests are all missing is.
        whole = {c: sev for c, sev in errors.items() if c not in gaps}
        missing = {**not_scored(model, entries, whole, mce_entry["metrics"] if mce_entry else None), **gaps}
        try:
            if gaps and not any(c in whole for c in BENCHMARK):
                raise ValueError("no corruption was scored at every severity ("
                                 + "; ".join(f"{c}: {why}" for c, why in gaps.items()) + ")")
            summary = summarize(whole, clean, missing).to_dict() if normalized else own_summary(whole, clean, missing)
        except ValueError as err:  # extras only, or no corruption whole
            summary = {"error": str(err)}
        first = conditions[0]["metrics"]
        out["models"][model] = {**summary, "n_images": first.get("n_images"), "source": first.get("source"),
                                "comparable": first.get("comparable", False),
                                "significant": sorted(k for k, r in holm.items() if r["significant"])}
        scope = summary_scope(summary_key, summary, gaps, mce_entry)  # two values under one name: which is the gate's
        if scope:
            out["models"][model]["summary_scope"] = scope
        differs = scope_differs(summary, mce_entry) or bool(gaps)
        if normalized:  # the mCE test's interval is over every corruption it scored: not this one's where some were left out
            out["models"][model]["mce_ci"] = None if differs else (mce_entry or {}).get("metrics", {}).get("mce_ci")
        else:  # its own label space: no AlexNet normalization, no mCE
            said = {} if differs else (mce_entry or {}).get("metrics", {})
            out["models"][model].update(alexnet_normalized=False, mean_error_ci=said.get("mean_error_ci"),
                                        mean_rise_ci=said.get("mean_rise_ci"))
    return out


def _not_honoured(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per model, the settings its corruption entries say the run could not follow (``not_honoured``: the setting ->
    what ran instead, in words), from the report's entries: a merged or a baseline report says them as the run did."""
    out: dict[str, dict[str, str]] = {}
    for e in report.get("audits", []):
        said = (e.get("metrics") or {}).get("not_honoured")
        if e.get("audit") == "corruption" and isinstance(said, dict):
            out.setdefault(str(e["model"]), {}).update({str(k): str(v) for k, v in said.items()})
    return out


def _summary_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    not_honoured = _not_honoured(report)
    models = report["aggregates"].get("corruption", {}).get("models", {})
    for model in [*models, *(m for m in not_honoured if m not in models)]:  # a model with nothing scored: said all the same
        lines += _model_lines(model, models[model]) if model in models else []
        lines += [f"corruption, {model}: {text}" for _, text in sorted(not_honoured.get(model, {}).items())]
    return lines


def _model_lines(model: str, r: dict[str, Any]) -> list[str]:
    """The summary of ``model``'s conditions (its aggregate ``r``): the mCE, or the mean error of its own label space."""
    if r.get("alexnet_normalized") is False and "mean_error" in r:
        ci = r.get("mean_error_ci")
        rise = r.get("mean_rise")
        worst = sorted(r["corruption_errors"].items(), key=lambda kv: -kv[1])[:3]
        return [f"corruption, {model} (its own label space, not normalized by AlexNet: no mCE): mean error "
                f"{r['mean_error']:.3f}" + (f" [95% {ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
                + (f", mean rise over its clean error {rise:.3f} (clean {r['clean_error']:.3f})" if rise is not None else "")
                + f" ({r.get('n_images')} images, "
                  f"{r.get('source')})" + (f"; {r['summary_scope']}" if r.get("summary_scope") else ""),
                f"corruption, {model}: highest error {', '.join(f'{c} {v:.3f}' for c, v in worst)}; "
                f"{len(r.get('significant', []))} conditions differ from clean (McNemar, Holm)"]
    if "mce" not in r:
        return [f"corruption, {model}: no mCE ({r.get('error', 'no benchmark corruption scored')})"]
    ci = r.get("mce_ci")
    text = (f"corruption, {model}: mCE {r['mce']:.1f}" + (f" [95% {ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")
            + (f", relative mCE {r['relative_mce']:.1f}" if r.get("relative_mce") is not None else "")
            + f", mean error {r['mean_error']:.3f} ({r.get('n_images')} images, {r.get('source')})")
    if r.get("note"):
        text += f"; {r['note']}"
    if r.get("summary_scope"):
        text += f"; {r['summary_scope']}"
    if not r.get("comparable"):
        text += f"; {NOT_COMPARABLE}"
    worst = sorted(r["ce"].items(), key=lambda kv: -kv[1])[:3]
    return [text, f"corruption, {model}: highest CE {', '.join(f'{c} {v:.1f}' for c, v in worst)} (AlexNet = 100); "
                  f"{len(r.get('significant', []))} conditions differ from clean (McNemar, Holm)"]


FAMILY = register_family(Family(
    name="corruption",
    gates="ImageNet-C's 15 corruptions at five severities (Hendrycks & Dietterich 2019), made as the dataset was "
          "(resize 256, crop 224, JPEG quality 85), top-1 error per condition and the mCE normalized by AlexNet",
    key_metric="mce",
    higher_is_better=False,
    assessors={"condition": assess_condition, "mce": assess_mce},
    directions={"error": False, "relative_mce": False, "mean_error": False, "clean_error": False, "mean_rise": False},
    alt_key_metrics=("mean_error",),  # a model of its own label space has no mCE
    metrics=("error", "error_ci", "clean_error", "p_value", "p_value_holm", "significant", "ce", "relative_ce",
             "relative_mce", "mean_error", "mce_ci", "mean_rise", "mean_error_ci", "mean_rise_ci", "jpeg_only_error", "protocol",
             "not_honoured"),
    thresholds={
        "max_mce": f.nonnegative("mCE in % (AlexNet = 100) at most this (ImageNet-1k label spaces)", default=100.0),
        "max_mean_error": f.fraction("a model of its own label space (no mCE): the mean top-1 error over the benchmark "
                                     "conditions at most this", default=0.9),
        "max_mean_rise": f.signed_fraction("a model of its own label space (no mCE): the mean error's rise over its own "
                                           "clean error at most this", default=0.5),
        "max_error": f.fraction("default bound on the top-1 error of every corruption at every severity", default=0.99),
        "max_error_by_corruption": f.per_name(ALL_CORRUPTIONS, f.fraction(), "per corruption, overriding max_error", default={}),
        "corruptions": f.names(BENCHMARK, "the benchmark corruptions scored (the mCE is the published one with all 15)",
                               default=list(BENCHMARK)),
        "extras": f.names(EXTRAS, "ImageNet-C's four extra corruptions to score too (outside the mCE)", default=[]),
        "severities": f.wholes("severities scored, whole numbers 1 to 5 (the mCE is the published one with all five)",
                               minimum=1, maximum=5, default=[1, 2, 3, 4, 5]),
        "jpeg_round_trip": f.flag("JPEG quality 85 round trip after each corruption, as ImageNet-C was stored", default=True),
        "jpeg_on_device": f.flag("the JPEG round trip with nvJPEG on the model's CUDA device instead of libjpeg on the CPU: "
                                 "faster, but not PIL's pixels (the protocol records the codec; a baseline is compared "
                                 "only with the same codec)", default=False),
        "batches_ahead": f.whole_or([AUTO_AHEAD], "batches of each pass prepared (corrupted, JPEG round trip) in CPU threads "
                                    "ahead of the device: auto (1 on a CPU, 2 on CUDA, none on MPS or with nvJPEG's "
                                    "round trip) or "
                                    "0 (each in turn) to 8; the pixels are the same either way (only the speed moves)",
                                    minimum=0, maximum=MAX_AHEAD, default=AUTO_AHEAD, changes_no_result=True),
        "images": f.whole("a seeded, class-stratified subset of the labelled images this many strong (0: all of them)",
                          default=100),
        "alpha": f.level("significance level of the McNemar tests against clean and Holm's correction", default=0.05),
        "bootstrap_resamples": f.count("resamples of the bootstrap interval on the mCE", default=2000),
        "min_images": f.min_images(default=50),
    },
    aggregate=_aggregate,
    summary_lines=_summary_lines,
    one_worker_per_model=True,  # test_mce reads every condition's outcomes
    # an ImageNet-C folder: its own images; below min_images its assessors stop at the count (judging.py): no error measured
    counts_labelled=CountsLabelled(cap="images", unless="imagenet_c", measures=False),
    splits_by_image=True,  # a shard scores its share of the subset; visionaudit merge judges the shards' bits together
    html_section="visionaudit.html.sections:corruption",
))
