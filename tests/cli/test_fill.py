"""``infill fill``: argument checks before the model loads, the diff and JSON it prints, the model-call
accounting and its bound; fills with the tiny test checkpoint, and one with the embedded model."""

from __future__ import annotations

import ast
import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from diffusion_infill import fill
from infill.engine import EngineConfig, complete, rewrite
from infill.positions import LineIndex
from infill.types import FillResult
from model.batch_fill import ModelSettings

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^infill: (\S+) at (\S+)(?: \(([^)]*)\))?: (\d+) model calls? in (\d+) of at most (\d+) passes, "
                     r"(\d+\.\d\d) s in the model; (.+)$")
# the settings after the ";" with --dtype and --threads left at auto: chosen at load, or "(default)" where there
# was nothing to choose between (one dtype on a CPU without bf16 instructions, one thread count on one core)
AUTO_SETTINGS = re.compile(r"^(float32|bfloat16)(?: \(default\))?, \d+ threads? \((measured in \d+\.\d\d s|default)\)$")


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = fill.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(autouse=True)
def torch_threads():
    """Leaves torch's thread count as the test found it (a fill sets it for the process)."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("def f(a, b):\n    return max(a, )\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- checks before loading

@pytest.mark.parametrize("argv, message", [
    ([], "give FILE with --at LINE:COL or --select L1:C1-L2:C2, or --jsonl IN --out OUT"),
    (["{src}"], "give --at LINE:COL or --select L1:C1-L2:C2 with {src}"),
    (["{src}", "--at", "2"], "--at expects LINE:COL (1-based numbers), got '2'"),
    (["{src}", "--at", "0:1"], "--at 0:1: line 0 is outside the file (it has 2 lines; 3:1 is its end)"),
    (["{src}", "--at", "4:1"], "--at 4:1: line 4 is outside the file (it has 2 lines; 3:1 is its end)"),
    (["{src}", "--at", "2:21"], "--at 2:21: column 21 is outside line 2 (columns 1..20; 20 is the end of the line)"),
    (["{src}", "--select", "2:5-1:3"], "--select 2:5-1:3: the start 2:5 comes after the end 1:3"),
    (["{src}", "--select", "2:5-2:5"], "--select 2:5-2:5 is empty; use --at 2:5 to complete at a cursor"),
    (["{src}", "--select", "2:5"], "--select expects L1:C1-L2:C2, got '2:5'"),
    (["{src}", "--at", "1:1", "--language", "cobol"], "unknown --language 'cobol'; one of: python, javascript"),
    (["{src}", "--at", "1:1", "--shape", "line"], "--shape applies to --jsonl batches only"),
    (["--jsonl", "{src}", "--out", "o.jsonl", "--format", "json"], "--format applies to one hole in a FILE only"),
    (["--jsonl", "{src}"], "--jsonl needs --out OUT"),
    (["--jsonl", "{src}", "--out", "o.jsonl", "--max-tokens", "8"], "--max-tokens sets the canvas of --via raw"),
    (["--jsonl", "{src}", "--out", "o.jsonl", "--min-confidence", "2"], None),
    (["{missing}", "--at", "1:1"], "cannot read {missing}: No such file or directory"),
])
def test_bad_arguments_are_named_before_the_model_loads(capsys, source, tmp_path, argv, message):
    names = {"src": str(source), "missing": str(tmp_path / "missing.py")}
    argv = [a.format(**names) for a in argv]
    if message is None:  # refused by argparse itself
        with pytest.raises(SystemExit) as exc:
            fill.main([*argv, "--model", str(tmp_path / "no-such-model")])
        assert exc.value.code == 2 and "must be in [0, 1]" in capsys.readouterr().err
        return
    rc, out, err = run(capsys, *argv, "--model", str(tmp_path / "no-such-model"))  # never loaded
    assert rc == 2 and out == ""
    assert err.startswith("infill fill: " + message.format(**names))


def test_a_file_without_a_known_extension_asks_for_a_language(capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("x = 1\n")
    rc, _, err = run(capsys, str(notes), "--at", "1:5")
    assert rc == 2 and err == ("infill fill: no language for .txt; pass --language LANG (one of: python, javascript, "
                               "typescript, tsx, go, rust, java, c, cpp)\n")
    bare = tmp_path / "Makefile"
    bare.write_text("all:\n")
    assert "no language for Makefile (no file extension)" in run(capsys, str(bare), "--at", "1:1")[2]


def test_unreadable_files_are_refused_clearly(capsys, tmp_path):
    binary = tmp_path / "b.py"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert run(capsys, str(binary), "--at", "1:1")[2] == f"infill fill: cannot read {binary}: not UTF-8 text\n"
    nul = tmp_path / "n.py"
    nul.write_bytes(b"x = 1\x00\n")
    assert "it contains NUL bytes" in run(capsys, str(nul), "--at", "1:1")[2]


def test_positions_count_characters_and_keep_crlf_offsets(tmp_path):
    path = tmp_path / "w.py"
    path.write_bytes("é = 1\r\nx = \r\n".encode("utf-8"))
    args = fill.build_parser().parse_args([str(path), "--at", "2:5"])
    job = fill.check_hole(args)
    assert job.text == "é = 1\r\nx = \r\n" and job.start == job.end == 11  # \r\n counts two characters
    index = LineIndex(job.text)
    assert fill.position_of(index, job.start) == (2, 5)
    assert fill.offset_of(index, 1, 6, "--at", "1:6") == 5  # the end of line 1, before its \r\n
    with pytest.raises(fill.UsageError, match="columns 1..6"):
        fill.offset_of(index, 1, 7, "--at", "1:7")


# --------------------------------------------------------------------------- output

def test_the_diff_names_the_file_like_git_and_marks_a_missing_final_newline():
    d = fill.unified_diff("./src/a.py", "a\nb", "a\nc")
    assert d.splitlines() == ["--- a/src/a.py", "+++ b/src/a.py", "@@ -1,2 +1,2 @@", " a", "-b",
                              "\\ No newline at end of file", "+c", "\\ No newline at end of file"]
    assert fill.unified_diff("a.py", "same\n", "same\n") == ""


@pytest.mark.skipif(shutil.which("git") is None, reason="git applies the diff")
@pytest.mark.parametrize("old, new", [
    ("def f():\n    return 1\n", "def f():\n    return 2\n"),
    ("x = 1\r\ny = 2\r\n", "x = 1\r\ny = 3 + 4\r\n"),  # CRLF kept
    ("a = (\n", "a = (1, 2)\n"),
    ("last = 1", "last = 10"),  # no final newline
])
def test_git_applies_the_printed_diff(tmp_path, old, new):
    (tmp_path / "f.py").write_bytes(old.encode())
    patch = "infill: a summary line first\n" + fill.unified_diff("f.py", old, new)
    subprocess.run(["git", "apply", "-"], input=patch.encode(), cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "f.py").read_bytes() == new.encode()


class Fake:
    """A denoiser whose every row reports ``calls`` model calls, as a batch's rows share theirs."""

    tokenizer = None

    def __init__(self, text="* *", calls=3):
        self.text, self.calls, self.fills = text, calls, 0

    def fill(self, requests, cancel=None):
        self.fills += 1
        return [FillResult(self.text, self.calls, tokens=1, confidence=0.5) for _ in requests]


def test_a_batch_counts_its_model_calls_once():
    from infill.types import FillRequest

    counter = fill.CountingDenoiser(Fake(calls=4))
    counter.fill([FillRequest("a", "b", 8)] * 3)
    assert (counter.passes, counter.model_calls) == (1, 4)  # not 3 rows x 4
    counter.fill([FillRequest("a", "b", 8, temperature=0.8), FillRequest("a", "b", 8)])
    assert (counter.passes, counter.model_calls) == (3, 12)  # two temperatures: two batches
    assert counter.tokenizer is None  # the rest is the wrapped denoiser's


def test_engine_flags_set_the_engine_config_and_leave_the_rest_at_the_editor_defaults():
    parse = fill.build_parser().parse_args
    assert fill.engine_config(parse(["f.py", "--at", "1:1"])) == EngineConfig()
    got = fill.engine_config(parse(["f.py", "--at", "1:1", "--binding-rows", "0", "--scope", "off", "--candidates", "1"]))
    assert (got.binding_rows, got.scope_check, got.candidates) == (0, False, 1)
    assert got.correction_rounds == EngineConfig().correction_rounds
    with pytest.raises(SystemExit):
        parse(["f.py", "--at", "1:1", "--binding-rows", "-1"])


@pytest.mark.parametrize("config", [EngineConfig(), EngineConfig(correction_rounds=0, invalid_retry_candidates=0),
                                    EngineConfig(correction_rounds=5, invalid_retry_candidates=2)],
                         ids=["default", "no-extra-passes", "more-corrections"])
def test_the_pass_bound_is_what_a_fill_that_never_parses_uses(config):
    """A fill that stays broken runs every pass there is: exactly the bound, for a cursor and a selection."""
    config.repair_cuts = 0  # no cut of "* *" parses anyway; without the repair the passes are the fills
    config.scope_check = False  # the name check's rounds re-fill names, which "* *" has none of
    text = "def f(a):\n    x = \n    return x\n"
    fake = Fake()
    assert complete(text, text.index("x = ") + 4, "python", fake, config) is None
    assert fake.fills == config.max_fill_calls()
    fake = Fake()
    start = text.index("x = ")
    assert rewrite(text, start, start + 5, "python", fake, config) is None
    assert fake.fills == config.max_fill_calls(explicit_range=True)


# --------------------------------------------------------------------------- fills with a model

def test_json_output_has_offsets_positions_and_the_bounded_calls(capsys, source, tiny_checkpoint):
    rc, out, err = run(capsys, "--model", str(tiny_checkpoint), "--device", "cpu", str(source), "--at", "2:19",
                       "--format", "json", "--steps", "2", "--corrections", "0", "--retry-rows", "0",
                       "--scope", "off")
    answer = json.loads(out)
    assert err == "" and answer["max_passes"] == 1 and answer["passes"] <= 1 and answer["model_calls"] <= 2
    assert answer["model_ms"] >= 0.0
    if answer["edit"] is None:  # random weights: the engine may drop the fill
        assert rc == 1 and set(answer) == {"edit", "model_calls", "passes", "max_passes", "model_ms", "settings"}
        return
    assert rc == 0 and answer["kind"] == "args"
    e = answer["edit"]
    assert e["start"] == e["end"] == len("def f(a, b):\n    return max(a, ")
    assert (e["start_line"], e["start_column"], e["end_line"], e["end_column"]) == (2, 19, 2, 19)


def test_diff_output_is_a_summary_line_and_the_file_with_the_fill(capsys, source, tiny_checkpoint):
    before = source.read_text()
    rc, out, err = run(capsys, "--model", str(tiny_checkpoint), "--device", "cpu", str(source), "--select", "2:5-2:20")
    first, _, diff = out.partition("\n")
    m = SUMMARY.match(first)
    assert err == "" and source.read_text() == before  # the file itself is never changed
    if m is None:
        bound = EngineConfig().max_fill_calls(explicit_range=True)
        assert rc == 1 and re.match(rf"^infill: no suggestion at 2:5-2:20: \d+ model calls? in \d+ of at most {bound} passes",
                                    first) and diff == ""
        return
    assert rc == 0 and m.group(2) == "2:5-2:20" and int(m.group(5)) <= int(m.group(6)) == \
        EngineConfig().max_fill_calls(explicit_range=True)
    assert diff.startswith(f"--- a/{source.as_posix().lstrip('/')}\n+++ b/")


def test_the_embedded_model_fills_the_demo_and_prints_only_the_diff():
    """The README's Quick start: a diff on stdout and nothing on stderr (no warnings, no progress bars)."""
    r = subprocess.run([sys.executable, "-m", "diffusion_infill", "fill", "examples/demo.py", "--at", "13:18"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.stderr == "" and r.returncode == 0, r.stderr
    first, _, diff = r.stdout.partition("\n")
    m = SUMMARY.match(first)
    assert m and m.group(1) == "expression" and m.group(2) == "13:18", first
    assert int(m.group(5)) <= int(m.group(6)) and int(m.group(4)) >= 1
    assert m.group(3) is None or m.group(3).startswith(("confidence", "an editor would not show it")), first
    assert AUTO_SETTINGS.match(m.group(8)), first  # dtype and threads chosen at load, as the server does
    lines = diff.splitlines()
    assert lines[:2] == ["--- a/examples/demo.py", "+++ b/examples/demo.py"]
    removed = [l[1:] for l in lines[3:] if l.startswith("-")]
    added = [l[1:] for l in lines[3:] if l.startswith("+")]
    assert removed == ["        total += "] and len(added) == 1 and added[0].startswith("        total += ")
    demo = (ROOT / "examples" / "demo.py").read_text()
    ast.parse(demo.replace(removed[0], added[0]))  # the suggestion keeps the file valid Python


# --------------------------------------------------------------------------- dtype and threads

@pytest.mark.parametrize("s, text", [
    (ModelSettings("cpu", "float32", 1, "measured", "measured", 612.0), "float32, 1 thread (measured in 0.61 s)"),
    (ModelSettings("cpu", "bfloat16", 2, "as set", "as set"), "bfloat16, 2 threads (as set)"),
    (ModelSettings("cpu", "float32", 1, "measured", "as set", 400.0), "float32 (measured in 0.40 s), 1 thread (as set)"),
    (ModelSettings("cpu", "float32", 2, "default", "measured", 250.0), "float32 (default), 2 threads (measured in 0.25 s)"),
    (ModelSettings("cuda:0", "bfloat16", None, "default", "default"), "bfloat16 on cuda:0 (default)"),
])
def test_the_settings_say_what_the_model_ran_on_and_where_each_came_from(s, text):
    assert fill.settings_text(s) == text


def _pretend_bf16_cpu_with_two_cores(monkeypatch):
    """Both choices exist whatever CPU runs the test: two thread counts and two dtypes to time."""
    from model import calibrate

    real = calibrate.machine_info
    monkeypatch.setattr(calibrate, "machine_info", lambda: {**real(), "bf16": "avx512_bf16", "physical_cores": 2})


def _spy_on_the_calibrated_loader(monkeypatch) -> list[dict]:
    """Records each call of the worker's loader (``model.calibrate.load_calibrated``) and what it returned."""
    from model import calibrate

    calls, real = [], calibrate.load_calibrated

    def spy(*args, **kwargs):
        den = real(*args, **kwargs)
        bound = inspect.signature(real).bind(*args, **kwargs)
        bound.apply_defaults()
        calls.append({**bound.arguments, "den": den})
        return den
    monkeypatch.setattr(calibrate, "load_calibrated", spy)
    return calls


@pytest.mark.parametrize("threads, dtype", [("1", "bfloat16"), ("2", "float32")])
def test_given_threads_and_dtype_are_used_as_given_and_nothing_is_timed(capsys, source, tiny_checkpoint, monkeypatch,
                                                                        threads, dtype):
    import torch

    from model import calibrate

    def no_timing(*args, **kwargs):
        raise AssertionError("timed the model although --threads and --dtype were given")
    monkeypatch.setattr(calibrate, "measure", no_timing)
    monkeypatch.setattr(calibrate, "probe_threads", no_timing)
    calls = _spy_on_the_calibrated_loader(monkeypatch)
    rc, out, err = run(capsys, "--model", str(tiny_checkpoint), "--device", "cpu", str(source), "--at", "2:19",
                       "--format", "json", "--steps", "2", "--threads", threads, "--dtype", dtype)
    answer = json.loads(out)
    assert err == "" and calls == []
    assert answer["settings"] == {"device": "cpu", "dtype": dtype, "threads": int(threads), "dtype_from": "as set",
                                  "threads_from": "as set", "measure_ms": None}
    assert torch.get_num_threads() == int(threads)


def test_auto_settings_go_through_the_worker_s_calibrated_loader(capsys, source, tiny_checkpoint, monkeypatch):
    import math

    import torch

    from model.worker import WorkerConfig, load_text_denoiser

    _pretend_bf16_cpu_with_two_cores(monkeypatch)
    calls = _spy_on_the_calibrated_loader(monkeypatch)
    rc, out, err = run(capsys, "--model", str(tiny_checkpoint), "--device", "cpu", str(source), "--at", "2:19",
                       "--steps", "2")
    first = out.partition("\n")[0]
    m = SUMMARY.match(first) or re.match(r"^infill: no suggestion at 2:19: .*; (.+)$", first)
    assert err == "" and m, first
    (call,) = calls
    assert (call["dtype"], call["threads"]) == ("auto", 0)
    assert call["options"].sampler.steps == 2  # the steps given, which no latency budget replaces
    assert math.isinf(call["config"].budget_ms)
    cal = call["den"].calibration
    assert sorted(t["dtype"] for t in cal.timings) == ["bfloat16", "float32"] and set(cal.probes_ms) >= {"1", "2"}
    assert str(call["den"].dtype) == f"torch.{cal.dtype}" and torch.get_num_threads() == cal.threads
    plural = "s" * (cal.threads != 1)
    assert re.fullmatch(rf"{cal.dtype}, {cal.threads} thread{plural} \(measured in \d+\.\d\d s\)", m.groups()[-1]), first
    # the server's worker loads through the same function
    load_text_denoiser(WorkerConfig(model=str(tiny_checkpoint), device="cpu"))
    assert len(calls) == 2 and (calls[1]["dtype"], calls[1]["threads"]) == ("auto", 0)


def test_one_given_setting_is_kept_and_the_other_measured(capsys, source, tiny_checkpoint, monkeypatch):
    _pretend_bf16_cpu_with_two_cores(monkeypatch)
    calls = _spy_on_the_calibrated_loader(monkeypatch)
    rc, out, err = run(capsys, "--model", str(tiny_checkpoint), "--device", "cpu", str(source), "--at", "2:19",
                       "--format", "json", "--steps", "2", "--threads", "1")
    settings = json.loads(out)["settings"]
    (call,) = calls
    cal = call["den"].calibration
    assert (call["dtype"], call["threads"]) == ("auto", 1) and cal.probes_ms == {}  # no other thread count timed
    assert sorted((t["dtype"], t["threads"]) for t in cal.timings) == [("bfloat16", 1), ("float32", 1)]
    assert settings["threads"] == 1 and settings["threads_from"] == "as set"
    assert settings["dtype"] == cal.dtype and settings["dtype_from"] == "measured" and settings["measure_ms"] > 0


def test_the_summary_says_whether_an_editor_would_show_the_fill():
    from types import SimpleNamespace

    config = EngineConfig(min_confidence=0.7)
    sure = SimpleNamespace(confidence=0.9, unknown_names=())
    assert fill.editor_verdict(sure, config) == "confidence 0.90"
    unsure = SimpleNamespace(confidence=0.3, unknown_names=("self",))
    assert fill.editor_verdict(unsure, config) == ("an editor would not show it: confidence 0.30 is below "
                                                   "infill.minConfidence 0.7; nothing binds self there")
