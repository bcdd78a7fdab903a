"""Stop 34, images: what the startup check reads from each header (nothing decoded), and the 16-bit images that hold
10 or 12 bits, found as decoded. The run's side (exit 4, the notes): tests/plugins/test_image_headers.py."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from tests.data.test_image_sets import gray16_png
from visionaudit.data import decoding
from visionaudit.data.decoding import (
    decode_images,
    read_header,
    take_narrow_sixteen_bit,
)
from visionaudit.data.header_check import check_headers
from visionaudit.data.image_sets import ImageSet
from visionaudit.preprocessing import Geometry

GEOM = Geometry(16, 16, "bilinear")


def _oriented(path: Path, orientation: int) -> Path:
    img = Image.new("RGB", (24, 16), (200, 30, 30))
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, exif=exif)
    return path


def test_the_header_names_what_decoding_would_refuse_without_decoding(tmp_path, monkeypatch):
    Image.new("F", (8, 8), 0.5).save(tmp_path / "float.tif")
    Image.new("I", (8, 8), 7).save(tmp_path / "int32.tif")
    gray16_png(tmp_path / "g16.png", [[0, 65535]])
    (tmp_path / "text.jpg").write_text("hello")
    _oriented(tmp_path / "phone.jpg", 6)
    _oriented(tmp_path / "scan.png", 8)
    _oriented(tmp_path / "upright.jpg", 1)

    def no_decoding(self):
        raise AssertionError("a header check decoded pixels")

    Image.init()  # PIL's plugins, loaded before pixels may no longer be decoded
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    found = {p.name: read_header(p) for p in sorted(tmp_path.iterdir())}
    assert found["float.tif"][0].endswith("float.tif cannot be used: its pixels are 32-bit float values (PIL mode F), whose "
                                          "range (0..1? 0..255? 0..65535?) is unknown; save it as an 8-bit image (8 bits "
                                          "per channel: grayscale, RGB or RGBA PNG, or JPEG)")
    assert "(PIL mode I)" in found["int32.tif"][0]
    assert "text.jpg is unreadable or truncated (UnidentifiedImageError" in found["text.jpg"][0]
    assert found["g16.png"] == (None, None) and found["upright.jpg"] == (None, None)
    assert found["phone.jpg"] == (None, 6) and found["scan.png"] == (None, 8)


def test_the_header_check_says_what_decoding_says(tmp_path):
    """One home for the reasons: the startup check's words for a file are decoding's."""
    Image.new("F", (8, 8), 0.5).save(tmp_path / "float.tif")
    (tmp_path / "text.jpg").write_text("hello")
    for path in sorted(tmp_path.iterdir()):
        with pytest.raises(Exception) as decoded:
            decoding.decode_image(path, GEOM)
        assert read_header(path)[0] == str(decoded.value)


@pytest.mark.filterwarnings("error")
def test_malformed_exif_does_not_make_an_image_unusable(tmp_path):
    path = tmp_path / "odd.jpg"
    Image.new("RGB", (8, 8)).save(path, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\xff")  # an IFD cut short
    result = check_headers(ImageSet("odd", tmp_path, (path,)))  # and PIL's warning, which names no file, is not shown
    assert result.problem() is None and result.rotated == ()
    with warnings.catch_warnings():  # opening a JPEG reads its EXIF for the DPI: PIL's warning, as before
        warnings.simplefilter("ignore")
        assert decode_images([path], GEOM).shape == (1, 3, 16, 16)


def test_a_set_names_its_first_ten_bad_files_then_their_count_and_its_rotated_images(tmp_path):
    paths = []
    for i in range(12):
        (tmp_path / f"bad{i:02d}.png").write_text("x")
        paths.append(tmp_path / f"bad{i:02d}.png")
    paths += [_oriented(tmp_path / "b.jpg", 3), _oriented(tmp_path / "c.jpg", 5)]
    result = check_headers(ImageSet("mine", tmp_path, tuple(paths)))
    problem = result.problem()
    assert problem.startswith("12 of 14 images of mine cannot be used; replace or remove them:\n    image ")
    assert problem.count("\n    image ") == 10 and problem.endswith("\n    and 2 more")
    assert "bad09.png" in problem and "bad10.png" not in problem
    assert result.rotated == ((tmp_path / "b.jpg", 3), (tmp_path / "c.jpg", 5))
    assert result.orientation_note().startswith("2 of the 14 images of mine carry an EXIF orientation tag")
    assert f"e.g. {tmp_path / 'b.jpg'} (orientation 3: a viewer shows it turned 180 degrees)" in result.orientation_note()
    clean = check_headers(ImageSet("clean", tmp_path, (_oriented(tmp_path / "d.jpg", 1),)))
    assert clean.problem() is None and clean.orientation_note() is None


LFS_TEXT = ("version https://git-lfs.github.com/spec/v1\n"
            "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 48213\n")


def test_git_lfs_pointers_where_images_go_are_said_to_be_with_git_lfs_pull_as_the_fix(tmp_path):
    """Stop 43: a data repository cloned without `git lfs pull` holds pointer files where the images go; each was
    "unreadable or truncated ...; replace or remove the file" (removing the team's images), as a checkpoint pointer
    already is not. Said at startup and as decoded, the fix once below the files; another bad file keeps its words."""
    for name in ("a.jpg", "b.png"):
        (tmp_path / name).write_text(LFS_TEXT)
    (tmp_path / "text.jpg").write_text("hello")
    paths = tuple(sorted(tmp_path.iterdir()))
    problem = check_headers(ImageSet("team", tmp_path, paths)).problem()
    assert f"\n    image {tmp_path / 'a.jpg'} is a Git LFS pointer, not the image\n" in problem, problem
    assert problem.endswith("\n  Git LFS pointers stand where those images go: the data was cloned without its Git LFS "
                            "files; fetch them with `git lfs pull` in that clone"), problem
    assert problem.count("git lfs pull") == 1 and "text.jpg is unreadable or truncated" in problem
    # Review 43 F2: the lead-in told the team to replace or remove them all, its images that only need pulling too.
    assert problem.startswith("3 of 3 images of team cannot be used; replace or remove those that are not Git LFS "
                              "pointers:\n"), problem
    with pytest.raises(Exception, match=r"b.png is a Git LFS pointer, not the image \(a text file standing for it: .*"
                                        r"fetch them with `git lfs pull` in that clone$"):
        decoding.decode_image(tmp_path / "b.png", GEOM)
    with pytest.raises(Exception, match=r"(?s)^2 of 2 images cannot be used:\n.*Git LFS pointers stand where those images go"):
        decode_images([tmp_path / "a.jpg", tmp_path / "b.png"], GEOM)


def test_16_bit_images_whose_values_fit_in_12_bits_are_noted_as_decoded(tmp_path):
    take_narrow_sixteen_bit()  # whatever an earlier test in this process decoded
    twelve = gray16_png(tmp_path / "twelve.png", [[0, 4095], [17, 3]])
    wider = gray16_png(tmp_path / "wider.png", [[0, 4096], [17, 3]])
    ten = gray16_png(tmp_path / "ten.png", [[1023, 0], [0, 0]])
    out = decode_images([twelve, wider, ten], Geometry(2, 2, "nearest"))
    # As documented, unchanged: round(v / 257): 4,095 -> 15.93 -> 16, 4,096 -> 15.94 -> 16, 1,023 -> 3.98 -> 4
    assert out[0, 0].tolist() == [[0, 16], [0, 0]] and out[2, 0].tolist() == [[4, 0], [0, 0]]
    assert take_narrow_sixteen_bit() == {str(twelve): (4095, 16), str(ten): (1023, 4)}  # and their levels, as above
    assert take_narrow_sixteen_bit() == {}  # taken once
    note = decoding.narrow_sixteen_bit_note({str(twelve): [4095, 16], str(ten): [1023, 4]})  # lists, as sent
    assert note.startswith(f"2 16-bit image(s) hold no value above 4,095, e.g. {ten} (values up to 1,023): ")
    assert "reach 8-bit level 4 of 255 at most and are audited nearly black" in note


def rgb16_png(path: Path, pixels: list[list[tuple[int, int, int]]], alpha: int | None = None) -> Path:
    """A 16-bit RGB (or, with ``alpha``, RGBA) PNG written by hand: no PIL in the reference."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w = len(pixels), len(pixels[0])
    samples = [[v for px in row for v in (*px, *(() if alpha is None else (alpha,)))] for row in pixels]
    raw = b"".join(b"\0" + struct.pack(f">{len(row)}H", *row) for row in samples)
    kind = 2 if alpha is None else 6  # PNG colour types: truecolour, truecolour with alpha
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, kind, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_16_bit_colour_images_whose_values_fit_in_12_bits_are_noted_too(tmp_path):
    """Stop 43: a 16-bit RGB PNG of a 12-bit camera's values came out nearly black as a grayscale one does, without
    the note the docs promise of "a decoded 16-bit image". PIL keeps each sample's high byte (v // 256, as
    torchvision's ImageFolder reads it); the bound the high bytes give is the value said."""
    take_narrow_sixteen_bit()
    twelve = rgb16_png(tmp_path / "twelve.png", [[(0, 4095, 300), (17, 3, 2048)]])
    ten = rgb16_png(tmp_path / "ten.png", [[(1023, 0, 512), (0, 0, 0)]], alpha=65535)  # alpha is not audited
    wider = rgb16_png(tmp_path / "wider.png", [[(0, 4096, 300), (17, 3, 2048)]])
    out = decode_images([twelve, ten, wider], Geometry(2, 2, "nearest"))
    assert out[0, :, 0, :].tolist() == [[0, 0], [15, 0], [1, 8]]  # v // 256 of each sample
    assert out[1, :, 0, 0].tolist() == [3, 0, 2]
    found = take_narrow_sixteen_bit()
    assert int(out[0].max()) == 15 and int(out[1].max()) == 3
    # Stop 44: each image's level is its decoded top level, v // 256 (here 3 for ten.png, 15 for twelve.png)
    assert "reach 8-bit level 3 of 255" in decoding.narrow_sixteen_bit_note(found)  # ten.png: its high bytes 3, 0, 2
    assert {p: peak for p, (peak, _) in found.items()} == {str(twelve): 4095, str(ten): 1023}  # 4,096: past 12 bits
    note = decoding.narrow_sixteen_bit_note({str(twelve): found[str(twelve)]})
    # 4,095 in colour: v // 256 = 15 (out[0] above), not round(4095 / 257) = 16
    assert note.startswith(f"1 16-bit image(s) hold no value above 4,095, e.g. {twelve} (values up to 4,095): 16-bit "
                           "images are read as 0..65535 and brought to 8 bits (grayscale as round(v / 257), colour as "
                           f"v // 256, as PIL reads it), so these reach 8-bit level {int(out[0].max())} of 255 at most"), note


def rgb565_bmp(path: Path, rgb: tuple[int, int, int], size: int = 4) -> Path:
    """A 16-bits-a-pixel BMP (RGB565, BI_BITFIELDS) of one colour, written by hand: ``rgb`` its 5, 6 and 5-bit values."""
    import struct

    pixels = struct.pack("<H", rgb[0] << 11 | rgb[1] << 5 | rgb[2]) * size * size  # rows of 8 bytes: no padding
    info = struct.pack("<IiiHHIIiiII", 40, size, size, 1, 16, 3, len(pixels), 0, 0, 0, 0)
    masks = struct.pack("<III", 0xF800, 0x07E0, 0x001F)
    head = 14 + len(info) + len(masks)
    path.write_bytes(b"BM" + struct.pack("<IHHI", head + len(pixels), 0, 0, head) + info + masks + pixels)
    return path


def test_a_dark_16_bits_a_pixel_bmp_is_not_said_to_hold_12_bit_values(tmp_path):
    """Review 43 F1: a BMP of 16 bits a pixel (5, 6 and 5 bits a sample, unpacked to 0..255) is no 16-bit-a-sample
    image: a dark one was noted as "16-bit ... values up to 2,303", with v * 65535 // 4095 as the fix."""
    take_narrow_sixteen_bit()
    bmp = rgb565_bmp(tmp_path / "dark.bmp", (1, 1, 1))  # 8-bit levels 8, 4, 8 (PIL's 5- and 6-bit unpacking)
    out = decode_images([bmp], Geometry(4, 4, "nearest", crop=False))
    assert out[0, :, 0, 0].tolist() == [8, 4, 8]  # 1 << 3, 1 << 2, 1 << 3: the file is read, 8-bit levels as they are
    assert take_narrow_sixteen_bit() == {}
