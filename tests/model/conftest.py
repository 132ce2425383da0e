"""Fixtures for model tests: a tiny tokenizer and a tiny random checkpoint made in the test."""

from __future__ import annotations

import pytest
import torch

from model.config import SPECIAL_TOKENS, DiffusionConfig
from model.modeling import embedded_qwen2_config, save_denoiser
from model.tokenizer import Tokenizer, train_tokenizer

SAMPLE_CODE = [
    "def add(a, b):\n    return a + b\n",
    "for i in range(10):\n    print(i)\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    "function add(a, b) {\n  return a + b;\n}\n",
    "int main(void) {\n    return 0;\n}\n",
] * 20


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Tokenizer:
    return Tokenizer(train_tokenizer(SAMPLE_CODE, vocab_size=320, min_frequency=1))


def tiny_config(tok: Tokenizer) -> DiffusionConfig:
    ids = [tok.token_id(t) for t in SPECIAL_TOKENS]
    return DiffusionConfig(pad_id=ids[0], mask_id=ids[1], delete_id=ids[2], eof_id=ids[3], max_position=256)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_tokenizer):
    """A random-weight embedded checkpoint directory (the shipped format, fp32)."""
    torch.manual_seed(0)
    from transformers import Qwen2ForCausalLM

    model = Qwen2ForCausalLM(embedded_qwen2_config(tiny_tokenizer.vocab_size, hidden=32, layers=2, heads=2,
                                                   kv_heads=1, intermediate=64, max_position=256))
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_denoiser(model, tiny_tokenizer, tiny_config(tiny_tokenizer), path)
    return path
