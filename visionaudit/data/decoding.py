"""Image files to uint8 tensors at a model's input geometry: the one place images are decoded."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from PIL import Image, UnidentifiedImageError

from visionaudit.errors import DataError
from visionaudit.preprocessing import Geometry

if TYPE_CHECKING:
    import torch

# torch and torchvision are imported where images are decoded: the settings plugin sets the pixel limit here on the
# xdist controller, which never imports them (benchmarks/phases.py times the start-up).

DECODE_THREADS = min(8, os.cpu_count() or 1)  # PIL releases the GIL while decoding: one thread per core helps
# The guard against decompression bombs (a 1 MB PNG that decodes to 30000 x 30000): an image with more pixels is
# refused. The default is where PIL itself refuses (twice its MAX_IMAGE_PIXELS of 89,478,485), so every image
# that decoded before still does; --audit-max-image-pixels / [run] max_image_pixels move it.
DEFAULT_MAX_IMAGE_PIXELS = 2 * 89_478_485
MAX_PIXELS_FIX = "--audit-max-image-pixels N or [run] max_image_pixels = N in audit.toml"
_max_pixels = DEFAULT_MAX_IMAGE_PIXELS


def _resize(rgb: Image.Image, size: list[int], interpolation: str) -> Image.Image:
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    return F.resize(rgb, size, interpolation=InterpolationMode(interpolation), antialias=True)


# Modes whose bands are 8 bits (0..255): PIL's convert("RGB") keeps their values.
EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})
SAVE_AS_8_BIT = "save it as an 8-bit image (8 bits per channel: grayscale, RGB or RGBA PNG, or JPEG)"


class UnsupportedMode(ValueError):
    """An image whose pixel values have no known range (32-bit integer, float): refused, not guessed."""


def _sixteen_bit(img: Image.Image) -> bool:
    """16-bit grayscale: PIL's I;16 modes, or a PNG or PGM opened as "I" (older Pillow reads 16-bit grayscale
    PNGs so, a PNG holding at most 16 bits a sample; PIL reads a PGM of more than 8 bits so, scaled to 0..65535)."""
    return img.mode.startswith("I;16") or (img.mode == "I" and img.format in ("PNG", "PPM"))


def to_rgb(img: Image.Image) -> Image.Image:
    """Grayscale (8- or 16-bit), palette, CMYK, RGBA and the rest become plain 8-bit RGB.

    16-bit grayscale is brought to 8 bits as round(v / 257), the nearest 8-bit level and the exact inverse of
    the usual 8-to-16-bit expansion (v * 257, bit replication), as the PNG specification's sample depth
    scaling does (v >> 8 would round down, up to one level darker). PIL's own convert("RGB") clips it at 255,
    which turns a 16-bit image white. Modes whose range is unknown (32-bit integer "I", float "F") raise
    :class:`UnsupportedMode`: 0..1, 0..255 and 0..65535 are all in use, and a guess would be audited silently.
    """
    if img.mode == "RGB":
        return img
    if _sixteen_bit(img):
        import numpy as np

        wide = np.asarray(img).astype(np.int64)  # I;16B and the rest: numpy reads the byte order from the mode
        return Image.fromarray(((wide + 128) // 257).clip(0, 255).astype(np.uint8)).convert("RGB")
    if img.mode not in EIGHT_BIT_MODES:
        kind = {"F": "32-bit float", "I": "32-bit integer"}.get(img.mode, "an unsupported")
        raise UnsupportedMode(f"its pixels are {kind} values (PIL mode {img.mode}), whose range (0..1? 0..255? "
                              f"0..65535?) is unknown; {SAVE_AS_8_BIT}")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL warns when a palette with transparency goes straight to RGB
    return img.convert("RGB")


def set_max_image_pixels(limit: int | None) -> int:
    """Refuse images of more than ``limit`` pixels in this process (None: the default); the previous limit.

    The check here (:func:`decode_image`, from the header, before anything is decoded) replaces PIL's own
    guard, which is turned off: PIL would warn from half its limit, and its warnings and its refusal name no
    file. The images the suite opens besides the user's are its own (frost pictures, JPEG round trips)."""
    global _max_pixels
    previous, _max_pixels = _max_pixels, limit or DEFAULT_MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    return previous


def max_image_pixels() -> int:
    return _max_pixels


def _too_large_fix() -> str:
    return (f" (a guard against decompression bombs); if the image is genuine, raise the limit with {MAX_PIXELS_FIX}, "
            "or shrink or remove the file")


def _too_large(path: str | Path, pixels: str) -> DataError:
    return DataError(f"image {path} is too large to decode: {pixels} pixels, more than the limit of {_max_pixels:,}"
                     + _too_large_fix())


def decode_image(path: str | Path, geometry: Geometry) -> torch.Tensor:
    """Read ``path``, make it RGB, and bring it to ``geometry``: uint8 ``(3, size, size)``.

    Natural images: resize the short side and centre-crop. Uncropped geometries (stimuli, warping models): the
    whole image resized to the square resize size, or taken as it is when it already has that size, then
    centre-cropped when the crop is smaller. The resize runs
    on the PIL image (antialiased), as torchvision's evaluation transforms do.
    """
    try:
        with Image.open(path) as img:  # reads the header only: the size is known before anything is decoded
            if img.width * img.height > _max_pixels:
                raise _too_large(path, f"{img.width} x {img.height} = {img.width * img.height:,}")
            img.load()
            rgb = to_rgb(img)
    except UnsupportedMode as e:
        raise DataError(f"image {path} cannot be used: {e}") from None
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist") from None
    except Image.DecompressionBombError as e:  # PIL's own guard, when set_max_image_pixels was not called
        found = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_large(path, f"{int(found.group(1)):,}" if found else "so many") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"image {path} is unreadable or truncated ({type(e).__name__}: {e}); replace or remove the file") from None
    size = geometry.crop_size
    if geometry.crop:
        rgb = _resize(rgb, [geometry.resize_size], geometry.interpolation)
        rgb = _centre_crop(rgb, size, geometry.floor_crop)
    else:
        warp = geometry.resize_size
        if rgb.size != (warp, warp):
            rgb = _resize(rgb, [warp, warp], geometry.interpolation)
        if warp != size:
            rgb = _centre_crop(rgb, size, geometry.floor_crop)
    from torchvision.transforms.v2 import functional as F

    return F.pil_to_tensor(rgb)


def _centre_crop(rgb: Image.Image, size: int, floor: bool) -> Image.Image:
    """torchvision's centre crop (offset rounded to the nearest pixel), or Hugging Face's (rounded down)."""
    if not floor or rgb.width < size or rgb.height < size:
        from torchvision.transforms.v2 import functional as F

        return F.center_crop(rgb, [size, size])
    left, top = (rgb.width - size) // 2, (rgb.height - size) // 2
    return rgb.crop((left, top, left + size, top + size))


def decode_or_reason(path: Path, geometry: Geometry) -> torch.Tensor | str:
    """:func:`decode_image`, or why the file cannot be used (so that a set names all its bad files at once)."""
    try:
        return decode_image(path, geometry)
    except DataError as e:
        return str(e)


def refuse_unusable(bad: Sequence[str], total: int) -> None:
    """Raise one :class:`DataError` naming the unusable files (the first 20), when there are any."""
    if bad:
        fix = _too_large_fix()
        lines = [reason.removesuffix(fix) for reason in bad]  # the limit's fix is said once, below the files
        shown = "\n  ".join(lines[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
        over = (f"\nImages over the limit of {_max_pixels:,} pixels: it is a guard against decompression bombs; if they "
                f"are genuine, raise it with {MAX_PIXELS_FIX}" if any(r.endswith(fix) for r in bad) else "")
        raise DataError(f"{len(bad)} of {total} images cannot be used; replace or remove them:\n  {shown}{over}")


def decode_images(
    paths: Sequence[Path],
    geometry: Geometry,
    threads: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Decode many files into one uint8 ``(N, 3, crop, crop)`` tensor (PIL releases the GIL, so threads help).

    Every file is tried: a set with unreadable files is refused once, naming all of them.
    """
    import torch

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
