"""Checkpoints that hold pickled Python objects: what they name, read without unpickling; the one refusal that says
what the file is and the way out; and the trusted unpickling ``convert-checkpoint --trust-pickle`` does.

A ``torch.save`` archive's pickle (``*/data.pkl``; a legacy pre-1.6 file's fourth pickle) is read with
:mod:`pickletools`, which disassembles and never executes, so the startup check (``plugins/settings.py``) refuses a
pickled checkpoint before any model loads without running a byte of it. Only a pickle that names more than a plain
state dict's globals asks torch (``torch.serialization.get_unsafe_globals_in_checkpoint``, also static; for a legacy
file the same question of its allow list) which of them its safe load refuses, so the controller of a run on a plain
state dict does not import torch.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import pickletools
import sys
import types
import zipfile
from pathlib import Path

from visionaudit.errors import CheckpointError
from visionaudit.formatting import first_few

# What a plain state dict's pickle names (torch.save(model.state_dict())); all on torch's weights_only allow list.
_PLAIN = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter"}


def _plain(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    return name in _PLAIN or (module == "torch" and attr.endswith("Storage"))


def _pickle_bytes(path: Path) -> bytes | None:
    """The object pickle of a ``torch.save`` zip archive, or of a legacy one (:func:`_legacy_pickle_bytes`); None for
    anything else (TorchScript, a damaged file)."""
    legacy = _legacy_pickle_bytes(path)
    if legacy is not None:
        return legacy
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if any("/code/" in n for n in names):
                return None
            pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
            return z.read(pkl[0]) if len(pkl) == 1 else None
    except (zipfile.BadZipFile, OSError, KeyError):
        return None


# torch.serialization's MAGIC_NUMBER: the first of the pickles a pre-1.6 torch.save file (``_use_new_zipfile_serialization
# =False``, not a zip archive) is made of, then the protocol version, the system's info, the object, its storage keys.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _legacy_pickle_bytes(path: Path) -> bytes | None:
    """The object pickle of a legacy ``torch.save`` file (its fourth pickle), found by disassembly (never run); None
    for anything else."""
    try:
        with open(path, "rb") as f:
            if f.read(1) != b"\x80":  # a pickle of protocol 2 or later, as torch.save writes
                return None
            f.seek(0)
            if [arg for op, arg, _ in pickletools.genops(f) if op.name.startswith(("LONG", "INT"))] != [LEGACY_MAGIC]:
                return None
            for _ in range(2):  # the protocol version, the system's info
                for _ in pickletools.genops(f):
                    pass
            start = f.tell()
            for _ in pickletools.genops(f):
                pass
            end = f.tell()
            f.seek(start)
            return f.read(end - start)
    except Exception:  # noqa: BLE001 (not a pickle, damaged: the load says why)
        return None


def _read(data: bytes) -> tuple[list[str], str | None]:
    """Every class or function the pickle names (``module.name``, once each, in order), and the class of the object
    saved when it is an instance (its first opcode names a class), by disassembly only."""
    names: list[str] = []
    strings: list[str] = []
    top, first = None, True
    marked = False  # a legacy torch.save file opens a whole model with its class's persistent id: MARK, "module", CLASS
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        name = None
        if op.name in ("GLOBAL", "INST"):
            name = ".".join(str(arg).split(" ", 1))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:  # protocol 4+: module and name pushed as strings
            name = f"{strings[-2]}.{strings[-1]}"
        elif isinstance(arg, str):
            strings.append(arg)
        if first and op.name == "MARK" and not marked and not strings:
            marked = True
        elif first and op.name not in ("PROTO", "FRAME", "SHORT_BINUNICODE", "BINUNICODE", "MEMOIZE", "BINPUT"):
            top, first = name if not marked or strings[:1] == ["module"] else None, False
        if name is not None and name not in names:
            names.append(name)
    return names, top


class Pickled:
    """What a pickled checkpoint names beyond a state dict: ``refused`` (the globals a safe load refuses, in the
    order the pickle names them) and ``top`` (the class of the saved object itself, when it is an instance)."""

    def __init__(self, refused: list[str], top: str | None):
        self.refused, self.top = refused, top

    @property
    def modules(self) -> bool:
        """Torch layers among them: a model was pickled (``torch.save(model)``, or a model inside a dict)."""
        return any(name.startswith("torch.nn.modules.") for name in self.refused)

    @property
    def whole_model(self) -> bool:
        return self.modules and self.top is not None and self.top in self.refused

    def not_importable(self) -> tuple[list[str], list[str]]:
        """The classes a trusted unpickling will not find here as things stand: those of the script that saved the
        file (``__main__``), and those of packages not on the import path (looked up, not imported)."""
        mains = [name for name in self.refused if name.startswith("__main__.")]
        others = [name for name in self.refused if not name.startswith("__main__.") and _missing_package(name)]
        return mains, others


def _missing_package(name: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(name.split(".")[0]) is None  # a top-level package: found without running its code
    except (ImportError, ValueError):
        return True


def scan(path: str | Path) -> Pickled | None:
    """What the ``torch.save`` file ``path`` (a zip archive, or a legacy pre-1.6 file) pickles beyond a state dict (an
    empty ``refused`` when nothing: a safe load reads it), read without unpickling; None when that cannot be read so
    (neither, or damaged: the load says why)."""
    data = _pickle_bytes(Path(path))
    if data is None:
        return None
    try:
        names, top = _read(data)
    except Exception:  # noqa: BLE001 (a damaged pickle: the load names the problem)
        return None
    if all(_plain(n) for n in names):
        return Pickled([], top)
    try:
        unsafe = _unsafe_globals(Path(path), data)
    except Exception:  # noqa: BLE001
        return None
    return Pickled([n for n in names if n in unsafe] + sorted(unsafe.difference(names)), top)


def _unsafe_globals(path: Path, data: bytes) -> set[str]:
    """The globals of the object pickle ``data`` of ``path`` that torch's safe load refuses, asked of torch (statically).
    Its public question takes zip archives only; a legacy file's pickle is asked as that question asks it."""
    import torch.serialization

    if zipfile.is_zipfile(path):
        return set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    from torch import _weights_only_unpickler as unpickler

    allowed = set(unpickler._get_allowed_globals()) | set(unpickler._get_user_allowed_globals())
    return set(unpickler.get_globals_in_pkl(io.BytesIO(data))) - allowed


def _shown(names: list[str], most: int = 4) -> str:
    return first_few(names, most, ", ")


def refusal(path: Path, found: Pickled | None, why: str) -> str:
    """The message for a checkpoint a safe load refuses (at startup and at load alike): what it holds and the fix.
    ``why``: torch's reason, used when the file could not be read statically (a legacy ``torch.save`` file)."""
    head = f"checkpoint {path} "
    refused = f"{_shown(found.refused)}" if found is not None and found.refused else why
    if found is not None and found.whole_model:
        head += f"is a whole pickled model (torch.save(model) of a {found.top}), not a state dict: it "
    elif found is not None and found.modules:
        head += "holds a pickled model where a state dict was expected (such as {'model': model}): it "
    lines = [f"{head}holds pickled Python objects that a safe load refuses (torch.load(weights_only=True) refuses {refused}), "
             "and visionaudit never unpickles by default.",
             "Save model.state_dict() in the training code and audit that file, or, if you trust this one, convert it once "
             "to safetensors (that keeps its weights: the tensors, or a pickled model's state_dict()):",
             f"    python -m visionaudit convert-checkpoint {path} {path.with_suffix('.safetensors')} --trust-pickle",
             "That unpickles the file, which can run code it carries: only for files you trust."]
    mains, others = found.not_importable() if found is not None else ([], [])
    if mains:
        lines.append(f"{_shown(mains)} {'was' if len(mains) == 1 else 'were'} defined by the script that saved the file: "
                     "add --import SCRIPT (its module name: train for train.py) and run it from that script's folder.")
    if others:
        lines.append(f"{_shown(others)} must be importable there: run it where the training code is (its folder, or "
                     "with it on PYTHONPATH).")
    return "\n".join(lines)


class _NotImportable(Exception):
    def __init__(self, module: str, name: str, error: BaseException):
        super().__init__(module, name)
        self.module, self.name, self.error = module, name, error


def _pickle_module(mains: list[types.ModuleType]) -> types.SimpleNamespace:
    """``pickle`` whose Unpickler looks a ``__main__`` class up in ``mains`` too (the training script imported with
    --import) and reports a class it cannot find by its module and name."""

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            try:
                return super().find_class(module, name)
            except (AttributeError, ImportError) as e:
                if module == "__main__":
                    for main in mains:
                        if hasattr(main, name):
                            return getattr(main, name)
                raise _NotImportable(module, name, e) from None

    return types.SimpleNamespace(__name__="pickle", Unpickler=Unpickler, load=pickle.load)  # what torch.load uses


def _import(names: list[str]) -> list[types.ModuleType]:
    """``--import MODULE``s: the training code whose classes a trusted pickle names."""
    imported = []
    for name in names:
        try:
            imported.append(importlib.import_module(name))
        except ImportError as e:
            raise CheckpointError(f"--import {name}: cannot import it from {os.getcwd()} or the import path ({e}); give "
                                  "the module's name as you would import it (train for train.py), from the folder that "
                                  "holds it or with that folder on PYTHONPATH") from None
    return imported


def load_trusted(src: Path, imports: list[str] = ()) -> object:
    """Unpickle ``src`` (``convert-checkpoint --trust-pickle``), with the working directory on the import path (as
    ``python -m`` has it, the console script not), so that run from the training code's folder its classes are
    found; a class that is not is said by its module and name, with the fix."""
    import torch

    here = os.getcwd()
    sys.path.insert(0, here)
    try:
        mains = _import(list(imports))
        return torch.load(src, map_location="cpu", weights_only=False, pickle_module=_pickle_module(mains))
    except _NotImportable as e:
        raise CheckpointError(_not_importable(src, e, list(imports))) from None
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 (a damaged file, or the pickle's own code failing: said, not a traceback)
        first = (str(e).splitlines() or [""])[0]
        raise CheckpointError(f"checkpoint {src} could not be unpickled ({type(e).__name__}: {first}); if it is damaged, "
                              "copy it again, else re-save model.state_dict() from the training code") from None
    finally:
        sys.path.remove(here)


def _not_importable(src: Path, e: _NotImportable, imports: list[str]) -> str:
    head = f"checkpoint {src} names the class {e.name} from module {e.module}, which is not importable here"
    resave = "; or re-save it from the training code with torch.save(model.state_dict(), PATH), which needs no classes"
    if e.module == "__main__":
        tried = f" (nor in --import {', '.join(imports)})" if imports else ""
        return (f"{head}{tried}: it was defined in the script that saved the file (run as python SCRIPT.py). Import that "
                f"script first: from its folder, python -m visionaudit convert-checkpoint {src} DST --trust-pickle "
                "--import SCRIPT (its module name: train for train.py; importing it runs its top-level code, so its "
                "training must sit under if __name__ == '__main__':)" + resave)
    missing = f"no module {e.error.name or e.module}" if isinstance(e.error,
                                                                    ModuleNotFoundError) else f"{e.module} has no {e.name}"
    return (f"{head} ({missing}): run the conversion where the training code is importable (from its "
            f"folder, or with it on PYTHONPATH), or name a module to import first with --import MODULE" + resave)
