"""Image sets and decoding, on the real data and on files made here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from tests.image_folders import decompression_bomb
from visionaudit.data import image_sets as datasets
from visionaudit.data import imagenet
from visionaudit.data.decoding import decode_image, set_max_image_pixels
from visionaudit.errors import DataError
from visionaudit.preprocessing import Geometry

GEOM = Geometry(resize_size=64, crop_size=56, interpolation="bilinear")


@pytest.mark.slow
def test_shipped_wnids_match_the_shared_list(shared_data):
    shared = [line.strip() for line in (shared_data / "imagenet_wnids.txt").read_text().splitlines() if line.strip()]
    assert list(imagenet.wnids()) == shared
    assert imagenet.class_index("n01440764") == 0 and imagenet.class_index("n15075141") == 999


@pytest.mark.slow
def test_cue_conflict_real_stimuli(shared_data):
    s = datasets.cue_conflict(shared_data / "cue-conflict")
    assert len(s) == 1280
    assert len(set(s.categories)) == 16 and set(s.categories) == set(s.textures)
    # Geirhos et al.: 80 of the 1,280 images have shape == texture and are excluded from shape bias.
    assert sum(a == b for a, b in zip(s.categories, s.textures)) == 80
    i = s.paths.index(shared_data / "cue-conflict" / "airplane" / "airplane1-bicycle2.png")
    assert (s.categories[i], s.textures[i]) == ("airplane", "bicycle")


@pytest.mark.slow
def test_shape_only_stimuli(shared_data):
    for name in ("edges", "filled-silhouettes"):
        s = datasets.category_folders(shared_data / name, name)
        assert len(s) == 160 and len(set(s.categories)) == 16


@pytest.mark.slow
def test_imagenet_sample_flat_files(shared_data):
    s = datasets.labelled_images(shared_data / "imagenet-sample")
    assert len(s) == 1000
    wnids = imagenet.wnids()
    for path, label in zip(s.paths, s.labels):
        assert path.name.startswith(wnids[label] + "_")
    assert sorted(s.labels) == list(range(1000))


def _save(path: Path, mode: str, size=(80, 60)) -> Image.Image:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size)
    img.putdata([((x * 3) % 256, (y * 4) % 256, (x + y) % 256) for y in range(size[1]) for x in range(size[0])])
    if mode == "P":
        img = img.convert("P", palette=Image.ADAPTIVE)
    elif mode != "RGB":
        img = img.convert(mode)
    img.save(path)
    return img


@pytest.mark.parametrize("mode, suffix", [("L", ".png"), ("P", ".png"), ("CMYK", ".jpg"), ("RGBA", ".png"), ("RGB", ".jpg")])
def test_every_mode_decodes_to_rgb(tmp_path, mode, suffix):
    path = tmp_path / f"img{suffix}"
    _save(path, mode)
    t = decode_image(path, GEOM)
    assert t.shape == (3, 56, 56) and t.dtype == torch.uint8
    if mode == "L":
        assert torch.equal(t[0], t[1]) and torch.equal(t[1], t[2])


def test_decode_matches_torchvision_eval_pipeline(tmp_path):
    path = tmp_path / "x.png"
    _save(path, "RGB", size=(97, 131))
    ref = T.Compose([T.Resize(64, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(56), T.PILToTensor()])
    with Image.open(path) as img:
        expected = ref(img.convert("RGB"))
    assert torch.equal(decode_image(path, Geometry(64, 56, "bicubic")), expected)


def test_truncated_image_is_named(tmp_path):
    path = tmp_path / "n01440764_broken.JPEG"
    _save(path, "RGB", size=(300, 300))
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(DataError, match="n01440764_broken.JPEG is unreadable or truncated"):
        decode_image(path, GEOM)
    not_an_image = tmp_path / "n01440764_text.JPEG"
    not_an_image.write_text("hello")
    with pytest.raises(DataError, match="n01440764_text.JPEG is unreadable"):
        datasets.load_images(datasets.labelled_images(tmp_path).select([1]), GEOM)


def gray16_png(path: Path, pixels: list[list[int]]) -> Path:
    """A 16-bit grayscale PNG written by hand (signature, IHDR, one IDAT, IEND): no PIL in the reference."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w = len(pixels), len(pixels[0])
    raw = b"".join(b"\0" + struct.pack(f">{w}H", *row) for row in pixels)  # filter byte 0, big-endian samples
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_a_16_bit_grayscale_png_decodes_to_the_8_bit_pixels_it_was_made_from(tmp_path):
    side = 16
    eight = [[(7 * x + 13 * y) % 256 for x in range(side)] for y in range(side)]  # every level 0..255 appears
    path = gray16_png(tmp_path / "g16.png", [[v * 257 for v in row] for row in eight])
    t = decode_image(path, Geometry(side, side, "bilinear", crop=False))  # the right size already: taken as it is
    expected = torch.tensor(eight, dtype=torch.uint8)
    assert all(torch.equal(t[c], expected) for c in range(3))


@pytest.mark.parametrize("maxval", [65535, 4095])
def test_a_16_bit_pgm_decodes_to_its_levels_scaled_to_8_bits(tmp_path, maxval):
    """PIL reads a PGM of more than 8 bits as mode I, scaled to 0..65535: its range is known, so it is scaled too."""
    import struct

    levels = [0, maxval // 2, maxval, 0]  # written by hand: P5 header, big-endian 16-bit samples
    path = tmp_path / "g16.ppm"
    path.write_bytes(b"P5\n2 2\n%d\n" % maxval + struct.pack(">4H", *levels))
    t = decode_image(path, Geometry(2, 2, "bilinear", crop=False))
    expected = [round(v * 255 / maxval) for v in levels]  # 0, 127 or 128 (half of an odd maxval), 255, 0
    assert t[0].flatten().tolist() == expected and torch.equal(t[0], t[2])


def test_16_bit_values_round_to_the_nearest_8_bit_level():
    """Values between the levels: round(v / 257) by exact fractions, in both byte orders."""
    from fractions import Fraction

    from visionaudit.data.decoding import to_rgb

    values = [0, 128, 129, 385, 386, 1000, 30000, 65407, 65408, 65535]
    expected = [int(Fraction(v, 257) + Fraction(1, 2)) for v in values]  # 128/257 < 1/2 < 129/257: no ties
    assert expected[1:3] == [0, 1]
    for mode, order in (("I;16", "<"), ("I;16B", ">")):
        import struct

        img = Image.frombytes(mode, (len(values), 1), struct.pack(f"{order}{len(values)}H", *values))
        rgb = to_rgb(img)
        assert [rgb.getpixel((x, 0)) for x in range(len(values))] == [(e, e, e) for e in expected]


@pytest.mark.parametrize("mode, kind", [("F", "32-bit float"), ("I", "32-bit integer")])
def test_images_whose_range_is_unknown_are_refused_naming_file_mode_and_fix(tmp_path, mode, kind):
    path = tmp_path / "n01440764_scan.tif"
    Image.new(mode, (8, 8), 1).save(path)
    with pytest.raises(DataError, match=rf"image .*n01440764_scan.tif cannot be used: its pixels are {kind} values "
                                        rf"\(PIL mode {mode}\).*save it as an 8-bit image"):
        decode_image(path, GEOM)
    _save(tmp_path / "n01440764_good.JPEG", "RGB")
    with pytest.raises(DataError, match=rf"1 of 2 images cannot be used.*\n  .*n01440764_scan.tif .*PIL mode {mode}"):
        datasets.load_images(datasets.labelled_images(tmp_path), GEOM)


def test_an_oversized_image_is_named_with_the_limit_and_how_to_raise_it(tmp_path):
    """Issue 23, item 6: PIL's DecompressionBombError became a traceback that never named the file."""
    bomb = decompression_bomb(tmp_path / "n01440764_bomb.png")
    assert bomb.stat().st_size < 1_000_000
    good = tmp_path / "n01443537_good.JPEG"
    _save(good, "RGB", size=(80, 60))
    image_set = datasets.labelled_images(tmp_path)
    with pytest.raises(DataError) as refused:
        datasets.load_images(image_set, GEOM)
    message = str(refused.value)
    assert message.startswith("1 of 2 images cannot be used")
    # From the header (30000 x 30000 = ...) once a run set the limit; from PIL's own refusal in a bare process.
    assert re.search(rf"image {re.escape(str(bomb))} is too large to decode: (30000 x 30000 = )?900,000,000 pixels, more "
                     r"than the limit of 178,956,970\n", message), message
    assert message.endswith("Images over the limit of 178,956,970 pixels: it is a guard against decompression bombs; if "
                            "they are genuine, raise it with --audit-max-image-pixels N or [run] max_image_pixels = "
                            "N in audit.toml")


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")  # PIL's guard, which names no file, is off
def test_the_image_size_limit_moves_both_ways(tmp_path):
    path = tmp_path / "n01440764_a.JPEG"
    _save(path, "RGB", size=(80, 60))
    previous = set_max_image_pixels(80 * 60 - 1)
    try:
        with pytest.raises(DataError, match=r"is too large to decode: 80 x 60 = 4,800 pixels, more than the limit of 4,799"):
            decode_image(path, GEOM)
        set_max_image_pixels(80 * 60)
        assert decode_image(path, GEOM).shape == (3, 56, 56)
    finally:
        set_max_image_pixels(previous)


def test_wnid_folders(tmp_path):
    for wnid, n in (("n01440764", 2), ("n15075141", 1)):
        for i in range(n):
            _save(tmp_path / wnid / f"{i}.JPEG", "RGB")
    s = datasets.labelled_images(tmp_path)
    assert s.labels == (0, 0, 999)
    images = datasets.load_images(s, GEOM)
    assert images.shape == (3, 3, 56, 56)
    assert datasets.load_images(s, GEOM) is images  # decoded once per process


def test_unlabelled_flat_file_is_refused(tmp_path):
    _save(tmp_path / "holiday.jpg", "RGB")
    with pytest.raises(DataError, match="holiday.jpg: cannot tell its class"):
        datasets.labelled_images(tmp_path)


def test_unknown_wnid_is_refused(tmp_path):
    _save(tmp_path / "n99999999_thing.jpg", "RGB")
    with pytest.raises(DataError, match="'n99999999'.*is not an ImageNet-1k WNID"):
        datasets.labelled_images(tmp_path)


def test_imagenette_layout_maps_wnids_to_imagenet(tmp_path):
    val = tmp_path / "imagenette2-320" / "val"
    for wnid in ("n01440764", "n02102040", "n03888257"):
        _save(val / wnid / "a.JPEG", "RGB")
    s = datasets.imagenette(tmp_path)
    # Independent reference: positions in the sorted WNID list.
    wnids = sorted(imagenet.wnids())
    assert s.labels == tuple(wnids.index(w) for w in ("n01440764", "n02102040", "n03888257"))


def test_missing_data_dirs_give_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    with pytest.raises(DataError, match=f"fetch --all --dest {tmp_path / 'nowhere'}"):
        datasets.data_root(tmp_path / "nowhere")
    with pytest.raises(DataError, match=f"python -m visionaudit fetch cue-conflict --dest {tmp_path}"):
        datasets.cue_conflict(tmp_path / "cue-conflict")


def test_a_file_given_for_the_data_root_or_the_images_is_said_to_be_a_file(tmp_path, monkeypatch):
    """Stop 40: a file that is there was "does not exist" (the data root, with a fetch into it) or "not found" (the
    labelled images)."""
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"^data directory .*notes.txt is a file, not a folder\. Point --audit-data "
                                        r"\(--data for python -m visionaudit commands\) / VISIONAUDIT_DATA at the folder "
                                        r"that holds the data$"):
        datasets.data_root(tmp_path / "notes.txt")
    (problem,) = datasets.missing_data(str(tmp_path), str(tmp_path / "notes.txt"), {datasets.LABELLED})
    assert problem.startswith(f"labelled images at {tmp_path / 'notes.txt'}: {tmp_path / 'notes.txt'} is a file, not a "
                              "folder or a .csv manifest; point --audit-images at "), problem


def test_a_file_in_the_place_of_imagenet_sample_gets_no_fetch_into_it(tmp_path):
    """Review 40 F8: a file at ROOT/imagenet-sample was told to fetch imagenet-sample into ROOT, which cannot work while
    the file is there."""
    (tmp_path / "imagenet-sample").write_text("x")
    (problem,) = datasets.missing_data(str(tmp_path), "imagenet-sample", {datasets.LABELLED})
    path = tmp_path / "imagenet-sample"
    assert problem.startswith(f"labelled images at {path}: {path} is a file, not a folder or a .csv manifest; remove or "
                              "rename it, or point --audit-images at "), problem
    assert "fetch" not in problem, problem
    (tmp_path / "imagenet-sample").unlink()
    (problem,) = datasets.missing_data(str(tmp_path), "imagenet-sample", {datasets.LABELLED})
    assert problem == f"labelled images not found at {path}: python -m visionaudit fetch imagenet-sample --dest {tmp_path}"


def test_data_root_is_the_option_then_the_variable_then_the_user_cache(tmp_path, monkeypatch):
    given, env, cache = (tmp_path / n for n in ("given", "env", "cache"))
    given.mkdir()
    env.mkdir()
    monkeypatch.setenv("VISIONAUDIT_CACHE", str(cache))
    monkeypatch.setenv(datasets.DATA_ENV, str(env))
    assert datasets.data_root(given) == given and not datasets.uses_cache(str(given))
    assert datasets.data_root(None) == env and not datasets.uses_cache(None)
    monkeypatch.delenv(datasets.DATA_ENV)
    assert datasets.data_root(None) == cache and datasets.uses_cache(None)  # need not exist yet: filled on first use


def test_user_cache_default_is_the_platforms(tmp_path, monkeypatch):
    from visionaudit.data import user_cache

    monkeypatch.delenv("VISIONAUDIT_CACHE", raising=False)
    monkeypatch.setattr(user_cache.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache.cache_dir() == tmp_path / "xdg" / "visionaudit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache.cache_dir() == tmp_path / "home" / ".cache" / "visionaudit"
    monkeypatch.setattr(user_cache.sys, "platform", "darwin")
    assert user_cache.cache_dir() == tmp_path / "home" / "Library" / "Caches" / "visionaudit"
    monkeypatch.setattr(user_cache.sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert user_cache.cache_dir() == tmp_path / "local" / "visionaudit" / "Cache"
    monkeypatch.setenv("VISIONAUDIT_CACHE", "~/elsewhere")
    assert user_cache.cache_dir() == tmp_path / "home" / "elsewhere"


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_offline_variable(monkeypatch, value, expected):
    from visionaudit.data.user_cache import offline

    monkeypatch.setenv("VISIONAUDIT_OFFLINE", value)
    assert offline() is expected and offline(True) is True


def test_imagenette_without_its_files_offline_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"Imagenette not found under .*imagenette2-320.tgz and unpack it there"):
        datasets.imagenette(tmp_path, download=False)
    assert datasets.missing_data(str(tmp_path), "imagenette", {datasets.LABELLED}) == [
        f"Imagenette not found under {tmp_path / 'imagenette'}: run once on a machine with internet (torchvision "
        "downloads it there)"]


@pytest.mark.slow
def test_stratified_subset_is_seeded_and_balanced(shared_data):
    s = datasets.cue_conflict(shared_data / "cue-conflict")
    a, b, c = s.stratified_subset(32, seed=0), s.stratified_subset(32, seed=0), s.stratified_subset(32, seed=1)
    assert a.paths == b.paths and a.paths != c.paths
    counts = {cat: a.categories.count(cat) for cat in set(s.categories)}
    assert set(counts.values()) == {2}  # 32 images over 16 shapes: two each
    assert s.stratified_subset(None) is s and s.stratified_subset(5000) is s
    natural = datasets.labelled_images(shared_data / "imagenet-sample").stratified_subset(100, seed=0)
    assert len(set(natural.labels)) == 100


def test_every_unreadable_image_of_a_set_is_named_at_once(tmp_path):
    _save(tmp_path / "n01440764_good.JPEG", "RGB")
    (tmp_path / "n01440764_text.JPEG").write_text("hello")
    _save(tmp_path / "n15075141_cut.JPEG", "RGB", size=(300, 300))
    (tmp_path / "n15075141_cut.JPEG").write_bytes((tmp_path / "n15075141_cut.JPEG").read_bytes()[:400])
    with pytest.raises(DataError, match=r"2 of 3 images cannot be used; replace or remove them:\n  .*n01440764_text.JPEG is "
                                        r"unreadable.*\n  .*n15075141_cut.JPEG is unreadable or truncated"):
        datasets.load_images(datasets.labelled_images(tmp_path), GEOM)
