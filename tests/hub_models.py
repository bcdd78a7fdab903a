"""Tiny hub models for tests, built here without network: a ``transformers`` ViT classifier (random weights, its
image processor beside it) written with ``save_pretrained``, a Hugging Face cache layout holding a folder's files,
and a timm architecture's random weights where huggingface_hub looks for its pretrained tag."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

CLASSES = ("zebra", "apple", "mango")  # not sorted: their order is the outputs', not the alphabet's
REVISION = "0123456789abcdef0123456789abcdef01234567"  # a commit hash, as the hub's snapshot folders are named
TIMM_TAG = "test_efficientnet.r160_in1k"  # timm's own test architecture: 356k parameters


def tiny_vit(folder: Path, classes: tuple[str, ...] = CLASSES, size: int = 64, seed: int = 0, processor: dict | None = None,
             channels: int = 3) -> Path:
    """A ViT image classifier with random weights and ``classes`` as its ``id2label``, saved with its image processor;
    ``channels``: its pixel values' (config.json's ``num_channels``, its patch convolution's input)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    config = ViTConfig(image_size=size, patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, num_labels=len(classes), num_channels=channels, id2label=dict(enumerate(classes)),
                       label2id={c: i for i, c in enumerate(classes)})
    ViTForImageClassification(config).eval().save_pretrained(folder)
    ViTImageProcessor(**(processor or {"size": {"height": size, "width": size}, "image_mean": [0.45, 0.5, 0.55],
                                       "image_std": [0.2, 0.25, 0.3]})).save_pretrained(folder)
    return folder


def tiny_efficientnet(folder: Path, classes: tuple[str, ...] = CLASSES, seed: int = 0) -> Path:
    """A transformers EfficientNet classifier (random weights, 33k parameters), whose embeddings zero-pad the input
    (``ZeroPad2d``) before the first convolution, saved with its image processor (one the suite does not follow: give
    the preprocessing in the spec, :data:`EFFICIENTNET_QUERY`)."""
    from transformers import (
        EfficientNetConfig,
        EfficientNetForImageClassification,
        EfficientNetImageProcessor,
    )

    torch.manual_seed(seed)
    # hidden_dim: the head's width as the width coefficient rounds it (transformers does not scale it)
    config = EfficientNetConfig(image_size=32, width_coefficient=0.1, depth_coefficient=0.1, hidden_dim=128,
                                num_labels=len(classes), id2label=dict(enumerate(classes)),
                                label2id={c: i for i, c in enumerate(classes)})
    EfficientNetForImageClassification(config).eval().save_pretrained(folder)
    EfficientNetImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


EFFICIENTNET_QUERY = "size=32&resize=32&interpolation=bicubic&mean=0.485,0.456,0.406&std=0.229,0.224,0.225"


def write_cache_entry(cache: Path, repo_id: str, files: dict[str, bytes], revision: str = REVISION) -> Path:
    """huggingface_hub's cache layout, written by hand: ``models--ORG--NAME/blobs/<sha256>`` with
    ``snapshots/<revision>/<name>`` linking to them and ``refs/main`` naming the revision. The snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def cache_folder(cache: Path, repo_id: str, folder: Path) -> Path:
    """A save_pretrained folder's files as the hub repo ``repo_id`` in ``cache``."""
    return write_cache_entry(cache, repo_id, {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()})


def timm_random_weights(cache: Path, name: str, seed: int = 0) -> tuple[torch.nn.Module, Path]:
    """A timm model of ``name``'s architecture with random weights, its safetensors written where huggingface_hub
    looks for the pretrained tag (its ``hf_hub_id``); the model and the file."""
    import timm
    from safetensors.torch import save
    from timm.models import get_pretrained_cfg

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False).eval()
    data = save({k: v.contiguous() for k, v in model.state_dict().items()})
    snapshot = write_cache_entry(cache, get_pretrained_cfg(name).hf_hub_id, {"model.safetensors": data})
    return model, snapshot / "model.safetensors"


def sha256sum_lines(files: list[Path]) -> str:
    """What ``sha256sum NAMES | sha256sum`` prints for the names in sorted order: an independent check of the id."""
    lines = ""
    for path in sorted(files, key=lambda p: p.name):
        lines += hashlib.sha256(path.read_bytes()).hexdigest() + "  " + path.name + "\n"
    return hashlib.sha256(lines.encode()).hexdigest()

