"""Loading weights safely: safetensors or ``torch.load(weights_only=True)``, never arbitrary unpickling."""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from visionaudit.errors import CheckpointError
from visionaudit.files import LFS_POINTER
from visionaudit.formatting import first_few
from visionaudit.models import pickled

if TYPE_CHECKING:  # imported where weights are read: parse_spec checks a file's kind on the xdist controller, without torch
    import torch

STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model", "module", "net", "ema")


def sha256_state_dict(state: Mapping[str, torch.Tensor]) -> str:
    """An identity for weights that have no file (random init): names, dtypes, shapes and bytes."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def is_torchscript_archive(path: str | Path) -> bool:
    """TorchScript archives carry compiled code (``*/code/``); plain ``torch.save`` files do not."""
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def looks_like_checkpoint(path: str | Path) -> bool:
    """A ``torch.save`` file or safetensors (an 8-byte header length, then its JSON header), whatever its suffix."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return _looks_like_torch_save(Path(path)) or (len(head) == 9 and head[8:9] == b"{")


def _looks_like_torch_save(path: Path) -> bool:
    """A zip archive (torch.save since 1.6) or a legacy pickle (protocol 2+ starts with 0x80)."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK") or head[:1] == b"\x80"


def load_state_dict(path: str | Path, argument: str = "--model") -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file, refusing pickled code.

    Common wrappers (``{"state_dict": ...}``, ``{"model": ...}``) and DataParallel's ``module.``
    prefix are removed. ``argument``: where the path was given, named when it is not there.
    """
    import torch

    path = Path(path)
    _check_exists(path, argument)
    refuse_unreadable(path)  # what shows without reading the weights, said as at startup
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: object = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(_not_safetensors(path, e)) from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            if not _looks_like_torch_save(path):
                raise CheckpointError(f"checkpoint {path} is corrupt or truncated, or not a checkpoint (neither a torch.save "
                                      "archive nor safetensors); copy it again or re-export it") from None
            lines = [ln.strip() for ln in str(e).splitlines() if "GLOBAL" in ln or "Unsupported" in ln]
            raise CheckpointError(pickled.refusal(path, pickled.scan(path), lines[0] if lines else type(e).__name__)) from None
        except Exception as e:  # torch raises many types on damaged files (RuntimeError, EOFError, IndexError, ...)
            raise CheckpointError(_corrupt(path, f"{type(e).__name__}: {str(e).splitlines()[0]}")) from None
    return _unwrap(state, path)


def _check_exists(path: Path, argument: str) -> None:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (or is not a file); check the path in {argument}")


def refuse_pickled(path: str | Path) -> None:
    """At startup, before any model loads: a ``torch.save`` checkpoint whose pickle names objects a safe load
    refuses stops the run with the message its load would give. Read without unpickling
    (:mod:`visionaudit.models.pickled`); a file that cannot be read so is left to the load."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors" or not path.is_file():
        return
    found = pickled.scan(path)
    if found is not None and found.refused:
        raise CheckpointError(pickled.refusal(path, found, ""))


def refuse_unreadable(path: str | Path) -> None:
    """At startup, before any model loads, and first in its load: a checkpoint cut short or damaged where that shows
    without reading its weights (an empty or truncated safetensors file: its header, and the data it promises; a
    ``torch.save`` archive whose zip directory is gone or whose entries run past its end), a Git LFS pointer where
    the weights go, or a file that cannot be read, stops the run with its load's words."""
    path = Path(path)
    if not path.is_file():
        return
    try:
        problem = _unreadable(path)
    except OSError as e:  # no permission, a failing mount: a message, not a traceback
        raise CheckpointError(f"checkpoint {path} cannot be read ({e.strerror or e}); check that it can be read here (its "
                              "permissions, its disk)") from None
    if problem:
        raise CheckpointError(problem)


SAFETENSORS_MAX_HEADER = 100_000_000  # safetensors' own limit: a length above it is no header's


def _unreadable(path: Path) -> str | None:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(len(LFS_POINTER))
    if head == LFS_POINTER:
        return (f"checkpoint {path} is a Git LFS pointer (a text file standing for the weights), not the checkpoint: "
                "fetch it with `git lfs pull` where it was cloned")
    if path.suffix == ".safetensors":  # as load_state_dict tells them
        problem = _safetensors_problem(path, size)
        return _not_safetensors(path, problem) if problem else None
    if head[:2] == b"PK":  # a torch.save archive (since torch 1.6): its directory is at the end
        try:
            with zipfile.ZipFile(path) as archive:
                past = [i.filename for i in archive.infolist() if i.header_offset + i.compress_size > size]
        except (zipfile.BadZipFile, OSError, ValueError) as e:  # OSError: a seek before the start, as a cut file gives
            return _corrupt(path, f"{type(e).__name__}: {e}")
        return _corrupt(path, f"its entry {past[0]} runs past its end") if past else None
    return None


def _safetensors_problem(path: Path, size: int) -> str | None:
    import json
    import struct

    with open(path, "rb") as f:
        head = f.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else None
        if length is None:
            return f"{size} bytes: too short for its header"
        if not length:
            return "its header's length is 0"
        if length > SAFETENSORS_MAX_HEADER:
            return "its first 8 bytes are not a safetensors header length: not a safetensors file"
        if length > size - 8:
            return f"cut short: its header is {length:,} bytes, the file {size:,}"
        try:
            header = json.loads(f.read(length))
            ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "its header is not a safetensors header"
    if max(ends, default=0) > size - 8 - length:
        return f"truncated: its header promises {max(ends, default=0):,} bytes of tensors, the file holds {size - 8 - length:,}"
    return None


def _not_safetensors(path: Path, problem: object) -> str:
    """The refusal of a damaged safetensors file, at startup and by the load alike."""
    return f"checkpoint {path} is not a readable safetensors file ({problem}); re-export it"


def _corrupt(path: Path, problem: str) -> str:
    """The refusal of a damaged torch.save file, at startup and by the load alike."""
    return f"checkpoint {path} is corrupt or truncated ({problem}); copy it again or re-export it"


def _unwrap(state: object, path: Path) -> dict[str, torch.Tensor]:
    import torch

    state = _weights(state)  # a whole pickled model (only a trusted unpickling gets one)
    for _ in range(3):
        if isinstance(state, Mapping) and not all(isinstance(v, torch.Tensor) for v in state.values()):
            models = [v for v in state.values() if isinstance(v, torch.nn.Module)]
            inner = next((state[k] for k in STATE_DICT_WRAPPERS if isinstance(_weights(state.get(k)), Mapping)), None)
            inner = inner if inner is not None else (models[0] if len(models) == 1 else None)  # {"generator": model}
            if inner is None:
                break
            state = _weights(inner)
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"checkpoint {path} holds no state dict (found {type(state).__name__}); save model.state_dict()")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        keys = first_few(list(map(repr, state)), 6, ", ")
        raise CheckpointError(f"checkpoint {path} holds no tensors where its weights were looked for (a dict with keys {keys}, "
                              f"after the wrappers {', '.join(STATE_DICT_WRAPPERS)}); save model.state_dict()")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def _weights(value: object) -> object:
    """A wrapper's value: a pickled model (``{"model": model}``, read by a trusted unpickling) gives its state_dict()."""
    import torch

    return value.state_dict() if isinstance(value, torch.nn.Module) else value


def apply_state_dict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str, arch: str,
                     in_spec: bool = False) -> None:
    """Load ``state`` into ``module`` strictly; on mismatch name the first missing, unexpected and misshapen keys.
    ``in_spec``: the architecture is the spec's own (``timm:NAME:PATH``), not ``--arch``'s."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshapen = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or misshapen:
        lines = [f"checkpoint {source} does not match the architecture {arch}:"]
        for label, items in (("missing from the checkpoint", missing), ("not in the model", unexpected),
                             ("shape mismatch", misshapen)):
            if items:
                lines.append(f"  {len(items)} {label}: {first_few(items, 5)}")
        lines.append(_mismatch_advice(arch, in_spec))
        raise CheckpointError("\n".join(lines))
    module.load_state_dict(dict(state), strict=True)


def _mismatch_advice(arch: str, in_spec: bool = False) -> str:
    """What to do about a checkpoint that does not fit: the advice names only routes that exist."""
    if arch.startswith(("torchvision:", "timm:")):
        check = (f"Check the architecture in the spec ({arch}:PATH)" if in_spec
                 else "Check --arch (or ?arch= in the spec)")
        return (f"{check}: it must name the architecture the checkpoint was saved from. A "
                "replaced classifier head alone is fitted (built with the checkpoint's number of classes); any other "
                "change to the architecture needs your own code: a function that builds the model, named as "
                "--arch package.module:factory")
    if ":" in arch:  # package.module:factory
        return (f"Check that {arch}() builds the model the checkpoint was saved from (the same layers, and the same "
                "number of classes as its head)")
    return ("Check --arch (or ?arch= in the spec): it must name the architecture the checkpoint was saved from; for a "
            "changed architecture write a function that builds it and name it as --arch package.module:factory")


def head_outputs(module: torch.nn.Module, state: Mapping[str, torch.Tensor], outputs: int | None) -> int | None:
    """The checkpoint's number of classes when the only difference between ``module`` (built with ``outputs``
    classes) and ``state`` is the classifier head's output size (:func:`head_rows`); None otherwise (nothing to fit,
    or another difference: the strict load names it)."""
    return head_rows({k: tuple(v.shape) for k, v in module.state_dict().items()},
                     {k: tuple(v.shape) for k, v in state.items()}, outputs)


def head_rows(own: Mapping[str, tuple[int, ...]], theirs: Mapping[str, tuple[int, ...]], outputs: int | None) -> int | None:
    """Of two state dicts' shapes, a model's (``own``, built with ``outputs`` classes) and a checkpoint's: the
    checkpoint's number of classes when every misshapen tensor is ``outputs`` long in its first dimension in the model
    and N in the checkpoint, the same N throughout, its other dimensions equal; no key missing or extra. None otherwise.
    The load fits the head with it; the startup check reads it from the weights' shapes (visionaudit/models/heads.py)."""
    if not outputs or set(own) != set(theirs):
        return None
    sizes = set()
    for key, mine in own.items():
        other = tuple(theirs[key])
        if mine == other:
            continue
        if len(mine) != len(other) or not mine or mine[0] != outputs or mine[1:] != other[1:]:
            return None
        sizes.add(other[0])
    return sizes.pop() if len(sizes) == 1 and next(iter(sizes)) > 0 else None


def tensor_shapes(path: str | Path) -> dict[str, tuple[int, ...]] | None:
    """The name and shape of every tensor in a checkpoint, read cheaply (a safetensors header; a ``torch.save``
    archive memory-mapped), for what is known before a model loads; None when it cannot be read (the load says why)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            import json
            import struct

            with open(path, "rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(length))
            state = {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
            if all(k.startswith("module.") for k in state):
                state = {k[len("module."):]: v for k, v in state.items()}
            return {k: tuple(int(d) for d in v) for k, v in state.items()}
        import torch

        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
        return {k: tuple(v.shape) for k, v in _unwrap(obj, path).items()}
    except Exception:  # noqa: BLE001 (unreadable, pickled code, no state dict: the load names the problem)
        return None


def convert_to_safetensors(src: str | Path, dst: str | Path, trust_pickle: bool = False, imports: list[str] = ()) -> int:
    """Re-save a checkpoint as safetensors. Unpickling happens only with ``trust_pickle=True`` (``imports``: modules
    imported first, the training code whose classes the pickle names); a pickled model gives its state_dict()."""
    src, dst = Path(src), Path(dst)
    _check_exists(src, "SRC")
    if not dst.parent.is_dir():  # said before anything is unpickled; not made, a typo would make a stray folder
        raise CheckpointError(f"DST {dst}: the folder {dst.parent} does not exist; create it first (mkdir -p {dst.parent}) "
                              "or give a path in an existing folder")
    if dst.is_dir():
        raise CheckpointError(f"DST {dst} is a folder; give the file to write, such as "
                              f"{dst / src.with_suffix('.safetensors').name}")
    if imports and not trust_pickle:
        raise CheckpointError("--import is for --trust-pickle (it imports the classes a pickled checkpoint names); "
                              "add --trust-pickle if you trust the file, else leave --import out")
    state = _unwrap(pickled.load_trusted(src, imports), src) if trust_pickle else load_state_dict(src, "SRC")
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:  # safetensors refuses shared storage; clone so tied weights save too.
        save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(dst))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"DST {dst} could not be written ({e}); check that its folder is writable") from None
    return len(state)
