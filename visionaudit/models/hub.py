"""Models from the Hugging Face Hub (``hf:ORG/NAME[@REVISION]``, timm's pretrained tags): where their files are,
and when they may be downloaded.

The suite's data policy, applied to model files: what the local Hugging Face cache holds is used as it is; what
it lacks is downloaded on first use when downloads are allowed, never under ``--audit-offline``,
``VISIONAUDIT_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``; then the run stops at startup (exit 4) naming the command that
fetches it (``hf download ORG/NAME``). The cache is huggingface_hub's own, found as it finds it (``HF_HUB_CACHE``,
else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``), read from the environment at each call, so that a run
and the tests that point it elsewhere agree.

:func:`check_available` is the startup check (plugins/settings.py): cheap when the files are there, a download
when they are not and that is allowed, a refusal otherwise. The loaders (:mod:`visionaudit.models.hf`, timm's in
:mod:`visionaudit.models.loading`) resolve the same files the same way; they read the switch from the environment
(:func:`downloads_off`), where plugins/settings.py puts ``--audit-offline`` for the run's processes. A model's files
come from one snapshot folder (one commit), so that they belong together.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from visionaudit.data.user_cache import OFFLINE_ENV
from visionaudit.data.user_cache import offline as suite_offline
from visionaudit.errors import CheckpointError, SpecError, closest
from visionaudit.files import sha256_file
from visionaudit.formatting import first_few
from visionaudit.models.specs import ModelSpec
from visionaudit.models.timm_configs import (
    TIMM_MISSING,
    deprecated_alias_of,
    registered_cfg,
    unknown_name,
)

HF_OFFLINE_ENV = "HF_HUB_OFFLINE"
# A transformers classifier: its configuration, its weights (one of them, safetensors first), its image processor's
# configuration (optional: transformers' defaults apply without it, and the report says so).
HF_CONFIG = "config.json"
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
HF_PROCESSOR = "preprocessor_config.json"
TIMM_WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # what timm's hub loader tries, in its order
_TRUE = {"1", "true", "yes", "on"}


class HubUnavailable(CheckpointError):
    """A hub model whose files are not in the cache and may not (or could not) be downloaded."""


def downloads_off(flag: bool = False) -> bool:
    """``--audit-offline`` (``flag``), ``VISIONAUDIT_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``: use the cache only."""
    return suite_offline(flag) or os.environ.get(HF_OFFLINE_ENV, "").strip().lower() in _TRUE


def hub_cache() -> Path:
    """huggingface_hub's cache folder, as it chooses it, read from the environment now (it reads it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "huggingface")
    return Path(home).expanduser() / "hub"


def download_command(repo_id: str, revision: str | None = None) -> str:
    """The command that puts ``repo_id`` into the cache (huggingface_hub's CLI: ``hf``, ``huggingface-cli`` before 0.34)."""
    rev = f" --revision {revision}" if revision else ""
    return f"hf download {repo_id}{rev} (or: huggingface-cli download {repo_id}{rev})"


def _why_off() -> str:
    return f"downloads are off (--audit-offline / {OFFLINE_ENV}=1 / {HF_OFFLINE_ENV}=1)"


@dataclass(frozen=True)
class HubFiles:
    """The files of one hub model in the local cache: ``files`` maps each file name to its path."""

    repo_id: str
    revision: str | None
    files: dict[str, Path]  # in one snapshot folder: the files of one revision side by side, as save_pretrained writes them


def _cached(repo_id: str, name: str, revision: str | None) -> Path | bool | None:
    """The cached file; False when the cache knows the repo has no such file; None when it does not know."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, name, cache_dir=hub_cache(), revision=revision)
    if isinstance(found, str):
        return Path(found)
    return None if found is None else False


def _download(repo_id: str, name: str, revision: str | None, what: str) -> Path | None:
    """Download one file into the cache; None when the repo has no such file (a 404 on it)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(hf_hub_download(repo_id, name, revision=revision, cache_dir=hub_cache()))
    except LocalEntryNotFoundError as e:  # the hub unreachable and the file not cached (a subclass of the 404 below)
        raise HubUnavailable(f"{what}: could not reach the Hugging Face Hub for {name} of {repo_id} "
                             f"({str(e).splitlines()[0] if str(e) else 'no connection'}); fetch it where the network works: "
                             f"{download_command(repo_id, revision)}, into the cache {hub_cache()} (HF_HOME / HF_HUB_CACHE), "
                             "or run with --audit-offline to be told at once") from None
    except EntryNotFoundError:
        return None
    except GatedRepoError:
        raise HubUnavailable(f"{what}: the Hugging Face repo {repo_id} is gated; accept its terms on huggingface.co, log in "
                             f"(hf auth login), then: {download_command(repo_id, revision)}") from None
    except RepositoryNotFoundError:
        raise SpecError(f"{what}: there is no Hugging Face repo {repo_id} (or it is private: log in with hf auth login); "
                        "check the name, ORG/NAME as on huggingface.co") from None
    except RevisionNotFoundError:
        raise SpecError(f"{what}: the Hugging Face repo {repo_id} has no revision {revision!r}; give a branch, tag or "
                        "commit it has, or leave @REVISION out for main") from None
    except Exception as e:  # the network, a proxy, a full disk: the fix is the same command, run where it works
        raise HubUnavailable(f"{what}: could not download {name} of {repo_id} ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}); "
                             f"fetch it where the network works: {download_command(repo_id, revision)}, into the cache "
                             f"{hub_cache()} (HF_HOME / HF_HUB_CACHE)") from None


def resolve_files(repo_id: str, revision: str | None, required: Sequence[Sequence[str]], optional: Sequence[str],
                  offline: bool, what: str) -> HubFiles:
    """Each of ``required`` (a group of alternatives, the first found wins) and those of ``optional`` the repo has,
    from the cache, downloaded first when absent and allowed (see the module docstring); all from one snapshot."""
    for _ in range(2):
        got = _resolve_once(repo_id, revision, required, optional, offline, what)
        if len({p.parent for p in got.files.values()}) <= 1:
            return got
        # A download moved the ref (the hub's main went on since the cached files came): look again, now at the new
        # commit, so that what lacks there is fetched into it too.
    folders = ", ".join(sorted({f"{p.parent.name}: {p.name}" for p in got.files.values()}))
    raise HubUnavailable(f"{what}: the files of the Hugging Face repo {repo_id}{'@' + revision if revision else ''} in the "
                         f"cache {hub_cache()} come from different commits ({folders}), so they may not belong together; "
                         f"fetch one revision whole: {download_command(repo_id, revision)}")


def _resolve_once(repo_id: str, revision: str | None, required: Sequence[Sequence[str]], optional: Sequence[str],
                  offline: bool, what: str) -> HubFiles:
    files: dict[str, Path] = {}
    missing: list[str] = []
    for group, needed in [*((g, True) for g in required), *(((n,), False) for n in optional)]:
        found = next((p for p in (_cached(repo_id, n, revision) for n in group) if isinstance(p, Path)), None)
        if found is None and not offline:
            for name in group:
                if _cached(repo_id, name, revision) is False:
                    continue  # the cache already knows the repo lacks it
                found = _download(repo_id, name, revision, what)
                if found is not None:
                    break
        if found is not None:
            files[found.name] = found
        elif needed:
            missing.append(" or ".join(group))
    if missing and offline:
        raise HubUnavailable(f"{what}: the Hugging Face repo {repo_id}{'@' + revision if revision else ''} is not in the "
                             f"cache {hub_cache()} (it lacks {'; '.join(missing)}), and {_why_off()}; fetch it: "
                             f"{download_command(repo_id, revision)}, or allow downloads")
    if missing:
        raise SpecError(f"{what}: the Hugging Face repo {repo_id} has no {', '.join(missing)}; it is not a model "
                        "visionaudit reads this way")
    return HubFiles(repo_id, revision, files)


def hf_repo_files(spec: ModelSpec, offline: bool | None = None) -> HubFiles:
    """The files of an ``hf:ORG/NAME[@REVISION]`` model: its configuration, weights and image processor's configuration."""
    off = downloads_off() if offline is None else offline
    return resolve_files(spec.name, spec.weights, [(HF_CONFIG,), HF_WEIGHTS], [HF_PROCESSOR], off, f"--model {spec.raw}")


# --- timm pretrained tags --------------------------------------------------------------------------


def timm_pretrained_cfg(name: str, raw: str):
    """timm's pretrained configuration of ``NAME[.TAG]`` (the default tag when none is given); unknown models and
    tags are refused naming the close ones."""
    try:
        import timm
        from timm.models import split_model_name_tag
    except ImportError:
        raise SpecError(TIMM_MISSING) from None
    arch, tag = split_model_name_tag(name)
    unknown = unknown_name(name, raw)
    if unknown:
        raise SpecError(f"--model {raw}: {unknown}")
    tags = timm.list_pretrained(f"{arch}.*")
    cfg = registered_cfg(name)
    if cfg is None or (tag and f"{arch}.{tag}" not in tags):
        current = deprecated_alias_of(name)
        # timm registers no configuration under the alias: its pretrained weights are the new name's (where timm still
        # has that name's: two ViT SAM aliases point to a tag it dropped)
        if current and registered_cfg(current) is not None:
            raise SpecError(f"--model {raw}: {name} is timm's deprecated name of {current}; give "
                            f"{raw.replace(name, current, 1)}")
        if not tags:
            raise SpecError(f"--model {raw}: timm has no pretrained weights for {arch}; give a checkpoint (timm:{arch}:PATH) "
                            f"or audit it with random weights (timm:{arch}:none)")
        near = closest(name, tags)
        raise SpecError(f"--model {raw}: timm has no pretrained tag {tag!r} for {arch}; known: {first_few(tags, 20, ', ')}"
                        + (f"; did you mean timm:{near}?" if near else ""))
    return cfg


def timm_weights(name: str, raw: str, offline: bool | None = None) -> Path:
    """The local file of timm's pretrained weights for ``NAME[.TAG]``: from the Hugging Face cache (its
    ``hf_hub_id``), else torch hub's cache for the few tags that only have a URL; downloaded per the policy."""
    off = downloads_off() if offline is None else offline
    cfg = timm_pretrained_cfg(name, raw)
    what = f"--model {raw}"
    if cfg.hf_hub_id:
        names = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else TIMM_WEIGHTS
        got = resolve_files(cfg.hf_hub_id, None, [names], [], off, what)
        return next(iter(got.files.values()))
    if cfg.url:
        import torch

        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)
        if cached.is_file():
            return cached
        if off:
            raise HubUnavailable(f"{what}: timm's weights {cached.name} are not in torch hub's cache {cached.parent}, and "
                                 f"{_why_off()}; fetch {cfg.url} into that folder, or allow downloads")
        try:
            torch.hub.download_url_to_file(cfg.url, str(cached), progress=True)
        except Exception as e:
            raise HubUnavailable(f"{what}: could not download {cfg.url} ({type(e).__name__}: {e}); put it into "
                                 f"{cached.parent}") from None
        return cached
    raise SpecError(f"{what}: timm names no source for the weights of {name}; give a checkpoint: timm:{name.split('.')[0]}:PATH")


def hf_config_file(spec: ModelSpec, name: str = HF_CONFIG) -> Path | None:
    """An ``hf:`` model's ``config.json`` (or its file ``name``) where it is already on disk (the folder's, or the
    cache's), without any download; None otherwise."""
    if spec.path is not None:
        path = spec.path / name
        return path if path.is_file() else None
    try:
        found = _cached(spec.name, name, spec.weights)
    except Exception:  # noqa: BLE001  (a malformed repo id: the load says why)
        return None
    return found if isinstance(found, Path) else None


# --- the startup check, and the model's identity ----------------------------------------------------


def check_available(spec: ModelSpec, offline: bool = False) -> None:
    """For hub models (``hf:ORG/NAME``, timm's pretrained tags): their files are in the cache now, downloaded if
    they were not and downloads are allowed; else a refusal (exit 4 at startup) naming the fix. Other specs: nothing."""
    off = downloads_off(offline)
    if spec.kind == "hf" and spec.path is not None:
        if not any((spec.path / n).is_file() for n in HF_WEIGHTS):
            raise CheckpointError(f"--model {spec.raw}: {spec.path} holds no {' or '.join(HF_WEIGHTS)}; save the model "
                                  "with save_pretrained (sharded checkpoints are not read)")
    elif spec.kind == "hf":
        hf_repo_files(spec, off)
    elif spec.kind == "timm" and spec.weights == "pretrained":
        timm_weights(spec.name, spec.raw, off)


def files_sha256(files: Sequence[Path]) -> str:
    """One digest of several files: sha256 of the lines ``<sha256 of the file>  <name>\\n`` in name order, what
    ``sha256sum NAMES... | sha256sum`` prints run on the names sorted (so anyone can check it)."""
    lines = "".join(f"{sha256_file(p)}  {p.name}\n" for p in sorted(files, key=lambda p: p.name))
    return hashlib.sha256(lines.encode()).hexdigest()


def files_described(files: Sequence[Path]) -> str:
    """What :func:`files_sha256` hashed, for the report's ``sha256_of``."""
    ordered = sorted(files, key=lambda p: p.name)
    return f"{ordered[0].parent}: {', '.join(p.name for p in ordered)} (sha256 of their sha256sum lines, in this order)"
