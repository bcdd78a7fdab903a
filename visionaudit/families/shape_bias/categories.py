"""Which of a model's classes make each of the 16 shape-bias categories (Geirhos et al. 2019).

- an ImageNet-1k model: the published mapping (visionaudit/data/imagenet16.py);
- a model whose classes carry WNIDs (timm's ImageNet-12k / 21k / 22k subsets) and include the 16 categories'
  WordNet synsets (:data:`~visionaudit.data.imagenet16.SYNSETS`): each category is its synset's class, whatever
  else shares its name ('car' is also railcar's and elevator car's name there);
- a model whose class names include the 16 category names (``airplane``, ``bear``, ... matched as label spaces
  match names: exactly, then ignoring case, spaces, ``-`` and ``_``): each category is its one class; a name that
  several classes share (exactly, or only loosely) is none of them, and the family does not apply, saying so;
- a model whose classes map onto them through ``[audits.shape_bias] category_map`` (class name -> category;
  several classes may map to one category, aggregated as for ImageNet: ``mean`` by default).

A ``category_map`` naming a class the model does not have, a name several classes share, or no one of the 16
categories, is a ConfigError (:func:`check_category_map`). Every one of the 16 categories needs at least one class:
the published chance levels (2/16 for a cue, 1/16 for a category) and the stimuli assume all 16. Otherwise the family
does not apply, and :func:`shape_categories` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from visionaudit.data.imagenet16 import AGGREGATIONS, SYNSETS, categories, mapping
from visionaudit.data.imagenet16 import decide as imagenet_decide
from visionaudit.errors import ConfigError, closest
from visionaudit.families.assessment import NotApplicable
from visionaudit.formatting import first_few

if TYPE_CHECKING:  # imported where logits are read: the category map is checked on the xdist controller without torch
    import torch

IMAGENET_SOURCE = "ImageNet-1k (Geirhos et al.'s 16-category mapping)"
SYNSET_SOURCE = "WordNet synsets (each category's WNID among the model's classes)"


@dataclass(frozen=True)
class ShapeCategories:
    """The output indices of each of the 16 categories (alphabetical), and where the mapping came from."""

    indices: Mapping[str, tuple[int, ...]]
    source: str  # IMAGENET_SOURCE, SYNSET_SOURCE, "class names", or "category_map"
    imagenet: bool = False

    def decide(self, logits: torch.Tensor, aggregation: str = "mean") -> list[str]:
        """The 16-way decision per row of ``logits``: softmax over all of the model's outputs, each category's
        probabilities aggregated (``mean``, ``sum`` or ``max``), the top category (ties: the first)."""
        if self.imagenet:
            return imagenet_decide(logits, aggregation)  # the published mapping, exactly as before
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
        import torch

        probabilities = torch.softmax(logits.double(), dim=1)
        cols = []
        for idx in self.indices.values():
            sub = probabilities[:, list(idx)]
            cols.append(sub.mean(1) if aggregation == "mean" else sub.sum(1) if aggregation == "sum" else sub.amax(1))
        names = list(self.indices)
        return [names[i] for i in torch.stack(cols, dim=1).argmax(dim=1).tolist()]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "classes_per_category": {c: len(i) for c, i in self.indices.items()}}


def check_category_map(label_space: Any, category_map: Mapping[str, str] | None) -> None:
    """A ``category_map`` naming a class the model does not have, a name several of its classes share (exactly or
    loosely), or a category that is not one of the 16, is a typo or names no one class: :class:`ConfigError` naming
    them all, each with the closest class or category, or the classes that share it and how to name one (not a
    skip, which would hide it). Nothing to check for an ImageNet-1k model, which always uses the published mapping."""
    if not category_map or label_space.imagenet1k:
        return
    wanted = categories()
    problems = []
    for name, category in category_map.items():
        alike = label_space.ambiguous(name)  # () for a WNID, or a name one class has exactly
        shared = label_space.shared_name(name) if alike else None
        if shared is not None:  # several classes have this very name: which one is not known, however it is written
            said = "is the name of" if shared == name else f"matches {shared!r}, the name of"
            problems.append(f"class {name!r} {said} {len(alike)} of the model's classes ({', '.join(alike)}): "
                            + _one_of_shared(label_space, shared, category))
        elif alike:  # up to case, spaces, - and _ it is each of these: which one is not known
            problems.append(f"class {name!r} matches more than one of the model's classes alike ({', '.join(alike)}): "
                            "write it exactly as one")
        elif label_space.index(name) is None:
            near = label_space.closest(name)
            problems.append(f"class {name!r} is not one of the model's {len(label_space)} classes"
                            + (f" (closest class: {near!r})" if near else ""))
        if category not in wanted:
            near = closest(category, wanted)
            problems.append(f"{name!r} = {category!r}: {category!r} is not one of the 16 categories"
                            + (f" (closest: {near!r})" if near else ""))
    if problems:
        raise ConfigError(f"[audits.shape_bias] category_map: {first_few(problems)}. Name the model's classes (from "
                          f"{label_space.source}{', or by WNID' if label_space.ids is not None else ''}) "
                          f"and the 16 categories ({', '.join(wanted)})")


def _one_of_shared(label_space: Any, name: str, category: str) -> str:
    """How a ``category_map`` key names one of the classes that share the name ``name``: by its WNID where the model's
    classes carry WNIDs (a key may be a WNID), else by names given apart (a key cannot be an output index)."""
    if label_space.ids is not None:
        wnid = label_space.ids[label_space.index(name)]
        return f"write the WNID of the one you mean as the key instead (e.g. \"{wnid}\" = \"{category}\")"
    return ("a key cannot be an output index: give the model distinct class names with ?classes=FILE in its spec (one "
            "name per output, in output order) and map those")


def shape_categories(label_space: Any, category_map: Mapping[str, str] | None = None) -> ShapeCategories:
    """The mapping for a model of ``label_space`` (a ``LabelSpace``); :class:`NotApplicable` naming why when there
    is none. ``category_map`` (class name -> category) wins over matching by name for any label space but
    ImageNet-1k's, which always uses the published mapping."""
    if label_space.imagenet1k:
        return ShapeCategories(mapping(), IMAGENET_SOURCE, imagenet=True)
    wanted = categories()
    if category_map:
        check_category_map(label_space, category_map)
        per: dict[str, list[int]] = {c: [] for c in wanted}
        for name, category in category_map.items():
            i = label_space.index(name)
            if i not in per[category]:
                per[category].append(i)
        empty = [c for c in wanted if not per[c]]
        if empty:
            raise NotApplicable(f"[audits.shape_bias] category_map maps no class onto {len(empty)} of the 16 categories "
                                f"({', '.join(empty)}); shape bias needs all 16")
        return ShapeCategories({c: tuple(sorted(per[c])) for c in wanted}, "category_map")
    if label_space.ids is not None:  # WNIDs: each category is its synset's class, never a class that shares its name
        position = {wnid: i for i, wnid in enumerate(label_space.ids)}
        found, shared, how = {c: position.get(SYNSETS[c]) for c in wanted}, {}, "by WordNet synset (WNID)"
    else:
        shared = {c: label_space.ambiguous(c) for c in wanted if label_space.ambiguous(c)}
        found, how = {c: None if c in shared else label_space.index(c) for c in wanted}, "by name"
    missing = [c for c, i in found.items() if i is None and c not in shared]
    if not missing and not shared:
        return ShapeCategories({c: (i,) for c, i in found.items()},
                               SYNSET_SOURCE if label_space.ids is not None else "class names")
    named = f"missing: {first_few([_synset(c, label_space) for c in missing], 8, ', ')}"
    said = "; ".join(f"{c!r}: {', '.join(alike)}" for c, alike in shared.items())
    have = len(wanted) - len(missing) - len(shared)
    if not shared and have == len(label_space):  # every class is a category already: no map can add the rest
        raise NotApplicable(f"its {len(label_space)} classes are {len(label_space)} of the 16 shape-bias categories, and it "
                            f"has no class for the other {len(missing)} ({named}): shape bias needs a class for each of "
                            "the 16, so it cannot be measured for this model")
    if len(label_space) < len(wanted):  # a map gives each class one category: fewer than 16 classes never cover them
        raise NotApplicable(f"it has {len(label_space)} classes, {have} of them shape-bias categories "
                            f"{how} ({named}{f'; shared: {said}' if shared else ''}): shape bias needs a class for each "
                            "of the 16 categories, so it cannot be measured for this model")
    where = ("category_map = {\"class name\" = \"category\", ...} under [audits.shape_bias] (or "
             "[models.\"SPEC\".shape_bias]) in audit.toml")
    if shared:  # binding the first of them would make the number depend on the order of the model's classes
        raise NotApplicable(f"shape-bias category names shared by several of its classes: {said}; which one is the "
                            "category is not known, so none is taken" + (f" ({named})" if missing else "")
                            + "; map the classes you mean with a category_map naming a class for each of the 16 "
                            f"categories (it replaces matching by name): {where}, each class named exactly (classes "
                            "sharing one name exactly: give the model distinct names first with ?classes=FILE in its "
                            "spec)")
    raise NotApplicable(f"its {len(label_space)} classes are not ImageNet-1k's and do not include the 16 shape-bias "
                        f"categories {how} ({named}); map its classes onto them with {where}")


def _synset(category: str, label_space: Any) -> str:
    """A missing category as said: with its WNID where the model's classes are matched by WNID."""
    return f"{category} ({SYNSETS[category]})" if label_space.ids is not None else category
