"""Forward passes: uint8 images in, logits out, batched on the model's device.

Clean logits are cached per (model, image set) for the life of the model object, so every audit
that needs them shares one forward pass, and on disk across runs when a logit cache is configured.
"""

from __future__ import annotations

import logging
import math
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

from visionaudit.devices import inference_memory_format, retain_freed_cpu_memory
from visionaudit.errors import ModelOutputError
from visionaudit.models import logit_cache
from visionaudit.models.batching import default_batch_size
from visionaudit.models.probe import as_logits, read_outputs
from visionaudit.progress import phase

if TYPE_CHECKING:
    from visionaudit.data.image_sets import ImageSet
    from visionaudit.data.streaming import StreamedImages
    from visionaudit.models.loading import LoadedModel
    from visionaudit.preprocessing import Geometry

log = logging.getLogger("visionaudit.models.inference")

_CLEAN_LOGITS: "weakref.WeakKeyDictionary[Any, dict[Any, torch.Tensor]]" = weakref.WeakKeyDictionary()


def _batch_size(model: "LoadedModel", requested: int | None) -> int:
    """The batch size a pass runs at: the caller's, else the model's fitted one, else the device's default."""
    return requested or model.batch_size or default_batch_size(model.device)


def predict_logits(
    model: "LoadedModel",
    images: "torch.Tensor | StreamedImages",
    batch_size: int | None = None,
    transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    memory_format: torch.memory_format | None = None,
    what: str = "",
) -> torch.Tensor:
    """Logits (float32, CPU) of ``model`` on ``images`` ``(N, C, H, W)`` in [0, 255] (uint8, or float
    for exact comparisons such as an unrounded luminance image), or a :class:`StreamedImages` set, read
    batch by batch in order so that its next batches decode while the model runs.

    ``transform(batch, indices)`` acts on each uint8 batch on the device, before normalization;
    ``indices`` are the images' positions in ``images`` (for per-image seeding). NaN or infinite
    logits raise :class:`ModelOutputError` naming the first bad image. ``memory_format`` lays out the
    normalized batch; by default channels_last on the CPU (see ``devices.inference_memory_format``).
    ``what`` names the pass in progress reports (``clean imagenet-sample``, ``rotation``): every call of the suite gives
    one (tests/test_progress.py checks), so that no progress line reads "forward passes 8/12" alone.
    """
    if images.dim() != 4 or not (images.dtype == torch.uint8 or images.is_floating_point()):
        raise ValueError(f"expected images (N, C, H, W) in [0, 255], uint8 or float, got {images.dtype} {tuple(images.shape)}")
    gray_from_rgb = model.preprocessing.gray and images.shape[1] == 3  # normalize() feeds it their luminance
    if images.shape[1] != model.preprocessing.channels and not gray_from_rgb:
        raise ModelOutputError(
            f"model {model.id} takes {model.preprocessing.channels} input channel(s) but the images have "
            f"{images.shape[1]}; the suite feeds RGB images, or their luminance to a 1-channel model"
        )
    batch_size = _batch_size(model, batch_size)
    if model.device.type == "cpu":
        retain_freed_cpu_memory()
    out = []
    with torch.inference_mode(), phase("forward", model.id, what, total=images.shape[0]) as progress:
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(model.device, non_blocking=True)
            if transform is not None:
                batch = transform(batch, torch.arange(start, start + batch.shape[0]))
            x = model.preprocessing.normalize(batch)
            x = x.contiguous(memory_format=memory_format or inference_memory_format(model.device, x))
            logits = as_logits(model.module(x)).float()
            bad = ~torch.isfinite(logits).all(dim=1)
            if bad.any():
                first = start + int(bad.nonzero()[0])
                raise ModelOutputError(f"model {model.id} returned NaN or infinite logits for image {first} (and "
                                       f"{int(bad.sum()) - 1} more in its batch)")
            logits = read_outputs(logits, model.outputs, model.id)  # a probabilities model's: their logarithms
            out.append(logits.cpu())
            progress.advance(batch.shape[0])
    if not out:
        return torch.empty(0, model.num_classes)
    return torch.cat(out)


def clean_logits(model: "LoadedModel", image_set: "ImageSet", images: "torch.Tensor | StreamedImages",
                 batch_size: int | None = None,
                 geometry: "Geometry | None" = None) -> torch.Tensor:
    """``predict_logits`` on untransformed images, computed once per (model, image set, geometry), and read
    from the logit cache on disk instead when one is configured and holds them (:mod:`visionaudit.models.logit_cache`).

    ``geometry`` is how ``images`` were decoded; the model's own (natural images) when not given.
    """
    per_model = _CLEAN_LOGITS.setdefault(model, {})
    geometry = geometry or model.preprocessing.geometry
    key = (image_set.key, geometry)
    if key not in per_model:
        per_model[key] = _clean_pass(model, image_set, images, batch_size, geometry)
    return per_model[key]


def _clean_pass(model: "LoadedModel", image_set: "ImageSet", images: "torch.Tensor | StreamedImages", batch_size: int | None,
                geometry: "Geometry") -> torch.Tensor:
    what = f"clean {image_set.name}"
    directory = logit_cache.cache_dir()
    if directory is None:
        return predict_logits(model, images, batch_size, what=what)
    entry = logit_cache.entry(directory, model, image_set, geometry, _batch_size(model, batch_size))
    logits, problem = logit_cache.load(entry)
    if logits is not None:
        with phase("cache", model.id, f"{what}: {len(image_set)} logits read from {entry.path}, forward pass skipped"):
            return logits
    if problem is not None:  # said once: the entry is replaced below
        log.warning("logit cache entry %s ignored (%s); recomputing and replacing it", entry.path, problem)
        with phase("cache", model.id, f"{what}: cache entry {entry.path} ignored ({problem}); recomputing and replacing it"):
            pass
    logits = predict_logits(model, images, batch_size, what=what)
    logit_cache.store(entry, logits)
    return logits


@dataclass(frozen=True)
class LogitComparison:
    """How far a candidate's logits are from a reference's on the same images."""

    max_abs_diff: float
    max_rel_diff: float  # max |diff| / max |reference logit|: comparable across models' logit scales
    top1_agreement: float
    reference_spread: float  # largest per-class std over images: 0 means the logits ignore the input
    reference_rounding: str | None = None  # the low precision the reference's logits carry (low_precision_of), if any


def low_precision_of(logits: torch.Tensor) -> str | None:
    """The low precision every one of ``logits`` (float32) is a value of: the model computes, or returns, its logits in
    it (autocast, float16 kernels), so they carry its rounding; None when they do not (float32 logits are all such
    values only by chance, never over a batch)."""
    import torch

    if not logits.numel() or not torch.isfinite(logits).all():
        return None
    for name in ("bfloat16", "float16"):  # bfloat16's values within float16's range are float16's too
        if torch.equal(logits.to(getattr(torch, name)).float(), logits.float()):
            return name
    return None


def compare_outputs(model: "LoadedModel", reference: torch.Tensor, candidate: torch.Tensor) -> LogitComparison:
    """Two forms of ``model`` (:func:`predict_logits` of each) compared in what the model returns: a probabilities
    model's probabilities, not their logarithms, which are unbounded where a low precision rounds a small one to 0
    (a float16 form's 6e-8: log -87 against the reference's -30, on classes no decision reads)."""
    if model.outputs == "probabilities":
        return compare_logits(reference.exp(), candidate.exp())
    return compare_logits(reference, candidate)


def compare_logits(reference: torch.Tensor, candidate: torch.Tensor) -> LogitComparison:
    if reference.shape != candidate.shape:
        raise ValueError(f"reference logits {tuple(reference.shape)} and candidate logits {tuple(candidate.shape)} "
                         "differ in shape")
    diff = (reference - candidate).abs()
    return LogitComparison(
        max_abs_diff=float(diff.max()),
        max_rel_diff=float(diff.max() / reference.abs().max().clamp_min(1e-12)),
        # count over count, exact (a float32 mean is not); no images: NaN, as the mean of nothing was
        top1_agreement=int((reference.argmax(1) == candidate.argmax(1)).sum()) / n if (n := reference.shape[0]) else math.nan,
        reference_spread=float(reference.std(dim=0).max()) if reference.shape[0] > 1 else 0.0,
        reference_rounding=low_precision_of(reference),
    )
