"""Image sets: which files, with which labels or cues; decoded once per process per geometry (or streamed
when larger than the decode budget).

Layouts understood:

- cue-conflict stimuli: ``<root>/<shape>/<shape>N-<texture>M.png`` (Geirhos et al. 2019);
- category folders: ``<root>/<category>/*.png`` (the edges and filled-silhouettes stimuli);
- labelled natural images, for any label space: class folders (``<root>/<class>/*.jpg``, the folder named
  by a class name or a WNID: ImageNet val, any ImageFolder), a CSV manifest (``path,label`` rows, each label
  a class name or an output index, each path relative to the CSV's folder and inside it), flat
  ``<wnid>_<name>.JPEG`` files (imagenet-sample), flat ImageNet validation files
  ``ILSVRC2012_val_00000001.JPEG`` with the devkit's ground truth or Kaggle's LOC_val_solution.csv
  (visionaudit/data/imagenet_val.py), or torchvision's Imagenette (its 10 WNIDs mapped to ImageNet indices).

A set whose classes are all ImageNet-1k WNIDs is bound to the ImageNet-1k label space as it is read; any
other keeps each image's class name (``label_names``) and is bound to a model's classes by name when a model
reads it (:meth:`ImageSet.for_classes`), after the controller checked every name at startup.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from visionaudit.data import decode_budget
from visionaudit.data.class_folders import (
    dangling_links,
    links_to_nothing,
    read_class_folders,
)
from visionaudit.data.decoding import DECODE_THREADS, decode_images
from visionaudit.data.imagenet import NOT_A_WNID, class_index, wnid_to_index
from visionaudit.data.imagenet_val import label_folders, val_wnids
from visionaudit.data.label_space import LabelSpace, imagenet1k, unmatched_message
from visionaudit.data.manifest import read_manifest
from visionaudit.data.system_files import skipped_in, system_kind
from visionaudit.data.user_cache import cache_dir
from visionaudit.errors import DataError
from visionaudit.formatting import first_few
from visionaudit.preprocessing import Geometry
from visionaudit.progress import phase

if TYPE_CHECKING:  # torch and the streaming are imported where images are decoded: the xdist controller lists sets without them
    import torch

    from visionaudit.data.streaming import StreamedImages

log = logging.getLogger("visionaudit.data.image_sets")

DATA_ENV = "VISIONAUDIT_DATA"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm"}  # any case
FETCHABLE = ("cue-conflict", "edges", "filled-silhouettes", "texture-vs-shape-raw")
_CUE = re.compile(r"^(?P<shape>[a-z]+)\d+-(?P<texture>[a-z]+)\d+\.png$")
_WNID = re.compile(r"^n\d{8}$")
_FLAT = re.compile(r"^(?P<wnid>n\d{8})_")
IMAGENETTE_FOLDER = "imagenette2-320"  # torchvision's folder for the 320px Imagenette, the size used here
LABELLED_LAYOUTS = ("a folder of class folders (named by class name or WNID), a CSV manifest of path,label rows, a folder "
                    "of <wnid>_<name> files, or of ILSVRC2012_val_*.JPEG files with the devkit's ground truth or Kaggle's "
                    "LOC_val_solution.csv")


@dataclass(frozen=True)
class ImageSet:
    """A list of image files and what is known of each (ImageNet label, category, texture cue)."""

    name: str
    root: Path
    paths: tuple[Path, ...]
    labels: tuple[int, ...] | None = None  # class indices in ``classes``
    categories: tuple[str, ...] | None = None  # shape category / class folder name
    textures: tuple[str, ...] | None = None  # texture cue (cue-conflict only)
    label_names: tuple[str, ...] | None = None  # each image's class as the data names it (WNID, folder, CSV label)
    classes: LabelSpace | None = None  # the label space ``labels`` index (None until bound: :meth:`for_classes`)
    numeric_labels: bool = False  # a CSV manifest's labels may be output indices written as numbers; folders' may not
    skipped: tuple[str, ...] = ()  # operating-system metadata files skipped, relative to root (data/system_files.py)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def sample_ids(self) -> tuple[str, ...]:
        """Stable names of the images: paths relative to the set's root, with ``/``. They key per-image
        outcomes and seed random draws, so a subset, a shard or another machine sees the same ones."""
        return tuple(p.relative_to(self.root).as_posix() if p.is_relative_to(self.root) else p.as_posix() for p in self.paths)

    @property
    def key(self) -> tuple[str, str]:
        """Identity for caches: the set's name and a digest of its file list."""
        digest = hashlib.sha1("\n".join(map(str, self.paths)).encode()).hexdigest()[:16]
        return (self.name, digest)

    def label_tensor(self) -> torch.Tensor:
        if self.labels is None:
            raise DataError(f"image set {self.name} has no class labels" + ("" if self.label_names is None else ": its images "
                            "name their classes; match them to a model's output indices: images.for_classes(model.label_space)"))
        import torch

        return torch.tensor(self.labels, dtype=torch.long)

    def for_classes(self, space: LabelSpace) -> "ImageSet":
        """The set with ``labels`` as output indices of ``space`` (a model's classes), each image's class matched
        by name (:meth:`LabelSpace.index`); a class name matching none stops with them all named."""
        if self.classes == space or self.label_names is None:
            return self
        refusal = unmatched_message(space, self.label_names, self.numeric_labels, self.root)
        if refusal:
            raise DataError(refusal)
        labels = tuple(space.index(n, self.numeric_labels) for n in self.label_names)
        return replace(self, labels=labels, classes=space)  # type: ignore[arg-type]

    def select(self, indices: list[int], name: str | None = None) -> "ImageSet":
        pick = lambda seq: None if seq is None else tuple(seq[i] for i in indices)  # noqa: E731
        return replace(self, name=name or self.name, paths=pick(self.paths), labels=pick(self.labels),
                       categories=pick(self.categories), textures=pick(self.textures), label_names=pick(self.label_names))

    def stratified_subset(self, n: int | None, seed: int = 0) -> "ImageSet":
        """A fixed, seeded subset of ``n`` images spread evenly over the classes (all when ``n`` is None or large)."""
        if not n or n >= len(self):
            return self
        if n < 0:
            raise ValueError(f"--audit-samples must be positive, got {n}")
        classes = self.labels if self.labels is not None else self.categories
        if classes is None:
            classes = tuple(range(len(self)))
        rng = random.Random(seed)
        groups: dict[object, list[int]] = defaultdict(list)
        for i, c in enumerate(classes):
            groups[c].append(i)
        order = sorted(groups, key=str)
        rng.shuffle(order)
        for c in order:
            rng.shuffle(groups[c])
        chosen: list[int] = []
        depth = 0
        while len(chosen) < n:
            for c in order:
                if depth < len(groups[c]):
                    chosen.append(groups[c][depth])
                    if len(chosen) == n:
                        break
            depth += 1
        return self.select(sorted(chosen), name=f"{self.name}[{n} of {len(self)}, seed {seed}]")


_SUBSET_NAME = re.compile(r"\[\d+ of (\d+), seed -?\d+\]$")  # the name stratified_subset gives


def subset_of(name: str) -> int | None:
    """The whole set's size when ``name`` is a subset's (``imagenet-sample[50 of 1000, seed 0]``), else None."""
    m = _SUBSET_NAME.search(name)
    return int(m[1]) if m else None


def parse_cue_name(name: str) -> tuple[str, str] | None:
    """``cat1-elephant2.png`` -> ``("cat", "elephant")`` (shape, texture); None when it does not fit."""
    m = _CUE.match(name)
    return (m["shape"], m["texture"]) if m else None


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The data root: ``--audit-data`` when given, else ``$VISIONAUDIT_DATA``, else the user cache
    (``$VISIONAUDIT_CACHE``; the run fills it on first use, see visionaudit/data/provision.py)."""
    value = explicit or os.environ.get(DATA_ENV)
    if not value:
        return cache_dir()
    root = Path(value).expanduser()
    point = f"Point --audit-data (--data for python -m visionaudit commands) / {DATA_ENV} at"  # shape-bias, html: --data
    if root.exists() and not root.is_dir():
        raise DataError(f"data directory {root} is a file, not a folder. {point} the folder that holds the data")
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist. {point} it, or fetch the data into it: "
                        f"python -m visionaudit fetch --all --dest {root}")
    return root


def uses_cache(explicit: str | os.PathLike | None = None) -> bool:
    """True when the data root is the user cache (no --audit-data, no $VISIONAUDIT_DATA): the only root
    the suite fills by itself; a root the user named is theirs."""
    return not (explicit or os.environ.get(DATA_ENV))


LABELLED = "labelled"  # the labelled natural images (--audit-images), among the data names below


def labelled_path(root: Path, choice: str) -> Path:
    """Where ``--audit-images CHOICE`` points: a path as given when it exists or is absolute, else a folder under the root."""
    path = Path(choice).expanduser()
    return path if path.is_absolute() or path.exists() else root / choice


def missing_data(root_value: str | None, images: str, needs: set[str]) -> list[str]:
    """Every data folder in ``needs`` (``labelled`` or a folder name under the data root) that is not there,
    each with its fix; empty when all are there."""
    if not needs:
        return []
    try:
        root = data_root(root_value)
    except DataError as e:
        return [str(e)]
    problems = []
    for need in sorted(needs):
        if need == LABELLED:
            path = labelled_path(root, images)
            if images == "imagenette":
                if not (root / "imagenette" / IMAGENETTE_FOLDER).is_dir():
                    problems.append(f"Imagenette not found under {root / 'imagenette'}: run once on a machine with internet "
                                    "(torchvision downloads it there)")
            elif not path.is_dir() and not (path.is_file() and path.suffix.lower() == ".csv"):
                point = f"point --audit-images at {LABELLED_LAYOUTS}"
                if path.exists():  # no fetch: at the default's place, it would meet the same file
                    problems.append(f"labelled images at {path}: {path} is a file, not a folder or a .csv manifest; "
                                    + ("remove or rename it, or " if images == "imagenet-sample" else "") + point)
                else:
                    fix = f"python -m visionaudit fetch {images} --dest {root}" if images == "imagenet-sample" else point
                    problems.append(f"labelled images not found at {path}: {fix}")
        elif not (root / need).is_dir():
            fix = f"python -m visionaudit fetch {need} --dest {root}" if need in FETCHABLE else "add it to the data root"
            problems.append(f"{need} not found at {root / need}: {fix}")
    return problems


def _require_dir(path: Path, what: str, fetch_name: str | None) -> None:
    if path.is_dir():
        return
    fix = (f"fetch it: python -m visionaudit fetch {fetch_name} --dest {path.parent}" if fetch_name
           else f"give labelled_images() (--audit-images in a run) {LABELLED_LAYOUTS}")  # from Python too
    raise DataError(f"{what} not found at {path}; {fix}")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not system_kind(p))


def cue_conflict(root: Path) -> ImageSet:
    """The cue-conflict stimuli; shape and texture cues parsed from each file name."""
    _require_dir(root, "cue-conflict stimuli", "cue-conflict")
    paths, shapes, textures = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in _images_in(folder):
            cues = parse_cue_name(path.name)
            if cues is None:
                raise DataError(f"{path}: cue-conflict file names look like cat1-elephant2.png (shape, then texture)")
            if cues[0] != folder.name:
                raise DataError(f"{path}: its shape cue {cues[0]!r} does not match its folder {folder.name!r}")
            paths.append(path)
            shapes.append(cues[0])
            textures.append(cues[1])
    if not paths:
        raise DataError(f"no cue-conflict images under {root}; fetch them: python -m visionaudit fetch cue-conflict "
                        f"--dest {root.parent}")
    return ImageSet("cue-conflict", root, tuple(paths), categories=tuple(shapes), textures=tuple(textures))


def category_folders(root: Path, name: str) -> ImageSet:
    """``<root>/<category>/*`` images, labelled by folder (edges, filled-silhouettes)."""
    _require_dir(root, f"{name} stimuli", name if name in FETCHABLE else None)
    paths, cats = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in _images_in(folder):
            paths.append(path)
            cats.append(folder.name)
    if not paths:
        raise DataError(f"no images under {root}/<category>/")
    return ImageSet(name, root, tuple(paths), categories=tuple(cats))


def labelled_images(root: Path, name: str | None = None) -> ImageSet:
    """Labelled natural images (see the module docstring for the layouts): ``root`` a folder, or a CSV manifest.

    Nothing is dropped without a word: a folder beside the class folders is a class (its name is checked
    against the model's classes), and a file in a class folder that is not an image stops with it named.
    """
    if root.is_file() and root.suffix.lower() == ".csv":
        return csv_manifest(root, name)
    _require_dir(root, "labelled images", "imagenet-sample" if root.name == "imagenet-sample" else None)  # from Python too
    name = name or root.name
    files = _images_in(root)
    devkit = label_folders(root, files)  # the devkit unpacked beside ILSVRC2012_val_* files: their labels, not a class
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p not in devkit
                     and not system_kind(p))  # a zip's __MACOSX/: no class (counted, said in run.notes)
    if folders:
        return _class_folders(root, name, folders)
    val = val_wnids(root, files)  # ILSVRC2012_val_* files: labelled by the devkit or Kaggle's CSV
    paths: list[Path] = []
    labels: list[int] = []
    problems: list[str] = []  # every file, in one refusal
    for path in files:
        m = _FLAT.match(path.name)
        wnid = m["wnid"] if m else val.get(path)
        if wnid is None or wnid not in wnid_to_index():
            problems.append(f"{path.name}: " + ("cannot tell its class" if wnid is None else
                                                f"{wnid!r} {NOT_A_WNID}"))
            continue
        paths.append(path)
        labels.append(class_index(wnid))
    dangling = links_to_nothing(root, IMAGE_SUFFIXES)  # not left out without a word
    if problems or dangling:
        raise DataError(" ".join(([f"{len(problems)} file(s) of {root} cannot be used: {first_few(problems)}. Labelled "
                                   f"images are {LABELLED_LAYOUTS}"] if problems else [])
                                 + ([dangling_links(root, dangling)] if dangling else [])))
    if not paths:
        raise DataError(f"no images under {root}: expected {LABELLED_LAYOUTS}")
    return _imagenet_set(name, root, tuple(paths), tuple(labels), skipped_in(root))


def _class_folders(root: Path, name: str, folders: list[Path]) -> ImageSet:
    """``<root>/<class>/*``: every image labelled by its folder's name (a class name or a WNID)."""
    paths, names = read_class_folders(root, folders, IMAGE_SUFFIXES, LABELLED_LAYOUTS)
    if all(_WNID.match(f.name) and f.name in wnid_to_index() for f in folders):  # an ImageNet-1k set, bound now
        return _imagenet_set(name, root, paths, tuple(class_index(n) for n in names), skipped_in(root, folders))
    return ImageSet(name, root, paths, categories=names, label_names=names, skipped=skipped_in(root, folders))


def csv_manifest(manifest: Path, name: str | None = None) -> ImageSet:
    """A CSV of ``path,label`` rows (visionaudit/data/manifest.py), the images labelled by name or output index."""
    root, paths, names = read_manifest(manifest, IMAGE_SUFFIXES)
    return ImageSet(name or manifest.stem, root, paths, categories=names, label_names=names, numeric_labels=True)


def classes_without_images(image_set: ImageSet, space: LabelSpace) -> list[str]:
    """The classes of ``space`` that no image of ``image_set`` belongs to (an image set may cover some only)."""
    bound = image_set.for_classes(space)
    covered = set(bound.labels or ())
    return [space.label(i) for i in range(len(space)) if i not in covered]


def _imagenet_set(name: str, root: Path, paths: tuple[Path, ...], labels: tuple[int, ...],
                  skipped: tuple[str, ...] = ()) -> ImageSet:
    space = imagenet1k()
    return ImageSet(name, root, paths, labels=labels, categories=tuple(str(i) for i in labels),
                    label_names=tuple(space.ids[i] for i in labels), classes=space, skipped=skipped)  # type: ignore[index]


def imagenette(root: Path, download: bool = False, size: str = "320px") -> ImageSet:
    """torchvision's Imagenette validation split, its 10 WNIDs mapped to ImageNet-1k indices."""
    from torchvision.datasets import Imagenette

    try:
        ds = Imagenette(str(root), split="val", size=size, download=download)
    except (RuntimeError, OSError) as e:  # not there, or its download failed (URLError is an OSError)
        url = Imagenette._ARCHIVES[size][0]
        raise DataError(f"Imagenette not found under {root} ({e}); run once on a networked machine with downloads allowed, "
                        f"or download {url} and unpack it there") from None
    paths = tuple(Path(p) for p, _ in ds._samples)
    labels = tuple(class_index(ds.wnids[local]) for _, local in ds._samples)
    if not paths:
        raise DataError(f"Imagenette under {root} holds no images")
    return _imagenet_set("imagenette", root, paths, labels)


# --- decoding, once per process, within the decode budget -----------------------------------------

_DECODED: "OrderedDict[tuple, torch.Tensor]" = OrderedDict()  # least recently used first


def load_images(
    image_set: ImageSet,
    geometry: Geometry,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor | StreamedImages:
    """The set's images as uint8 ``(N, 3, crop, crop)`` at ``geometry``.

    A set that fits the decode budget (:mod:`visionaudit.data.decode_budget`) is decoded once per process and
    kept, the least recently used sets making room for it; a larger one is a :class:`StreamedImages`,
    decoded batch by batch as it is read, so memory does not grow with the set.
    """
    key = (image_set.key, geometry)
    if key in _DECODED:
        _DECODED.move_to_end(key)
        return _DECODED[key]
    need = len(image_set) * 3 * geometry.crop_size * geometry.crop_size
    limit = decode_budget.budget()
    size = f"{geometry.crop_size}x{geometry.crop_size}"
    if need > limit:
        log.info("streaming %d images of %s at %s: %d bytes exceed the decode budget %d", len(image_set), image_set.name,
                 geometry, need, limit)
        with phase("decode", image_set.name, f"at {size} in batches as they are read ({need / 2**20:.0f} MiB exceed the "
                   f"decode budget of {limit / 2**20:.0f} MiB)", total=len(image_set)):
            from visionaudit.data.streaming import StreamedImages

            return StreamedImages(image_set.paths, geometry)
    while _DECODED and sum(t.nbytes for t in _DECODED.values()) + need > limit:
        _DECODED.popitem(last=False)
    log.info("decoding %d images of %s at %s", len(image_set), image_set.name, geometry)
    with phase("decode", image_set.name, f"at {size}", total=len(image_set)) as p:
        def advance(done: int, total: int) -> None:
            p.advance()
            if progress is not None:
                progress(done, total)

        _DECODED[key] = decode_images(image_set.paths, geometry, threads=DECODE_THREADS, progress=advance)
    return _DECODED[key]


ROLES = (LABELLED, "cue-conflict", "edges", "filled-silhouettes")  # the image sets of a run


def run_image_set(role: str, root: Path, images: str = "imagenet-sample", samples: int | None = None, seed: int = 0,
                  download: bool = True) -> ImageSet:
    """The image set a run uses for ``role`` (``labelled`` is ``--audit-images``), subset by ``--audit-samples``."""
    if role == LABELLED:
        image_set = (imagenette(root / "imagenette", download=download) if images == "imagenette"
                     else labelled_images(labelled_path(root, images)))
    elif role == "cue-conflict":
        image_set = cue_conflict(root / role)
    elif role in ROLES:
        image_set = category_folders(root / role, role)
    else:
        raise ValueError(f"unknown image set role {role!r}; known: {', '.join(ROLES)}")
    return image_set.stratified_subset(samples, seed)
