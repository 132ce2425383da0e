"""`infill prepare`: token arrays (files separated by the eof id) and syntax-aligned spans."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from model.training import prepare
from model.config import DiffusionConfig
from model.tokenizer import Tokenizer

from .conftest import SAMPLE_CODE

FILES = [("a.py", "python", SAMPLE_CODE[0] + SAMPLE_CODE[2]), ("b.py", "python", SAMPLE_CODE[1]),
         ("c.js", "javascript", SAMPLE_CODE[3])]


@pytest.fixture()
def corpus(tmp_path, tiny_tokenizer):
    root = tmp_path / "corpus"
    root.mkdir()
    for split, files in (("train", FILES), ("heldout", FILES[:1])):
        with gzip.open(root / f"{split}.jsonl.gz", "wt", encoding="utf-8") as fh:
            for path, language, text in files:
                fh.write(json.dumps({"path": path, "language": language, "text": text}) + "\n")
    (tmp_path / "tok").mkdir()
    tiny_tokenizer.save(tmp_path / "tok")
    return root


def test_prepare_writes_one_eof_separated_stream_and_spans_inside_files(tmp_path, corpus):
    out = tmp_path / "prepared"
    assert prepare.main(["--corpus", str(corpus), "--out", str(out), "--tokenizer", str(tmp_path / "tok")]) == 0
    tok = Tokenizer.from_dir(out)
    cfg = DiffusionConfig.load(out)
    tokens = np.load(out / "train.tokens.npy")
    spans = np.load(out / "train.spans.npy")
    assert tokens.dtype == prepare.TOKEN_DTYPE
    # the stream is each file's tokens followed by the eof id, in corpus order
    ends = np.flatnonzero(tokens == cfg.eof_id)
    assert len(ends) == len(FILES)
    pieces = np.split(tokens, ends + 1)[:-1]
    assert [tok.decode(p[:-1].tolist()) for p in pieces] == [text for _, _, text in FILES]
    # every span lies inside one file and covers whole tokens of it
    assert len(spans) > 0
    starts = np.concatenate([[0], ends[:-1] + 1])
    for a, b in spans:
        f = np.searchsorted(ends, a)
        assert starts[f] <= a < b <= ends[f]
    stats = json.loads((out / "prepare_stats.json").read_text())
    assert stats["heldout"]["tokens"] == len(np.load(out / "heldout.tokens.npy"))


def test_prepare_refuses_a_vocabulary_its_token_arrays_cannot_hold(tmp_path, corpus, monkeypatch, capsys):
    monkeypatch.setattr(prepare, "TOKEN_ID_LIMIT", 100)  # the tiny tokenizer has 320 tokens
    with pytest.raises(SystemExit) as exc:
        prepare.main(["--corpus", str(corpus), "--out", str(tmp_path / "p"), "--tokenizer", str(tmp_path / "tok")])
    assert exc.value.code == 2
    assert "hold ids below 100" in capsys.readouterr().err
    assert not (tmp_path / "p" / "train.tokens.npy").exists()
