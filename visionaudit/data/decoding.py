"""Image files to uint8 tensors at a model's input geometry: the one place images are decoded."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from visionaudit.errors import DataError
from visionaudit.preprocessing import Geometry

DECODE_THREADS = min(8, os.cpu_count() or 1)  # PIL releases the GIL while decoding: one thread per core helps
_MODES = {"nearest": InterpolationMode.NEAREST, "bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}


def to_rgb(img: Image.Image) -> Image.Image:
    """Grayscale, palette, CMYK, RGBA and the rest become plain RGB."""
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL warns when a palette with transparency goes straight to RGB
    return img.convert("RGB")


def decode_image(path: str | Path, geometry: Geometry) -> torch.Tensor:
    """Read ``path``, make it RGB, and bring it to ``geometry``: uint8 ``(3, size, size)``.

    Natural images: resize the short side and centre-crop. Uncropped geometries (stimuli): the whole
    image resized to the square size, or taken as it is when it already has that size. The resize runs
    on the PIL image (antialiased), as torchvision's evaluation transforms do.
    """
    try:
        with Image.open(path) as img:
            img.load()
            rgb = to_rgb(img)
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"image {path} is unreadable or truncated ({type(e).__name__}: {e}); replace or remove the file") from None
    size = geometry.crop_size
    if geometry.crop:
        rgb = F.resize(rgb, [geometry.resize_size], interpolation=_MODES[geometry.interpolation], antialias=True)
        rgb = F.center_crop(rgb, [size, size])
    elif rgb.size != (size, size):
        rgb = F.resize(rgb, [size, size], interpolation=_MODES[geometry.interpolation], antialias=True)
    return F.pil_to_tensor(rgb)


def decode_or_reason(path: Path, geometry: Geometry) -> torch.Tensor | str:
    """:func:`decode_image`, or why the file cannot be used (so that a set names all its bad files at once)."""
    try:
        return decode_image(path, geometry)
    except DataError as e:
        return str(e)


def refuse_unusable(bad: Sequence[str], total: int) -> None:
    """Raise one :class:`DataError` naming the unusable files (the first 20), when there are any."""
    if bad:
        shown = "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise DataError(f"{len(bad)} of {total} images cannot be used; replace or remove them:\n  {shown}")


def decode_images(
    paths: Sequence[Path],
    geometry: Geometry,
    threads: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Decode many files into one uint8 ``(N, 3, crop, crop)`` tensor (PIL releases the GIL, so threads help).

    Every file is tried: a set with unreadable files is refused once, naming all of them.
    """
    out = torch.empty((len(paths), 3, geometry.crop_size, geometry.crop_size), dtype=torch.uint8)
    bad: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for i, result in enumerate(pool.map(lambda path: decode_or_reason(path, geometry), paths)):
            if isinstance(result, str):
                bad.append(result)
            else:
                out[i] = result
            if progress is not None:
                progress(i + 1, len(paths))
    refuse_unusable(bad, len(paths))
    return out
