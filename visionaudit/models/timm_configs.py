"""timm's registered pretrained configurations, read without building a model: the one reader behind the hub's
weights lookup (:func:`visionaudit.models.hub.timm_pretrained_cfg`), the preprocessing known before a model loads
(:func:`visionaudit.models.preprocessing_before_load.timm_pretrained_cfg_before_load`) and the classes known before
it loads (:mod:`visionaudit.models.classes`)."""

from __future__ import annotations

from typing import Any

TIMM_MISSING = "timm: specs need timm: pip install 'visionaudit[timm]'"  # said at startup and by the load


def unknown_name(name: str, written: str | None = None) -> str | None:
    """Why timm cannot build ``NAME[.TAG]``, whatever its weights: an architecture it has not, or a tag it has not
    for it (the tag picks the configuration, the input included), naming the closest as ``written`` (the spec as
    given, default ``timm:NAME``) with it in place; None where it can (its deprecated aliases too: timm registers
    them). ImportError when timm is not installed."""
    import timm
    from timm.models import is_model, split_model_name_tag

    from visionaudit.errors import closest
    from visionaudit.formatting import first_few

    written = written if written and name in written else f"timm:{name}"
    if name.split(".")[0] == "hf-hub" or name.startswith("hf-hub:"):
        return ("timm's own hf-hub:ORG/NAME names are not a spec form: give timm:NAME.TAG, or the downloaded weights "
                "file as a checkpoint (timm:NAME:PATH)")
    arch, tag = split_model_name_tag(name)
    if not is_model(arch):
        near = closest(arch, timm.list_models())
        return f"timm has no model {arch!r}" + (f"; did you mean {written.replace(arch, near, 1)}?" if near
                                                 else "; see timm.list_models()")
    if tag and registered_cfg(name) is None and f"{arch}.{tag}" not in timm.list_pretrained(f"{arch}.*"):
        tags = timm.list_pretrained(f"{arch}.*")
        near = closest(name, tags)
        return (f"timm has no pretrained tag {tag!r} for {arch}; "
                + (f"known: {first_few(tags, 20, ', ')}" if tags else "it has no pretrained tags")
                + (f"; did you mean {written.replace(name, near, 1)}?" if near else ""))
    return None


def deprecated_alias_of(name: str) -> str | None:
    """The current ``NAME.TAG`` timm builds for its deprecated alias ``name`` (``convnext_tiny_in22ft1k``:
    ``convnext_tiny.fb_in22k_ft_in1k``), None for any other name. ImportError when timm is not installed."""
    from timm.models import get_deprecated_models

    return get_deprecated_models().get(name)


def registered_cfg(name: str) -> Any | None:
    """timm's ``PretrainedCfg`` for ``NAME.TAG`` (the default tag's for ``NAME``; an architecture without pretrained
    weights: its ``untrained`` one), the one ``timm.create_model(name)`` looks up. None where timm registers none: a
    name it has not or cannot parse, a tag it has not, a deprecated alias. ImportError when timm is not installed:
    each caller says that its own way."""
    from timm.models import get_pretrained_cfg, is_model, split_model_name_tag

    try:
        if not is_model(split_model_name_tag(name)[0]):
            return None
        return get_pretrained_cfg(name)
    except Exception:  # noqa: BLE001 (an unknown tag is timm's RuntimeError; a name it cannot parse, another)
        return None
