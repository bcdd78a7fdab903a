"""timm's registered pretrained configurations, read without building a model: the one reader behind the hub's
weights lookup (:func:`visionaudit.models.hub.timm_pretrained_cfg`), the preprocessing known before a model loads
(:func:`visionaudit.models.preprocessing_before_load.timm_pretrained_cfg_before_load`) and the classes known before
it loads (:mod:`visionaudit.models.classes`)."""

from __future__ import annotations

from typing import Any


def unknown_architecture(name: str) -> str | None:
    """Why timm cannot build ``NAME[.TAG]``'s architecture, naming the closest one it has; None where it can (its
    deprecated aliases too: timm registers them). ImportError when timm is not installed."""
    import timm
    from timm.models import is_model, split_model_name_tag

    from visionaudit.errors import closest

    arch = split_model_name_tag(name)[0]
    if is_model(arch):
        return None
    near = closest(arch, timm.list_models())
    return f"timm has no model {arch!r}" + (f"; did you mean timm:{near}?" if near else "; see timm.list_models()")


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
