"""A downloaded ImageNet-C folder scored as it is (``--audit-imagenet-c DIR``), bypassing the kernels.

``DIR/<corruption>/<severity>/<wnid>/<file>.JPEG``: each file is decoded as stored (224x224; a file of
another size is resized whole to 224) and fed as the dataset is fed (visionaudit.families.corruption's step 4), the
way hendrycks/robustness's ``test.py`` scores it. On the complete dataset (50,000 images per condition, all
75 conditions) the mCE is the published one. Files are decoded and scored in chunks, so the 3.75 million
files never sit in memory at once.

The clean reference is the labelled images (``--audit-images``) under the protocol's clean pass, matched by
sample id (``<wnid>/<file>``): pointed at the ImageNet validation folder, every ImageNet-C image has its
clean original, and the McNemar tests and the relative mCE are computed; otherwise they are not (NaN), and
the entries say why.

Per-image outcomes are kept as for the kernels: the scored files' sample ids once, as the report's image set
``imagenet-c`` (:data:`ROLE`, fingerprinted by the first condition folder's files), and a condition's right/wrong
bits on its entry. In a shard (``--audit-shard``) the images are chosen from the whole folder first and the
shard scores its share of them, so that ``visionaudit merge`` joins the shards into the unsharded run.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Mapping, Sequence

import numpy as np

from visionaudit.data import shards as sharding
from visionaudit.data.decoding import decode_images
from visionaudit.data.fingerprint import SampleSet, data_fingerprint
from visionaudit.data.image_sets import ImageSet, labelled_images
from visionaudit.errors import DataError
from visionaudit.families.corruption import (
    PROTOCOL_GEOMETRY,
    Condition,
    Unavailable,
    feed_geometry,
    paired,
    to_model_input,
)
from visionaudit.families.corruption.imagenet_c import (
    SEVERITIES,
    check_root,
    condition_folder,
)
from visionaudit.preprocessing import whole_image

if TYPE_CHECKING:  # torch and the models are imported where images are scored: fixtures/corruption.py imports this
    import torch  # module on the xdist controller too, which never imports torch

    from visionaudit.models.loading import LoadedModel

ROLE = "imagenet-c"  # the report's name for the folder's image set (samples.imagenet-c)
FULL_SIZE = 50_000  # images per condition in ImageNet-C (the ImageNet validation set)
CHUNK = 1_000


def condition_images(root: Path, corruption: str, severity: int, samples: int | None, seed: int) -> ImageSet:
    """The files of one condition folder a run scores (its ``--audit-samples`` subset, all shards'): what
    :meth:`FolderRun.condition` reads, and what the startup header check opens (visionaudit/families/image_check.py)."""
    folder = condition_folder(root, corruption, severity)
    return labelled_images(folder, name=f"imagenet-c {corruption}/{severity}").stratified_subset(samples, seed)


def reference_folder(root: Path, conditions: Sequence[tuple[str, int]]) -> Path:
    """The condition folder whose images every scored condition must hold (and the report's fingerprint's): the first
    present of ``conditions`` (the run's, every model's: the same for each), else the first present in the order of
    names (the complete folder's brightness/1). Not a folder none scores (an extra, a corruption not configured, partly
    extracted), which would make every scored condition "hold other images"."""
    present = [condition_folder(root, c, s) for c, s in sorted(conditions)]
    present += [condition_folder(root, c, s) for c in sorted(p.name for p in root.iterdir()) for s in SEVERITIES]
    return next(f for f in present if f.is_dir())


def _differ(ids: Sequence[str], reference: Sequence[str]) -> str:
    """How a condition's images differ from the reference folder's: the images it lacks and those it holds besides."""
    lacks, more = sorted(set(reference) - set(ids)), sorted(set(ids) - set(reference))
    said = [f"{what} {len(found)}, e.g. {found[0]}" for what, found in (("lacks", lacks), ("holds another", more)) if found]
    return ", ".join(said) or "in another order"


def other_images(root: Path, scored: Mapping[tuple[str, int], ImageSet], conditions: Sequence[tuple[str, int]],
                 samples: int | None, seed: int, said: Collection[Path] = ()) -> str | None:
    """The startup check's problem naming every condition folder of ``scored`` (the images a run scores of each, its
    --audit-samples subset) that holds other images than :func:`reference_folder` of ``conditions``, None where all
    match: what :meth:`FolderRun.condition` would find of each only once a model had loaded. A reference that cannot be
    listed is the problem; one in ``said`` (folders whose own problem the check said) is compared with nothing."""
    reference = reference_folder(root, conditions)
    if reference in said:
        return None
    try:
        ids = labelled_images(reference).stratified_subset(samples, seed).sample_ids
    except DataError as e:  # a reference no collected test scores (-k): its listing is read here only
        return (f"{reference}, the ImageNet-C condition folder every condition the run scores is paired with image by "
                f"image, cannot be listed: {e}")
    wrong = [f"{condition_folder(root, c, s)} ({_differ(images.sample_ids, ids)})"
             for (c, s), images in sorted(scored.items()) if images.sample_ids != ids]
    if not wrong:
        return None
    them = "it" if len(wrong) == 1 else "them"
    return (f"{len(wrong)} ImageNet-C condition folder(s) of --audit-imagenet-c hold other images than {reference}, the "
            f"one every condition is paired with image by image: {'; '.join(wrong)}; download or extract {them} again, or "
            f"{reference} where it is the one that differs (every condition folder holds the same <wnid>/<file> names)")


class FolderRun:
    """One model on an ImageNet-C folder: each condition scored once, paired with the clean originals."""

    def __init__(self, model: LoadedModel, root: str | Path, labelled: ImageSet, clean_images: torch.Tensor,
                 samples: int | None = None, seed: int = 0, shard: sharding.Shard | None = None,
                 conditions: Sequence[tuple[str, int]] = ()) -> None:
        self.root = check_root(Path(root))
        self.model, self.labelled, self.clean_images = model, labelled, clean_images
        self.samples, self.seed, self.feed = samples, seed, feed_geometry(model)
        self.reference_folder = first = reference_folder(self.root, conditions)
        reference = labelled_images(first, name=ROLE)
        chosen = reference.stratified_subset(samples, seed)
        self.shard, self._chosen = shard, chosen
        self.whole_ids: tuple[str, ...] = chosen.sample_ids  # the run's images (all shards)
        self._part = chosen if shard is None else sharding.select(chosen, shard)
        self.ids: tuple[str, ...] = self._part.sample_ids  # the images scored here
        self._sample_set: SampleSet | None = None
        self.total = len(reference)
        self.subset = None if chosen is reference else f"{len(chosen)} of {len(reference)} ImageNet-C images"
        self.comparable = chosen is reference and len(reference) == FULL_SIZE
        self._clean: np.ndarray | None = None
        # Known before anything is scored (every entry's protocol says it), and judged on the run's images, not the
        # shard's: every shard has a clean reference or none does.
        labelled_ids = set(labelled.sample_ids)
        missing = sum(s not in labelled_ids for s in self.whole_ids)
        self.clean_note = "" if not missing else (
            f"no clean reference: {missing} of the {len(self.whole_ids)} ImageNet-C images have no original among the labelled "
            f"images {labelled.name} (point --audit-images at the ImageNet validation folder, WNID folders, for the relative "
            "mCE and the McNemar tests)")
        self._conditions: dict[tuple[str, int], Condition] = {}

    @property
    def n_images(self) -> int:
        return len(self.ids)

    def sample_set(self) -> SampleSet:
        """The scored images as the report names them (``samples.imagenet-c``); in a shard, with where each sits
        among the run's images, for ``visionaudit merge``."""
        if self._sample_set is None:
            whole = data_fingerprint(self._chosen)
            section = None if self.shard is None else sharding.shard_section(self._chosen, self.shard, whole)
            self._sample_set = SampleSet(ROLE, self._chosen.name, self.ids,
                                         whole if self.shard is None else data_fingerprint(self._part),
                                         self.samples, self.seed, shard=section)
        return self._sample_set

    def describe(self, jpeg: bool = False) -> dict[str, Any]:
        feed = self.feed
        return {"decode": "ImageNet-C files as stored (224x224 JPEG, quality 85)", "jpeg_round_trip": False,
                "feed": "as stored (224)" if feed is None else {"resize": feed.resize_size, "size": feed.crop_size,
                                                                "interpolation": feed.interpolation},
                "clean": self.clean_note or f"the labelled images at {PROTOCOL_GEOMETRY.to_dict()}, matched by sample id"}

    def _score(self, paths: Sequence[Path], labels: torch.Tensor, what: str) -> tuple[np.ndarray, np.ndarray]:
        """Per image, right/wrong and the top-1 output index (which names what a later release lost)."""
        from visionaudit.models.inference import predict_logits

        out = []
        for start in range(0, len(paths), CHUNK):
            images = decode_images(paths[start:start + CHUNK], whole_image(PROTOCOL_GEOMETRY.crop_size))
            logits = predict_logits(self.model, images, transform=lambda b, idx: to_model_input(b, self.feed), what=what)
            out.append(logits.argmax(1).numpy().astype(np.int64))
        predicted = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
        return predicted == labels.numpy(), predicted

    def clean(self) -> np.ndarray | None:
        """Right/wrong on the clean originals in the order of :attr:`ids`, or None (and :attr:`clean_note`)
        when the labelled images are not the ones ImageNet-C was made from."""
        from visionaudit.models.inference import predict_logits

        if self.clean_note:
            return None
        if self._clean is None:
            where = {s: i for i, s in enumerate(self.labelled.sample_ids)}
            found = [where[s] for s in self.ids]
            logits = predict_logits(self.model, self.clean_images[found], transform=lambda b, idx: to_model_input(b, self.feed),
                                    what="ImageNet-C clean originals")
            self._clean = (logits.argmax(1) == self.labelled.label_tensor()[found]).numpy()
        return self._clean

    def jpeg_only(self) -> None:
        return None  # the files are already the stored JPEGs

    def condition(self, corruption: str, severity: int) -> Condition:
        key = (corruption, severity)
        if key not in self._conditions:
            folder = condition_folder(self.root, corruption, severity)
            if not folder.is_dir():
                raise Unavailable(f"{corruption}/{severity} is not in the ImageNet-C folder {self.root}")
            images = condition_images(self.root, corruption, severity, self.samples, self.seed)
            if images.sample_ids != self.whole_ids:  # the startup check says it first (other_images), where it can
                raise DataError(f"{folder} holds other images than the other ImageNet-C conditions (against "
                                f"{self.reference_folder}: {_differ(images.sample_ids, self.whole_ids)}); download or "
                                "extract it again")
            if self.shard is not None:
                images = sharding.select(images, self.shard)
            correct, predicted = self._score(images.paths, images.label_tensor(), f"ImageNet-C {corruption} severity {severity}")
            self._conditions[key] = paired(corruption, severity, correct, self.clean(), predicted)
        return self._conditions[key]


_RUNS: "weakref.WeakKeyDictionary[LoadedModel, dict[tuple, FolderRun]]" = weakref.WeakKeyDictionary()


def cached_folder_run(model: LoadedModel, root: str | Path, labelled: ImageSet, clean_images: torch.Tensor,
                      samples: int | None, seed: int, shard: sharding.Shard | None = None,
                      conditions: Sequence[tuple[str, int]] = ()) -> FolderRun:
    per_model = _RUNS.setdefault(model, {})
    key = (str(root), labelled.key, samples, seed, shard, tuple(conditions))
    if key not in per_model:
        per_model[key] = FolderRun(model, root, labelled, clean_images, samples, seed, shard, conditions)
    return per_model[key]
