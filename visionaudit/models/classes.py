"""A model's classes (its :class:`~visionaudit.data.label_space.LabelSpace`): from the model when it carries
them, else from a class file, checked against the number of outputs.

Where the names come from, first found wins:

1. ``?classes=FILE`` in the spec (this model's, explicitly);
2. the model's own: torchvision weights' ``meta["categories"]``, a timm model's pretrained configuration (its
   ImageNet subset, through timm's ``infer_imagenet_subset`` / ``ImageNetInfo``), a Hugging Face
   ``config.id2label`` (unless it is the ``LABEL_0 ...`` placeholder), EfficientNet-Lite's ImageNet-1k;
3. ``--audit-classes FILE`` / ``[run] classes`` (the run's default for models that carry no names);
4. ImageNet-1k for a model with 1,000 outputs, else the output indices.

``?imagenet=true`` makes the label space ImageNet-1k whatever the model names (its outputs must be 1,000, else a
:class:`ClassCountMismatch`); ``?imagenet=false`` keeps the names but not as ImageNet-1k (no WNIDs; output indices
when nothing names them). A 1,000-name list that is ImageNet-1k's classes in order, as torchvision writes them or as
Hugging Face configs do (``"tench, Tinca tinca"``), is ImageNet-1k (:func:`is_imagenet1k`).

A list whose length is not the model's number of outputs is a :class:`ClassCountMismatch`. Some label spaces
are known before any model loads (:func:`known_before_load`): the controller checks the labelled images
against them at startup.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable, Iterator

from visionaudit.data.imagenet import wnids
from visionaudit.data.label_space import (
    LabelSpace,
    imagenet1k,
    imagenet_names,
    loose,
    output_indices,
    read_classes_file,
)
from visionaudit.errors import ConfigError
from visionaudit.models.heads import (
    hf_config_problem_type,
    one_output_error,
    regression_error,
    state_dict_outputs,
)
from visionaudit.models.hub import hf_config_file
from visionaudit.models.specs import (
    IMAGENET_FALSE,
    IMAGENET_TRUE,
    ModelSpec,
    parse_spec,
    torchvision_weights_enum,
)
from visionaudit.models.timm_configs import registered_cfg

_HF_PLACEHOLDER = re.compile(r"^LABEL_\d+$")  # transformers' id2label when nobody named the classes
# Hugging Face ImageNet configs carry the classic list ("tench, Tinca tinca", ...); torchvision's names are one
# lemma each and rename a few duplicates (class 134 "crane" is "crane bird", 639 "maillot" "tank suit"), so a
# handful of indices may differ; 990 of 1,000 matching at their index is ImageNet-1k, not chance.
_IMAGENET_MIN_MATCHES = 990


class ClassCountMismatch(ConfigError):
    """A class list whose length differs from the model's outputs."""


def from_file(path: str | Path, where: str) -> LabelSpace:
    """The classes in a class file (one name per line, or a JSON list); ``where`` says who named the file."""
    return LabelSpace(read_classes_file(path), f"{where} {path}")


def from_names(names: list[str] | tuple[str, ...], source: str) -> LabelSpace:
    """A list of names; ImageNet-1k's classes in its order (:func:`is_imagenet1k`) become ImageNet-1k, with its
    WNIDs and torchvision's readable names."""
    names = tuple(str(n) for n in names)
    if is_imagenet1k(names):
        return imagenet1k(source)
    return LabelSpace(names, source)


def is_imagenet1k(names: tuple[str, ...] | list[str]) -> bool:
    """Whether 1,000 names are ImageNet-1k's classes in its order: at (nearly) every index the name is the WNID,
    or one of its comma-separated lemmas matches torchvision's name loosely (``"tench, Tinca tinca"``)."""
    if len(names) != 1000:
        return False
    tv, ids = imagenet_names(), wnids()
    matches = sum(
        1 for i, name in enumerate(names)
        if name.strip() == ids[i] or loose(tv[i]) in {loose(lemma) for lemma in name.split(",")}
    )
    return matches >= _IMAGENET_MIN_MATCHES


def imagenet_flag(spec: ModelSpec) -> bool | None:
    """``?imagenet=``: True, False, or None when the spec does not say (its value was checked as the spec was parsed,
    :mod:`visionaudit.models.specs`)."""
    value = spec.options.get("imagenet")
    return None if value is None else value in IMAGENET_TRUE


def not_imagenet(space: LabelSpace) -> LabelSpace:
    """``space`` as a plain label space (``?imagenet=false``): its names, without ImageNet-1k's WNIDs."""
    if not space.imagenet1k:
        return space
    return LabelSpace(space.names, f"{space.source}, not ImageNet-1k (?imagenet=false)")


def imagenet_hint(space: LabelSpace) -> str:
    """For refusals of image classes that match none of a model's: ``?imagenet=true`` when it has 1,000 classes
    that are not ImageNet-1k's (its outputs may be ImageNet-1k's all the same)."""
    if len(space) == 1000 and not space.imagenet1k:
        return (" (the model has 1,000 outputs: if they are ImageNet-1k's classes, add ?imagenet=true to its spec, "
                "e.g. --model 'SPEC?imagenet=true')")
    return ""


def torchvision_classes(weights: Any, name: str) -> LabelSpace | None:
    """The classes of torchvision weights (their ``meta["categories"]``), None for weights without them."""
    categories = (getattr(weights, "meta", None) or {}).get("categories")
    if not categories:
        return None
    return from_names(categories, f"torchvision:{name} weights {weights.name} (meta['categories'])")


def timm_classes(module: Any, name: str) -> LabelSpace | None:
    """A timm model's classes from its pretrained configuration: the ImageNet subset timm infers from it, its
    label names (WNIDs) and descriptions through ``timm.data.ImageNetInfo``; None when timm infers none."""
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset
    except ImportError:  # an older timm without the helpers: the model's outputs decide
        return None
    try:
        subset = infer_imagenet_subset(module)
    except Exception:  # a configuration timm cannot read: no names rather than a failed load
        return None
    return _timm_subset(subset, name, ImageNetInfo)


def _timm_subset(subset: str | None, name: str, info_class: Any) -> LabelSpace | None:
    """The label space of one of timm's ImageNet subsets (``imagenet-1k``, ``imagenet-21k-goog``, ...)."""
    if not subset:
        return None
    source = f"timm:{name} pretrained configuration ({subset})"
    if subset == "imagenet-1k":
        return imagenet1k(source)  # torchvision's readable names, the same in every model entry
    info = info_class(subset)
    ids = tuple(info.label_names())
    names = tuple(d.split(",")[0].strip() for d in info.label_descriptions())
    return LabelSpace(names, source, ids, subset)


def _timm_outputs(name: str) -> int | None:
    """The outputs of timm model ``name`` (a tag such as ``resnet18.a1_in1k`` included) by its pretrained
    configuration, which ships in the package: nothing is built or downloaded. None when timm is absent or does
    not know the name (the load then says so)."""
    try:
        cfg = registered_cfg(name)  # None for a name timm cannot resolve: the startup check names it
    except ImportError:
        return None
    outputs = getattr(cfg, "num_classes", None)
    return outputs if isinstance(outputs, int) and outputs > 0 else None


def _timm_spec_outputs(spec: ModelSpec) -> int | None:
    """The outputs of a ``timm:`` spec's model before it loads: its configuration's; with a local checkpoint, the
    rows of the checkpoint's classifier (the configuration's ``classifier`` layer), since a replaced head is built
    to fit the checkpoint (:func:`visionaudit.models.loading._build_timm`); None when they cannot be read."""
    outputs = _timm_outputs(spec.name)
    if spec.path is None or outputs is None:
        return outputs
    from visionaudit.models.checkpoints import tensor_shapes

    classifier = getattr(registered_cfg(spec.name), "classifier", None)
    if isinstance(classifier, (tuple, list)):  # a distilled model's two heads: the first is the class head
        classifier = classifier[0] if classifier else None
    shapes = tensor_shapes(spec.path) if isinstance(classifier, str) else None
    weight = (shapes or {}).get(f"{classifier}.weight")
    return weight[0] if weight else None


def timm_classes_before_load(name: str, outputs: int | None = None) -> LabelSpace | None:
    """What :func:`timm_classes` gives once ``timm:NAME`` loads, from its pretrained configuration alone (no model
    built): a timm model is built with its configuration's outputs, or ``outputs`` (a local checkpoint's head)."""
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset
    except ImportError:
        return None
    outputs = outputs or _timm_outputs(name)
    return None if outputs is None else _timm_subset(infer_imagenet_subset({"num_classes": outputs}), name, ImageNetInfo)


def hf_classes(module: Any) -> LabelSpace | None:
    """A Hugging Face model's ``config.id2label`` in output order; None when absent or the placeholder."""
    id2label = getattr(getattr(module, "config", None), "id2label", None)
    if not isinstance(id2label, dict) or not id2label:
        return None
    try:
        by_index = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError):
        return None
    if sorted(by_index) != list(range(len(by_index))):
        return None
    names = [by_index[i] for i in range(len(by_index))]
    if all(_HF_PLACEHOLDER.match(n) for n in names):
        return None
    return from_names(names, "the model's config.id2label (Hugging Face)")


def resolve(spec: ModelSpec, own: LabelSpace | None, num_classes: int, run_classes: str | None = None) -> LabelSpace:
    """The model's label space (see the module docstring for the order), its length checked against its outputs."""
    space = None
    if "classes" in spec.options:
        space = from_file(spec.options["classes"], "?classes=")
    elif own is not None:
        space = own
    elif run_classes:
        space = from_file(run_classes, "--audit-classes")
    flag = imagenet_flag(spec)
    if flag:  # the user says the outputs are ImageNet-1k's: they must be 1,000
        if num_classes != 1000:
            raise _not_imagenet_outputs(spec, num_classes)
        return imagenet1k("ImageNet-1k (?imagenet=true)")
    if space is not None:
        check_count(spec.id, space, num_classes)
        return not_imagenet(space) if flag is False else space
    if flag is None and num_classes == 1000:
        return imagenet1k()
    return output_indices(num_classes)


def _not_imagenet_outputs(spec: ModelSpec, outputs: int) -> ClassCountMismatch:
    return ClassCountMismatch(
        f"model {spec.id} has {outputs} outputs, but ?imagenet=true says they are ImageNet-1k's 1,000 classes: drop "
        "?imagenet=true (and name its classes with ?classes=FILE or --audit-classes FILE)")


def check_count(model_id: str, space: LabelSpace, num_classes: int) -> None:
    if len(space) != num_classes:
        raise ClassCountMismatch(
            f"model {model_id} has {num_classes} outputs, but its class list ({space.source}) names {len(space)} "
            f"classes: give one class name per output, in output order")


def known_before_load(spec: ModelSpec, run_classes: str | None = None) -> LabelSpace | None:
    """The label space of ``spec`` when it can be known without loading the model (on the controller, at
    startup): ``?classes=``, EfficientNet-Lite, torchvision weights' categories or a torchvision architecture's
    1,000 ImageNet outputs, a Hugging Face model's ``id2label`` (its config.json), a timm model's ImageNet subset
    from its pretrained configuration (no model built), ``--audit-classes`` for a TorchScript file (it carries no
    names), the output indices of a Hugging Face or timm model that names none; None otherwise.
    ``?imagenet=`` applies as in :func:`resolve`."""
    flag = imagenet_flag(spec)
    if flag:
        return imagenet1k("ImageNet-1k (?imagenet=true)")  # else the model refuses to load (ClassCountMismatch)
    space = _known_before_load(spec, run_classes)
    return not_imagenet(space) if space is not None and flag is False else space


def spaces_known_before_load(models: Iterable[str], run_classes: str | None = None) -> Iterator[tuple[str, LabelSpace]]:
    """(spec id, label space) of each of ``models`` (specs) whose label space is :func:`known_before_load`, in order.
    The startup checks of the models' classes read them here; the other models are checked as they load."""
    for model in models:
        try:
            spec = parse_spec(model)
            space = known_before_load(spec, run_classes)
        except (ConfigError, ValueError, KeyError):
            continue  # said where the model loads
        if space is not None:
            yield spec.id, space


def _known_before_load(spec: ModelSpec, run_classes: str | None) -> LabelSpace | None:
    imagenet_flag = spec.options.get("imagenet")
    if "classes" in spec.options:
        return from_file(spec.options["classes"], "?classes=")
    if spec.kind == "lite":
        return imagenet1k()
    if spec.kind == "torchvision":
        import torchvision

        weights = _pretrained_torchvision_weights(spec)
        if weights is not None:
            own = torchvision_classes(weights, spec.name)
            if own is not None:
                return own
        if run_classes:  # random weights carry no names
            return from_file(run_classes, "--audit-classes")
        if imagenet_flag not in IMAGENET_FALSE and spec.name in torchvision.models.list_models(module=torchvision.models):
            return imagenet1k()  # a classification architecture: 1,000 outputs
        return None
    if spec.kind == "hf":  # its config.json, on disk before the model loads (hub models: fetched at startup)
        own = _hf_config_classes(spec)
        if own is not None:
            return own
        return from_file(run_classes, "--audit-classes") if run_classes else _unnamed(spec, outputs_before_load(spec))
    if spec.kind == "timm":
        outputs = _timm_spec_outputs(spec)
        if outputs is None:  # a checkpoint whose head cannot be read now: the load decides
            return None
        own = timm_classes_before_load(spec.name, outputs)
        if own is not None:
            return own
        # No ImageNet subset (a fine-tuned head, say): at load the model names none, so the run's class file
        # applies, as it will then, else its outputs' indices.
        return from_file(run_classes, "--audit-classes") if run_classes else _unnamed(spec, outputs)
    if spec.kind == "torchscript" and run_classes:  # a TorchScript file carries no names
        return from_file(run_classes, "--audit-classes")
    return None


def _unnamed(spec: ModelSpec, outputs: int | None) -> LabelSpace | None:
    """What :func:`resolve` gives a model of ``outputs`` outputs that nothing names (step 4), where they are known
    before it loads (a Hugging Face config's placeholder names, a timm checkpoint's replaced head): its class folders
    are then checked at startup, as for a named model, not as it loads."""
    if outputs is None:
        return None
    return imagenet1k() if imagenet_flag(spec) is None and outputs == 1000 else output_indices(outputs)


def _hf_id2label(spec: ModelSpec) -> dict | None:
    path = hf_config_file(spec)
    try:
        id2label = json.loads(path.read_text()).get("id2label") if path is not None else None
    except (OSError, ValueError, AttributeError):  # unreadable: the load says why
        return None
    return id2label if isinstance(id2label, dict) and id2label else None


def _hf_config_classes(spec: ModelSpec) -> LabelSpace | None:
    """A Hugging Face model's ``id2label`` read from its ``config.json`` (as :func:`hf_classes` reads the loaded model's)."""
    id2label = _hf_id2label(spec)
    return hf_classes(SimpleNamespace(config=SimpleNamespace(id2label=id2label))) if id2label else None


def outputs_before_load(spec: ModelSpec) -> int | None:
    """How many outputs ``spec``'s model has, when that is known without loading it: EfficientNet-Lite's and a
    torchvision classifier's 1,000 (its weights' category count), a Hugging Face classifier's ``id2label``'s length,
    a timm model's pretrained configuration's, a state dict's (:func:`visionaudit.models.heads.state_dict_outputs`);
    None otherwise."""
    if spec.kind == "lite":
        return 1000
    if spec.kind == "hf":
        id2label = _hf_id2label(spec)
        return len(id2label) if id2label else None
    if spec.kind == "timm":
        return _timm_spec_outputs(spec)
    if spec.kind == "state_dict":  # its --arch's head, or the checkpoint's rows where they differ
        return state_dict_outputs(spec)
    if spec.kind == "torchvision":
        import torchvision

        if spec.name not in torchvision.models.list_models(module=torchvision.models):
            return None
        weights = _pretrained_torchvision_weights(spec)
        if weights is not None:
            return len((weights.meta or {}).get("categories") or ()) or None
        return 1000
    return None


def _pretrained_torchvision_weights(spec: ModelSpec) -> Any:
    """The pretrained weights a torchvision spec names (DEFAULT's for DEFAULT); None for random ones (``:none``)."""
    enum = torchvision_weights_enum(spec.name) if spec.weights not in (None, "none") else None
    if enum is None:
        return None
    return enum.DEFAULT if spec.weights == "DEFAULT" else enum[spec.weights]


def check_before_load(spec: ModelSpec, run_classes: str | None = None) -> None:
    """A class list whose length is known to differ from the outputs before the model loads: refused now; so is a head
    of one output known now that the load would refuse (:func:`check_one_output`), with its message."""
    outputs = outputs_before_load(spec)
    if outputs == 1:
        own = _hf_config_classes(spec) if spec.kind == "hf" else None
        check_one_output(spec, one_output_names(spec, own, run_classes), hf_config_problem_type(spec))
        return
    space = known_before_load(spec, run_classes)
    if space is not None and outputs is not None:
        if imagenet_flag(spec) and outputs != 1000:
            raise _not_imagenet_outputs(spec, outputs)
        check_count(spec.id, space, outputs)


def one_output_names(spec: ModelSpec, own: LabelSpace | None, run_classes: str | None) -> LabelSpace | None:
    """The names a model of one output would be audited with, as :func:`resolve` picks them; None when none are given."""
    if "classes" in spec.options:
        return from_file(spec.options["classes"], "?classes=")
    return own or (from_file(run_classes, "--audit-classes") if run_classes else None)


def check_one_output(spec: ModelSpec, names: LabelSpace | None, problem_type: str | None = None) -> LabelSpace:
    """A model of one output ``z`` is audited as two classes, logits ``[0, z]``: ``names`` (those it would be audited
    with) must be two, else it is refused saying so; a Hugging Face regression head is refused saying what it is
    (:func:`visionaudit.models.heads.regression_error`). At startup where the head is known then, else at load."""
    regression = regression_error(spec, problem_type, names is not None and len(names) == 2)
    if regression is not None:
        raise regression
    if names is None:
        raise one_output_error(spec.raw, "none were given")
    try:
        check_count(spec.id, names, 2)
    except ClassCountMismatch as e:
        raise one_output_error(spec.raw, f"not as given: {e}") from None
    return names
