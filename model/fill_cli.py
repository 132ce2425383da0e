"""``infill fill``: batch fill-in-the-middle over JSON lines, or one hole in a file.

Batch: ``infill fill --jsonl IN --out OUT`` reads records with ``prompt`` (text before the hole)
and ``suffix`` (text after it), optional ``task_id`` and ``language``, and writes each record back
with a ``completion``. The true hole length is never used unless ``--oracle-length`` is given
(then the record's ``canonical_solution`` token count sets the canvas, and the output says so).

One hole: ``infill fill FILE --at LINE:COL`` (inline completion at a cursor) or
``--select L1:C1-L2:C2`` (rewrite the selection); lines and columns are 1-based, columns count
characters. Prints the edit as JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from infill.canvas import CanvasConfig
from infill.types import FillRequest, InfillError

from .config import DTYPE_NAMES

log = logging.getLogger("infill.fill")

# canvas tokens per hole shape (the editor knows the shape from the span; a batch file from its task id)
SHAPE_CANVAS = {"line": 32, "lines": 96, "free": 64}


def shape_stop_bias(shape: str, canvas: CanvasConfig | None = None) -> float:
    """The stop token's bias for a hole shape, as the engine sets it for the matching span kind
    (``infill.canvas.stop_bias``); ``free`` (a random span, any length) keeps the model's odds."""
    canvas = canvas or CanvasConfig()
    return {"line": canvas.line_stop_bias, "lines": canvas.block_stop_bias, "free": 0.0}[shape]


@dataclass
class BatchOptions:
    shape: str = "auto"  # auto | line | lines | free
    max_tokens: int | None = None
    oracle_length: bool = False
    batch_size: int = 8
    stop_bias: float | None = None  # None: by shape (shape_stop_bias); 0 with the oracle length


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


def fill_records(denoiser, records: list[dict], opts: BatchOptions) -> list[dict]:
    """Fill each record's hole; returns new records with ``completion`` (and ``model_calls`` and
    ``confidence``, the mean probability of the fill's tokens)."""
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


def parse_pos(s: str) -> tuple[int, int]:
    line, _, col = s.partition(":")
    if not col:
        raise argparse.ArgumentTypeError(f"expected LINE:COL, got {s!r}")
    return int(line), int(col)


def offset_of(text: str, line: int, col: int) -> int:
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        raise InfillError(f"line {line} is outside the file (1..{len(lines)})")
    if not 1 <= col <= len(lines[line - 1]) + 1:
        raise InfillError(f"column {col} is outside line {line} (1..{len(lines[line - 1]) + 1})")
    return sum(len(l) + 1 for l in lines[: line - 1]) + col - 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="infill fill", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", help="source file for a one-shot fill (with --at or --select)")
    ap.add_argument("--at", type=parse_pos, help="LINE:COL cursor (1-based) for inline completion")
    ap.add_argument("--select", help="L1:C1-L2:C2 selection (1-based, end exclusive) to rewrite")
    ap.add_argument("--language", help="language id (default: from the file extension)")
    ap.add_argument("--jsonl", help="input JSON lines (.jsonl or .jsonl.gz)")
    ap.add_argument("--out", help="output JSON lines (batch mode)")
    ap.add_argument("--model", default=None, help="checkpoint directory or hub id (default: the embedded starter)")
    ap.add_argument("--download", action="store_true",
                    help="download a hub id given to --model if it is not in the local cache (needs network)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--dtype", default="auto", choices=DTYPE_NAMES,
                    help="weights' dtype (default auto: bf16 on a GPU or on a CPU with AMX, float32 on other CPUs)")
    ap.add_argument("--steps", type=int, default=0, help="model-call budget per hole (0: up to one per token)")
    ap.add_argument("--threshold", type=float, default=0.9, help="commit every token above this confidence")
    ap.add_argument("--speculate", type=int, default=0,
                    help="self-speculative decoding: model calls score up to this many canvases (the next steps' drafts), "
                         "keeping the drafts the step rule confirms: the output the same settings give without it and the "
                         "canvas cache (which it turns off), in fewer calls (0: off; worth it on a GPU)")
    ap.add_argument("--max-tokens", type=int, default=None, help="canvas tokens (default: by hole shape)")
    ap.add_argument("--shape", default="auto", choices=("auto", "line", "lines", "free"),
                    help="hole shape for batch mode; auto reads HumanEval-Infilling task ids")
    ap.add_argument("--oracle-length", action="store_true", help="use the reference length (labelled in output)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if not args.jsonl and not args.file:
        ap.error("give --jsonl IN --out OUT, or FILE with --at or --select")
    if args.jsonl and not args.out:
        ap.error("--jsonl needs --out")

    text = None
    if not args.jsonl:  # read the file first: a bad path or encoding fails before the model loads
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else (exc.strerror or str(exc))
            print(f"infill fill: cannot read {args.file}: {reason}", file=sys.stderr)
            return 2

    import torch
    from transformers.utils import logging as hf_logging

    from .hub import resolve_model
    from .sampler import SamplerOptions
    from .text_denoiser import DenoiserOptions, TextDenoiser, default_model_path

    hf_logging.disable_progress_bar()  # one JSON answer on stdout, no weight-loading bar on stderr
    torch.manual_seed(args.seed)
    path = resolve_model(args.model, download=args.download) if args.model else default_model_path()
    opts = DenoiserOptions(sampler=SamplerOptions(steps=args.steps, threshold=args.threshold, seed=args.seed,
                                                   speculate=args.speculate))
    denoiser = TextDenoiser(path, device=args.device, options=opts, dtype=args.dtype)

    if args.jsonl:
        rows = read_jsonl(args.jsonl)
        errors = [e for _, _, e in rows if e]
        for e in errors:
            print(f"infill fill: {e}", file=sys.stderr)
        records = [r for _, r, _ in rows if r is not None]
        done = fill_records(denoiser, records, BatchOptions(args.shape, args.max_tokens, args.oracle_length,
                                                            args.batch_size))
        with open(args.out, "w", encoding="utf-8") as fh:
            for rec in done:
                fh.write(json.dumps(rec) + "\n")
        print(f"infill fill: {len(done)} completions written to {args.out}"
              + (f"; {len(errors)} bad lines skipped" if errors else ""), file=sys.stderr)
        return 1 if errors and not done else 0

    from infill import engine
    from infill.syntax import language_for_path

    language = args.language or language_for_path(args.file)
    try:
        if args.select:
            a, _, b = args.select.partition("-")
            start, end = offset_of(text, *parse_pos(a)), offset_of(text, *parse_pos(b))
            sug = engine.rewrite(text, start, end, language, denoiser)
        elif args.at:
            sug = engine.complete(text, offset_of(text, *args.at), language, denoiser)
        else:
            ap.error("give --at LINE:COL or --select L1:C1-L2:C2 with FILE")
    except InfillError as exc:
        print(f"infill fill: {exc}", file=sys.stderr)
        return 2
    if sug is None:
        print(json.dumps({"edit": None}))
        return 0
    e = sug.edit
    print(json.dumps({"edit": {"start": e.start, "end": e.end, "text": e.text}, "kind": sug.span.kind,
                      "model_calls": sug.model_calls, "corrected": sug.corrected, "repaired": sug.repaired,
                      "retried": sug.retried},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
