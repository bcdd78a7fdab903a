"""Clean logits on disk (``--audit-cache DIR``, ``$VISIONAUDIT_LOGIT_CACHE``; off by default): a run on
the same model, images and preprocessing as an earlier one skips the clean forward pass.

An entry is one safetensors file: the logits and, in its JSON header, the full key they were computed
under; nothing is unpickled, so a planted file can at worst be refused. Its name is a digest of what the
logits are of (the model's weights and spec, the images, the decode geometry and normalization); the
rest of the key (device type, batch size, torch, torchvision and suite versions) is checked from the header, so an
entry made under another torch is stale: ignored, said once, and replaced. An entry that cannot be read,
or holds the wrong shape, dtype or a non-finite value, is treated the same way; one is never trusted.

The images are keyed by their ids and each file's (resolved path, size, mtime_ns): stat-ing 50,000
files takes a fraction of a second where hashing them reads 6.4 GB. The report's data fingerprint makes
the same bet within a process (its per-file sha256 is cached by size and mtime_ns).

Writes go through a temporary file and a rename, so xdist workers filling the same entry at once each
leave a whole file, and the same key gives the same logits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionaudit.files import write_bytes_atomically

if TYPE_CHECKING:  # torch, PIL and safetensors are imported where an entry is made or read: the settings plugin
    import torch  # configures the cache on the xdist controller, which never imports torch

    from visionaudit.data.image_sets import ImageSet
    from visionaudit.models.loading import LoadedModel
    from visionaudit.preprocessing import Geometry

log = logging.getLogger("visionaudit.models.logit_cache")

CACHE_ENV = "VISIONAUDIT_LOGIT_CACHE"
FORMAT = 1  # of the entries: a change makes every older entry stale
_UNSET = object()
_directory: Any = _UNSET


def configure(directory: Any) -> Any:
    """Use ``directory`` for this process (the pytest plugin does, from its settings); None turns the cache off.
    Returns what was configured before, to put back (the environment's choice when nothing was)."""
    global _directory
    previous = _directory
    _directory = directory if directory is _UNSET else Path(directory).expanduser() if directory else None
    return previous


def cache_dir() -> Path | None:
    """The configured directory, else ``$VISIONAUDIT_LOGIT_CACHE``, else None (no cache)."""
    if _directory is not _UNSET:
        return _directory
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else None


def files_key(image_set: "ImageSet") -> str:
    """A digest of the images in order: each sample id with its file's resolved path, size and mtime_ns."""
    digest = hashlib.sha256()
    for sample_id, path in zip(image_set.sample_ids, image_set.paths):
        st = path.stat()
        digest.update(f"{sample_id}\0{Path(path).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def model_code(module: torch.nn.Module) -> dict[str, str | None]:
    """What defines the model's forward besides its weights: the defining package's version and a digest of
    the module's source file (a factory in the user's own code), so that a code-only change is a miss."""
    name = type(module).__module__
    source = getattr(sys.modules.get(name), "__file__", None)
    try:
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest() if source else None
    except OSError:
        digest = None
    try:
        version = metadata.version(_distributions().get(name.split(".")[0], [name.split(".")[0]])[0])
    except (metadata.PackageNotFoundError, IndexError):
        version = None
    return {"module": name, "version": version, "source_sha256": digest}


@dataclass(frozen=True)
class Entry:
    path: Path
    key: dict[str, Any]
    shape: tuple[int, int]


def entry(directory: Path, model: "LoadedModel", image_set: "ImageSet", geometry: "Geometry", batch_size: int) -> Entry:
    """Where the clean logits of ``model`` on ``image_set`` decoded at ``geometry`` live, and their key."""
    import PIL
    import torch
    import torchvision

    from visionaudit.version import __version__

    pre = model.preprocessing
    what = {
        "model": {"spec": model.spec.canonical, "architecture": model.architecture, "sha256": model.sha256,
                  "sha256_of": model.sha256_of, "num_classes": model.num_classes,
                  **({"outputs": model.outputs} if model.outputs != "logits" else {})},  # their logarithms, then
        "data": {"name": image_set.name, "n": len(image_set), "files": files_key(image_set)},
        # A 1-channel model's input is made from RGB by fixed weights: they are part of what its logits depend on.
        "preprocessing": {"geometry": geometry.to_dict(), "mean": list(pre.mean), "std": list(pre.std),
                          **({"luminance_weights": pre.to_dict()["luminance_weights"]} if pre.gray else {})},
    }
    how = {"format": FORMAT, "device": model.device.type, "batch_size": batch_size, "torch": torch.__version__,
           "torchvision": torchvision.__version__, "visionaudit": __version__, "pillow": PIL.__version__,
           "model_code": model_code(model.module)}
    name = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]
    return Entry(directory / f"clean-{name}.safetensors", {**what, **how}, (len(image_set), model.num_classes))


def load(e: Entry) -> tuple[torch.Tensor | None, str | None]:
    """``(logits, None)`` on a good entry; ``(None, None)`` when there is none; ``(None, why)`` when there is
    one that must not be used (stale or corrupt)."""
    if not e.path.exists():
        return None, None
    import torch
    from safetensors import safe_open

    try:
        with safe_open(str(e.path), framework="pt") as f:
            stored = json.loads((f.metadata() or {}).get("key", "null"))
            if not isinstance(stored, dict):
                return None, "it carries no key"
            changed = sorted(k for k in set(stored) | set(e.key) if stored.get(k) != e.key.get(k))
            if changed:
                return None, f"stale: made with another {', '.join(changed)}"
            logits = f.get_tensor("logits")
    except Exception as err:  # truncated, not safetensors (a pickle), unreadable: never trusted
        return None, f"unreadable ({type(err).__name__}: {str(err)[:200]})"
    if logits.dtype != torch.float32 or tuple(logits.shape) != e.shape:
        return None, f"it holds {logits.dtype} {tuple(logits.shape)}, not float32 {e.shape}"
    if not torch.isfinite(logits).all():
        return None, "it holds NaN or infinite logits"
    return logits, None


def store(e: Entry, logits: torch.Tensor) -> None:
    """Write the entry whole or not at all; a cache that cannot be written costs the next run a pass, nothing more."""
    import torch
    from safetensors.torch import save

    data = save({"logits": logits.detach().to(torch.float32).contiguous()},
                metadata={"key": json.dumps(e.key, sort_keys=True)})
    try:
        write_bytes_atomically(e.path, data)
    except OSError as err:
        log.warning("logit cache: cannot write %s (%s); the next run computes these logits again", e.path, err)
