"""Channel bias: how much the first layer weights each input colour channel, and whether it matters.

``shares`` is the measure of the study this audit reproduces: the sum of |first-layer weights| per
input channel, normalized so R + G + B = 1 (ImageNet CNNs weight green most). The rest ask whether a
larger weight means a more important channel:

- ``normalized_shares``: |w_i| / std_i, the weights acting on raw [0, 1] pixels, so models with
  different input normalization compare fairly (x_norm = (x - mean) / std, so w * x_norm = (w / std) x + c);
- ``contribution_shares``: mean |w_i * x_i| of each channel's term in the first conv's output on real
  images (weight times signal);
- ``ablation_drop``: top-1 lost when one channel is replaced by its dataset mean;
- ``gradient_shares``: |gradient x input| summed per channel, on raw pixels, for the true class.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from visionaudit.errors import ModelOutputError
from visionaudit.families import thresholds as f
from visionaudit.families.assessment import NotApplicable
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import Family, register_family
from visionaudit.formatting import fmt
from visionaudit.models.controls import CONTROL_ZOO  # noqa: F401  (the controls its audit parametrizes over)
from visionaudit.models.topk import top1_accuracy, topk_hits

if TYPE_CHECKING:  # torch and the models are imported where a model is measured: the descriptor is read on the xdist
    import torch  # controller, which never imports torch (benchmarks/phases.py times the start-up)

    from visionaudit.models.first_conv import FirstConv
    from visionaudit.models.loading import LoadedModel

CHANNELS = ("r", "g", "b")
# Mean shares over 31 ImageNet-trained torchvision models in the study this audit follows (std 0.015, 0.033, 0.021).
CONTROL_GROUP = "control (random init)"  # the aggregate's group names: the report's keys, and the page's caption
ZOO_GROUP = "published_torchvision_zoo"
PUBLISHED_ZOO_MEAN = (0.338, 0.402, 0.260)
PUBLISHED_ZOO_STD = (0.015, 0.033, 0.021)


def _normalize(v: torch.Tensor) -> list[float]:
    v = v.double()
    return (v / v.sum()).tolist()


def weight_shares(conv: torch.nn.Conv2d) -> list[float]:
    """Sum of |w| per input channel, normalized to sum to 1."""
    from visionaudit.models.first_conv import weight_per_input_channel

    return _normalize(weight_per_input_channel(conv))


def normalized_shares(conv: torch.nn.Conv2d, std: tuple[float, ...]) -> list[float]:
    """Shares of |w_i| / std_i: the first layer's weights on raw [0, 1] pixels."""
    import torch

    from visionaudit.models.first_conv import weight_per_input_channel

    return _normalize(weight_per_input_channel(conv) / torch.tensor(std, dtype=torch.float64))


def contribution_shares(model: LoadedModel, first: FirstConv, images: torch.Tensor, batch_size: int = 32) -> list[float]:
    """Mean |term of channel i| in the first conv's output, on ``images`` (uint8), normalized.

    Each channel's term is the conv applied to its input with the other channels zeroed, minus the
    conv of zeros (the bias and any constant padding): exact for any linear Conv2d subclass, behind a constant
    padding module too.
    """
    import torch

    # Constant padding before the conv (transformers' EfficientNet's zeros, a ConstantPad2d of any value): each term is
    # its channel zero-padded, exact; the constant border, the same for every image, is in no channel's term (as the bias).
    pads = first.padding.pads if first.padding is not None else None
    if first.padding is not None and first.padding.value is None:
        raise ModelOutputError(
            f"{first.name} receives the model input padded with values that are not one constant (a reflection or "
            "replication padding): each channel's term would need that padding of the channel alone, which the suite "
            "does not know (it sees the padded input only), so contribution shares are not measured (the weight shares are)")
    if not first.input_is_model_input and pads is None:
        raise ModelOutputError(
            f"{first.name} does not receive the model input unchanged (something before it transforms the input), so its "
            "per-channel terms are not the image's; fold that step into the model's mean/std to measure contribution shares"
        )
    conv = first.module
    totals = torch.zeros(conv.in_channels, dtype=torch.float64)
    count = 0
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            x = model.preprocessing.normalize(images[start : start + batch_size].to(model.device))
            if pads is not None:
                x = torch.nn.functional.pad(x, pads)
            base = conv(torch.zeros_like(x[:1]))
            for c in range(conv.in_channels):
                masked = torch.zeros_like(x)
                masked[:, c] = x[:, c]
                totals[c] += (conv(masked) - base).abs().double().mean(dim=(1, 2, 3)).sum().cpu()
            count += x.shape[0]
    return _normalize(totals / count)


def ablation_drop(model: LoadedModel, images: torch.Tensor, labels: torch.Tensor, clean_logits: torch.Tensor | None = None,
                  batch_size: int | None = None) -> list[float]:
    """Top-1 lost when channel i of every image is replaced by that channel's mean over ``images``."""
    import torch

    from visionaudit.data.streaming import channel_means
    from visionaudit.models.inference import predict_logits

    clean_logits = clean_logits if clean_logits is not None else predict_logits(model, images, batch_size,
                                                                                what="clean (channel ablation)")
    top1_accuracy(clean_logits, labels)  # refuses an empty set, naming it
    # Counted, then divided once: a difference of two shares (57/60 - 50/60) leaves float noise (0.11666666666666659).
    right, n = int(topk_hits(clean_logits, labels).sum()), len(labels)
    means = channel_means(images).round().to(torch.uint8)  # batch by batch: the images may be streamed
    drops = []
    for c in range(images.shape[1]):
        def replace(batch, indices, c=c):
            batch = batch.clone()
            batch[:, c] = means[c].to(batch.device)
            return batch

        logits = predict_logits(model, images, batch_size, transform=replace,
                                what=f"channel ablation: channel {c} replaced by its mean")
        drops.append((right - int(topk_hits(logits, labels).sum())) / n)
    return drops


def gradient_shares(model: LoadedModel, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 16) -> list[float]:
    """|d logit_true / d x| * x summed per channel over ``images`` (raw [0, 1] pixels), normalized."""
    import torch

    from visionaudit.models.probe import as_logits, read_outputs

    totals = torch.zeros(images.shape[1], dtype=torch.float64)
    for start in range(0, images.shape[0], batch_size):
        x = (images[start : start + batch_size].to(model.device).float() / 255.0).requires_grad_(True)
        y = labels[start : start + batch_size].to(model.device)
        with torch.enable_grad():
            # read as the audits read it: a probabilities model's logarithms (visionaudit/models/probe.py)
            logits = read_outputs(as_logits(model.module(model.preprocessing.normalize(x * 255.0))), model.outputs, model.id)
            logits.gather(1, y[:, None]).sum().backward()
        totals += (x.grad * x).detach().abs().double().sum(dim=(0, 2, 3)).cpu()
    return _normalize(totals)


@dataclass(frozen=True)
class FirstConvUnread:
    """No first convolution could be read (an ONNX graph whose input reaches no stored-weight Conv, a torch model whose
    input reaches no nn.Conv2d first): the reason."""

    reason: str


@dataclass
class ChannelBias:
    first_conv: str
    shares: list[float]
    dominant_channel: str
    dominant_ratio: float  # largest share / smallest share
    normalized_shares: list[float]
    first: FirstConv = field(repr=False)  # for the functional measures, found once


def weight_bias(model: LoadedModel) -> ChannelBias | FirstConvUnread | None:
    """The weight-based measures for ``model``; None when its first conv does not take 3 channels. An ONNX graph's
    first convolution is read from its weight initializer (:func:`graph_first_conv`), or why it cannot be."""
    import torch

    from visionaudit.models.first_conv import find_first_conv
    from visionaudit.models.onnx_conv import graph_first_conv
    from visionaudit.models.onnx_model import OnnxModule

    if isinstance(model.module, OnnxModule):
        try:
            first = graph_first_conv(model.module.graph)
        except ModelOutputError as e:
            return FirstConvUnread(str(e))
    elif isinstance(model.module, torch.jit.ScriptModule):
        return FirstConvUnread("a TorchScript module, whose modules cannot be hooked to find the convolution that reads "
                               "its input; audit the torch model it was made from")
    else:
        first = find_first_conv(model.module, (1, model.preprocessing.channels, model.input_size, model.input_size), model.device)
    if not first.input_is_model_input and first.in_channels != model.preprocessing.channels:
        return FirstConvUnread(f"the first nn.Conv2d to run ({first.name}) takes {first.in_channels} channels, not the "
                               f"model's {model.preprocessing.channels}: something else reads the input first (a functional "
                               "conv2d, a Conv3d, a Linear patch embedding), whose weights are not read")
    if first.in_channels != 3:
        return None
    shares = weight_shares(first.module)
    return ChannelBias(
        first_conv=first.name,
        shares=shares,
        dominant_channel=CHANNELS[max(range(3), key=shares.__getitem__)],
        dominant_ratio=max(shares) / min(shares) if min(shares) > 0 else float("inf"),
        normalized_shares=normalized_shares(first.module, model.preprocessing.std),
        first=first,
    )


@dataclass
class FunctionalShares:
    """The functional measures on real images (recorded beside the weight shares, not gated)."""

    weight: ChannelBias
    n_images: int
    ablation_drop: list[float]
    gradient_shares: list[float]
    contribution_shares: list[float] | None
    contribution_error: Exception | None = None  # contribution shares refused (the input is transformed first)
    gradient_error: str | None = None  # why gradient shares were not measured (an ONNX graph gives no gradients)


def functional_shares(model: LoadedModel, weight: ChannelBias, images: torch.Tensor, labels: torch.Tensor,
                      clean_logits: torch.Tensor) -> FunctionalShares:
    """Ablation, gradient and contribution shares of ``model`` on ``images``; a refusal of the contribution
    shares is kept, so that the others are still recorded before it is raised."""
    from visionaudit.models.onnx_model import OnnxModule

    ablation = ablation_drop(model, images, labels, clean_logits=clean_logits)
    gradient, gradient_error = None, None
    if isinstance(model.module, OnnxModule):
        gradient_error = (f"{model.id}: gradient x input needs gradients through the model, which an ONNX Runtime session "
                          "does not give; ablation and contribution shares are recorded")
    else:
        gradient = gradient_shares(model, images, labels)
    try:
        contribution, error = contribution_shares(model, weight.first, images), None
    except ModelOutputError as e:
        contribution, error = None, e
    return FunctionalShares(weight, len(labels), ablation, gradient, contribution, error, gradient_error)


# -- judging: the assessors its audit hands what it measured ----------------------------------------


def _record_weight_bias(record: AuditRecord, result: ChannelBias | FirstConvUnread | None, who: str) -> ChannelBias:
    if isinstance(result, FirstConvUnread):
        raise NotApplicable(f"{who}: {result.reason}")
    if result is None:
        raise NotApplicable(f"{who}: its first convolution does not take 3 input channels; channel bias needs RGB")
    record.metric("first_conv", result.first_conv)
    record.metric("dominant_channel", result.dominant_channel)
    record.metric("normalized_shares", result.normalized_shares)
    return result


def assess_weight_shares(record: AuditRecord, measured: ChannelBias | FirstConvUnread | None, thresholds: Mapping[str, Any],
                         context: Mapping[str, Any]) -> None:
    """The gate: every share within [min_share, max_share], largest / smallest at most max_ratio."""
    result = _record_weight_bias(record, measured, context["model"])
    record.metric("group", "audited")
    ok = record.check_min("min_share_seen", min(result.shares), "min_share", thresholds["min_share"])
    ok &= record.check_max("max_share_seen", max(result.shares), "max_share", thresholds["max_share"])
    ok &= record.check_max("dominant_ratio", result.dominant_ratio, "max_ratio", thresholds["max_ratio"])
    record.metric("shares", result.shares)
    if not ok:
        raise AssertionError(
            f"{context['model']}: first-layer shares R,G,B = {', '.join(f'{s:.3f}' for s in result.shares)} "
            f"({result.first_conv}); bounds: each in [{thresholds['min_share']}, {thresholds['max_share']}], "
            f"largest/smallest <= {thresholds['max_ratio']}")


def assess_functional_shares(record: AuditRecord, measured: FunctionalShares | FirstConvUnread | None,
                             thresholds: Mapping[str, Any],
                             context: Mapping[str, Any]) -> None:
    """Weight times signal, channel ablation and gradient x input: recorded, not gated. ``measured`` is what
    :func:`weight_bias` gave instead when there are no RGB weight shares to start from."""
    result = _record_weight_bias(record, measured.weight if isinstance(measured, FunctionalShares) else measured,
                                 context["model"])
    record.metric("n_images", measured.n_images)
    record.metric("shares", result.shares)
    record.metric("ablation_drop", measured.ablation_drop)
    if measured.gradient_error is None:
        record.metric("gradient_shares", measured.gradient_shares)
    if measured.contribution_error is not None:  # last: the others are kept
        raise measured.contribution_error
    record.metric("contribution_shares", measured.contribution_shares)
    if measured.gradient_error is not None:
        raise NotApplicable(measured.gradient_error)


def assess_random_init_control(record: AuditRecord, measured: ChannelBias | FirstConvUnread | None, thresholds: Mapping[str, Any],
                               context: Mapping[str, Any]) -> None:
    """A random-init architecture has no colour preference: each share within control_tolerance of 1/3."""
    result = _record_weight_bias(record, measured, context["model"])
    record.metric("group", CONTROL_GROUP)
    record.metric("shares", result.shares)
    worst = max(abs(s - 1 / 3) for s in result.shares)
    if not record.check_max("max_deviation_from_third", worst, "control_tolerance", thresholds["control_tolerance"]):
        raise AssertionError(f"{context['arch']} with random weights has shares {result.shares} ({result.first_conv}): "
                             "random init should sit near 1/3 each")


def zoo_summary(all_shares: list[list[float]]) -> dict:
    """Mean and (sample) standard deviation of the shares over models, per channel."""
    import torch  # at the report's assembly, once: the same numbers as before (float64 torch)

    t = torch.tensor(all_shares, dtype=torch.float64)
    std = t.std(dim=0, unbiased=True).tolist() if len(all_shares) > 1 else None  # undefined for one model
    return {"models": len(all_shares), "mean": t.mean(dim=0).tolist(), "std": std}


def _aggregate(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The zoo table: mean and std of the weight shares per group (audited models, random-init controls)."""
    groups: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for e in entries:
        m = e["metrics"]
        if "shares" in m and "group" in m:
            groups[m["group"]][str(e["model"])] = m["shares"]  # one row per model
    if not groups:
        return None
    out: dict[str, Any] = {name: zoo_summary(list(by_model.values())) | {"model_ids": sorted(by_model)}
                           for name, by_model in sorted(groups.items())}
    out[ZOO_GROUP] = {"models": 31, "mean": list(PUBLISHED_ZOO_MEAN), "std": list(PUBLISHED_ZOO_STD)}
    return out


def _summary_lines(report: dict[str, Any]) -> list[str]:
    return [f"channel bias, {name} ({agg['models']} models): mean R,G,B "
            f"{fmt(agg['mean'])}" + (f", std {fmt(agg['std'])}" if agg["std"] else "")
            for name, agg in report["aggregates"].get("channel_bias", {}).items()]


FAMILY = register_family(Family(
    name="channel_bias",
    gates="shares of |first-layer weights| per input channel (R+G+B = 1), bounded; beside them normalization-aware, "
          "contribution, ablation and gradient shares on real images; 18 torchvision architectures with random weights "
          "as the control (~1/3 each)",
    key_metric="shares",
    higher_is_better=None,  # a vector judged by its range: neither direction is better
    assessors={"weight_shares": assess_weight_shares, "functional_shares": assess_functional_shares,
               "random_init_control": assess_random_init_control},
    metrics=("dominant_channel", "dominant_ratio", "normalized_shares", "contribution_shares", "ablation_drop",
             "gradient_shares"),
    thresholds={
        "min_share": f.fraction("every channel's share of |first-layer weights| at least this", default=0.10),
        "max_share": f.fraction("every channel's share at most this", default=0.60),
        "max_ratio": f.number("largest share / smallest share at most this", minimum=1.0, default=3.0),
        "control_tolerance": f.fraction("random-init controls: each share within 1/3 +- this", default=0.05),
        "functional_images": f.count("images for ablation and gradient shares (a stratified subset)", default=250),
    },
    aggregate=_aggregate,
    summary_lines=_summary_lines,
    html_section="visionaudit.html.sections:channel_bias",
))
