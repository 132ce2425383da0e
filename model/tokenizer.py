"""Byte-level BPE tokenizer: training with the ``tokenizers`` library and a small text wrapper.

The model and sampler see token ids only; text belongs here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from .config import SPECIAL_TOKENS

TOKENIZER_FILE = "tokenizer.json"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192, min_frequency: int = 2) -> HFTokenizer:
    """Train a byte-level BPE whose first ids are ``SPECIAL_TOKENS`` (so every byte string round-trips)."""
    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


class Tokenizer:
    """Text <-> ids for one checkpoint; any ``tokenizer.json`` (ours or a hub model's) works."""

    def __init__(self, hf: HFTokenizer):
        self.hf = hf
        self.hf.no_padding()
        self.hf.no_truncation()

    @classmethod
    def from_dir(cls, directory: str | Path) -> "Tokenizer":
        path = Path(directory, TOKENIZER_FILE)
        if not path.is_file():
            raise FileNotFoundError(f"no {TOKENIZER_FILE} in {directory}")
        return cls(HFTokenizer.from_file(str(path)))

    def save(self, directory: str | Path) -> None:
        self.hf.save(str(Path(directory, TOKENIZER_FILE)))

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    def token_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and their character offsets into ``text``."""
        enc = self.hf.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=False)

    def iter_pieces(self, ids: Iterable[int]) -> Iterator[str]:
        for i in ids:
            yield self.decode([i])
