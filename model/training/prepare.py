"""Turn a corpus into training arrays: tokenizer, flat token stream, and syntax-aligned spans.

Outputs (in ``--out``): ``tokenizer.json``; ``<split>.tokens.npy`` (uint16 ids, files separated by
the eof id); ``<split>.spans.npy`` (int64 rows ``start, end`` of token ranges that cover whole
syntax nodes or rest-of-line, used for span-shaped masks like real use).
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import time
from pathlib import Path

import numpy as np

from infill import syntax

from ..config import SPECIAL_TOKENS, DiffusionConfig
from .corpus import read_corpus
from ..tokenizer import Tokenizer, train_tokenizer

MAX_SPAN_TOKENS = 96
TOKEN_DTYPE = np.uint16  # token arrays: half the memory of int32, so every vocabulary must fit
TOKEN_ID_LIMIT = int(np.iinfo(TOKEN_DTYPE).max) + 1


def syntax_spans(text: str, language: str, offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token ranges [start, end) covering exactly one named syntax node or the rest of a line."""
    data = text.encode("utf-8")
    if len(data) != len(text):  # offsets are characters; keep it simple and exact for ASCII files
        char_of_byte = None
    else:
        char_of_byte = True
    starts = [a for a, _ in offsets]
    ends = [b for _, b in offsets]
    out: list[tuple[int, int]] = []
    try:
        tree = syntax.parse(data, language)
    except Exception:  # noqa: BLE001 - a grammar failure only loses spans for this file
        tree = None
    if tree is not None and char_of_byte:
        for _type, sb, eb in syntax.iter_named_nodes(tree):
            if eb - sb < 1:
                continue
            i = bisect.bisect_left(starts, sb)
            j = bisect.bisect_left(ends, eb)
            if i < len(starts) and j < len(ends) and starts[i] == sb and ends[j] == eb and 0 < j + 1 - i <= MAX_SPAN_TOKENS:
                out.append((i, j + 1))
    # rest-of-line spans: from a token boundary inside a line to the end of that line
    line_end = 0
    for k, (a, b) in enumerate(offsets):
        if a >= line_end:
            nl = text.find("\n", a)
            line_end = len(text) if nl < 0 else nl
        if text[a:b].strip() and a < line_end:
            j = bisect.bisect_left(ends, line_end)
            if j < len(ends) and ends[j] == line_end and 0 < j + 1 - k <= MAX_SPAN_TOKENS and random.random() < 0.15:
                out.append((k, j + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.prepare", description=__doc__)
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--out", default="data/prepared")
    ap.add_argument("--tokenizer", default=None, help="reuse an existing tokenizer.json directory")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--tokenizer-sample-mb", type=float, default=24.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    random.seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.tokenizer:
        tok = Tokenizer.from_dir(args.tokenizer)
    else:
        rng = random.Random(args.seed)
        budget = args.tokenizer_sample_mb * 1e6
        files = [f.text for f in read_corpus(Path(args.corpus, "train.jsonl.gz"))]
        rng.shuffle(files)
        sample, used = [], 0
        for t in files:
            if used > budget:
                break
            sample.append(t)
            used += len(t)
        tok = Tokenizer(train_tokenizer(sample, vocab_size=args.vocab_size))
        print(f"tokenizer: trained on {used / 1e6:.1f} MB in {time.time() - t0:.0f}s")
    if tok.vocab_size > TOKEN_ID_LIMIT:
        ap.error(f"the tokenizer has {tok.vocab_size:,} tokens; token arrays ({np.dtype(TOKEN_DTYPE).name}) "
                 f"hold ids below {TOKEN_ID_LIMIT:,}")
    tok.save(out)
    cfg = DiffusionConfig(
        mask_id=tok.token_id(SPECIAL_TOKENS[1]), delete_id=tok.token_id(SPECIAL_TOKENS[2]),
        eof_id=tok.token_id(SPECIAL_TOKENS[3]), pad_id=tok.token_id(SPECIAL_TOKENS[0]))
    cfg.save(out)
    stats = {}
    for split in ("train", "heldout"):
        ids_all: list[np.ndarray] = []
        spans_all: list[np.ndarray] = []
        pos = 0
        langs: dict[str, int] = {}
        for f in read_corpus(Path(args.corpus, f"{split}.jsonl.gz")):
            ids, offsets = tok.encode_with_offsets(f.text)
            if not ids:
                continue
            spans = syntax_spans(f.text, f.language, offsets)
            ids_all.append(np.asarray(ids + [cfg.eof_id], dtype=TOKEN_DTYPE))
            if spans:
                spans_all.append(np.asarray(spans, dtype=np.int64) + pos)
            pos += len(ids) + 1
            langs[f.language] = langs.get(f.language, 0) + len(ids)
        tokens = np.concatenate(ids_all)
        spans = np.concatenate(spans_all) if spans_all else np.zeros((0, 2), np.int64)
        np.save(out / f"{split}.tokens.npy", tokens)
        np.save(out / f"{split}.spans.npy", spans)
        stats[split] = {"tokens": int(tokens.size), "spans": int(len(spans)), "languages": langs}
        print(f"{split}: {tokens.size:,} tokens, {len(spans):,} spans ({time.time() - t0:.0f}s)")
    (out / "prepare_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
