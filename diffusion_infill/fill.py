"""infill fill: fill one hole in a file and print the change, or fill a batch of JSON lines.

One hole:
  infill fill FILE --at LINE:COL            complete at a cursor (what an editor's inline suggestion does)
  infill fill FILE --select L1:C1-L2:C2     rewrite a selection (end exclusive)
Lines and columns are 1-based; a column counts characters (not bytes) from the start of its line,
so --at 13:18 is before the 18th character of line 13, and LEN+1 is the end of a line of LEN
characters. The file is never changed.

Output (--format diff, the default): one summary line, then the change as a unified diff of FILE
(a/FILE and b/FILE, as git names them; `infill fill ... | git apply` applies it):

  infill: expression at 13:18: 18 model calls in 3 of at most 4 passes, 0.22 s in the model; float32, 1 thread (measured in 0.61 s)
  --- a/examples/demo.py
  +++ b/examples/demo.py
  @@ -10,7 +10,7 @@ ...

  "expression" is the syntax span that was filled. A model call is one forward pass of the network.
  A pass is one batch sent to the model: the first fill, then, for a fill that breaks the file's
  syntax, up to --corrections rounds re-filling only the broken part and one sampled retry of
  --retry-rows rows; a --select that offers nothing at first tries all of it once more.
  After the ";": the weights' dtype and the CPU threads the model ran on, and where each came from:
  "as set" (--dtype, --threads), "measured" (chosen at load as the server chooses, by timing the
  model on this machine: thread counts, and float32 against bf16 on a CPU with bf16 instructions;
  the measurement's time is shown) or "default" (nothing to choose between, or a GPU). -v logs the
  timings behind the choice.

Output (--format json): one JSON object,
  {"edit": {"start", "end", "text", "start_line", "start_column", "end_line", "end_column"},
   "kind", "model_calls", "passes", "max_passes", "model_ms", "corrected", "repaired", "retried",
   "settings": {"device", "dtype", "threads", "dtype_from", "threads_from", "measure_ms"}}
  start, end      0-based character offsets into FILE (line breaks count, \\r\\n as two): the edit
                  replaces FILE[start:end] with text
  *_line/_column  the same two positions as 1-based LINE:COL, as --at and --select take them
  kind            the syntax span filled; corrected: syntax correction changed the fill; repaired:
                  cut back to a prefix that parses; retried: taken from the sampled retry
  settings        what the summary line shows after its ";" (threads null on a GPU; measure_ms
                  null when nothing was timed)
  With no suggestion "edit" is null (and there is no kind).

Model calls: a pass makes at most --steps model calls (0: at most one per canvas token), so a fill
makes at most --steps x max_passes; e.g. --steps 4 --corrections 0 --retry-rows 0 makes at most 4
(8 with --select).

Exit status: 0 a suggestion was printed, 1 the model offered none, 2 bad arguments or input.

Batch: infill fill --jsonl IN --out OUT reads records with "prompt" (the text before the hole) and
"suffix" (after it), optional "task_id" and "language", and writes each record back with
"completion" ("" when nothing is offered), "model_calls" and "confidence". By default (--via engine)
each hole is filled as the editor fills it, and "alternatives" lists the other ranked candidates,
best first (what an editor cycles through); --via raw fills with the denoiser alone, records
batched, the hole's shape (--shape) setting the canvas. The true hole length is never used unless
--oracle-length is given (then the record's canonical_solution token count sets the canvas, with the
denoiser alone, and the output says so). The line on
stderr that counts the completions also names the dtype and threads, as the summary line does.

Speed and repeatability: with --dtype auto and --threads 0 (the defaults) the model is timed at load,
as the server times it (model.calibrate; about a second on a small CPU), because torch's own default
of one thread per core is several times slower when another process keeps a core busy. Give both
--dtype and --threads to skip the timing; give --dtype also for output that repeats exactly from run
to run, since float32 and bf16 can fill differently and the faster one can change with the load.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from infill.languages import LANGUAGES, UnknownLanguage, normalize_language
from infill.positions import LineIndex
from model.batch_fill import BatchOptions, CountingDenoiser, ModelSettings
from model.config import DTYPE_NAMES, SHAPE_CANVAS, check_device

PROG = "infill fill"
USAGE = ("infill fill FILE (--at LINE:COL | --select L1:C1-L2:C2) [options]\n"
         "       infill fill --jsonl IN --out OUT [options]")


class UsageError(Exception):
    """Arguments or input that cannot be filled; the message is the sentence the user sees."""


# --------------------------------------------------------------------------- arguments

def _count(minimum: int):
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {n}")
        return n
    return parse


def _threshold(value: str) -> float:
    try:
        t = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not 0.0 < t <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return t


def _unit(value: str) -> float:
    try:
        t = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not 0.0 <= t <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return t


def _device(value: str) -> str:
    try:
        return check_device(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 usage=USAGE)
    hole = ap.add_argument_group("one hole in a file")
    hole.add_argument("file", nargs="?", help="the source file (read as UTF-8; never changed)")
    where = hole.add_mutually_exclusive_group()
    where.add_argument("--at", metavar="LINE:COL", help="complete at this cursor (1-based line and column)")
    where.add_argument("--select", metavar="L1:C1-L2:C2", help="rewrite this selection (1-based, end exclusive)")
    hole.add_argument("--language", metavar="LANG",
                      help=f"the file's language (default: from its extension); one of {', '.join(LANGUAGES)}")
    hole.add_argument("--format", choices=("diff", "json"), default=None,
                      help="diff (default): a summary line and a unified diff; json: the edit with offsets and positions")
    hole.add_argument("-v", "--verbose", action="store_true", help="log the engine's decisions (why a fill was dropped) to stderr")

    eng = ap.add_argument_group("the engine (one hole and --jsonl; defaults: as in the editor)")
    eng.add_argument("--corrections", type=_count(0), default=None, metavar="N",
                     help="syntax-correction passes for a fill that breaks the parse")
    eng.add_argument("--retry-rows", type=_count(0), default=None, metavar="N",
                     help="rows of the one sampled retry for a fill still broken after correction; 0: no retry")
    eng.add_argument("--scope", choices=("on", "off"), default=None,
                     help="the name check: names a fill introduces that nothing binds where it goes are masked and "
                          "re-filled, and fills still introducing them rank last (a cursor completion drops them)")
    eng.add_argument("--copy-prior", choices=("on", "off"), default=None,
                     help="mix n-gram copies from the document into the model's scores (model.copy_prior)")
    eng.add_argument("--candidates", type=_count(1), default=None, metavar="N",
                     help="canvas lengths filled in the first pass and ranked")
    eng.add_argument("--binding-rows", type=_count(0), default=None, metavar="N",
                     help="where the code after a statement-starting hole uses names nothing binds, first-pass rows "
                          "led by a binding of them (`n = `, `for n in `); 0: none (default: as in the editor, "
                          "infill.engine.EngineConfig.binding_rows)")
    eng.add_argument("--result-rows", type=_count(0), default=None, metavar="N",
                     help="where a one-line hole would end a function that returns nothing yet, first-pass rows led by "
                          "its result (`return total`, `return `), and fills giving one rank first; 0: none (default: "
                          "as in the editor, infill.engine.EngineConfig.result_rows)")
    eng.add_argument("--min-confidence", type=_unit, default=None, metavar="P",
                     help="fill as an editor's automatic completion does: a fill whose tokens' mean probability is "
                          "below P, or that introduces unknown names, is not shown (without it every hole is asked "
                          "for explicitly: the best candidate is shown, and for --at the summary line says whether "
                          "an editor would show it)")

    batch = ap.add_argument_group("a batch of JSON lines")
    batch.add_argument("--jsonl", metavar="IN", help="input records (.jsonl or .jsonl.gz)")
    batch.add_argument("--out", metavar="OUT", help="output JSON lines")
    batch.add_argument("--shape", choices=("auto", *SHAPE_CANVAS), default=None,
                       help="hole shape: with the engine, a single line, whole lines or a free span; with --via raw "
                            "it sets the canvas: " + ", ".join(f"{k} {v} tokens" for k, v in SHAPE_CANVAS.items())
                            + "; auto (default) reads HumanEval-Infilling task ids")
    batch.add_argument("--max-tokens", type=_count(1), default=None, metavar="N",
                       help="canvas tokens with --via raw (default: by shape)")
    batch.add_argument("--oracle-length", action="store_true", default=None,
                       help="canvas = the record's canonical_solution length (labelled in the output)")
    batch.add_argument("--batch-size", type=_count(1), default=None, metavar="N",
                       help=f"records per model batch with --via raw (default {BatchOptions.batch_size})")
    batch.add_argument("--via", choices=("engine", "raw"), default=None,
                       help="engine (default): each hole filled as the editor fills it, one at a time (the "
                            "engine's post-processing, checks, self-correction and choice; a hole of whole lines "
                            "is an empty line, a hole of several starting at the indentation an editor gives); "
                            "raw: the denoiser alone, records batched, --shape and --max-tokens setting the canvas")

    model = ap.add_argument_group("model")
    model.add_argument("--model", default=None, help="checkpoint directory or hub id (default: the embedded starter model)")
    model.add_argument("--download", action="store_true",
                       help="download a hub id given to --model if it is not in the local cache (needs network)")
    model.add_argument("--device", type=_device, default="auto",
                       help="auto (default: the GPU if torch sees one, else the CPU, as the server) | cpu | cuda | cuda:N")
    model.add_argument("--dtype", default="auto", choices=DTYPE_NAMES,
                       help="weights' dtype (default auto: on a CPU, float32 or bf16, whichever the load-time timing "
                            "finds faster (bf16 only on a CPU with bf16 instructions); on a GPU bf16, or fp16 where it "
                            "has no bf16 units)")
    model.add_argument("--threads", type=_count(0), default=0, metavar="N",
                       help="torch CPU threads (0, default: the fastest count timed at load, as the server chooses)")
    model.add_argument("--steps", type=_count(0), default=0, metavar="N",
                       help="most model calls per pass (0, default: one per canvas token); see 'Model calls' above")
    model.add_argument("--threshold", type=_threshold, default=None,
                       help="commit every token whose probability is at least this (default: the sampler's)")
    model.add_argument("--speculate", type=_count(0), default=0, metavar="N",
                       help="self-speculative decoding: a model call scores up to N canvases (the next steps' drafts) and "
                            "keeps those the step rule confirms: the same output in fewer calls, with the canvas cache "
                            "off (0: off; worth it on a GPU)")
    model.add_argument("--seed", type=int, default=0, help="seed of the sampled retry (default 0)")
    return ap


# --------------------------------------------------------------------------- checks (before the model loads)

@dataclass
class HoleJob:
    """One hole in a file, checked: offsets into ``text``, the language, and how to print it."""

    path: str
    text: str
    language: str
    start: int
    end: int
    select: bool  # a rewrite of [start, end); else a completion at start
    where: str  # the position(s) as given, for messages ("13:18", "13:9-13:18")


def parse_position(value: str, option: str) -> tuple[int, int]:
    """(line, column), 1-based, from ``LINE:COL``."""
    line, sep, col = value.strip().partition(":")
    if not sep or not line.strip().isdigit() or not col.strip().isdigit():
        raise UsageError(f"{option} expects LINE:COL (1-based numbers), got {value!r}")
    return int(line), int(col)


def offset_of(index: LineIndex, line: int, col: int, option: str, value: str) -> int:
    """The character offset of 1-based ``line:col`` in ``index``'s text."""
    if not 1 <= line <= index.line_count:
        last = index.line_count - 1
        if last > 0 and index.line_end(last) == index.line_start(last):  # the text ends with a line break
            where = f"it has {last} line{'s' * (last != 1)}; {last + 1}:1 is its end"
        else:
            where = f"it has {index.line_count} line{'s' * (index.line_count != 1)}"
        raise UsageError(f"{option} {value}: line {line} is outside the file ({where})")
    length = index.line_end(line - 1) - index.line_start(line - 1)
    if not 1 <= col <= length + 1:
        raise UsageError(f"{option} {value}: column {col} is outside line {line} "
                         f"(columns 1..{length + 1}; {length + 1} is the end of the line)")
    return index.line_start(line - 1) + col - 1


def position_of(index: LineIndex, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    line = index.line_of(offset)
    return line + 1, offset - index.line_start(line) + 1


def pick_language(path: str, given: str | None) -> str:
    if given:
        try:
            return normalize_language(given)
        except UnknownLanguage:
            raise UsageError(f"unknown --language {given!r}; one of: {', '.join(LANGUAGES)}") from None
    name = Path(path).name
    suffix = Path(path).suffix
    try:
        return normalize_language(suffix.lower()) if suffix else normalize_language(None)
    except UnknownLanguage:
        what = suffix if suffix else f"{name} (no file extension)"
        raise UsageError(f"no language for {what}; pass --language LANG (one of: {', '.join(LANGUAGES)})") from None


def read_source(path: str) -> str:
    """The file's text exactly as stored (line breaks kept, so offsets are the file's)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else (exc.strerror or str(exc))
        raise UsageError(f"cannot read {path}: {reason}") from None
    if "\x00" in text:
        raise UsageError(f"cannot read {path}: it contains NUL bytes (not a text file)")
    return text


HOLE_ONLY = ("at", "select", "language", "format")
BATCH_ONLY = ("out", "shape", "max_tokens", "oracle_length", "batch_size", "via")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_hole(args: argparse.Namespace) -> HoleJob:
    """Everything about a one-hole fill that can be wrong, checked before the model loads."""
    extra = [_flag(n) for n in BATCH_ONLY if getattr(args, n) is not None]
    if extra:
        raise UsageError(f"{' and '.join(extra)} {'apply' if len(extra) > 1 else 'applies'} to --jsonl batches only")
    if not args.at and not args.select:
        raise UsageError(f"give --at LINE:COL or --select L1:C1-L2:C2 with {args.file}")
    language = pick_language(args.file, args.language)
    text = read_source(args.file)
    index = LineIndex(text)
    if args.at:
        start = end = offset_of(index, *parse_position(args.at, "--at"), "--at", args.at)
        return HoleJob(args.file, text, language, start, end, False, args.at)
    a, sep, b = args.select.partition("-")
    if not sep:
        raise UsageError(f"--select expects L1:C1-L2:C2, got {args.select!r}")
    start = offset_of(index, *parse_position(a, "--select"), "--select", args.select)
    end = offset_of(index, *parse_position(b, "--select"), "--select", args.select)
    if start > end:
        raise UsageError(f"--select {args.select}: the start {a.strip()} comes after the end {b.strip()}")
    if start == end:
        raise UsageError(f"--select {args.select} is empty; use --at {a.strip()} to complete at a cursor")
    return HoleJob(args.file, text, language, start, end, True, args.select)


def check_batch(args: argparse.Namespace) -> None:
    extra = [_flag(n) for n in HOLE_ONLY if getattr(args, n) is not None]
    if args.file:
        raise UsageError(f"give FILE or --jsonl, not both (got {args.file} and --jsonl {args.jsonl})")
    if extra:
        raise UsageError(f"{' and '.join(extra)} {'apply' if len(extra) > 1 else 'applies'} to one hole in a FILE only; "
                         "--jsonl writes JSON lines to --out")
    if not args.out:
        raise UsageError("--jsonl needs --out OUT")
    if args.max_tokens is not None and (args.via or "engine") == "engine" and not args.oracle_length:
        raise UsageError("--max-tokens sets the canvas of --via raw; the engine sizes each span itself "
                         "(infill.canvas.CanvasConfig)")
    if not Path(args.jsonl).is_file():
        raise UsageError(f"cannot read {args.jsonl}: no such file")


# --------------------------------------------------------------------------- counting and printing

_LINES = re.compile(r"[^\n]*\n|[^\n]+")  # lines as git splits them: at \n only, each with its \n


def unified_diff(path: str, old: str, new: str) -> str:
    """``old`` -> ``new`` as a unified diff of ``path`` (a/ and b/ names, no-newline markers as git)."""
    import difflib

    name = Path(path).as_posix().lstrip("/")
    name = name[2:] if name.startswith("./") else name
    out = []
    for line in difflib.unified_diff(_LINES.findall(old), _LINES.findall(new), f"a/{name}", f"b/{name}"):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def settings_text(s: ModelSettings) -> str:
    """``float32, 1 thread (measured in 0.61 s)``: what the model ran on and where each setting came from."""
    parts = [(s.dtype, s.dtype_from)]
    if s.threads is not None:
        parts.append((f"{s.threads} thread{'s' * (s.threads != 1)}", s.threads_from))
    else:
        parts[0] = (f"{s.dtype} on {s.device}", s.dtype_from)

    def source(where: str) -> str:
        return f"measured in {s.measure_ms / 1000:.2f} s" if where == "measured" and s.measure_ms is not None else where

    if len({where for _, where in parts}) == 1:
        return ", ".join(value for value, _ in parts) + f" ({source(parts[0][1])})"
    return ", ".join(f"{value} ({source(where)})" for value, where in parts)


def editor_verdict(sug, config) -> str:
    """Whether an editor's automatic completion would show this fill, and why not: its confidence
    against ``infill.minConfidence`` and the names it introduces that nothing binds."""
    why = []
    if sug.confidence < config.min_confidence:
        why.append(f"confidence {sug.confidence:.2f} is below infill.minConfidence {config.min_confidence:g}")
    if sug.unknown_names and config.drop_unknown_names:
        why.append(f"nothing binds {', '.join(sug.unknown_names)} there")
    if why:
        return "an editor would not show it: " + "; ".join(why)
    return f"confidence {sug.confidence:.2f}"


def summary_line(job: HoleJob, sug, counter: CountingDenoiser, max_passes: int, settings: ModelSettings,
                 config=None) -> str:
    what = f"{sug.span.kind} at {job.where}" if sug is not None else f"no suggestion at {job.where}"
    calls = "model call" if counter.model_calls == 1 else "model calls"
    verdict = f" ({editor_verdict(sug, config)})" if sug is not None and config is not None and not job.select else ""
    return (f"infill: {what}{verdict}: {counter.model_calls} {calls} in {counter.passes} of at most {max_passes} "
            f"passes, {counter.seconds:.2f} s in the model; {settings_text(settings)}")


def json_answer(job: HoleJob, sug, counter: CountingDenoiser, max_passes: int, settings: ModelSettings) -> dict:
    counts = {"model_calls": counter.model_calls, "passes": counter.passes, "max_passes": max_passes,
              "model_ms": round(counter.seconds * 1000.0, 1)}
    if sug is None:
        return {"edit": None, **counts, "settings": asdict(settings)}
    e = sug.edit
    index = LineIndex(job.text)
    (sl, sc), (el, ec) = position_of(index, e.start), position_of(index, e.end)
    return {"edit": {"start": e.start, "end": e.end, "text": e.text, "start_line": sl, "start_column": sc,
                     "end_line": el, "end_column": ec},
            "kind": sug.span.kind, **counts, "corrected": sug.corrected, "repaired": sug.repaired,
            "retried": sug.retried, "confidence": round(sug.confidence, 4), "unknown_names": list(sug.unknown_names),
            "alternatives": [a.edit.text for a in sug.alternatives], "settings": asdict(settings)}


# --------------------------------------------------------------------------- running

def load_denoiser(args: argparse.Namespace):
    """The model, as asked for (what is left at auto measured at load: ``model.batch_fill.load_fill_model``)
    and the settings it runs on; UsageError for a model that cannot be found or loaded."""
    from transformers.utils import logging as hf_logging

    import torch

    from model.batch_fill import load_fill_model, model_settings
    from model.errors import CheckpointError
    from model.hub import ModelNotFoundError, resolve_model
    from model.sampler import SamplerOptions
    from model.text_denoiser import DenoiserOptions, default_model_path

    hf_logging.disable_progress_bar()  # the answer on stdout, no weight-loading bar on stderr
    torch.manual_seed(args.seed)
    sampler = SamplerOptions(steps=args.steps, seed=args.seed, speculate=args.speculate)
    if args.threshold is not None:
        sampler.threshold = args.threshold
    options = DenoiserOptions(sampler=sampler)
    if args.copy_prior == "off":
        options.copy_prior = dataclasses.replace(options.copy_prior, weight=0.0)
    try:
        path = resolve_model(args.model, download=args.download) if args.model else default_model_path()
        den = load_fill_model(path, device=args.device, dtype=args.dtype, threads=args.threads, options=options)
    except (ModelNotFoundError, CheckpointError) as exc:
        raise UsageError(str(exc)) from None
    return den, model_settings(den, args.dtype, args.threads)


def engine_config(args: argparse.Namespace):
    """The engine's settings: the editor's, with what the command line changes."""
    from infill import engine

    config = engine.EngineConfig()
    if args.corrections is not None:
        config.correction_rounds = args.corrections
    if args.retry_rows is not None:
        config.invalid_retry_candidates = args.retry_rows
    if args.scope is not None:
        config.scope_check = args.scope == "on"
    if args.candidates is not None:
        config.candidates = args.candidates
    if args.binding_rows is not None:
        config.binding_rows = args.binding_rows
    if args.result_rows is not None:
        config.result_rows = args.result_rows
    if args.min_confidence is not None:
        config.min_confidence = args.min_confidence
    return config


def run_hole(args: argparse.Namespace, job: HoleJob) -> int:
    from infill import engine
    from infill.types import InfillError

    config = engine_config(args)
    max_passes = config.max_fill_calls(explicit_range=job.select)
    den, settings = load_denoiser(args)
    counter = CountingDenoiser(den)
    try:
        if job.select:
            sug = engine.rewrite(job.text, job.start, job.end, job.language, counter, config)
        else:
            # Asked for on the command line: the best candidate is shown even where an editor's automatic
            # completion would hold it back (the summary line says so), unless --min-confidence asks
            # for the editor's behaviour.
            sug = engine.complete(job.text, job.start, job.language, counter, config,
                                  automatic=args.min_confidence is not None)
    except InfillError as exc:
        raise UsageError(str(exc)) from None
    if args.format == "json":
        print(json.dumps(json_answer(job, sug, counter, max_passes, settings), indent=2))
    else:
        print(summary_line(job, sug, counter, max_passes, settings, config))
        if sug is not None:
            e = sug.edit
            sys.stdout.write(unified_diff(job.path, job.text, job.text[:e.start] + e.text + job.text[e.end:]))
    return 0 if sug is not None else 1


def run_batch(args: argparse.Namespace) -> int:
    from model.batch_fill import fill_records, read_jsonl

    try:
        rows = read_jsonl(args.jsonl)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise UsageError(f"cannot read {args.jsonl}: {exc}") from None
    errors = [e for _, _, e in rows if e]
    for e in errors:
        print(f"{PROG}: {e}", file=sys.stderr)
    records = [r for _, r, _ in rows if r is not None]
    opts = BatchOptions(shape=args.shape or "auto", max_tokens=args.max_tokens, oracle_length=bool(args.oracle_length),
                        via=args.via or "engine", engine=engine_config(args), automatic=args.min_confidence is not None)
    if args.batch_size is not None:
        opts.batch_size = args.batch_size
    done, settings = [], None
    if records:
        den, settings = load_denoiser(args)
        done = fill_records(den, records, opts)
    with open(args.out, "w", encoding="utf-8") as fh:
        for rec in done:
            fh.write(json.dumps(rec) + "\n")
    print(f"{PROG}: {len(done)} completions written to {args.out}"
          + (f"; {len(errors)} bad lines skipped" if errors else "")
          + (f"; {settings_text(settings)}" if settings else ""), file=sys.stderr)
    return 1 if errors and not done else 0


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        if args.jsonl:
            check_batch(args)
            return run_batch(args)
        if not args.file:
            raise UsageError("give FILE with --at LINE:COL or --select L1:C1-L2:C2, or --jsonl IN --out OUT")
        return run_hole(args, check_hole(args))
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
