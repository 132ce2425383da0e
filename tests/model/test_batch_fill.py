"""Batch fills (``model.batch_fill``, ``infill fill --jsonl``) with a tiny checkpoint made in the test,
and their scoring (``infill eval --score`` / ``--compare``)."""

import gzip
import json
import re

import pytest

from diffusion_infill import fill as fill_command
from model import batch_fill
from model.training.evaluate import humaneval_pass, load_humaneval, run_program


@pytest.fixture(autouse=True)
def torch_threads():
    """Leaves torch's thread count as the test found it (a fill sets it for the process)."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_batch_fill_writes_a_completion_per_good_record_and_names_bad_lines(tmp_path, tiny_checkpoint, capsys):
    src = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"task_id": "SingleLineInfilling/X/0", "prompt": "def f(a):\n", "suffix": "    return b\n"}),
        "[1, 2, 3]",
        json.dumps({"suffix": "no prompt"}),
        "{not json",
        json.dumps({"prompt": "x = ", "suffix": "\n", "language": "python", "task_id": "t4"}),
    ]
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    rc = fill_command.main(["--jsonl", str(src), "--out", str(out), "--model", str(tiny_checkpoint)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "line 2: expected a JSON object" in err
    assert "line 3: missing string field 'prompt'" in err
    assert "line 4: not valid JSON" in err
    # the summary names what the model ran on (dtype and threads, measured at load: both left at auto)
    assert re.search(r"2 completions written to .*; (float32|bfloat16)(?: \(\w+\))?, \d+ threads? \(", err), err
    recs = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r.get("task_id") for r in recs] == ["SingleLineInfilling/X/0", "t4"]
    assert all(isinstance(r["completion"], str) and r["model_calls"] >= 1 for r in recs)
    assert "\n" not in recs[0]["completion"].rstrip("\n")  # a single-line hole keeps one line
    # deterministic for given settings (left at auto, the dtype measured fastest may differ from run to run)
    fixed = ["--jsonl", str(src), "--model", str(tiny_checkpoint), "--dtype", "float32", "--threads", "1"]
    out2, out3 = tmp_path / "out2.jsonl", tmp_path / "out3.jsonl"
    fill_command.main([*fixed, "--out", str(out2)])
    fill_command.main([*fixed, "--out", str(out3)])
    assert out2.read_text() == out3.read_text() and len(out2.read_text().splitlines()) == 2
    assert "float32, 1 thread (as set)" in capsys.readouterr().err


def test_accepts_humaneval_infilling_files_as_they_are(tmp_path, tiny_checkpoint):
    import pathlib

    data = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "humaneval-infilling"
    recs = load_humaneval(data, "single-line", limit=3) if data.is_dir() else None
    if recs is None:
        import pytest

        pytest.skip("shared HumanEval-Infilling data not beside the repo")
    src = tmp_path / "he.jsonl.gz"
    with gzip.open(src, "wt") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")
    out = tmp_path / "he_out.jsonl"
    assert fill_command.main(["--jsonl", str(src), "--out", str(out), "--model", str(tiny_checkpoint)]) == 0
    done = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(done) == 3 and all("completion" in r for r in done)
    # the harness itself: the reference solution passes, an empty hole does not
    ref = [dict(r, completion=r["canonical_solution"]) for r in recs]
    assert humaneval_pass(ref) == 100.0
    assert humaneval_pass([dict(r, completion="") for r in recs]) < 100.0


def test_run_program_times_out():
    assert run_program("while True: pass\n", timeout=0.5) is False
    assert run_program("print(1)\n") is True


def test_finish_shapes():
    assert batch_fill.finish("    x = 1\n    y = 2", "line", "def f():\n", "    return x\n") == "    x = 1\n"
    assert batch_fill.finish("a + b", "free", "x = ", "\n") == "a + b"


def test_eval_score_mode_scores_a_filled_file_without_a_model(tmp_path, capsys):
    from model.training import evaluate

    rec = {"prompt": "def f(x):\n", "suffix": "    return y\n", "test": "def check(c):\n    assert c(1) == 2\n",
           "entry_point": "f"}
    path = tmp_path / "filled.jsonl"
    path.write_text(json.dumps(dict(rec, completion="    y = x + 1\n")) + "\n"
                    + json.dumps(dict(rec, completion="    y = x\n")) + "\n")
    assert evaluate.main(["--score", str(path)]) == 0
    assert "2 records, pass@1 50.00 %" in capsys.readouterr().out


def test_eval_compare_of_two_fill_files_pairs_pass_at_1(tmp_path, capsys):
    from model.training import evaluate

    rec = {"prompt": "def f(x):\n", "suffix": "    return y\n", "test": "def check(c):\n    assert c(1) == 2\n",
           "entry_point": "f", "canonical_solution": "    y = x + 1\n"}
    right, wrong = "    y = x + 1\n", "    y = x\n"
    files = {}
    for name, fills in (("a", [wrong, right, wrong, wrong]), ("b", [right, right, right, wrong])):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(dict(rec, task_id=f"T/{i}", completion=c)) + "\n"
                                       for i, c in enumerate(fills)))
    table = evaluate.compare(*(evaluate.read_results(files[k]) for k in "ab"))
    p = table["humaneval"]["pass"]
    assert (p["a"], p["b"], p["only_a"], p["only_b"]) == (25.0, 75.0, 0, 2)
    assert p["diff"] == 50.0 and p["standard_error"] == round((100 ** 2 * 4 / 12 / 4) ** 0.5, 2)  # diffs 100,0,100,0
    assert evaluate.main(["--compare", str(files["a"]), str(files["b"])]) == 0
    assert "pass@1 a 25.00 %, b 75.00 %, b-a +50.00 +/- 28.87 points (0 passed only by a, 2 only by b)" in \
        capsys.readouterr().out


def test_eval_compare_pairs_cases_and_reports_the_difference(tmp_path, capsys):
    from model.training import evaluate

    def result(model, sims, exact):
        cases = [{"shape": "single-line", "path": f"f{i}.py", "exact": e, "edit_similarity": s}
                 for i, (s, e) in enumerate(zip(sims, exact))]
        return {"model": model, "heldout_cases": cases}

    a = result("A", [10.0, 20.0, 30.0, 40.0], [False, True, False, False])
    b = result("B", [20.0, 30.0, 40.0, 50.0], [False, False, True, True])
    table = evaluate.compare(a, b)
    assert table["single-line"] == {"n": 4, "edit_similarity_diff": 10.0, "standard_error": 0.0,
                                    "exact_only_a": 1, "exact_only_b": 2}
    assert "all" not in table  # one shape: nothing to pool
    two = {"model": "A", "heldout_cases": a["heldout_cases"] + [dict(r, shape="expression") for r in a["heldout_cases"]]}
    two_b = {"model": "B", "heldout_cases": b["heldout_cases"] + [dict(r, shape="expression", edit_similarity=r["edit_similarity"] + 10)
                                                                  for r in b["heldout_cases"]]}
    pooled = evaluate.compare(two, two_b)["all"]  # every case: four differences of 10 and four of 20
    assert (pooled["n"], pooled["edit_similarity_diff"], pooled["exact_only_a"], pooled["exact_only_b"]) == (8, 15.0, 2, 4)
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert evaluate.main(["--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    assert "single-line" in capsys.readouterr().out
    # with the outputs kept (newer --out files): median fill lengths beside the reference's
    for r, out in zip(a["heldout_cases"], ["ab", "abcd", "abcdef", "x"]):
        r.update(output=out, reference_chars=3)
    for r, out in zip(b["heldout_cases"], ["a" * 10, "a" * 20, "a" * 30, "a" * 40]):
        r.update(output=out, reference_chars=3)
    assert evaluate.compare(a, b)["single-line"]["median_chars"] == {"reference": 3, "a": 3, "b": 25}
    assert evaluate.compare(a, b)["single-line"]["identical"] == 0.0
    (tmp_path / "a2.json").write_text(json.dumps(a))
    (tmp_path / "b2.json").write_text(json.dumps(b))
    assert evaluate.main(["--compare", str(tmp_path / "a2.json"), str(tmp_path / "b2.json")]) == 0
    printed = capsys.readouterr().out
    assert "3 / 3 / 25" in printed and printed.rstrip().endswith("0.0")
    b["heldout_cases"][3]["output"] = "x"  # one of the four outputs the same as a's
    assert evaluate.compare(a, b)["single-line"]["identical"] == 25.0
    # other cases, or a file without per-case results: a clear error, not a comparison
    other = result("C", [1.0, 2.0, 3.0, 4.0], [False] * 4)
    other["heldout_cases"][0]["path"] = "elsewhere.py"
    (tmp_path / "c.json").write_text(json.dumps(other))
    assert evaluate.main(["--compare", str(tmp_path / "a.json"), str(tmp_path / "c.json")]) == 2
    (tmp_path / "d.json").write_text(json.dumps({"model": "D"}))
    assert evaluate.main(["--compare", str(tmp_path / "a.json"), str(tmp_path / "d.json")]) == 2
    assert "per-case results" in capsys.readouterr().err


def test_score_heldout_records_every_case_for_comparisons(tiny_checkpoint):
    from model.training.evaluate import Case, score_heldout
    from model.text_denoiser import TextDenoiser

    cases = [Case("single-line", "def f(a):\n    return ", "\n", "a + 1", "python", "x.py"),
             Case("expression", "y = ", "\n", "max(a, b)", "python", "y.py")]
    records: list[dict] = []
    per = score_heldout(TextDenoiser(tiny_checkpoint), cases, records=records)
    assert [(r["shape"], r["path"]) for r in records] == [("single-line", "x.py"), ("expression", "y.py")]
    assert all(0.0 <= r["edit_similarity"] <= 100.0 and isinstance(r["exact"], bool) for r in records)
    assert [r["reference_chars"] for r in records] == [5, 9] and all(isinstance(r["output"], str) for r in records)
    assert all(r["exact"] == (r["output"] == ref) for r, ref in zip(records, ("a + 1", "max(a, b)")))
    assert per["single-line"]["n"] == per["expression"]["n"] == 1


def _python_file(i: int) -> str:
    body = "\n".join(f"    value_{j} = compute_{i}(argument_{j}, other_{j})" for j in range(6))
    return f"def function_{i}(argument):\n{body}\n    return value_0 + value_1\n\n\nresult_{i} = function_{i}(3)\n"


def test_heldout_cases_can_leave_out_another_corpus_s_files(tmp_path):
    from model.training.evaluate import heldout_cases, heldout_paths

    def write(name, ids):
        d = tmp_path / name
        d.mkdir()
        with gzip.open(d / "heldout.jsonl.gz", "wt") as fh:
            for i in ids:
                fh.write(json.dumps({"path": f"f{i}.py", "language": "python", "text": _python_file(i)}) + "\n")
        return d

    big, small = write("big", range(8)), write("small", range(0, 8, 2))
    everything = heldout_cases(big, per_shape=50)
    assert heldout_paths(small) == {f"f{i}.py" for i in range(0, 8, 2)}
    dev = heldout_cases(big, per_shape=50, exclude=heldout_paths(small))
    assert {c.path for c in everything} == {f"f{i}.py" for i in range(8)}
    assert {c.path for c in dev} == {f"f{i}.py" for i in range(1, 8, 2)}
    assert dev and {c.path for c in heldout_cases(small, per_shape=50)}.isdisjoint(c.path for c in dev)
    with pytest.raises(FileNotFoundError, match="infill corpus --out"):
        heldout_paths(tmp_path / "missing")


def test_whole_line_cases_are_code_lines_of_function_bodies_and_the_engine_gets_an_empty_line(tmp_path):
    from infill import syntax
    from model.training.evaluate import case_span, heldout_cases

    d = tmp_path / "corpus"
    d.mkdir()
    text = _python_file(0).replace("    return", '    """A docstring line."""\n    # a comment\n    return')
    with gzip.open(d / "heldout.jsonl.gz", "wt") as fh:
        for i in range(6):
            fh.write(json.dumps({"path": f"f{i}.py", "language": "python", "text": text}) + "\n")
    cases = [c for c in heldout_cases(d, per_shape=50) if c.shape == "whole-line"]
    assert len(cases) == 12  # two per file
    for c in cases:
        assert c.prefix + c.reference + c.suffix == text and c.reference.endswith("\n")
        line = c.reference.strip()
        assert line.startswith(("value_", "return")), line  # not the header, docstring, comment or module code
        doc, span = case_span(c)
        assert doc[span.start:span.end] == "\n" and doc[:span.start] == c.prefix
        assert span.kind == "line" and not span.multiline
        assert syntax.parse(doc.encode(), "python").root_node.has_error is False
    again = [c for c in heldout_cases(d, per_shape=50) if c.shape == "whole-line"]
    assert again == cases  # drawn from each file's own stream: the same cases every time


def test_batch_holes_get_the_engine_s_stop_bias_for_their_shape():
    from infill.canvas import CanvasConfig
    from infill.types import FillResult
    from model.training.evaluate import case_stop_bias

    seen = []

    class Recorder:
        tokenizer = None

        def fill(self, reqs):
            seen.extend(reqs)
            return [FillResult("x", 1) for _ in reqs]

    class Tok:
        def encode(self, text):
            return list(text)

    Recorder.tokenizer = Tok()
    recs = [{"task_id": "SingleLineInfilling/A/0", "prompt": "a", "suffix": "b", "canonical_solution": "xyz"},
            {"task_id": "MultiLineInfilling/A/0", "prompt": "a", "suffix": "b", "canonical_solution": "xyz"},
            {"task_id": "RandomSpanInfilling/A/0", "prompt": "a", "suffix": "b", "canonical_solution": "xyz"}]
    c = CanvasConfig()
    batch_fill.fill_records(Recorder(), recs, batch_fill.BatchOptions(via="raw"))
    assert [r.stop_bias for r in seen] == [c.line_stop_bias, c.block_stop_bias, 0.0]
    seen.clear()
    batch_fill.fill_records(Recorder(), recs, batch_fill.BatchOptions(oracle_length=True))
    assert [r.stop_bias for r in seen] == [0.0] * 3 and [r.canvas_tokens for r in seen] == [3] * 3
    seen.clear()
    batch_fill.fill_records(Recorder(), recs, batch_fill.BatchOptions(via="raw", stop_bias=-1.5))
    assert [r.stop_bias for r in seen] == [-1.5] * 3
    with pytest.raises(ValueError, match="stop_bias"):  # the engine sets each span's bias itself
        batch_fill.fill_records(Recorder(), recs, batch_fill.BatchOptions(stop_bias=-1.5))
    assert (case_stop_bias("single-line"), case_stop_bias("multi-line"), case_stop_bias("expression")) == (
        c.line_stop_bias, c.block_stop_bias, c.expression_stop_bias)


def test_by_confidence_reports_what_each_floor_keeps():
    from model.training.evaluate import by_confidence

    records = [{"shape": "single-line", "confidence": c, "edit_similarity": e, "exact": e == 100}
               for c, e in ((0.9, 100.0), (0.6, 80.0), (0.3, 40.0), (0.1, 0.0))]
    records.append({"shape": "multi-line", "confidence": 0.5, "edit_similarity": 10.0, "exact": False})
    out = by_confidence(records, floors=(0.0, 0.5))
    single = out["single-line"]
    assert single["n"] == 4 and single["rank_correlation"] == 1.0  # confidence orders them exactly
    assert single["floors"] == [{"floor": 0.0, "kept_pct": 100.0, "edit_similarity": 55.0, "exact": 1},
                                {"floor": 0.5, "kept_pct": 50.0, "edit_similarity": 90.0, "exact": 1}]
    assert out["multi-line"]["rank_correlation"] == 0.0  # one case: no correlation to speak of


def test_eval_score_mode_reads_abstention_from_confidence(tmp_path, capsys):
    from model.training import evaluate

    # the hole's line is not needed (blank passes) in the first task and needed in the second
    spare = {"prompt": "def f(x):\n", "suffix": "    return x + 1\n", "test": "def check(c):\n    assert c(1) == 2\n",
             "entry_point": "f"}
    needed = {"prompt": "def g(x):\n", "suffix": "    return y\n", "test": "def check(c):\n    assert c(1) == 2\n",
              "entry_point": "g"}
    recs = [dict(spare, completion="    x = 0\n", confidence=0.1),  # wrong, unsure: blank would pass
            dict(needed, completion="    y = x + 1\n", confidence=0.6)]  # right, sure
    path = tmp_path / "filled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "score.json"
    assert evaluate.main(["--score", str(path), "--out", str(out)]) == 0
    table = {row["floor"]: row for row in json.loads(out.read_text())["abstention"]}
    assert table[0.0] == {"floor": 0.0, "kept_pct": 100.0, "pass@1": 50.0}
    assert table[0.3] == {"floor": 0.3, "kept_pct": 50.0, "pass@1": 100.0}  # the unsure one left blank passes
    assert table[None]["pass@1"] == 50.0  # all blank: only the spare line passes
    assert "floor 0.3  kept  50.0 %  pass@1 100.00 %" in capsys.readouterr().out


def test_eval_scores_and_compares_fill_files_against_the_canonical_solutions(tmp_path, capsys):
    from model.training import evaluate

    task = {"prompt": "def f(x):\n", "suffix": "    return y\n", "test": "def check(c):\n    assert c(1) == 2\n",
            "entry_point": "f", "canonical_solution": "    y = x + 1\n"}
    a = [dict(task, task_id="T/0", completion="    y = x + 1\n"), dict(task, task_id="T/1", completion="    y = 1\n")]
    b = [dict(task, task_id="T/0", completion="    y = x + 2\n"), dict(task, task_id="T/1", completion="    y = x + 1  \n")]
    for name, recs in (("a", a), ("b", b)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert evaluate.main(["--score", str(tmp_path / "a.jsonl"), "--out", str(tmp_path / "s.json")]) == 0
    scored = json.loads((tmp_path / "s.json").read_text())
    assert scored["pass@1"] == 50.0 and scored["exact_match"] == 50.0  # trailing blanks are not a difference
    assert "exact match 50.00 %" in capsys.readouterr().out
    cases = evaluate.fill_cases(b)
    assert [c["exact"] for c in cases] == [False, True] and cases[1]["edit_similarity"] == 100.0
    table = evaluate.compare(evaluate.read_results(tmp_path / "a.jsonl"), evaluate.read_results(tmp_path / "b.jsonl"))
    assert table["humaneval"]["n"] == 2 and (table["humaneval"]["exact_only_a"], table["humaneval"]["exact_only_b"]) == (1, 1)
    assert evaluate.main(["--compare", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]) == 0
    assert "humaneval" in capsys.readouterr().out
    # other tasks, or records without a canonical solution: a clear error
    (tmp_path / "c.jsonl").write_text(json.dumps(dict(a[0], task_id="T/9")) + "\n" + json.dumps(a[1]) + "\n")
    assert evaluate.main(["--compare", str(tmp_path / "a.jsonl"), str(tmp_path / "c.jsonl")]) == 2
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "canonical_solution"}) + "\n"
                                              for r in a))
    assert evaluate.main(["--compare", str(tmp_path / "a.jsonl"), str(tmp_path / "d.jsonl")]) == 2
    assert "canonical_solution" in capsys.readouterr().err
