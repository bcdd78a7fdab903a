"""Make the reference outputs the corruption-kernel tests compare with.

Runs ImageNet-C's own code (make_imagenet_c.py of github.com/hendrycks/robustness,
ImageNet-C/create_c/, commit e0377d46411fa30c01a9559017bdb6a5f78d4abf; not committed here: fetch it
and pass its path) in a throwaway environment that has what it imports:

    apt-get install -y libmagickwand-dev            # ImageMagick for Wand (motion blur, snow)
    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install "numpy<2" scipy "scikit-image<0.20" opencv-python-headless wand pillow
    /tmp/refenv/bin/python tests/corruption_reference/make_reference.py \
        --reference /path/to/make_imagenet_c.py --data /work/shared/data/imagenet-sample

(The script only needs the distortion helpers and distortions of make_imagenet_c.py; its data loader
and main loop, which write to the authors' paths, are cut off before import. scipy >= 1.14 has no
``scipy.ndimage.interpolation``: a shim maps it to ``scipy.ndimage``.)

Writes, beside this file:
  input_0.png, input_1.png   two ImageNet images resized (short side 256, bilinear) and centre-cropped
                             to 224, the inputs of the 224 version of ImageNet-C
  reference.npz              for each corruption, severity and input: a 64x64 crop of the reference's
                             output (``np.uint8`` of it, as ImageNet-C saved it), key
                             ``{name}/{severity}/{input}``; ``crops`` gives each input's crop corner
  reference_stats.json       for each corruption, severity and input: stats.summary of the whole
                             224x224 output against the input (the distribution tests' numbers),
                             and the numpy seed used.

Before each call the script sets ``np.random.seed(seed_of(input, name, severity))``, so the tests can
replay the reference's draws (legacy RandomState streams are frozen across numpy versions) and hand
them to our kernels. Impulse noise draws from skimage's own ``np.random.default_rng(None)``, which no
global seed reaches: during the run ``np.random.default_rng`` with no seed is given the same seed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import stats  # noqa: E402

NAMES = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
         "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
         "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate"]
IMAGES = ["n01443537_goldfish.JPEG", "n09246464_cliff.JPEG"]
CROPS = [(0, 0), (96, 128)]  # top-left corner of each input's stored 64x64 crop (a border, an interior)
CROP = 64


def seed_of(k: int, name: str, severity: int) -> int:
    return 1000 * k + 10 * NAMES.index(name) + severity


def load_reference(path: Path):
    src = path.read_text()
    start = src.index("# /////////////// Distortion Helpers")
    end = src.index("# /////////////// End Distortions")
    import scipy.ndimage
    sys.modules.setdefault("scipy.ndimage.interpolation", scipy.ndimage)
    module = types.ModuleType("make_imagenet_c")
    exec(compile("import numpy as np\nfrom PIL import Image\n" + src[start:end], str(path), "exec"), module.__dict__)
    return module


def prepare(path: Path) -> Image.Image:
    """torchvision's Resize(256) + CenterCrop(224) on a PIL image (bilinear, as the reference's loader)."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    short = 256
    size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    img = img.resize(size, Image.BILINEAR)
    w, h = img.size
    left, top = int(round((w - 224) / 2.0)), int(round((h - 224) / 2.0))
    return img.crop((left, top, left + 224, top + 224))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, required=True, help="path to make_imagenet_c.py")
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/imagenet-sample"))
    ap.add_argument("--frost-dir", type=Path, default=HERE.parents[1] / "visionaudit" / "resources" / "frost")
    args = ap.parse_args()
    ref = load_reference(args.reference)

    inputs = []
    for k, name in enumerate(IMAGES):
        img = prepare(args.data / name)
        img.save(HERE / f"input_{k}.png", optimize=True)
        inputs.append(Image.open(HERE / f"input_{k}.png").convert("RGB"))

    crops, summaries = {}, {}
    fresh_rng = np.random.default_rng
    current = {}
    np.random.default_rng = lambda seed=None: fresh_rng(current["seed"] if seed is None else seed)
    cwd = os.getcwd()
    os.chdir(args.frost_dir)  # frost reads ./frostN.* relative to the working directory
    try:
        for name in NAMES:
            fn = getattr(ref, name)
            for severity in range(1, 6):
                for k, img in enumerate(inputs):
                    current["seed"] = seed_of(k, name, severity)
                    np.random.seed(current["seed"])
                    out = np.uint8(fn(img.copy(), severity))  # as the reference's saver: truncation
                    top, left = CROPS[k]
                    crops[f"{name}/{severity}/{k}"] = out[top:top + CROP, left:left + CROP]
                    summaries[f"{name}/{severity}/{k}"] = {"seed": seed_of(k, name, severity),
                                                          **stats.summary(np.array(img), out)}
            print(name, "done", flush=True)
    finally:
        os.chdir(cwd)
        np.random.default_rng = fresh_rng
    np.savez_compressed(HERE / "reference.npz", crops=np.array(CROPS), **crops)
    (HERE / "reference_stats.json").write_text(json.dumps(summaries, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
