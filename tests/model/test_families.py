"""Hub diffusion checkpoints load through ``load_denoiser`` as stock classes, with the right numbers.

Each test builds a tiny random-weight checkpoint with the published layout of its family (config keys,
weight names, tokenizer files), loads it through the public path and compares the logits with a
plain-torch forward written from that family's own weight names. Nothing is downloaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import AddedToken, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from model import families
from model.config import DIFFUSION_CONFIG
from model.modeling import CheckpointError, load_denoiser

torch.set_num_threads(1)

VOCAB = 288  # config vocab (padded past the tokenizer's last id, as the real checkpoints are)
HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 32, 2, 4, 2, 64
BYTES = sorted(pre_tokenizers.ByteLevel.alphabet())  # 256 byte-level symbols -> ids 0..255
DREAM_ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|beginoftext|>", "<|mask|>"]  # ids 256..
LLADA_ADDED = ["<|startoftext|>", "<|endoftext|>", "<|eot_id|>", "<|mdm_mask|>"]


# ---- tiny checkpoints ------------------------------------------------------------------------


def rand_weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight") or ".ln_f." in name or "_norm." in name:
            out[name] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[name] = 0.2 * torch.randn(shape, generator=g)
    return out


def qwen2_shapes(tied: bool = False) -> dict[str, tuple[int, ...]]:
    """Weight names and shapes of DreamModel / Qwen2 (``model.layers.N.self_attn.q_proj`` ...)."""
    hd = HIDDEN // HEADS
    s = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "model.norm.weight": (HIDDEN,)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        s |= {p + "input_layernorm.weight": (HIDDEN,), p + "post_attention_layernorm.weight": (HIDDEN,),
              p + "self_attn.q_proj.weight": (HEADS * hd, HIDDEN), p + "self_attn.q_proj.bias": (HEADS * hd,),
              p + "self_attn.k_proj.weight": (KV_HEADS * hd, HIDDEN), p + "self_attn.k_proj.bias": (KV_HEADS * hd,),
              p + "self_attn.v_proj.weight": (KV_HEADS * hd, HIDDEN), p + "self_attn.v_proj.bias": (KV_HEADS * hd,),
              p + "self_attn.o_proj.weight": (HIDDEN, HEADS * hd), p + "mlp.gate_proj.weight": (FFN, HIDDEN),
              p + "mlp.up_proj.weight": (FFN, HIDDEN), p + "mlp.down_proj.weight": (HIDDEN, FFN)}
    if not tied:
        s["lm_head.weight"] = (VOCAB, HIDDEN)
    return s


def llada_shapes() -> dict[str, tuple[int, ...]]:
    """Weight names and shapes of LLaDAModelLM (``model.transformer.blocks.N.q_proj`` ...)."""
    s = {"model.transformer.wte.weight": (VOCAB, HIDDEN), "model.transformer.ln_f.weight": (HIDDEN,),
         "model.transformer.ff_out.weight": (VOCAB, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.transformer.blocks.{i}."
        s |= {p + "attn_norm.weight": (HIDDEN,), p + "ff_norm.weight": (HIDDEN,),
              p + "q_proj.weight": (HIDDEN, HIDDEN), p + "k_proj.weight": (HIDDEN, HIDDEN),
              p + "v_proj.weight": (HIDDEN, HIDDEN), p + "attn_out.weight": (HIDDEN, HIDDEN),
              p + "ff_proj.weight": (FFN, HIDDEN), p + "up_proj.weight": (FFN, HIDDEN),
              p + "ff_out.weight": (HIDDEN, FFN)}
    return s


def write_qwen2_vocab_files(d: Path, added: list[str]) -> None:
    """Dream's tokenizer layout: vocab.json + merges.txt + tokenizer_config.json (no tokenizer.json)."""
    (d / "vocab.json").write_text(json.dumps({ch: i for i, ch in enumerate(BYTES)}))
    (d / "merges.txt").write_text("#version: 0.2\n")
    decoder = {str(256 + i): {"content": t, "special": True, "lstrip": False, "rstrip": False,
                              "normalized": False, "single_word": False} for i, t in enumerate(added)}
    (d / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": decoder, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "bos_token": "<|beginoftext|>", "mask_token": "<|mask|>" if "<|mask|>" in added else None,
        "tokenizer_class": "DreamTokenizer", "auto_map": {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]}}))


def write_tokenizer_json(d: Path, added: list[str]) -> None:
    tok = HFTokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(BYTES)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in added])
    tok.save(str(d / "tokenizer.json"))


def dream_config(**extra) -> dict:
    """Keys of Dream-org/Dream-v0-*-7B's config.json (custom DreamModel, Qwen2 field names)."""
    return {"architectures": ["DreamModel"], "model_type": "Dream",
            "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
            "attention_dropout": 0.0, "bos_token_id": 256, "eos_token_id": 256, "pad_token_id": 256,
            "hidden_act": "silu", "hidden_size": HIDDEN, "initializer_range": 0.02, "intermediate_size": FFN,
            "mask_token_id": 260, "max_position_embeddings": 128, "max_window_layers": LAYERS,
            "num_attention_heads": HEADS, "num_hidden_layers": LAYERS, "num_key_value_heads": KV_HEADS,
            "rms_norm_eps": 1e-6, "rope_scaling": None, "rope_theta": 1000000.0, "sliding_window": None,
            "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.46.2",
            "use_cache": False, "use_sliding_window": False, "vocab_size": VOCAB, **extra}


def make_dream(d: Path, *, dreamon: bool = False, sharded: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    d.mkdir(parents=True)
    added = DREAM_ADDED + (["<|expand|>"] if dreamon else [])
    (d / "config.json").write_text(json.dumps(dream_config()))
    write_qwen2_vocab_files(d, added)
    (d / "modeling_dream.py").write_text("raise RuntimeError('custom code must never run')\n")
    (d / "generation_config.json").write_text(json.dumps({  # Dream's: diffusion keys GenerationConfig lacks
        "bos_token_id": 256, "eos_token_id": 256, "pad_token_id": 256, "mask_token_id": 260, "alg": "origin",
        "alg_temp": None, "eps": 0.001, "steps": 512, "temperature": 0.2, "top_p": 0.95, "max_new_tokens": 512}))
    weights = rand_weights(qwen2_shapes(), seed)
    if sharded:  # the published 7B layout: model-0000k-of-0000n.safetensors + index
        names = sorted(weights)
        parts = [names[: len(names) // 2], names[len(names) // 2:]]
        index = {"metadata": {"total_size": 0}, "weight_map": {}}
        for k, part in enumerate(parts, 1):
            fname = f"model-0000{k}-of-00002.safetensors"
            save_file({n: weights[n] for n in part}, str(d / fname), metadata={"format": "pt"})
            index["weight_map"] |= {n: fname for n in part}
        (d / "model.safetensors.index.json").write_text(json.dumps(index))
    else:
        save_file(weights, str(d / "model.safetensors"), metadata={"format": "pt"})
    return weights


def make_llada(d: Path, seed: int = 1, **config_overrides) -> dict[str, torch.Tensor]:
    """Keys of GSAI-ML/LLaDA-8B-*'s config.json and LLaDA's own weight names."""
    d.mkdir(parents=True)
    cfg = {"activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
           "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
           "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM"},
           "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": HIDDEN,
           "embedding_dropout": 0.0, "embedding_size": VOCAB, "eos_token_id": 257, "flash_attention": False,
           "include_bias": False, "include_qkv_bias": False, "init_device": "meta", "init_fn": "mitchell",
           "init_std": 0.02, "input_emb_norm": False, "layer_norm_type": "rms", "layer_norm_with_affine": True,
           "mask_token_id": 259, "max_sequence_length": 128, "mlp_hidden_size": FFN, "mlp_ratio": 4,
           "model_type": "llada", "multi_query_attention": None, "n_heads": HEADS, "n_kv_heads": HEADS,
           "n_layers": LAYERS, "pad_token_id": 257, "precision": "amp_bf16", "residual_dropout": 0.0,
           "rms_norm_eps": 1e-05, "rope": True, "rope_full_precision": True, "rope_theta": 500000.0,
           "scale_logits": False, "use_cache": False, "vocab_size": VOCAB, "weight_tying": False}
    cfg.update(config_overrides)
    (d / "config.json").write_text(json.dumps(cfg))
    write_tokenizer_json(d, LLADA_ADDED)
    (d / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}))
    weights = rand_weights(llada_shapes(), seed)
    save_file(weights, str(d / "model.safetensors"), metadata={"format": "pt"})
    return weights


def make_open_dcoder(d: Path, seed: int = 2) -> dict[str, torch.Tensor]:
    """A Qwen2ForCausalLM config (tied embeddings, as Qwen2.5-Coder-0.5B) whose tokenizer has [MASK]."""
    d.mkdir(parents=True)
    cfg = dream_config(architectures=["Qwen2ForCausalLM"], model_type="qwen2", tie_word_embeddings=True)
    del cfg["auto_map"], cfg["mask_token_id"]
    (d / "config.json").write_text(json.dumps(cfg))
    write_tokenizer_json(d, ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "[MASK]"])
    (d / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>", "mask_token": "[MASK]"}))
    weights = rand_weights(qwen2_shapes(tied=True), seed)
    save_file(weights, str(d / "model.safetensors"), metadata={"format": "pt"})
    return weights


# ---- plain-torch reference forwards (bidirectional, written from each family's weight names) ----


def rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate-half RoPE over the last dim of x (B, H, T, hd) at positions 0..T-1."""
    hd, T = x.shape[-1], x.shape[-2]
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()  # (T, hd)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def split_heads(q, k, v, heads: int, kv_heads: int):
    """q (B,T,H*hd), k/v (B,T,KV*hd) -> (B,H,T,hd) each, k/v repeated for grouped-query attention."""
    B, T, _ = q.shape
    hd = q.shape[-1] // heads
    q = q.view(B, T, heads, hd).transpose(1, 2)
    k = k.view(B, T, kv_heads, hd).transpose(1, 2).repeat_interleave(heads // kv_heads, 1)
    v = v.view(B, T, kv_heads, hd).transpose(1, 2).repeat_interleave(heads // kv_heads, 1)
    return q, k, v


def softmax_attend(q, k, v) -> torch.Tensor:
    """Full (no causal mask) softmax attention -> (B, T, H*hd)."""
    B, H, T, hd = q.shape
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1)  # (B, H, T, T)
    return (att @ v).transpose(1, 2).reshape(B, T, H * hd)


def dream_reference(w: dict[str, torch.Tensor], ids: torch.Tensor, tied: bool = False) -> torch.Tensor:
    x = w["model.embed_tokens.weight"][ids]  # (B, T, D)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        h = rms(x, w[p + "input_layernorm.weight"], 1e-6)
        lin = lambda n: F.linear(h, w[p + f"self_attn.{n}.weight"], w[p + f"self_attn.{n}.bias"])  # noqa: E731
        q, k, v = split_heads(lin("q_proj"), lin("k_proj"), lin("v_proj"), HEADS, KV_HEADS)
        x = x + F.linear(softmax_attend(rope(q, 1e6), rope(k, 1e6), v), w[p + "self_attn.o_proj.weight"])
        h = rms(x, w[p + "post_attention_layernorm.weight"], 1e-6)
        gate, up = F.linear(h, w[p + "mlp.gate_proj.weight"]), F.linear(h, w[p + "mlp.up_proj.weight"])
        x = x + F.linear(F.silu(gate) * up, w[p + "mlp.down_proj.weight"])
    x = rms(x, w["model.norm.weight"], 1e-6)
    return F.linear(x, w["model.embed_tokens.weight" if tied else "lm_head.weight"])  # (B, T, V)


def llada_reference(w: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """LLaDALlamaBlock: x + attn_out(attn(attn_norm x)); x + ff_out(act(ff_proj h) * up_proj h)."""
    t = "model.transformer."
    x = w[t + "wte.weight"][ids]
    for i in range(LAYERS):
        p = f"{t}blocks.{i}."
        h = rms(x, w[p + "attn_norm.weight"], 1e-5)
        q, k, v = split_heads(F.linear(h, w[p + "q_proj.weight"]), F.linear(h, w[p + "k_proj.weight"]),
                            F.linear(h, w[p + "v_proj.weight"]), HEADS, HEADS)
        x = x + F.linear(softmax_attend(rope(q, 5e5), rope(k, 5e5), v), w[p + "attn_out.weight"])
        h = rms(x, w[p + "ff_norm.weight"], 1e-5)
        x = x + F.linear(F.silu(F.linear(h, w[p + "ff_proj.weight"])) * F.linear(h, w[p + "up_proj.weight"]),
                         w[p + "ff_out.weight"])
    return F.linear(rms(x, w[t + "ln_f.weight"], 1e-5), w[t + "ff_out.weight"])


def full_logits(den, ids: torch.Tensor) -> torch.Tensor:
    """The loaded model run on ids with the bidirectional 4D mask the sampler uses."""
    from model.modeling import full_mask

    B, T = ids.shape
    with torch.no_grad():
        return den.model(input_ids=ids, attention_mask=full_mask(B, T, T, den.device)).logits  # (B, T, V)


IDS = torch.tensor([[5, 17, 260, 260, 260, 99, 42, 7], [200, 3, 260, 260, 260, 1, 250, 8]])


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("ckpts")
    return {"dream": (root / "Dream-Coder", make_dream(root / "Dream-Coder", sharded=True)),
            "dreamon": (root / "DreamOn-v0-7B", make_dream(root / "DreamOn-v0-7B", dreamon=True, seed=3)),
            "llada": (root / "LLaDA", make_llada(root / "LLaDA")),
            "open-dcoder": (root / "open-dcoder", make_open_dcoder(root / "open-dcoder"))}


# ---- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("family,stock", [("dream", "Qwen2ForCausalLM"), ("dreamon", "Qwen2ForCausalLM"),
                                          ("open-dcoder", "Qwen2ForCausalLM"), ("llada", "LlamaForCausalLM")])
def test_loads_as_stock_class_with_reference_logits(ckpts, family, stock):
    path, weights = ckpts[family]
    den = load_denoiser(path, device="cpu", dtype="float32")
    assert type(den.model).__name__ == stock
    assert den.config.family == family
    assert not (path / DIFFUSION_CONFIG).exists()  # the hub directory is never written to
    ref = {"llada": lambda: llada_reference(weights, IDS),
           "open-dcoder": lambda: dream_reference(weights, IDS, tied=True)}.get(family, lambda: dream_reference(weights, IDS))()
    got = full_logits(den, IDS)
    assert got.shape == (2, IDS.shape[1], VOCAB)
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["dream", "llada", "open-dcoder"])
def test_attention_is_bidirectional(ckpts, family):
    den = load_denoiser(ckpts[family][0], device="cpu")
    changed = IDS.clone()
    changed[:, -1] = 123
    a, b = full_logits(den, IDS), full_logits(den, changed)
    assert not torch.allclose(a[:, 0], b[:, 0])  # the last token reaches the first position


def test_special_ids_come_from_the_checkpoint(ckpts):
    dream = load_denoiser(ckpts["dream"][0], device="cpu").config
    assert (dream.mask_id, dream.expand_id, dream.eof_id, dream.delete_id, dream.bos_id) == (260, None, 256, 256, 259)
    assert dream.shift is True
    dreamon = load_denoiser(ckpts["dreamon"][0], device="cpu")
    assert dreamon.config.expand_id == 261 == dreamon.tokenizer.token_id("<|expand|>")
    assert dreamon.config.delete_id == dreamon.tokenizer.token_id("<|endoftext|>")
    llada = load_denoiser(ckpts["llada"][0], device="cpu")
    assert llada.config.mask_id == 259 == llada.tokenizer.token_id("<|mdm_mask|>")
    assert (llada.config.shift, llada.config.bos_id, llada.config.eof_id) == (False, 256, 257)
    odc = load_denoiser(ckpts["open-dcoder"][0], device="cpu").config
    assert odc.mask_id == 259 and odc.shift is True


def test_mask_id_read_from_tokenizer_when_config_lacks_it(tmp_path):
    d = tmp_path / "llada"
    make_llada(d)
    cfg = json.loads((d / "config.json").read_text())
    del cfg["mask_token_id"]
    (d / "config.json").write_text(json.dumps(cfg))
    assert families.map_checkpoint(d).diffusion.mask_id == 259  # found by name: <|mdm_mask|>


def test_rebuilt_qwen2_tokenizer_round_trips(ckpts):
    tok = load_denoiser(ckpts["dream"][0], device="cpu").tokenizer
    text = "def f(x):\n    return x  # é ∑\n"
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode("<|mask|>") == [260]  # added tokens keep their published ids


@pytest.mark.parametrize("family,shift", [("dream", True), ("llada", False)])
def test_canvas_logits_follow_the_shift_convention(ckpts, family, shift):
    """The sampler's canvas logits equal the full forward at i-1 (shifted) or i (unshifted)."""
    cache = pytest.importorskip("model.cache")
    den = load_denoiser(ckpts[family][0], device="cpu")
    assert den.config.shift is shift
    prefix, suffix, L = [5, 17, 33], [99, 42, 7, 8], 4
    full_ids = torch.tensor([prefix + [den.config.mask_id] * L + suffix])
    ref = full_logits(den, full_ids)[0]  # (T, V)
    want = ref[len(prefix) - 1: len(prefix) - 1 + L] if shift else ref[len(prefix): len(prefix) + L]
    for use_cache in (False, True):
        cm = cache.CanvasModel(den.model, [cache.Row(prefix, suffix, L)], den.config.mask_id, den.config.pad_id,
                               den.config.shift, den.config.eof_id, use_cache=use_cache)
        got = cm(cm.initial_canvas(den.config.mask_id))[0]  # (L, V)
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)


def test_pickle_weights_are_refused(tmp_path):
    d = tmp_path / "dream"
    make_dream(d)
    (d / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        load_denoiser(d, device="cpu")


def test_memory_check_fails_before_loading(tmp_path, monkeypatch):
    d = tmp_path / "dream"
    weights = make_dream(d)
    n = sum(t.numel() for t in weights.values())
    assert families.count_parameters(d) == n
    assert families.estimate_bytes(n, torch.bfloat16) < families.estimate_bytes(n, torch.float32)
    monkeypatch.setattr(families, "available_bytes", lambda device: 1024)

    def must_not_load(*a, **k):
        raise AssertionError("weights were loaded despite the memory check")

    monkeypatch.setattr("model.modeling.AutoModelForCausalLM.from_pretrained", must_not_load)
    with pytest.raises(families.InsufficientMemoryError, match=r"GiB on cpu .* only 0.0 GiB is available"):
        load_denoiser(d, device="cpu")


def test_memory_check_numbers():
    n = 7_615_616_512  # Dream-7B
    need = families.check_fits(n, torch.bfloat16, torch.device("cpu"), available=10**12)
    assert 16 * families.GiB < need < 18 * families.GiB
    with pytest.raises(families.InsufficientMemoryError, match="7.62B parameters in float32"):
        families.check_fits(n, torch.float32, torch.device("cpu"), available=16 * families.GiB)


def test_unknown_or_unmappable_checkpoints_are_refused(tmp_path):
    d = tmp_path / "ar"
    make_open_dcoder(d)
    (d / "tokenizer_config.json").write_text("{}")
    write_tokenizer_json(d, ["<|endoftext|>"])
    with pytest.raises(families.FamilyError, match="autoregressive"):
        load_denoiser(d, device="cpu")
    bad = tmp_path / "llada-gemma-norm"
    make_llada(bad, layer_norm_type="gemma_rms")
    with pytest.raises(families.FamilyError, match="layer_norm_type"):
        load_denoiser(bad, device="cpu")
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"], "model_type": "bert"}))
    save_file({"x": torch.zeros(1)}, str(other / "model.safetensors"))
    with pytest.raises(families.FamilyError, match="unknown model family"):
        load_denoiser(other, device="cpu")


def test_renamed_weights_that_do_not_match_are_an_error(tmp_path):
    d = tmp_path / "llada"
    weights = make_llada(d)
    weights["model.transformer.blocks.0.extra_proj.weight"] = weights.pop("model.transformer.blocks.0.up_proj.weight")
    save_file(weights, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match="up_proj"):
        load_denoiser(d, device="cpu")


def test_hub_id_loads_from_the_local_cache(tmp_path, monkeypatch):
    """``load_denoiser("owner/name")`` finds the snapshot in the HF cache; a missing id says how to get it."""
    import huggingface_hub.constants

    repo = tmp_path / "models--Dream-org--Dream-Coder-v0-Instruct-7B"
    commit = "a" * 40
    weights = make_dream(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    den = load_denoiser("Dream-org/Dream-Coder-v0-Instruct-7B", device="cpu", dtype="float32")
    assert den.config.family == "dream"
    torch.testing.assert_close(full_logits(den, IDS), dream_reference(weights, IDS), atol=2e-5, rtol=1e-4)
    from model.hub import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="hf download apple/DiffuCoder-7B-Instruct"):
        load_denoiser("apple/DiffuCoder-7B-Instruct", device="cpu")


def test_cuda_load_also_checks_host_memory(monkeypatch):
    free = {"cuda": 80 * families.GiB, "cpu": 4 * families.GiB}
    monkeypatch.setattr(families, "available_bytes", lambda device: free[device.type])
    with pytest.raises(families.InsufficientMemoryError, match="host memory"):
        families.check_fits(7_615_616_512, torch.bfloat16, torch.device("cuda"))
    free["cpu"] = 64 * families.GiB
    assert families.check_fits(7_615_616_512, torch.bfloat16, torch.device("cuda")) > 0


def test_published_shapes_map_to_published_sizes():
    """The real Dream-7B and LLaDA-8B config values give the published parameter counts (meta device)."""
    from transformers import LlamaForCausalLM, Qwen2ForCausalLM

    dream = dream_config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064, max_position_embeddings=131072,
                         mask_token_id=151666, bos_token_id=151643, eos_token_id=151643, pad_token_id=151643)
    llada = {"d_model": 4096, "n_heads": 32, "n_kv_heads": 32, "n_layers": 32, "mlp_hidden_size": 12288,
             "vocab_size": 126464, "embedding_size": 126464, "max_sequence_length": 4096, "rope_theta": 500000.0,
             "rms_norm_eps": 1e-5, "block_type": "llama", "layer_norm_type": "rms", "activation_type": "silu",
             "rope": True, "alibi": False, "include_bias": False, "include_qkv_bias": False,
             "weight_tying": False, "block_group_size": 1}
    with torch.device("meta"):
        q = Qwen2ForCausalLM(families.qwen2_config(dream, Path("Dream-v0-Base-7B")))
        ll = LlamaForCausalLM(families.llada_llama_config(llada))
    assert sum(p.numel() for p in q.parameters()) == 7_615_616_512  # "7.62B params" on the model card
    assert round(sum(p.numel() for p in ll.parameters()) / 1e9, 2) == 8.02
