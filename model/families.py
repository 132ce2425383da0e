"""Published diffusion-LM checkpoints mapped onto stock transformers classes (no custom code is run).

A hub checkpoint ships ``config.json`` + safetensors + a tokenizer but no ``diffusion_config.json``.
``map_checkpoint(dir)`` reads them and returns what ``modeling.load_denoiser`` needs to load it through
its one path: a stock ``Qwen2Config``/``LlamaConfig``, an optional weight-name mapping, the tokenizer
and a ``DiffusionConfig`` whose special ids come from the checkpoint itself.

Families:
- ``dream`` (Dream-v0, Dream-Coder, DiffuCoder) and ``dreamon`` (DreamOn: + expand token): custom
  ``DreamModel`` with Qwen2 weight names -> ``Qwen2ForCausalLM``; shifted logits.
- ``open-dcoder``: a Qwen2 checkpoint trained as a masked-diffusion model -> ``Qwen2ForCausalLM``;
  shifted logits (its training code drops label 0 and its sampler shifts, like Dream).
- ``llada``: OLMo-style ``LLaDAModelLM`` -> ``LlamaForCausalLM`` with renamed weights; unshifted.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tokenizers import AddedToken, Regex, decoders, normalizers, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import BPE
from transformers import LlamaConfig, PretrainedConfig, Qwen2Config

from .config import DiffusionConfig
from .errors import CheckpointError
from .tokenizer import TOKENIZER_FILE, Tokenizer

log = logging.getLogger(__name__)

GiB = 1024**3


class FamilyError(CheckpointError):
    """A checkpoint directory that is not (or not fully) a known diffusion model family."""


class InsufficientMemoryError(RuntimeError):
    """The model would not fit in the memory of the chosen device."""


@dataclass(frozen=True)
class KnownModel:
    """A published checkpoint we support: what the README lists and what error messages suggest."""

    hub_id: str
    family: str
    params: str  # human-readable size
    licence: str


KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel("Dream-org/Dream-Coder-v0-Instruct-7B", "dream", "7.6B", "apache-2.0"),
    KnownModel("Dream-org/Dream-Coder-v0-Base-7B", "dream", "7.6B", "apache-2.0"),
    KnownModel("Dream-org/DreamOn-v0-7B", "dreamon", "7.6B", "apache-2.0"),
    KnownModel("Dream-org/Dream-v0-Instruct-7B", "dream", "7.6B", "apache-2.0"),
    KnownModel("Dream-org/Dream-v0-Base-7B", "dream", "7.6B", "apache-2.0"),
    KnownModel("apple/DiffuCoder-7B-Instruct", "dream", "7.6B", "apple-amlr (research use)"),
    KnownModel("apple/DiffuCoder-7B-Base", "dream", "7.6B", "apple-amlr (research use)"),
    KnownModel("apple/DiffuCoder-7B-cpGRPO", "dream", "7.6B", "apple-amlr (research use)"),
    KnownModel("fredzzp/open-dcoder-0.5B", "open-dcoder", "0.5B", "apache-2.0"),
    KnownModel("GSAI-ML/LLaDA-8B-Instruct", "llada", "8.0B", "mit"),
    KnownModel("GSAI-ML/LLaDA-8B-Base", "llada", "8.0B", "mit"),
)

# Documented fallbacks, used only when neither config.json nor the tokenizer names the token
# (values from the published checkpoints: Dream config.json ``mask_token_id``, DreamOn's expand
# token, LLaDA's ``<|mdm_mask|>``). The sampler never sees these constants, only DiffusionConfig.
FALLBACK_IDS: dict[str, dict[str, int]] = {
    "dream": {"mask": 151666},
    "dreamon": {"mask": 151666, "expand": 151667},
    "llada": {"mask": 126336},
}
TOKEN_NAMES: dict[str, tuple[str, ...]] = {
    "mask": ("<|mask|>", "<|mdm_mask|>", "[MASK]", "<mask>"),
    "expand": ("<|expand|>",),
    "dlm_pad": ("<|dlm_pad|>",),
}
SHIFT = {"dream": True, "dreamon": True, "open-dcoder": True, "llada": False}
# Context the models were trained on (Dream/Dream-Coder: 2048; LLaDA: 4096); our windows stay inside it.
TRAINED_CONTEXT = {"dream": 2048, "dreamon": 2048, "open-dcoder": 2048, "llada": 4096}

# LLaDA (OLMo naming, ``LLaDALlamaBlock``) -> LlamaForCausalLM. ff_proj is the SiLU-gated branch
# (``act(ff_proj(x)) * up_proj(x)``), i.e. Llama's gate_proj; the block's ff_out is down_proj and
# the top-level ff_out is the unembedding.
LLADA_KEY_MAPPING: dict[str, str] = {
    r"^model\.transformer\.wte\.": "model.embed_tokens.",
    r"^model\.transformer\.ln_f\.": "model.norm.",
    r"^model\.transformer\.ff_out\.": "lm_head.",
    r"^model\.transformer\.blocks\.(\d+)\.attn_norm\.": r"model.layers.\1.input_layernorm.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_norm\.": r"model.layers.\1.post_attention_layernorm.",
    r"^model\.transformer\.blocks\.(\d+)\.q_proj\.": r"model.layers.\1.self_attn.q_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.k_proj\.": r"model.layers.\1.self_attn.k_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.v_proj\.": r"model.layers.\1.self_attn.v_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.attn_out\.": r"model.layers.\1.self_attn.o_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_proj\.": r"model.layers.\1.mlp.gate_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.up_proj\.": r"model.layers.\1.mlp.up_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_out\.": r"model.layers.\1.mlp.down_proj.",
}


@dataclass
class MappedCheckpoint:
    """Everything needed to load a hub checkpoint with a stock class."""

    family: str
    hf_config: PretrainedConfig
    diffusion: DiffusionConfig
    tokenizer: Tokenizer
    key_mapping: dict[str, str] | None = None
    n_params: int = 0
    notes: list[str] = field(default_factory=list)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as e:
        raise FamilyError(f"{path}: invalid JSON ({e})") from e


def detect_family(path: str | Path) -> str:
    """Family name from config.json's ``architectures``/``model_type`` and the tokenizer's tokens."""
    path = Path(path)
    cfg = read_json(path / "config.json")
    if not cfg:
        raise FamilyError(f"{path}: no config.json")
    archs = {a.lower() for a in cfg.get("architectures") or []}
    model_type = str(cfg.get("model_type", "")).lower()
    if "dreammodel" in archs or model_type == "dream":
        vocab = _token_table(path)
        if "expand_token_id" in cfg or any(t in vocab for t in TOKEN_NAMES["expand"]) or "dreamon" in str(path).lower():
            return "dreamon"
        return "dream"
    if "lladamodellm" in archs or model_type == "llada":
        return "llada"
    if model_type == "qwen2":
        if _find_special(path, cfg, "mask", _token_table(path)) is not None:
            return "open-dcoder"
        raise FamilyError(f"{path}: a Qwen2 checkpoint without a mask token is an autoregressive model, "
                          "not a diffusion denoiser")
    raise FamilyError(f"{path}: unknown model family (architectures={sorted(archs)}, model_type={model_type!r}); "
                      f"supported: {', '.join(sorted(SHIFT))}")


def map_checkpoint(path: str | Path) -> MappedCheckpoint:
    """Map a hub checkpoint directory onto a stock class, its tokenizer and its diffusion settings."""
    path = Path(path)
    family = detect_family(path)
    cfg = read_json(path / "config.json")
    if family == "llada":
        hf_config, key_mapping = llada_llama_config(cfg), dict(LLADA_KEY_MAPPING)
    else:
        hf_config, key_mapping = qwen2_config(cfg, path), None
    tokenizer = load_tokenizer(path)
    dcfg = diffusion_config(path, family, cfg, tokenizer, hf_config)
    return MappedCheckpoint(family, hf_config, dcfg, tokenizer, key_mapping, n_params=count_parameters(path))


def qwen2_config(cfg: dict, path: Path) -> Qwen2Config:
    """A stock Qwen2Config from a Dream/Open-dCoder config.json (same field names as Qwen2)."""
    _require(cfg, path, "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
    if cfg.get("rope_scaling"):
        raise FamilyError(f"{path}: rope_scaling={cfg['rope_scaling']!r} is not supported")
    if cfg.get("use_sliding_window"):
        raise FamilyError(f"{path}: sliding-window attention is not supported for a bidirectional denoiser")
    return Qwen2Config(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"], num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg.get("num_key_value_heads", cfg["num_attention_heads"]),
        hidden_act=cfg.get("hidden_act", "silu"), max_position_embeddings=cfg.get("max_position_embeddings", 32768),
        rms_norm_eps=cfg.get("rms_norm_eps", 1e-6), rope_theta=float(cfg.get("rope_theta", 10000.0)),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)), attention_dropout=0.0,
        use_sliding_window=False, use_cache=False,
        bos_token_id=cfg.get("bos_token_id"), eos_token_id=cfg.get("eos_token_id"), pad_token_id=cfg.get("pad_token_id"),
    )


def llada_llama_config(cfg: dict) -> LlamaConfig:
    """A stock LlamaConfig for a LLaDA config.json; refuses LLaDA options Llama cannot express."""
    unsupported = {
        "block_type": ("llama",), "layer_norm_type": ("rms",), "activation_type": ("silu",), "rope": (True,),
        "alibi": (False, None), "attention_layer_norm": (False, None), "input_emb_norm": (False, None),
        "scale_logits": (False, None), "block_group_size": (1, None), "include_bias": (False, None),
    }
    for key, ok in unsupported.items():
        if cfg.get(key) not in ok:
            raise FamilyError(f"LLaDA config {key}={cfg.get(key)!r} cannot be mapped onto Llama (supported: {ok})")
    d_model, n_heads = cfg["d_model"], cfg["n_heads"]
    n_kv = cfg.get("n_kv_heads") or n_heads
    if cfg.get("multi_query_attention"):
        n_kv = 1
    vocab = cfg.get("embedding_size") or cfg["vocab_size"]
    return LlamaConfig(
        vocab_size=vocab, hidden_size=d_model, num_hidden_layers=cfg["n_layers"], num_attention_heads=n_heads,
        num_key_value_heads=n_kv, head_dim=d_model // n_heads,
        intermediate_size=cfg.get("mlp_hidden_size") or cfg.get("mlp_ratio", 4) * d_model,
        hidden_act="silu", max_position_embeddings=cfg.get("max_sequence_length", 4096),
        rms_norm_eps=cfg.get("rms_norm_eps", 1e-5), rope_theta=float(cfg.get("rope_theta", 10000.0)),
        attention_bias=bool(cfg.get("include_qkv_bias")), mlp_bias=False,
        tie_word_embeddings=bool(cfg.get("weight_tying")), attention_dropout=0.0, use_cache=False,
        bos_token_id=None, eos_token_id=cfg.get("eos_token_id"), pad_token_id=cfg.get("pad_token_id"),
    )


def diffusion_config(path: Path, family: str, cfg: dict, tokenizer: Tokenizer,
                     hf_config: PretrainedConfig) -> DiffusionConfig:
    """DiffusionConfig with special ids read from config.json / the tokenizer (fallbacks documented above)."""
    vocab = {**_token_table(path), **tokenizer.hf.get_vocab(with_added_tokens=True)}
    mask_id = _find_special(path, cfg, "mask", vocab)
    if mask_id is None:
        mask_id = FALLBACK_IDS.get(family, {}).get("mask")
        if mask_id is None:
            raise FamilyError(f"{path}: cannot find the mask token in config.json or the tokenizer; "
                              "write a diffusion_config.json with mask_id next to the checkpoint")
        log.warning("%s: mask token not named by the checkpoint, using documented default %d", path, mask_id)
    expand_id = None
    if family == "dreamon":
        expand_id = _find_special(path, cfg, "expand", vocab)
        if expand_id is None:
            expand_id = FALLBACK_IDS["dreamon"]["expand"]
            log.warning("%s: expand token not named by the checkpoint, using documented default %d", path, expand_id)
    tok_cfg = {**read_json(path / "special_tokens_map.json"), **read_json(path / "tokenizer_config.json")}
    eos_id = _first_int(cfg.get("eos_token_id")) if cfg.get("eos_token_id") is not None else _named_id(tok_cfg, "eos_token", vocab)
    pad_id = _named_id(tok_cfg, "pad_token", vocab)
    if pad_id is None:
        pad_id = _first_int(cfg.get("pad_token_id")) if cfg.get("pad_token_id") is not None else eos_id
    bos_id = _named_id(tok_cfg, "bos_token", vocab)
    dlm_pad = next((vocab[t] for t in TOKEN_NAMES["dlm_pad"] if t in vocab), None)
    # The token the model writes into canvas slots past the end of the span: DiffuCoder's <|dlm_pad|>,
    # otherwise EOS (Dream and LLaDA pad answers with EOS; DreamOn deletes a slot that predicts EOS).
    delete_id = dlm_pad if dlm_pad is not None else eos_id
    ids = {"mask_id": mask_id, "expand_id": expand_id, "delete_id": delete_id, "eof_id": eos_id,
           "pad_id": pad_id, "bos_id": bos_id}
    for name, value in ids.items():
        if value is not None and not 0 <= value < hf_config.vocab_size:
            raise FamilyError(f"{path}: {name}={value} outside the vocabulary (size {hf_config.vocab_size})")
    max_pos = min(int(getattr(hf_config, "max_position_embeddings", 2048)), TRAINED_CONTEXT[family])
    return DiffusionConfig(
        family=family, shift=SHIFT[family], max_position=max_pos, **ids,
        extra={"source": "families.map_checkpoint", "architectures": cfg.get("architectures"),
               "model_type": cfg.get("model_type"), "stock_class": type(hf_config).__name__.replace("Config", "ForCausalLM")},
    )


# ---- tokenizer -------------------------------------------------------------------------------


def load_tokenizer(path: str | Path) -> Tokenizer:
    """``tokenizer.json`` when shipped, else a Qwen2 byte-level BPE rebuilt from vocab.json + merges.txt."""
    path = Path(path)
    if (path / TOKENIZER_FILE).is_file():
        return Tokenizer.from_dir(path)
    if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        return Tokenizer(qwen2_tokenizer_from_files(path))
    raise FamilyError(f"{path}: no tokenizer.json and no vocab.json + merges.txt")


def qwen2_tokenizer_from_files(path: Path) -> HFTokenizer:
    """The Qwen2 fast tokenizer (NFC, Qwen2 split regex, byte-level BPE) plus the added tokens, at their ids."""
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = HFTokenizer(BPE.from_file(str(path / "vocab.json"), str(path / "merges.txt")))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    added = read_json(path / "tokenizer_config.json").get("added_tokens_decoder", {})
    for idx, spec in sorted(((int(k), v) for k, v in added.items()), key=lambda kv: kv[0]):
        have = tok.token_to_id(spec["content"])
        if have is None:
            if idx != tok.get_vocab_size(with_added_tokens=True):
                raise FamilyError(f"{path}: added token {spec['content']!r} has id {idx}, but the next free id is "
                                  f"{tok.get_vocab_size(with_added_tokens=True)} (gaps are not supported)")
            tok.add_special_tokens([AddedToken(spec["content"], special=bool(spec.get("special", True)),
                                               normalized=False)])
        elif have != idx:
            raise FamilyError(f"{path}: token {spec['content']!r} is {have} in vocab.json but {idx} in tokenizer_config.json")
    return tok


def _token_table(path: Path) -> dict[str, int]:
    """Special/added tokens named in the checkpoint's tokenizer files (cheap: no BPE model is built)."""
    table: dict[str, int] = {}
    for idx, spec in read_json(path / "tokenizer_config.json").get("added_tokens_decoder", {}).items():
        table[spec["content"]] = int(idx)
    for spec in read_json(path / TOKENIZER_FILE).get("added_tokens", []):
        table[spec["content"]] = int(spec["id"])
    for name, idx in read_json(path / "added_tokens.json").items():
        table[name] = int(idx)
    return table


def _token_text(value) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _named_id(tok_cfg: dict, key: str, vocab: dict[str, int]) -> int | None:
    text = _token_text(tok_cfg.get(key))
    return vocab.get(text) if text else None


def _first_int(value) -> int | None:
    if isinstance(value, list):
        return int(value[0]) if value else None
    return int(value) if value is not None else None


def _find_special(path: Path, cfg: dict, kind: str, vocab: dict[str, int]) -> int | None:
    """A special id from config.json (``<kind>_token_id``), the tokenizer config's ``<kind>_token``, or its name."""
    if cfg.get(f"{kind}_token_id") is not None:
        return int(cfg[f"{kind}_token_id"])
    tok_cfg = {**read_json(path / "special_tokens_map.json"), **read_json(path / "tokenizer_config.json")}
    named = _named_id(tok_cfg, f"{kind}_token", vocab)
    if named is not None:
        return named
    return next((vocab[t] for t in TOKEN_NAMES.get(kind, ()) if t in vocab), None)


def _require(cfg: dict, path: Path, *keys: str) -> None:
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise FamilyError(f"{path}/config.json: missing {missing}")


# ---- memory ----------------------------------------------------------------------------------


def count_parameters(path: str | Path) -> int:
    """Number of weights in the directory's safetensors files, from their headers (nothing is loaded)."""
    total = 0
    for file in sorted(Path(path).glob("*.safetensors")):
        if file.name == "train_state.safetensors":
            continue
        with open(file, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    return total


def bytes_per_param(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def estimate_bytes(n_params: int, dtype: torch.dtype, overhead: float = 0.15, fixed: int = GiB // 2) -> int:
    """Weights at ``dtype`` plus a margin for activations, the KV cache and the runtime (15% + 0.5 GiB)."""
    return int(n_params * bytes_per_param(dtype) * (1 + overhead)) + fixed


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device``: CUDA free memory, or MemAvailable from /proc/meminfo; None if unknown."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            text = Path("/proc/meminfo").read_text()
        except OSError:
            return None
        m = re.search(r"^MemAvailable:\s+(\d+)\s+kB", text, re.M)
        return int(m.group(1)) * 1024 if m else None
    return None


def check_fits(n_params: int, dtype: torch.dtype, device: torch.device, what: str = "model",
               available: int | None = None) -> int:
    """Raise InsufficientMemoryError before loading a model that cannot fit; returns the estimate in bytes."""
    need = estimate_bytes(n_params, dtype)
    have = available_bytes(device) if available is None else available
    if os.environ.get("INFILL_SKIP_MEMORY_CHECK") == "1" or have is None:
        return need
    if device.type == "cuda" and available is None:  # weights pass through host memory on the way
        host = available_bytes(torch.device("cpu"))
        staged = n_params * bytes_per_param(dtype)
        if host is not None and staged > host:
            raise InsufficientMemoryError(
                f"{what}: loading stages {staged / GiB:.1f} GiB of weights in host memory, but only "
                f"{host / GiB:.1f} GiB is available (set INFILL_SKIP_MEMORY_CHECK=1 to try anyway)")
    if need > have:
        hint = ("use a GPU with more free memory or a smaller model" if device.type == "cuda"
                else "free memory, use a GPU (bf16 halves it) or pick a smaller model such as fredzzp/open-dcoder-0.5B")
        raise InsufficientMemoryError(
            f"{what} needs about {need / GiB:.1f} GiB on {device} ({n_params / 1e9:.2f}B parameters in "
            f"{str(dtype).removeprefix('torch.')}), but only {have / GiB:.1f} GiB is available: {hint} "
            "(set INFILL_SKIP_MEMORY_CHECK=1 to try anyway)")
    return need
