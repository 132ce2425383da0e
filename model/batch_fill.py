"""Fill-in-the-middle over records that carry their own prefix and suffix (JSON lines, evaluation sets).

A record has ``prompt`` (the text before the hole) and ``suffix`` (after it), optionally ``task_id``
and ``language``. The hole's shape (one line, whole lines, or a free span) comes from the caller or
from a HumanEval-Infilling task id and sets the canvas (``model.config.SHAPE_CANVAS``) and the stop
token's bias. Used by ``infill fill --jsonl``, ``infill eval`` and the benchmarks; no argument parsing.
``load_fill_model`` loads the model for ``infill fill`` the way the worker does (measured at load).
"""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass

from infill.types import FillRequest

from .config import SHAPE_CANVAS


@dataclass(frozen=True)
class ModelSettings:
    """What a loaded denoiser runs on and where each setting came from: ``"as set"`` (given),
    ``"measured"`` (chosen by the load-time measurement, ``model.calibrate``) or ``"default"``
    (not measured: a GPU, a model too large to time at load, or a measurement that failed)."""

    device: str
    dtype: str
    threads: int | None  # torch's CPU threads; None on a GPU
    dtype_from: str
    threads_from: str
    measure_ms: float | None = None  # the load-time measurement's time; None when nothing was timed


def load_fill_model(path=None, device: str = "auto", dtype: str = "auto", threads: int = 0, options=None):
    """A ``TextDenoiser`` for fills run from the command line. What is left at auto (``dtype``
    "auto", ``threads`` 0) is chosen by the worker's load-time measurement
    (``model.calibrate.load_calibrated``), what is given is kept; with both given nothing is timed.
    There is no latency budget here, so the measurement never sets a step budget: ``options``'
    sampler steps stay as given."""
    import math

    from .calibrate import CalibrationConfig, load_calibrated
    from .text_denoiser import TextDenoiser, default_model_path

    path = path or default_model_path()
    if dtype != "auto" and threads > 0:
        den = TextDenoiser(path, device=device, options=options, threads=threads, dtype=dtype)
        den.calibration = None
        return den
    return load_calibrated(path, device=device, dtype=dtype, threads=threads,
                           config=CalibrationConfig(budget_ms=math.inf), options=options)


def model_settings(den, dtype: str = "auto", threads: int = 0) -> ModelSettings:
    """The settings ``den`` (from ``load_fill_model``) runs on, given the ``dtype`` and ``threads``
    it was loaded with."""
    import torch

    cal = getattr(den, "calibration", None)
    timed = cal.timings if cal is not None else []
    dtype_timed = len({t["dtype"] for t in timed}) > 1  # one dtype timed (no bf16 instructions): nothing chosen
    threads_timed = cal is not None and len(cal.probes_ms) > 1
    return ModelSettings(
        device=str(den.device), dtype=str(den.dtype).removeprefix("torch."),
        threads=torch.get_num_threads() if den.device.type == "cpu" else None,
        dtype_from="as set" if dtype != "auto" else "measured" if dtype_timed else "default",
        threads_from="as set" if threads > 0 else "measured" if threads_timed else "default",
        measure_ms=cal.measure_ms if timed else None)


def shape_stop_bias(shape: str, canvas=None) -> float:
    """The stop token's bias for a hole shape, as the engine sets it for the matching span kind
    (``infill.canvas.stop_bias``); ``free`` (a random span, any length) keeps the model's odds.
    ``canvas``: an ``infill.canvas.CanvasConfig`` (default: its defaults)."""
    if canvas is None:
        from infill.canvas import CanvasConfig  # imported here: infill.canvas loads tree-sitter

        canvas = CanvasConfig()
    return {"line": canvas.line_stop_bias, "lines": canvas.block_stop_bias, "free": 0.0}[shape]


@dataclass
class BatchOptions:
    shape: str = "auto"  # auto | line | lines | free
    max_tokens: int | None = None  # canvas tokens; None: by shape (SHAPE_CANVAS)
    oracle_length: bool = False  # canvas = the record's canonical_solution length (labelled in the output)
    batch_size: int = 8
    stop_bias: float | None = None  # None: by shape (shape_stop_bias); 0 with the oracle length
    # "engine": each hole through ``infill.engine`` as the editor fills it (post-processing, syntax and
    # scope checks, self-correction, ranking, abstention; one record at a time); "raw": the denoiser
    # alone, records batched, the hole's shape setting the canvas (``SHAPE_CANVAS``).
    via: str = "engine"
    engine: object = None  # an ``infill.engine.EngineConfig`` for via="engine" (None: its defaults)
    # via="engine": fill as an automatic completion (min_confidence and the unknown-name drop apply);
    # False: each hole is asked for explicitly and gets the best candidate.
    automatic: bool = False


def record_shape(rec: dict, shape: str) -> str:
    """The hole's shape: given, or from a HumanEval-Infilling task id."""
    if shape != "auto":
        return shape
    tid = str(rec.get("task_id", ""))
    if tid.startswith("SingleLine"):
        return "line"
    if tid.startswith("MultiLine"):
        return "lines"
    return "free"


def finish(text: str, shape: str, prompt: str, suffix: str) -> str:
    """Shape the raw fill: a single-line hole keeps one line; whole-line holes end with a newline."""
    whole_lines = (not prompt or prompt.endswith("\n")) and (not suffix or suffix.startswith((" ", "\t", "\n")) or
                                                              prompt.endswith("\n"))
    if shape == "line":
        text = text.split("\n", 1)[0]
    if whole_lines and shape in ("line", "lines") and text and not text.endswith("\n"):
        text += "\n"
    return text


def read_jsonl(path: str) -> list[tuple[int, dict | None, str | None]]:
    """(line number, record or None, error or None) for each non-empty line."""
    opener = gzip.open if path.endswith(".gz") else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                out.append((n, None, f"line {n}: not valid JSON ({exc.msg})"))
                continue
            if not isinstance(rec, dict):
                out.append((n, None, f"line {n}: expected a JSON object, got {type(rec).__name__}"))
            elif not isinstance(rec.get("prompt"), str):
                out.append((n, None, f"line {n}: missing string field 'prompt'"))
            elif not isinstance(rec.get("suffix", ""), str):
                out.append((n, None, f"line {n}: field 'suffix' must be a string"))
            else:
                out.append((n, rec, None))
    return out


def editor_indent(prompt: str) -> str:
    """The indentation an editor puts the cursor at on a new line after ``prompt`` (which ends a
    line): the last code line's, one level deeper after a line ending in ``:`` or an opening
    bracket. The level is the file's step between indentations (4 spaces when it has none)."""
    lines = [ln for ln in prompt.split("\n") if ln.strip()]
    if not lines:
        return ""
    last = lines[-1]
    indent = last[: len(last) - len(last.lstrip(" \t"))]
    if last.rstrip().endswith((":", "{", "(", "[")):
        widths = sorted({len(ln) - len(ln.lstrip(" ")) for ln in lines if ln.startswith(" ")})
        steps = [b - a for a, b in zip([0] + widths, widths) if b > a]
        indent += "\t" if indent.startswith("\t") else " " * (min(steps) if steps else 4)
    return indent


def hole_span(rec: dict, shape: str):
    """The document and ``infill.spans.Span`` the engine fills for a record, as an editor user meets
    the hole: a hole of whole lines is an empty line (inserted between prompt and suffix) that the
    fill replaces, one line for ``line`` holes, lines starting at the editor's indentation
    (``editor_indent``) for ``lines``; any other hole is the insertion point between prompt and
    suffix (a single-line fill joining the code after it on its line)."""
    from infill.spans import Span

    prompt, suffix = rec["prompt"], rec.get("suffix", "")
    whole = not prompt or prompt.endswith("\n")
    if whole and shape in ("line", "lines"):
        text = prompt + "\n" + suffix
        start, end = len(prompt), len(prompt) + 1
        if shape == "line":
            return text, Span(start, end, "line", False, "")
        return text, Span(start, end, "region", True, editor_indent(prompt))
    text, at = prompt + suffix, len(prompt)
    line_end = suffix.split("\n", 1)[0]
    if shape == "line":
        return text, Span(at, at, "line", False, "", joins=bool(line_end.strip()))
    return text, Span(at, at, "region", True, editor_indent(prompt[: prompt.rfind("\n") + 1]))


def engine_fill(denoiser, text: str, span, language: str, config=None, automatic: bool = False) -> dict:
    """Fill ``span`` of ``text`` through ``infill.engine.fill_span``: ``completion`` (the edit's text,
    "" when the engine offers nothing), ``model_calls`` (forward passes, a batch's shared calls
    counted once), ``confidence`` and ``alternatives`` (the texts ranked after it, best first: what
    an editor cycles through)."""
    from infill import engine

    calls = CountingDenoiser(denoiser)
    sug = engine.fill_span(text, span, language, calls, config, automatic=automatic)
    return {"completion": "" if sug is None else sug.edit.text, "model_calls": calls.model_calls,
            "confidence": 0.0 if sug is None else round(sug.confidence, 4),
            "alternatives": [] if sug is None else [a.edit.text for a in sug.alternatives]}


def _engine_fill(denoiser, rec: dict, shape: str, config, automatic: bool = False) -> dict:
    text, span = hole_span(rec, shape)
    return {**rec, **engine_fill(denoiser, text, span, rec.get("language") or "python", config, automatic)}


class CountingDenoiser:
    """A denoiser seen through its fills: passes (batches sent), model calls (forward passes) and
    the seconds spent in them. Rows of one temperature run as one batch whose calls they share
    (``model.text_denoiser.TextDenoiser.fill``), so a batch counts its calls once, not per row."""

    def __init__(self, inner):
        self.inner = inner
        self.passes = 0
        self.model_calls = 0
        self.seconds = 0.0

    def fill(self, requests, cancel=None):
        started = time.perf_counter()
        try:
            results = self.inner.fill(requests, cancel)
        finally:
            self.seconds += time.perf_counter() - started
        batches: dict[object, int] = {}
        for req, res in zip(requests, results):
            batches[req.temperature] = max(batches.get(req.temperature, 0), res.model_calls)
        self.passes += len(batches)
        self.model_calls += sum(batches.values())
        return results

    def __getattr__(self, name):  # tokenizer, count_tokens, ...: the wrapped denoiser's
        return getattr(self.inner, name)


def fill_records(denoiser, records: list[dict], opts: BatchOptions) -> list[dict]:
    """Fill each record's hole; returns new records with ``completion`` (and ``model_calls`` and
    ``confidence``, the mean probability of the fill's tokens). ``opts.via`` says whether the engine
    fills them as the editor would (the default; not with the oracle length) or the denoiser alone."""
    if opts.via == "engine" and not opts.oracle_length:
        if opts.stop_bias is not None:
            raise ValueError("stop_bias applies to via='raw': the engine sets each span's bias (infill.canvas.stop_bias)")
        return [_engine_fill(denoiser, rec, record_shape(rec, opts.shape), opts.engine, opts.automatic)
                for rec in records]
    if opts.via not in ("engine", "raw"):
        raise ValueError(f"via must be 'engine' or 'raw', not {opts.via!r}")
    tok = denoiser.tokenizer
    reqs = []
    shapes = []
    for rec in records:
        shape = record_shape(rec, opts.shape)
        shapes.append(shape)
        if opts.oracle_length:
            canvas = max(1, len(tok.encode(rec.get("canonical_solution", ""))))
            bias = 0.0  # the canvas is the answer's length: nothing to end early
        else:
            canvas = opts.max_tokens or SHAPE_CANVAS[shape]
            bias = shape_stop_bias(shape)
        if opts.stop_bias is not None:
            bias = opts.stop_bias
        reqs.append(FillRequest(rec["prompt"], rec.get("suffix", ""), canvas, rec.get("language"), shape == "line",
                                stop_bias=bias))
    out = []
    for i in range(0, len(reqs), opts.batch_size):
        chunk = reqs[i:i + opts.batch_size]
        for j, res in enumerate(denoiser.fill(chunk)):
            rec = dict(records[i + j])
            rec["completion"] = finish(res.text, shapes[i + j], chunk[j].prefix, chunk[j].suffix)
            rec["model_calls"] = res.model_calls
            rec["confidence"] = round(res.confidence, 4)
            if opts.oracle_length:
                rec["oracle_length"] = True
            out.append(rec)
    return out
