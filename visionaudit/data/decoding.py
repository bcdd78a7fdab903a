"""Image files to uint8 tensors at a model's input geometry: the one place images are decoded."""

from __future__ import annotations

import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from PIL import Image, UnidentifiedImageError

from visionaudit.errors import DataError
from visionaudit.files import is_lfs_pointer
from visionaudit.formatting import first_few
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


def mode_problem(img: Image.Image) -> str | None:
    """Why ``img``'s pixels cannot be made 8-bit RGB (its mode, known from the header), or None when they can."""
    if img.mode == "RGB" or _sixteen_bit(img) or img.mode in EIGHT_BIT_MODES:
        return None
    kind = {"F": "32-bit float", "I": "32-bit integer"}.get(img.mode, "an unsupported")
    return (f"its pixels are {kind} values (PIL mode {img.mode}), whose range (0..1? 0..255? 0..65535?) is unknown; "
            f"{SAVE_AS_8_BIT}")


# A 16-bit image whose values all fit in 12 bits: most likely a 10- or 12-bit sensor's values stored in 16 bits, which
# the 0..65535 scaling makes nearly black (8-bit levels 0..16). Scaled as documented all the same; the run says so.
NARROW_SIXTEEN_BIT_MAX = 4095
_narrow: dict[str, tuple[int, int]] = {}  # path -> its largest value and 8-bit level, as decoded (take_narrow_sixteen_bit)
_narrow_lock = threading.Lock()  # decoded in a thread pool


def take_narrow_sixteen_bit() -> dict[str, tuple[int, int]]:
    """The 16-bit images decoded in this process since the last call whose values are at most 4,095, each with its
    largest value (a colour image's: the bound its high bytes give, (h + 1) * 256 - 1, PIL keeping no more) and the
    8-bit level that becomes: round(v / 257) for grayscale, the high byte h for colour (4,095: 16 and 15)."""
    with _narrow_lock:
        found = dict(_narrow)
        _narrow.clear()
    return found


def narrow_sixteen_bit_note(found: dict[str, tuple[int, int]]) -> str | None:
    """Said once (``run.notes``): 16-bit images that hold 10 or 12 bits come out nearly black. ``found``: what
    :func:`take_narrow_sixteen_bit` gave (its pairs as lists once sent between processes)."""
    if not found:
        return None
    path, (peak, level) = min(found.items())
    return (f"{len(found):,} 16-bit image(s) hold no value above {NARROW_SIXTEEN_BIT_MAX:,}, e.g. {path} (values up to "
            f"{peak:,}): 16-bit images are read as 0..65535 and brought to 8 bits (grayscale as round(v / 257), colour as "
            f"v // 256, as PIL reads it), so these reach 8-bit level {level} of 255 at most and are audited "
            "nearly black. If they hold 10- or 12-bit values "
            "(a camera or scanner's), rescale them to the full range before the audit (v * 65535 // 4095 for 12 bits, "
            "v * 65535 // 1023 for 10) or save them as 8-bit; if they really are that dark, nothing is wrong")


# 16 bits a sample that PIL reads as each sample's high byte (PNG's, TIFF's and SGI's raw modes): not a BMP's or TGA's
# ``BGR;16`` (16 bits a pixel, 5 or 6 a sample), nor CMYK's (its RGB is no stored value's high byte).
_SIXTEEN_BIT_SAMPLES = re.compile(r"^(L|LA|RGB|RGBX|RGBA|RGBa);16[BLN]$")


def _sixteen_bit_colour(img: Image.Image) -> bool:
    """16 bits a sample in colour or with alpha (PNG's and TIFF's RGB, RGBA, LA; raw modes such as ``RGB;16B``): PIL
    reads each sample's high byte, v // 256, so its 8-bit image keeps no more of the 16 bits."""
    raw = [t[3][0] if isinstance(t[3], tuple) and t[3] else t[3] for t in img.tile]  # each tile's args: its raw mode first
    return not _sixteen_bit(img) and any(isinstance(r, str) and _SIXTEEN_BIT_SAMPLES.match(r) for r in raw)


def to_rgb(img: Image.Image, path: str | Path | None = None, alpha_on_white: bool = False) -> Image.Image:
    """Grayscale (8- or 16-bit), palette, CMYK, RGBA and the rest become plain 8-bit RGB: transparency dropped, as
    torchvision's ImageFolder does, or (``alpha_on_white``) composited onto white, as transformers' ``convert_to_rgb``
    does for a processor with ``do_convert_rgb`` (an alpha band, or a palette's or an RGB image's transparent colour).

    16-bit grayscale is brought to 8 bits as round(v / 257), the nearest 8-bit level and the exact inverse of
    the usual 8-to-16-bit expansion (v * 257, bit replication), as the PNG specification's sample depth
    scaling does (v >> 8 would round down, up to one level darker). PIL's own convert("RGB") clips it at 255,
    which turns a 16-bit image white. Modes whose range is unknown (32-bit integer "I", float "F") raise
    :class:`UnsupportedMode`: 0..1, 0..255 and 0..65535 are all in use, and a guess would be audited silently.
    A 16-bit image of ``path`` whose values fit in 12 bits is noted (:func:`take_narrow_sixteen_bit`).
    """
    if img.mode == "RGB":
        return img
    if _sixteen_bit(img):
        import numpy as np

        wide = np.asarray(img).astype(np.int64)  # I;16B and the rest: numpy reads the byte order from the mode
        peak = int(wide.max()) if wide.size else 0
        if path is not None and peak <= NARROW_SIXTEEN_BIT_MAX:
            with _narrow_lock:
                _narrow[str(path)] = (peak, (peak + 128) // 257)
        return Image.fromarray(((wide + 128) // 257).clip(0, 255).astype(np.uint8)).convert("RGB")
    problem = mode_problem(img)
    if problem:
        raise UnsupportedMode(problem)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL warns when a palette with transparency goes straight to RGB
    if alpha_on_white and ("A" in img.getbands() or img.info.get("transparency") is not None):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")
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


LFS_FIX = (" (a text file standing for it: the data was cloned without its Git LFS files); fetch them with `git lfs "
           "pull` in that clone")


def _too_large_fix() -> str:
    return (f" (a guard against decompression bombs); if the image is genuine, raise the limit with {MAX_PIXELS_FIX}, "
            "or shrink or remove the file")


def _too_large(path: str | Path, pixels: str) -> DataError:
    return DataError(f"image {path} is too large to decode: {pixels} pixels, more than the limit of {_max_pixels:,}"
                     + _too_large_fix())


def check_header(img: Image.Image, path: str | Path) -> None:
    """Refuse, from the header alone, an image too large to decode or whose mode has no known range."""
    if img.width * img.height > _max_pixels:
        raise _too_large(path, f"{img.width} x {img.height} = {img.width * img.height:,}")
    problem = mode_problem(img)
    if problem:
        raise UnsupportedMode(problem)


@contextmanager
def _named(path: str | Path) -> Iterator[None]:
    """What goes wrong opening or decoding ``path`` as one :class:`DataError` naming the file and the fix."""
    try:
        yield
    except UnsupportedMode as e:
        raise DataError(f"image {path} cannot be used: {e}") from None
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist") from None
    except Image.DecompressionBombError as e:  # PIL's own guard, when set_max_image_pixels was not called
        found = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_large(path, f"{int(found.group(1)):,}" if found else "so many") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if is_lfs_pointer(path):  # a clone of a data repository without `git lfs pull`: fetch it, not replace or remove it
            raise DataError(f"image {path} is a Git LFS pointer, not the image" + LFS_FIX) from None
        raise DataError(f"image {path} is unreadable or truncated ({type(e).__name__}: {e}); replace or "
                        "remove the file") from None


# EXIF orientations other than 1 (as stored): what a viewer does to show the image upright.
ORIENTATIONS = {2: "mirrored left to right", 3: "turned 180 degrees", 4: "mirrored top to bottom",
                5: "mirrored and turned 90 degrees", 6: "turned 90 degrees clockwise", 7: "mirrored and turned 90 degrees",
                8: "turned 90 degrees counter-clockwise"}


def read_header(path: str | Path) -> tuple[str | None, int | None]:
    """Open ``path``'s header only (nothing decoded): why it cannot be used (as decoding would say it), or None;
    and its EXIF orientation when it is one that viewers apply (2..8), else None."""
    try:
        with _named(path), Image.open(path) as img:
            check_header(img, path)
            orientation = _orientation(img)
    except DataError as e:
        return str(e), None
    return None, orientation


def _orientation(img: Image.Image) -> int | None:
    try:
        # Image.getexif itself, not PNG's override: that one decodes the whole image looking for an eXIf chunk after
        # the pixels (an orientation only such a late chunk holds is not seen).
        value = Image.Image.getexif(img).get(0x0112)
    except Exception:  # malformed EXIF: decoding ignores EXIF, so the image is as usable as without it
        return None
    return value if value in ORIENTATIONS else None


def decode_image(path: str | Path, geometry: Geometry) -> torch.Tensor:
    """Read ``path``, make it RGB, and bring it to ``geometry``: uint8 ``(3, size, size)``.

    Natural images: resize the short side and centre-crop. Uncropped geometries (stimuli, warping models): the
    whole image resized to the square resize size, or taken as it is when it already has that size, then
    centre-cropped when the crop is smaller. The resize runs
    on the PIL image (antialiased), as torchvision's evaluation transforms do.
    """
    with _named(path), Image.open(path) as img:  # reads the header only: size and mode before anything is decoded
        check_header(img, path)
        colour16 = _sixteen_bit_colour(img)  # known from the tile, which loading clears
        img.load()
        rgb = to_rgb(img, path, geometry.alpha_on_white)
    if colour16 and (high := max(top for _, top in rgb.getextrema())) < 16:  # every value below 4,096 (v // 256 <= 15)
        with _narrow_lock:
            _narrow[str(path)] = ((high + 1) * 256 - 1, high)
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


def unusable_message(bad: Sequence[str], total: int, of: str = "", shown: int = 20, indent: str = "  ") -> str:
    """One message naming the unusable files (the first ``shown``, then their count), each line under the first
    indented by ``indent``; ``of`` names the set (`` of imagenet-sample``)."""
    fix = _too_large_fix()
    lines = [reason.removesuffix(fix).removesuffix(LFS_FIX) for reason in bad]  # these fixes are said once, below the files
    listed = first_few(lines, shown, f"\n{indent}")
    over = (f"\n{indent[:-2]}Images over the limit of {_max_pixels:,} pixels: it is a guard against decompression bombs; "
            f"if they are genuine, raise it with {MAX_PIXELS_FIX}" if any(r.endswith(fix) for r in bad) else "")
    pointers = sum(r.endswith(LFS_FIX) for r in bad)
    lfs = (f"\n{indent[:-2]}Git LFS pointers stand where those images go: the data was cloned without its Git LFS files; "
           "fetch them with `git lfs pull` in that clone" if pointers else "")
    # Pulled, not replaced or removed: a pointer's images are the team's own.
    lead = "" if pointers == len(bad) else f"; replace or remove {'those that are not Git LFS pointers' if pointers else 'them'}"
    return f"{len(bad):,} of {total:,} images{of} cannot be used{lead}:\n{indent}{listed}{over}{lfs}"


def refuse_unusable(bad: Sequence[str], total: int, of: str = "") -> None:
    """Raise one :class:`DataError` naming the unusable files (the first 20), when there are any; ``of`` as
    :func:`unusable_message` reads it."""
    if bad:
        raise DataError(unusable_message(bad, total, of))


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
