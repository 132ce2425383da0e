"""``--model`` resolution: a local checkpoint directory, or a hub id found in the local HF cache.

Nothing is downloaded implicitly: a missing hub id raises ``ModelNotFoundError`` naming the exact
command to fetch it. ``download_model`` is the one explicit path that reaches the network (used by
``infill fill --model ID --download``); it fetches only safetensors, JSON and tokenizer files.
"""

from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from .families import KNOWN_MODELS

# Files a denoiser needs; never pickles, never the repo's custom Python (it is not executed anyway).
DOWNLOAD_PATTERNS = ["*.safetensors", "*.json", "merges.txt", "*.jinja", "LICENSE*", "README.md"]
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelNotFoundError(FileNotFoundError):
    """``--model`` names neither a checkpoint directory nor a hub id in the local cache."""


def is_hub_id(spec: str) -> bool:
    """``owner/name`` shaped, as on huggingface.co (a path that exists locally wins over this)."""
    return bool(HUB_ID.match(spec)) and ".." not in spec


def download_command(hub_id: str) -> str:
    """The shell command that puts ``hub_id`` into the local HF cache (what the README lists)."""
    return "hf download " + hub_id + "".join(f" --include '{p}'" for p in DOWNLOAD_PATTERNS)


def resolve_model(spec: str | Path, *, download: bool = False, cache_dir: str | Path | None = None) -> Path:
    """A checkpoint directory for ``spec``: the directory itself, or the cached snapshot of a hub id.

    With ``download=True`` a hub id missing from the cache is fetched with ``download_model``.
    """
    text = str(spec).strip()
    if not text:
        raise ModelNotFoundError("no model given: pass a checkpoint directory or a hub id such as "
                                 f"{KNOWN_MODELS[0].hub_id}")
    local = Path(text).expanduser()
    if local.is_dir():
        return local
    if not is_hub_id(text):
        raise ModelNotFoundError(f"model {text!r}: no such directory, and not a hub id of the form owner/name")
    try:
        return Path(snapshot_download(text, local_files_only=True, cache_dir=cache_dir))
    except LocalEntryNotFoundError:
        if download:
            return download_model(text, cache_dir=cache_dir)
        known = "" if any(m.hub_id == text for m in KNOWN_MODELS) else (
            " (not one of the supported models listed in model/MODELS.md)")
        raise ModelNotFoundError(
            f"model {text!r} is not in the local Hugging Face cache{known}. Download it once with:\n"
            f"  {download_command(text)}\n"
            "or run `infill fill --model ID --download ...`; nothing is downloaded implicitly.") from None


def download_model(hub_id: str, *, cache_dir: str | Path | None = None) -> Path:
    """Fetch ``hub_id`` (weights, configs, tokenizer files only) into the HF cache; returns its snapshot dir."""
    if not is_hub_id(hub_id):
        raise ModelNotFoundError(f"{hub_id!r} is not a hub id of the form owner/name")
    return Path(snapshot_download(hub_id, allow_patterns=DOWNLOAD_PATTERNS, cache_dir=cache_dir))
