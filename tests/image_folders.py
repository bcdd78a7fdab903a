"""Small image folders and test modules that the fault and report tests write into their own tmp paths."""

from __future__ import annotations

from pathlib import Path

# Two accuracy tests that need the evaluated images: a data error must reach both, said once.
TWO_ACCURACY_TESTS = """
import pytest

pytestmark = pytest.mark.audit("accuracy")

def test_one(evaluated, record):
    record.metric("clean_top1", 1.0)

def test_two(evaluated, record):
    record.metric("clean_top1", 1.0)
"""


def plain_images(folder: Path, *names: str) -> Path:
    """``folder`` with a 40 x 40 one-colour image per name (ImageNet file names put them in WNID classes)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (40, 40), (90, 120, 30)).save(folder / name)
    return folder


def cut_after_header(path: Path) -> Path:
    """A 300 x 300 noise JPEG cut in half: its header opens (the startup check passes it), its pixels do not decode."""
    import numpy as np
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(path, quality=95)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with Image.open(path) as img:
        assert img.size == (300, 300)  # the header is whole
    return path


def decompression_bomb(path: Path, side: int = 30000) -> Path:
    """A valid 1-bit PNG of ``side`` x ``side`` zeros: about 100 kB on disk, ``side``² pixels decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" * (1 + (side + 7) // 8)  # filter byte, then the row's bits
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row * 1000) for _ in range(side // 1000)) + z.compress(row * (side % 1000)) + z.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path
