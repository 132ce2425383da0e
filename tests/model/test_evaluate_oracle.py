"""``infill eval --oracle-length``: fills at the true span length beside the default ones, paired."""

import gzip
import json

import pytest

from model.training.evaluate import (ORACLE_STOP_BIAS, Case, main, mean_and_standard_error, oracle_canvas,
                                     oracle_gap, score_heldout)


def _record(shape, path, exact, sim, passed=None):
    r = {"shape": shape, "path": path, "exact": exact, "edit_similarity": sim}
    if passed is not None:
        r["passed"] = passed
    return r


def test_oracle_gap_pairs_each_metric_per_shape():
    default = [_record("single-line", "a.py", False, 20.0), _record("single-line", "b.py", True, 100.0),
               _record("single-line", "c.py", False, 40.0),
               _record("humaneval single-line", "t/0", False, 50.0, False),
               _record("humaneval single-line", "t/1", False, 60.0, True)]
    oracle = [_record("single-line", "a.py", True, 100.0), _record("single-line", "b.py", True, 100.0),
              _record("single-line", "c.py", False, 70.0),
              _record("humaneval single-line", "t/0", True, 100.0, True),
              _record("humaneval single-line", "t/1", False, 40.0, False)]
    table = oracle_gap(default, oracle)
    line = table["single-line"]
    assert line["n"] == 3 and "pass@1" not in line  # held-out cases have no tests
    diff, se = mean_and_standard_error([80.0, 0.0, 30.0])
    assert line["edit similarity"] == {"default": 53.33, "oracle": 90.0, "diff": round(diff, 2),
                                       "standard_error": round(se, 2)}
    assert line["exact match"]["default"] == 33.33 and line["exact match"]["oracle"] == 66.67
    assert line["exact match"]["diff"] == 33.33
    he = table["humaneval single-line"]
    assert he["n"] == 2
    assert he["pass@1"] == {"default": 50.0, "oracle": 50.0, "diff": 0.0, "standard_error": 100.0}
    with pytest.raises(ValueError, match="different cases"):
        oracle_gap(default, oracle[::-1])


class _Recording:
    """A real denoiser whose requests are kept for the test to read."""

    def __init__(self, den):
        self.den, self.tokenizer, self.requests, self.results = den, den.tokenizer, [], []

    def fill(self, reqs):
        self.requests += reqs
        out = self.den.fill(reqs)
        self.results += out
        return out


def test_oracle_length_canvas_is_the_reference_s_tokens_and_never_stops(tiny_checkpoint):
    from model.text_denoiser import TextDenoiser

    den = _Recording(TextDenoiser(tiny_checkpoint))
    # prefixes ending in ":" leave no token to heal, so the canvas is exactly the oracle's
    cases = [Case("multi-line", "def f(a):", "\n", "\n    b = a + 1\n    return b", "python", "x.py"),
             Case("multi-line", "class P:", "", "\n    def g(self):\n        return 0\n", "python", "y.py")]
    records: list[dict] = []
    per = score_heldout(den, cases, records=records, oracle_length=True)
    want = [len(den.tokenizer.encode(c.reference)) for c in cases]
    assert [r.canvas_tokens for r in den.requests] == want == [oracle_canvas(den.tokenizer, c.reference) for c in cases]
    assert all(r.stop_bias == ORACLE_STOP_BIAS for r in den.requests)
    # a random model still commits a token at every position: the stop is never chosen
    assert [res.tokens for res in den.results] == want
    assert per["multi-line"]["n"] == 2 and [r["path"] for r in records] == ["x.py", "y.py"]
    assert oracle_canvas(den.tokenizer, "") == 1


def test_eval_oracle_length_prints_held_out_and_humaneval_gaps(tmp_path, tiny_checkpoint, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    body = "\n".join(f"    value_{j} = compute(argument_{j}, other_{j})" for j in range(6))
    with gzip.open(corpus / "heldout.jsonl.gz", "wt") as fh:
        for i in range(3):
            text = f"def function_{i}(argument):\n{body}\n    return value_0 + value_1\n\n\nresult_{i} = function_{i}(3)\n"
            fh.write(json.dumps({"path": f"f{i}.py", "language": "python", "text": text}) + "\n")
    he = tmp_path / "he"
    he.mkdir()
    tasks = [{"task_id": f"SingleLineInfilling/HumanEval/{i}/L0", "prompt": "def f(x):\n", "suffix": "    return y\n",
              "canonical_solution": "    y = x + 1\n", "test": "def check(c):\n    assert c(1) == 2\n",
              "entry_point": "f"} for i in range(2)]
    with gzip.open(he / "HumanEval-SingleLineInfilling.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps(t) + "\n" for t in tasks)
    out = tmp_path / "eval.json"
    assert main(["--model", str(tiny_checkpoint), "--corpus", str(corpus), "--per-shape", "2", "--humaneval", str(he),
                 "--sets", "single-line", "--oracle-length", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "oracle length (canvas = the reference's tokens, no stop) beside the default" in printed
    result = json.loads(out.read_text())
    gap = result["oracle_gap"]
    assert gap["humaneval single-line"]["n"] == 2 and set(gap["humaneval single-line"]) >= {"pass@1", "exact match"}
    held = [s for s in gap if not s.startswith("humaneval")]
    assert held and all(gap[s]["n"] == sum(c["shape"] == s for c in result["heldout_cases"]) for s in held)
    assert len(result["heldout_cases_oracle"]) == len(result["heldout_cases"])
    assert result["humaneval"]["single-line/oracle"]["setting"] == "oracle length"
    for row in gap.values():  # every printed figure is in the file
        for name in ("exact match", "edit similarity"):
            assert f"{row[name]['default']:.2f}" in printed and f"{row[name]['diff']:.2f}" in printed
