"""The denoiser network: a stock transformers Qwen2 decoder run with a full (bidirectional) 4D mask.

Changes from the autoregressive original: the attention mask is an explicit all-true boolean
``(batch, 1, query, key)`` tensor, so every position sees prefix, canvas and suffix; with
``DiffusionConfig.shift`` the logits at position i predict token i+1 (Dream/DiffuCoder convention,
kept from AR pre-training). Weights load and save through safetensors only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM

from . import families, hub
from .config import DIFFUSION_CONFIG, DTYPE_NAMES, DiffusionConfig
from .errors import CheckpointError  # noqa: F401  (raised here; importers of model.modeling use it)
from .tokenizer import TOKENIZER_FILE, Tokenizer

log = logging.getLogger(__name__)

# Files a checkpoint directory may contain; anything else (pickles above all) is refused.
ALLOWED_FILES = {
    "config.json", "generation_config.json", DIFFUSION_CONFIG, TOKENIZER_FILE, "tokenizer_config.json",
    "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json", "README.md", "LICENSE",
    "model.safetensors", "model.safetensors.index.json", "training.json", "eval.json",
    "chat_template.jinja", "train_state.safetensors", ".gitattributes",
}
ALLOWED_SUFFIXES = (".safetensors", ".md", ".py", ".txt")  # shards; docs; custom code is never executed


@dataclass
class Denoiser:
    """A loaded checkpoint: network, tokenizer and diffusion settings, on one device."""

    model: torch.nn.Module
    tokenizer: Tokenizer
    config: DiffusionConfig
    device: torch.device
    path: str

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype


def embedded_qwen2_config(vocab_size: int, hidden: int = 256, layers: int = 6, heads: int = 4,
                          kv_heads: int = 2, intermediate: int = 768, max_position: int = 1024) -> Qwen2Config:
    """A small Qwen2 configuration sized for a 2-core CPU."""
    return Qwen2Config(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=kv_heads, intermediate_size=intermediate, max_position_embeddings=max_position,
        tie_word_embeddings=True, rope_theta=10000.0, attention_dropout=0.0, use_sliding_window=False,
        attn_implementation="sdpa",
    )


def full_mask(batch: int, query: int, key: int, device: torch.device) -> torch.Tensor:
    """All-true boolean mask (batch, 1, query, key): bidirectional attention."""
    return torch.ones(batch, 1, query, key, dtype=torch.bool, device=device)


def causal_mask(batch: int, length: int, device: torch.device) -> torch.Tensor:
    """Lower-triangular boolean mask (batch, 1, length, length) for AR pre-training."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril().expand(batch, 1, length, length)


def check_checkpoint_dir(path: Path) -> None:
    """Refuse directories with files we would not load (pickles, unknown binaries)."""
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {path}")
    bad = sorted(p.name for p in path.iterdir()
                 if p.is_file() and p.name not in ALLOWED_FILES and not p.name.endswith(ALLOWED_SUFFIXES))
    if bad:
        raise CheckpointError(f"refusing to load {path}: unexpected files {bad} (only safetensors checkpoints are loaded)")
    if not any(p.name.endswith(".safetensors") for p in path.iterdir()):
        raise CheckpointError(f"no .safetensors weights in {path}")


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError("device 'cuda' requested but CUDA is not available")
    return torch.device(device)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}  # DTYPE_NAMES but auto


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Intel Sapphire Rapids and later), where oneDNN runs bf16
    matmuls about twice as fast as fp32 ones; a probe that fails counts as no."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except Exception:  # noqa: BLE001 - a private probe: any failure means "do not rely on it"
        return False


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them (empty where there is no such file)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_bf16_kind(flags: frozenset[str] | None = None) -> str | None:
    """The CPU's bf16 matmul instructions: ``"amx"`` (AMX tiles), ``"avx512_bf16"`` (bf16 dot products,
    e.g. AMD Zen 4 and Intel Cooper Lake) or None; from torch's probe and the CPU's flags."""
    flags = cpu_flags() if flags is None else flags
    if cpu_has_amx() or "amx_bf16" in flags:
        return "amx"
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    try:
        probed = bool(probe()) if probe is not None else False
    except Exception:  # noqa: BLE001 - a private probe, as above
        probed = False
    return "avx512_bf16" if probed or "avx512_bf16" in flags else None


def cuda_has_bf16() -> bool:
    """Whether the current GPU has bf16 units (Ampere and later); emulated bf16 does not count."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # a torch without the argument
        return bool(torch.cuda.is_bf16_supported())


def pick_dtype(device: torch.device, dtype: str | torch.dtype | None = "auto") -> torch.dtype:
    """The weights' dtype: ``auto`` is bf16 on a GPU (fp16 on one without bf16 units) and on a CPU with
    AMX, fp32 on other CPUs; a name in ``DTYPES`` or a torch dtype is taken as given. This is the
    unmeasured guess: on a CPU with avx512_bf16 but no AMX, bf16 is faster for a long context and
    slower for a short step, so the worker times both at load (``model.calibrate``) and decides."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if device.type == "cuda":  # GPUs before Ampere (T4, V100) have no bf16 units: fp16 there
            return torch.bfloat16 if cuda_has_bf16() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_amx() else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: one of {', '.join(DTYPE_NAMES)}")
    return DTYPES[dtype]


def load_denoiser(path: str | Path, device: str = "auto", dtype: str | torch.dtype | None = "auto") -> Denoiser:
    """Load an HF checkpoint directory: ours (with diffusion_config.json) or a known hub family.

    A directory without ``diffusion_config.json`` is mapped by ``model/families.py`` (Dream, DreamOn,
    DiffuCoder, Open-dCoder, LLaDA) onto a stock class; both kinds then load the same way. A hub id
    (``owner/name``) that is not a local directory is looked up in the local HF cache (model/hub.py).
    """
    path = Path(path)
    if not path.is_dir() and hub.is_hub_id(str(path)):
        path = hub.resolve_model(str(path))
    check_checkpoint_dir(path)
    dev = pick_device(device)
    dtype = pick_dtype(dev, dtype)
    if (path / DIFFUSION_CONFIG).is_file():
        dcfg, hf_config, key_mapping = DiffusionConfig.load(path), AutoConfig.from_pretrained(str(path)), None
        tokenizer = Tokenizer.from_dir(path)
    else:
        mapped = families.map_checkpoint(path)
        dcfg, hf_config, key_mapping, tokenizer = mapped.diffusion, mapped.hf_config, mapped.key_mapping, mapped.tokenizer
        log.info("%s: %s checkpoint loaded as %s", path, dcfg.family, type(hf_config).__name__)
    families.check_fits(families.count_parameters(path), dtype, dev, what=str(path))
    hf_config._attn_implementation = "sdpa"
    model, info = AutoModelForCausalLM.from_pretrained(
        str(path), config=hf_config, dtype=dtype, use_safetensors=True, local_files_only=True,
        key_mapping=key_mapping, output_loading_info=True)  # device_map would need accelerate
    problems = {k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if problems:
        raise CheckpointError(f"{path}: weights do not match {type(model).__name__}: {problems}")
    model.to(dev).eval()
    return Denoiser(model=model, tokenizer=tokenizer, config=dcfg, device=dev, path=str(path))


def save_denoiser(model: torch.nn.Module, tokenizer: Tokenizer, config: DiffusionConfig, path: str | Path,
                  dtype: torch.dtype | None = None, extra: dict | None = None) -> None:
    """Write a standard HF checkpoint directory (optionally cast, e.g. fp16 for shipping)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    to_save = model
    if dtype is not None:
        to_save = Qwen2ForCausalLM(model.config) if isinstance(model, Qwen2ForCausalLM) else model
        if to_save is not model:
            to_save.load_state_dict(model.state_dict())
        to_save = to_save.to(dtype)
    to_save.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save(path)
    config.save(path)
    if extra is not None:
        (path / "training.json").write_text(json.dumps(extra, indent=2) + "\n")


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
