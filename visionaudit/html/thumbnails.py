"""What the model saw: a few labelled images under each transform, as small inline JPEGs.

The report holds the sample ids and the seed, so the transforms are redrawn exactly (per sample id) from
the data root, during the run or later from the CLI; the caption says whose images they are (:func:`attribution`).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from PIL import Image

from visionaudit.data.image_sets import LABELLED, ImageSet, labelled_path
from visionaudit.data.imagenet_val import VAL_NAME
from visionaudit.families.records import audited_models
from visionaudit.families.robustness.transforms import TRANSFORMS
from visionaudit.preprocessing import Geometry

if TYPE_CHECKING:  # torch comes with the images (load_images) when there are images to draw: writing a page from a
    import torch  # report alone (no data root, nothing to redraw) imports none, at the end of a run or from the CLI

IMAGENET_TERMS = "ImageNet (ILSVRC 2012) images, used under the ImageNet terms of access (non-commercial research and education)"
IMAGENET_C_TERMS = "ImageNet-C (corrupted ImageNet validation images): Hendrycks & Dietterich 2019"
STIMULI_TERMS = "cue-conflict, edge and silhouette stimuli: Geirhos et al. 2019, CC BY 4.0"
STIMULI = ("cue-conflict", "edges", "filled-silhouettes")
IMAGENET_C = "imagenet-c"  # the role of a downloaded ImageNet-C folder's images (families/corruption/folder.py ROLE)
IMAGENET_SETS = ("imagenet-sample", "imagenette")  # --audit-images names of ImageNet's own images under the data root


def _imagenets(choice: str, ids: list[str], data_root: Path | None) -> bool:
    """Whether the labelled images are ImageNet's, on strong evidence only: a named ImageNet set, the data root's
    imagenet-sample folder given as a path, or every file named as ImageNet's validation images are. WNID class folders
    and ``<wnid>_<name>`` files are not: they are labelling layouts a team's own photos use too, and calling those
    ImageNet's is false, where naming ImageNet's files as the run's images leaves out their terms but says nothing false."""
    if choice in IMAGENET_SETS:
        return True
    if data_root is not None and labelled_path(data_root, choice).resolve() == (data_root / IMAGENET_SETS[0]).resolve():
        return True
    return bool(ids) and all(VAL_NAME.match(PurePosixPath(i).stem) for i in ids)


def attribution(report: dict[str, Any], shown: list[tuple[str, str]], images: str | None = None,
                data_root: Path | None = None) -> str | None:
    """Whose images the page shows, for the ``(set, id)`` pairs it shows: ImageNet's terms for ImageNet's images
    (:func:`_imagenets`) and ImageNet-C's (made from them, credited to its authors), a team's own labelled images named
    as the run's (``data_root``: the one the page is rendered with), and Geirhos et al.'s licence for the stimuli; each
    part decided on its own, so a team's images shown beside ImageNet-C's are not said to be ImageNet's."""
    choice = images or report.get("run", {}).get("images") or IMAGENET_SETS[0]
    labelled = [i for s, i in shown if s in (LABELLED, "corruption")]
    labelled_imagenet = bool(labelled) and _imagenets(choice, labelled, data_root)
    imagenet_c = any(s == IMAGENET_C for s, _ in shown)
    parts = [IMAGENET_TERMS] if labelled_imagenet or imagenet_c else []
    if imagenet_c:
        parts.append(IMAGENET_C_TERMS)
    if labelled and not labelled_imagenet:
        parts.append(f"the run's labelled images ({choice})")
    if any(s in STIMULI for s, _ in shown):
        parts.append(STIMULI_TERMS)
    return f"Images: {'; '.join(parts)}." if parts else None


def _jpeg_uri(image: torch.Tensor, size: int) -> str:
    pil = Image.fromarray(image.permute(1, 2, 0).numpy()).resize((size, size), Image.BILINEAR)
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _model_of(report: dict[str, Any]) -> str:
    return next(iter(audited_models(report)), "the model")


def _geometry(report: dict[str, Any]) -> Geometry:
    """The first audited model's resize and crop (the transforms act on what it was fed), else 256/224."""
    for spec in audited_models(report):
        p = report.get("models", {}).get(spec, {}).get("preprocessing") or {}
        if isinstance(p.get("crop_size"), int) and isinstance(p.get("resize_size"), int):
            return Geometry(p["resize_size"], p["crop_size"], p.get("interpolation") or "bilinear",
                            crop=p.get("keep_aspect", True), floor_crop=p.get("floor_crop", False),
                            alpha_on_white=p.get("alpha_on_white", False))  # absent before stop 44: dropped
    return Geometry(256, 224, "bilinear", crop=True)


def _measured(report: dict[str, Any]) -> dict[str, float]:
    """Each transform the run measured, at the severity its entries recorded."""
    out: dict[str, float] = {}
    for e in report.get("audits", []):
        t = e.get("params", {}).get("transform") if e.get("audit") == "robustness" else None
        if t in TRANSFORMS and t not in out:
            severity = e.get("metrics", {}).get("severity")
            out[t] = float(severity) if isinstance(severity, (int, float)) else 1.0
    return out


def transform_strips(report: dict[str, Any], data_root: Path, images: str | None = None, n: int = 3,
                     size: int = 72) -> dict[str, Any] | None:
    """``{"strips": {"clean": [uri, ...], "<transform> (severity s)": [...]}, "caption": ...}`` for the first
    ``n`` labelled sample ids of the report, the transforms it measured at their severities, at the first
    audited model's resize and crop; None when the report or the data root does not have them."""
    from visionaudit.data.image_sets import load_images

    labelled = (report.get("samples") or {}).get(LABELLED)
    choice = images or report.get("run", {}).get("images") or "imagenet-sample"
    root = labelled_path(Path(data_root), choice)
    if not labelled or not root.is_dir():
        return None
    paths = tuple(root / i for i in labelled["ids"][:n])
    if not all(p.is_file() for p in paths):
        return None
    measured = _measured(report)
    if not measured:
        return None  # no transform to redraw: no image is decoded (nor torch imported)
    image_set = ImageSet("thumbnails", root, paths)
    batch = load_images(image_set, _geometry(report))
    seed = report.get("run", {}).get("seed", 0)
    out = {"clean": [_jpeg_uri(img, size) for img in batch]}
    for name, severity in measured.items():
        label = name if severity == 1.0 else f"{name} (severity {severity:g})"
        out[label] = [_jpeg_uri(img, size) for img in TRANSFORMS[name](batch, list(image_set.sample_ids), seed, severity)]
    geometry = _geometry(report)
    warp = "" if geometry.crop else " (the whole image, its aspect not kept)"
    caption = (f"The first {len(paths)} labelled images ({', '.join(image_set.sample_ids)}) at {_model_of(report)}'s resize "
               f"{geometry.resize_size}{warp} and crop {geometry.crop_size}, with the run's seed {seed}: the draws it made.")
    return {"strips": out, "caption": caption,
            "attribution": attribution(report, [(LABELLED, i) for i in image_set.sample_ids], images, Path(data_root))}


GALLERY_SIZE = 96  # px: a lost image's thumbnail in the baseline section's gallery

_FOLDER_SOURCE = "ImageNet-C folder "  # a corruption entry's metrics.source in folder mode, before run.imagenet_c


def imagenet_c_root(report: dict[str, Any]) -> Path | None:
    """The ``--audit-imagenet-c`` folder a report's corruption family scored: ``run.imagenet_c`` (schema 6 on), else
    the corruption entries' ``source`` ("ImageNet-C folder DIR"); None when the report names none."""
    recorded = (report.get("run") or {}).get("imagenet_c")
    if recorded:
        return Path(recorded)
    for e in report.get("audits", []):
        source = (e.get("metrics") or {}).get("source") if e.get("audit") == "corruption" else None
        if isinstance(source, str) and source.startswith(_FOLDER_SOURCE):
            return Path(source[len(_FOLDER_SOURCE):])
    return None


def _condition_parts(condition: str) -> tuple[str, str] | None:
    """``"fog-3"`` (families/corruption/scoring.py condition_name) -> ``("fog", "3")``."""
    corruption, _, severity = condition.rpartition("-")
    return (corruption, severity) if corruption and severity.isdigit() else None


class ImageSource:
    """Where the page finds a report's images: the data root it is rendered with (``--audit-data``), the labelled
    images' choice (``--audit-images``, else the report's ``run.images``) and the downloaded ImageNet-C folder
    (``imagenet_c``, else the report's record of it)."""

    def __init__(self, data_root: Path, images: str | None = None, imagenet_c: Path | None = None) -> None:
        self.data_root, self.images = Path(data_root), images
        self.imagenet_c = Path(imagenet_c) if imagenet_c else None

    def folder(self, report: dict[str, Any], role: str, condition: str | None = None) -> Path | str:
        """The folder of an image set's ids: the labelled images for the labelled set and the corruption subset of
        them; for a downloaded ImageNet-C folder's images, the condition's ``<corruption>/<severity>`` folder in it
        (the files the model saw); else the stimuli's folder under the data root (edges, filled-silhouettes,
        cue-conflict). A str instead of a Path: why there is no folder."""
        if role in (LABELLED, "corruption"):
            return labelled_path(self.data_root, self.images or report.get("run", {}).get("images") or "imagenet-sample")
        if role == IMAGENET_C:
            root = self.imagenet_c or imagenet_c_root(report)
            parts = _condition_parts(str(condition))
            if root is None:
                return "the report does not record its ImageNet-C folder (--audit-imagenet-c)"
            if parts is None:
                return f"{condition} is not an ImageNet-C condition (<corruption>-<severity>)"
            return root / parts[0] / parts[1]
        return self.data_root / role

    def thumbnails(self, report: dict[str, Any], examples: list[dict[str, Any]],
                   size: int = GALLERY_SIZE) -> tuple[dict[int, str], dict[int, str]]:
        """For each example (``{"id", "set", "condition", ...}``): an inline JPEG of the image as the model saw it under
        its condition (a transform redrawn with the run's seed; other conditions: the image before it), or why there is
        none. Returns ``(uris, why_not)`` by the examples' positions."""
        from visionaudit.data.image_sets import load_images

        uris, why_not = {}, {}
        seed = report.get("run", {}).get("seed", 0)
        geometry = _geometry(report)
        for k, ex in enumerate(examples):
            folder = self.folder(report, str(ex.get("set")), ex.get("condition"))
            if isinstance(folder, str):
                why_not[k] = folder
                continue
            path = folder / str(ex.get("id"))
            if not path.is_file():
                why_not[k] = f"not under {folder}" if folder.is_dir() else f"{folder} is not here"
                continue
            try:
                batch = load_images(ImageSet("gallery", folder, (path,)), geometry)
                transform = TRANSFORMS.get(str(ex.get("condition")))
                if transform is not None:  # the draw the run made for this image (seeded per sample id)
                    batch = transform(batch, [str(ex["id"])], seed, 1.0)
                uris[k] = _jpeg_uri(batch[0], size)
            except Exception as e:  # noqa: BLE001  (an unreadable image costs its thumbnail, not the page)
                why_not[k] = f"not readable ({type(e).__name__})"
        return uris, why_not
