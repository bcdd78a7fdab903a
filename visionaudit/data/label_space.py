"""A model's label space: its classes, in output order, with where the names came from.

ImageNet-1k models keep their WNIDs (``ids``) with readable names; any other classifier has the names it
carries (torchvision weights, timm, Hugging Face ``id2label``) or that the user gives (``--audit-classes``,
``?classes=``). Labelled images name their class as a WNID, a folder name or a CSV label; :meth:`LabelSpace.index`
matches such a name to an output index (exactly, then loosely: :func:`loose`).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Iterable

from visionaudit.data.imagenet import wnids
from visionaudit.errors import ConfigError, closest
from visionaudit.formatting import first_few

IMAGENET1K = "ImageNet-1k"
_LOOSE = re.compile(r"[\s\-_]+")
# A named label space (ImageNet-1k, timm's ImageNet subsets) longer than this is recorded in the report by its
# name, count and sha256, not name by name (timm's ImageNet-21k: 21,843 names and WNIDs, about 700 KB per model).
NAMES_IN_FULL = 2000


def loose(name: str) -> str:
    """A class name as matched loosely: case, spaces, ``-``, ``_`` and invisible format characters (a byte-order
    mark, a zero-width space) ignored, and an accent written as one character or as a letter and a combining mark
    (macOS and zip archives write folder names so: NFD) the same. Unicode's canonical caseless match
    (NFD, casefold, NFD) does the case and the accents."""
    if name.isascii():  # nearly every name: no Unicode work
        return _LOOSE.sub("", name).casefold()
    folded = unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())
    return "".join(c for c in _LOOSE.sub("", folded) if unicodedata.category(c) != "Cf")


def look_alike(a: str, b: str) -> bool:
    """Whether two different names print (nearly) the same, up to case: they differ only in invisible or
    compatibility characters (``'ﬁsh'``, a zero-width space) or in non-ASCII letters at the same places (a
    Cyrillic ``е`` for a Latin ``e``). A message naming both shows them with :func:`ascii`, which tells them apart."""
    def shown(name: str) -> str:
        return "".join(c for c in unicodedata.normalize("NFKC", name).casefold() if unicodedata.category(c) not in ("Cf", "Cc"))

    if a == b or a.isascii() and b.isascii():
        return False
    def unaccented(c: str) -> bool:  # an accented letter (NFD: a letter and a mark) is visibly not its base letter
        return not c.isascii() and not any(unicodedata.category(m) == "Mn" for m in unicodedata.normalize("NFD", c))

    a, b = shown(a), shown(b)
    # A homoglyph is a letter of another script standing in for an ASCII one at the same place; two names in one
    # non-Latin script ('кошки', 'кошка') differ visibly and print readably.
    return a == b or (len(a) == len(b) and all(x == y or x.isascii() != y.isascii() and (unaccented(x) or unaccented(y))
                                                for x, y in zip(a, b)))


def name_and_closest(name: str, near: str | None) -> str:
    """``'cats' (closest class: 'cat')`` for a refusal; both as :func:`ascii` when they would print alike."""
    if near is None:
        return repr(name)
    if look_alike(name, near):
        return (f"{name!a} (closest class: {near!a}; the two differ in characters that print alike, "
                "shown escaped)")
    return f"{name!r} (closest class: {near!r})"


@dataclass(frozen=True)
class LabelSpace:
    """Ordered class names (output ``i`` is ``names[i]``), where they came from, and WNIDs for ImageNet-1k."""

    names: tuple[str, ...]
    source: str = field(compare=False)  # the same classes are the same label space wherever the names came from
    ids: tuple[str, ...] | None = None  # the WNIDs, for ImageNet-1k label spaces (and timm's other ImageNet subsets)
    named: str | None = field(default=None, compare=False)  # a known label space: imagenet-1k, imagenet-21k-goog, ...
    _exact: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _loose: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    # Loose forms that several classes share, written differently ('cat' and 'Cat') or alike (three 'cell'): a name
    # matching only so ('CAT', 'Cell') is none of them.
    _ambiguous: dict[str, tuple[int, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)
    # Names several classes share (ImageNet-21k's three 'cell'): an image labelled so is none of them in particular.
    _repeated: dict[str, tuple[int, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_loose: dict[str, list[int]] = {}
        by_name: dict[str, list[int]] = {}
        for i, name in reversed(list(enumerate(self.names))):  # the first of duplicate names wins
            self._exact[name] = i
            key = loose(name)
            self._loose[key] = i
            by_loose.setdefault(key, []).append(i)
            by_name.setdefault(name, []).append(i)
        self._ambiguous.update((key, tuple(sorted(indices))) for key, indices in by_loose.items() if len(indices) > 1)
        self._repeated.update((name, tuple(sorted(indices))) for name, indices in by_name.items() if len(indices) > 1)
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
        found = None if loose(name) in self._ambiguous else self._loose.get(loose(name))
        if found is None and numeric and name.strip().isdigit() and int(name) < len(self.names) and not self.numbered:
            found = int(name)
        return found

    @cached_property
    def numbered(self) -> bool:
        """Whether some class name is a number: then a number is a name only, never an output index ("1".."10" and
        labels 0..9 would put "0" and "1" on one class). Cached: :meth:`index` asks it for every image."""
        return self.given and any(name.strip().isdigit() for name in self.names)  # not given: the names are the indices

    def ambiguous(self, name: str) -> tuple[str, ...]:
        """The classes (as :meth:`label` reads them) an image labelled ``name`` could be, where it could be more than
        one: a name several classes share exactly (ImageNet-21k's 'cell'), or one matching several equally loosely
        and none exactly (``'CARDIGAN'`` of ImageNet's 'Cardigan' and 'cardigan'; ``'Cell'`` of the three 'cell'),
        which :meth:`index` matches to none; () where the name is one class's, a WNID's or none's."""
        return tuple(self.label(i) for i in self._alike(name))

    def shared_name(self, name: str) -> str | None:
        """The one name several classes share that ``name`` is, exactly or loosely (``'cell'`` for ``'Cell'`` on
        ImageNet-21k): no way of writing it names one of them; None where ``name`` is not such a name."""
        names = {self.names[i] for i in self._alike(name)}
        return names.pop() if len(names) == 1 else None

    def _alike(self, name: str) -> tuple[int, ...]:
        if self.ids is not None and name in self.ids:
            return ()
        return self._repeated.get(name) or (() if name in self._exact else self._ambiguous.get(loose(name), ()))

    def closest(self, name: str) -> str | None:
        """The class nearest to ``name`` as people read it (for refusals): by loose name, then by WNID."""
        by_loose = {loose(n): i for i, n in reversed(list(enumerate(self.names)))}
        near = closest(loose(name), by_loose)
        if near is not None:
            return self.label(by_loose[near])
        near = closest(name, list(self.ids or ()))
        return self.label(self.ids.index(near)) if near is not None and self.ids is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The report's model entry ``classes``: a known named label space also by its name and the sha256 of its
        names, which alone stand for names beyond :data:`NAMES_IN_FULL` (``names_omitted``: their count)."""
        out: dict[str, Any] = {"count": len(self.names), "source": self.source, "imagenet1k": self.imagenet1k}
        if self.named:
            out.update({"label_space": self.named, "sha256": names_sha256(self.names)})
            if len(self.names) > NAMES_IN_FULL:
                return {**out, "names_omitted": len(self.names)}
        return {**out, "names": list(self.names), **({"ids": list(self.ids)} if self.ids is not None else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LabelSpace":
        names_ids = names_of(d)
        if names_ids is None:
            raise ValueError(f"the report names none of these {d.get('count')} classes ({d.get('label_space')}), and "
                             "they cannot be rebuilt here")
        return cls(names_ids[0], d.get("source", "report"), names_ids[1], d.get("label_space"))


def names_sha256(names: Iterable[str]) -> str:
    """The sha256 of the names, one per line (UTF-8), as the report records it for a named label space."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def named_space(name: str) -> LabelSpace | None:
    """A known label space by its name: ImageNet-1k, or one of timm's ImageNet subsets (when timm is here)."""
    if name == "imagenet-1k":
        return imagenet1k()
    try:
        from timm.data import ImageNetInfo

        info = ImageNetInfo(name)
        ids, descriptions = tuple(info.label_names()), info.label_descriptions()
    except Exception:  # noqa: BLE001 (no timm, or a subset this timm does not know)
        return None
    return LabelSpace(tuple(d.split(",")[0].strip() for d in descriptions), f"timm ({name})", ids, name)


def names_of(classes: dict[str, Any] | None) -> tuple[tuple[str, ...], tuple[str, ...] | None] | None:
    """A report model entry's ``classes`` as (names, WNIDs or None): as written, or, where the names were omitted,
    rebuilt from the named label space when its sha256 matches; None when neither can be had."""
    if not classes:
        return None
    if classes.get("names") is not None:
        ids = classes.get("ids")
        return tuple(classes["names"]), tuple(ids) if ids is not None else None
    space = named_space(str(classes.get("label_space") or ""))
    if space is None or names_sha256(space.names) != classes.get("sha256"):
        return None
    return space.names, space.ids


@lru_cache(maxsize=1)
def imagenet_names() -> tuple[str, ...]:
    """The 1,000 readable ImageNet-1k names in class-index order: torchvision's (its weights' ``categories``), shipped
    here as a file so that the data check reads them without importing torch (tests/data/test_imagenet_names.py holds
    the file to torchvision's list)."""
    from importlib import resources

    text = resources.files("visionaudit").joinpath("resources/imagenet_names.txt").read_text(encoding="utf-8")
    names = tuple(line for line in text.splitlines() if line)
    if len(names) != 1000:  # a damaged installation, not the user's input
        raise RuntimeError(f"visionaudit/resources/imagenet_names.txt holds {len(names)} names, not 1,000: reinstall visionaudit")
    return names


def imagenet1k(source: str = "ImageNet-1k (1,000 outputs)") -> LabelSpace:
    return LabelSpace(imagenet_names(), source, wnids(), "imagenet-1k")


def output_indices(count: int) -> LabelSpace:
    """The label space of a model whose classes nobody named: its output indices as names."""
    return LabelSpace(tuple(str(i) for i in range(count)),
                      "output indices (no class names given: --audit-classes FILE or ?classes=FILE names them)")


def read_classes_file(path: str | Path) -> tuple[str, ...]:
    """Class names from a file: a JSON list, or one name per line in output order (blank lines ignored)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows Notepad) is not part of the first name
    except OSError as e:
        raise ConfigError(f"class names file {p} cannot be read ({e.strerror or e}); give one name per line in output "
                          "order, or a JSON list") from None
    if text.lstrip().startswith("{"):  # an id2label mapping, say: its lines are no names
        raise ConfigError(f"class names file {p} holds a JSON object, not a list: give the names as a JSON list in output "
                          "order, or one name per line (for an id2label mapping, its names in index order)")
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
        raise ConfigError(f"class names file {p} names {len(dupes)} class(es) more than once: "
                          f"{first_few(list(map(repr, dupes)), 5, ', ')}; each class once")
    return tuple(names)


def unmatched(space: LabelSpace, labels: Iterable[str], numeric: bool = False) -> list[str]:
    """The labels in ``labels`` that name no class of ``space`` (``numeric``: :meth:`LabelSpace.index`), each with
    the closest class name."""
    return [name_and_closest(label, space.closest(label)) for label in sorted(set(labels))
            if space.index(label, numeric) is None and not space.ambiguous(label)]


def unmatched_message(space: LabelSpace, labels: Iterable[str], numeric: bool, where: Path) -> str | None:
    """The refusal of the images in ``where`` whose class names (``labels``) match no class of ``space``, every
    name with its closest class, or more than one (:meth:`LabelSpace.ambiguous`), each with those classes; None when
    each matches one. One home for the refusal, said at startup or as a model loads."""
    labels = set(labels)
    alike = [f"{label!r} ({', '.join(space.ambiguous(label))})" for label in sorted(labels) if space.ambiguous(label)]
    missing = unmatched(space, labels, numeric)
    said = (f"{len(alike)} class name(s) of the images in {where} match more than one class of the model alike "
            f"({len(space)} classes, from {space.source}): {first_few(alike)}; name each folder (or CSV label) as exactly "
            f"one class{', or by its WNID' if space.ids is not None else ''}" if alike else "")
    if not missing:
        return said or None
    said = f"{said}. " if said else ""
    # A class file one name short reads the same as a misnamed folder; with no near class, say both (hunt35 F3).
    short = (space.source.startswith(("?classes=", "--audit-classes")) and not numeric
             and any(space.closest(label) is None for label in set(labels) if space.index(label, numeric) is None))
    return said + (
        f"{len(missing)} class name(s) of the images in {where} match no class of the model ({len(space)} classes, "
        f"from {space.source}): {first_few(missing)}. Rename the folders (or CSV labels) to the model's class names, "
        "or give the model's classes (?classes=FILE in the spec; --audit-classes FILE for a model that names none)"
        + (f"; if the folders are right, the class file is incomplete: it names {len(space)} classes, and needs one "
           "name per output of the model, in output order" if short else "")
        + ("; the model's class names are numbers, so a number in a CSV is a class name, not an output index"
           if numeric and space.numbered and any(n.strip().isdigit() and space.index(n) is None for n in labels) else ""))
