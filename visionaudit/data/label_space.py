"""A model's label space: its classes, in output order, with where the names came from.

ImageNet-1k models keep their WNIDs (``ids``) with readable names; any other classifier has the names it
carries (torchvision weights, timm, Hugging Face ``id2label``) or that the user gives (``--audit-classes``,
``?classes=``). Labelled images name their class as a WNID, a folder name or a CSV label; :meth:`LabelSpace.index`
matches such a name to an output index (exactly, then ignoring case, spaces, ``-`` and ``_``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from visionaudit.data.imagenet import wnids
from visionaudit.errors import ConfigError, closest

IMAGENET1K = "ImageNet-1k"
_LOOSE = re.compile(r"[\s\-_]+")


def loose(name: str) -> str:
    """A class name as matched loosely: case, spaces, ``-`` and ``_`` ignored."""
    return _LOOSE.sub("", name).casefold()


@dataclass(frozen=True)
class LabelSpace:
    """Ordered class names (output ``i`` is ``names[i]``), where they came from, and WNIDs for ImageNet-1k."""

    names: tuple[str, ...]
    source: str = field(compare=False)  # the same classes are the same label space wherever the names came from
    ids: tuple[str, ...] | None = None  # the WNIDs, for ImageNet-1k label spaces
    _exact: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _loose: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for i, name in reversed(list(enumerate(self.names))):  # the first of duplicate names wins
            self._exact[name] = i
            self._loose[loose(name)] = i
        for i, wnid in enumerate(self.ids or ()):
            self._exact[wnid] = i

    def __len__(self) -> int:
        return len(self.names)

    @property
    def imagenet1k(self) -> bool:
        return self.ids is not None and len(self.ids) == 1000

    @property
    def given(self) -> bool:
        """False when nothing named the classes (the names are output indices)."""
        return not self.source.startswith("output indices")

    def label(self, index: int) -> str:
        """How people read class ``index``: its name (``tench``), with its WNID for ImageNet-1k."""
        name = self.names[index]
        return f"{name} ({self.ids[index]})" if self.ids is not None else name

    def index(self, name: str, numeric: bool = False) -> int | None:
        """The output index of a class named ``name``: a WNID, a name, a name up to case, spaces, - and _, or
        else, with ``numeric`` (a CSV manifest's label, which may be either), an output index written as a number.
        A folder's name is a class name only: a stray ``7/`` among WNID folders is not class 7 (where the
        classes are output indices, their names are the numbers and match as names)."""
        if name in self._exact:
            return self._exact[name]
        found = self._loose.get(loose(name))
        if found is None and numeric and name.strip().isdigit() and int(name) < len(self.names):
            found = int(name)
        return found

    def closest(self, name: str) -> str | None:
        """The class nearest to ``name`` as people read it (for refusals): by loose name, then by WNID."""
        by_loose = {loose(n): i for i, n in reversed(list(enumerate(self.names)))}
        near = closest(loose(name), by_loose)
        if near is not None:
            return self.label(by_loose[near])
        near = closest(name, list(self.ids or ()))
        return self.label(self.ids.index(near)) if near is not None and self.ids is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"count": len(self.names), "source": self.source, "imagenet1k": self.imagenet1k,
                "names": list(self.names), **({"ids": list(self.ids)} if self.ids is not None else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LabelSpace":
        ids = d.get("ids")
        return cls(tuple(d["names"]), d.get("source", "report"), tuple(ids) if ids is not None else None)


@lru_cache(maxsize=1)
def imagenet_names() -> tuple[str, ...]:
    """The 1,000 readable ImageNet-1k names in class-index order (torchvision's, shipped with it)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet1k(source: str = "ImageNet-1k (1,000 outputs)") -> LabelSpace:
    return LabelSpace(imagenet_names(), source, wnids())


def output_indices(count: int) -> LabelSpace:
    """The label space of a model whose classes nobody named: its output indices as names."""
    return LabelSpace(tuple(str(i) for i in range(count)),
                      "output indices (no class names given: --audit-classes FILE or ?classes=FILE names them)")


def read_classes_file(path: str | Path) -> tuple[str, ...]:
    """Class names from a file: a JSON list, or one name per line in output order (blank lines ignored)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"class names file {p} cannot be read ({e.strerror or e}); give one name per line in output "
                          "order, or a JSON list") from None
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"class names file {p} is not a valid JSON list ({e.msg}, line {e.lineno})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"class names file {p}: a JSON class list holds strings only")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ConfigError(f"class names file {p} holds no names; give one name per line in output order")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"class names file {p} names {', '.join(map(repr, dupes[:5]))} more than once; each class once")
    return tuple(names)


def unmatched(space: LabelSpace, labels: Iterable[str], numeric: bool = False) -> list[str]:
    """The labels in ``labels`` that name no class of ``space`` (``numeric``: :meth:`LabelSpace.index`), each with
    the closest class name."""
    out = []
    for label in sorted(set(labels)):
        if space.index(label, numeric) is None:
            near = space.closest(label)
            out.append(f"{label!r}" + (f" (closest class: {near!r})" if near else ""))
    return out
