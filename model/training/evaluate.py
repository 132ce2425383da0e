"""``infill eval``: held-out span exact match and HumanEval-Infilling pass@1.

(a) Held-out spans: from the corpus's held-out split (never trained on), deterministic cases of
four shapes — ``single-line`` (rest of a line from a cursor inside it), ``multi-line`` (a syntax
node covering 2-6 whole lines), ``expression`` (a one-line expression/call node) and ``whole-line``
(one whole line of code, indentation included, as HumanEval-Infilling's single-line holes) — scored
by exact match (trailing whitespace ignored) and edit similarity.
(b) HumanEval-Infilling: ``prompt + completion + suffix + test + check(entry_point)`` runs in a
fresh process with a timeout; pass@1 with one greedy sample per task. The hole's true length is
not given to the model.

``--oracle-length`` also fills every case with its true length: a canvas of exactly as many mask
tokens as the reference has, the stop token never committed. Printed beside the default run, paired
per case (oracle - default, with the standard error): how much of the gap is where to stop.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from infill import syntax
from infill.canvas import CanvasConfig
from infill.engine import EngineConfig
from infill.types import FillRequest, FillResult

from ..batch_fill import BatchOptions, engine_fill, fill_records, finish
from ..config import DTYPE_NAMES, SHAPE_CANVAS
from .corpus import read_corpus

EXPRESSION_TYPES = ("call", "binary_operator", "comparison_operator", "boolean_operator", "subscript",
                    "attribute", "call_expression", "binary_expression", "member_expression",
                    "method_invocation", "field_access", "argument_list", "arguments", "list", "dictionary")
HUMANEVAL_FILES = {
    "single-line": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi-line": "HumanEval-MultiLineInfilling.jsonl.gz",
    "random-span": "HumanEval-RandomSpanInfilling.jsonl.gz",
    "random-span-light": "HumanEval-RandomSpanInfillingLight.jsonl.gz",
}


@dataclass
class Case:
    shape: str  # single-line | multi-line | expression
    prefix: str
    suffix: str
    reference: str
    language: str
    path: str


CONFIDENCE_FLOORS = (0.0, 0.2, 0.3, 0.4, 0.5)


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):  # ties share their mean rank
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def by_confidence(records: list[dict], floors=CONFIDENCE_FLOORS) -> dict:
    """Per shape: how a confidence floor trades fills shown for their quality. Spearman's rank
    correlation of the fill's confidence (mean probability of its tokens) with its edit similarity,
    and for each floor the share of fills at or above it and their mean edit similarity / exact matches."""
    out: dict[str, dict] = {}
    for shape in dict.fromkeys(r["shape"] for r in records):
        rs = [r for r in records if r["shape"] == shape]
        conf, sim = _ranks([r["confidence"] for r in rs]), _ranks([r["edit_similarity"] for r in rs])
        try:
            rho = statistics.correlation(conf, sim)
        except statistics.StatisticsError:  # fewer than two cases, or all equal
            rho = 0.0
        rows = []
        for floor in floors:
            kept = [r for r in rs if r["confidence"] >= floor]
            rows.append({"floor": floor, "kept_pct": round(100 * len(kept) / len(rs), 1),
                         "edit_similarity": round(statistics.fmean(r["edit_similarity"] for r in kept), 2) if kept else 0.0,
                         "exact": sum(bool(r["exact"]) for r in kept)})
        out[shape] = {"n": len(rs), "rank_correlation": round(rho, 3), "floors": rows}
    return out


# A shown fill is acceptable when it is a small edit away from what was written: exact, or at least
# this edit similarity (%).
ACCEPT_SIMILARITY = 80.0
TRADEOFF_FLOORS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6)
MIN_ANSWERED = 0.5  # a floor may drop at most half of the fills offered without one


def answered_tradeoff(records: list[dict], floors=TRADEOFF_FLOORS) -> list[dict]:
    """Precision against coverage over all cases, per confidence floor (``infill.minConfidence``):
    the share of cases answered (a non-empty fill at or above the floor; an engine that offers
    nothing answers nothing) and, of the fills shown, exact matches, mean edit similarity and the
    acceptable share (``ACCEPT_SIMILARITY``), plus acceptable fills as a share of all cases."""
    rows = []
    for floor in floors:
        shown = [r for r in records if r["output"] and r["confidence"] >= floor]
        good = sum(bool(r["exact"]) or r["edit_similarity"] >= ACCEPT_SIMILARITY for r in shown)
        rows.append({"floor": floor, "answered_pct": round(100 * len(shown) / max(1, len(records)), 1),
                     "exact_pct": round(100 * sum(bool(r["exact"]) for r in shown) / max(1, len(shown)), 2),
                     "edit_similarity": round(statistics.fmean(r["edit_similarity"] for r in shown), 2) if shown else 0.0,
                     "acceptable_pct": round(100 * good / max(1, len(shown)), 2),
                     "acceptable_of_all_pct": round(100 * good / max(1, len(records)), 2)})
    return rows


def choose_floor(records: list[dict], min_answered: float = MIN_ANSWERED, step: float = 0.05) -> dict:
    """The confidence floor (a multiple of ``step``) whose shown fills are most often acceptable
    while it keeps at least ``min_answered`` of the fills answered without a floor; the lower floor
    on ties. Its row of ``answered_tradeoff``."""
    base = sum(1 for r in records if r["output"])
    floors = [round(i * step, 4) for i in range(int(1 / step) + 1)]
    rows = [row for row in answered_tradeoff(records, floors)
            if row["answered_pct"] * len(records) / 100 >= min_answered * base]
    return max(rows, key=lambda row: (row["acceptable_pct"], -row["floor"]))


def print_tradeoff(rows: list[dict], chosen: dict) -> None:
    print(f"shown fills by confidence floor, all shapes (acceptable: exact or edit sim >= {ACCEPT_SIMILARITY:.0f} %)")
    print(f"{'floor':>7}{'answered %':>12}{'exact %':>10}{'edit sim %':>12}{'acceptable %':>14}{'of all %':>10}")
    for row in rows + [chosen]:
        label = f"{row['floor']:.2f}" + ("*" if row is chosen else "")
        print(f"{label:>7}{row['answered_pct']:>12.1f}{row['exact_pct']:>10.2f}{row['edit_similarity']:>12.2f}"
              f"{row['acceptable_pct']:>14.2f}{row['acceptable_of_all_pct']:>10.2f}")
    print(f"* chosen floor {chosen['floor']:.2f}: the most acceptable per shown fill while answering at least "
          f"{100 * MIN_ANSWERED:.0f} % of what no floor answers")


def heldout_paths(corpus_dir: str | Path) -> set[str]:
    """Paths of a corpus's held-out files (``--exclude-heldout``: a development set is another
    corpus's held-out split minus these)."""
    path = Path(corpus_dir, "heldout.jsonl.gz")
    if not path.is_file():
        raise FileNotFoundError(f"no held-out split at {path} (build it with `infill corpus --out {corpus_dir}`)")
    return {f.path for f in read_corpus(path)}


def heldout_cases(corpus_dir: str | Path, per_shape: int = 100, seed: int = 0, languages=("python",),
                  exclude: set[str] = frozenset()) -> list[Case]:
    """Deterministic held-out cases of each shape from ``heldout.jsonl.gz``, skipping files whose
    path is in ``exclude``."""
    rng = random.Random(seed)
    files = [f for f in read_corpus(Path(corpus_dir, "heldout.jsonl.gz"))
             if f.language in languages and f.path not in exclude]
    rng.shuffle(files)
    pools: dict[str, list[Case]] = {"single-line": [], "multi-line": [], "expression": [], "whole-line": []}
    for f in files:
        if all(len(p) >= per_shape for p in pools.values()):
            break
        text = f.text
        if not text.isascii():
            continue
        data = text.encode()
        tree = syntax.parse(data, f.language)
        lines = text.split("\n")
        # single-line: cursor after the first token of a substantial line
        starts = [0]
        for l in lines[:-1]:
            starts.append(starts[-1] + len(l) + 1)
        cands = [i for i, l in enumerate(lines) if len(l.strip()) >= 12 and not l.strip().startswith(("#", "//", "*", '"""'))]
        for i in rng.sample(cands, min(3, len(cands))):
            l = lines[i]
            ind = len(l) - len(l.lstrip())
            words = [j for j in range(ind + 1, len(l)) if not l[j - 1].isalnum() and l[j - 1] != "_" and l[j] != " "]
            if not words:
                continue
            cut = rng.choice(words[: max(1, len(words) // 2)])
            a, e = starts[i] + cut, starts[i] + len(l)
            pools["single-line"].append(Case("single-line", text[:a], text[e:], text[a:e], f.language, f.path))
        multi, expr = [], []
        for typ, sb, eb in syntax.iter_named_nodes(tree):
            seg = text[sb:eb]
            n = seg.count("\n")
            line_start = sb == 0 or text[sb - 1] == "\n" or text[:sb].rsplit("\n", 1)[-1].strip() == ""
            if 1 <= n <= 5 and line_start and (eb == len(text) or text[eb:eb + 1] == "\n") and len(seg) < 400:
                multi.append((sb, eb))
            elif n == 0 and 4 <= len(seg) <= 60 and typ in EXPRESSION_TYPES:
                expr.append((sb, eb))
        for sb, eb in rng.sample(multi, min(2, len(multi))):
            a = text.rfind("\n", 0, sb) + 1  # whole lines, indentation included
            e = eb + 1 if eb < len(text) else eb
            pools["multi-line"].append(Case("multi-line", text[:a], text[e:], text[a:e], f.language, f.path))
        for sb, eb in rng.sample(expr, min(2, len(expr))):
            pools["expression"].append(Case("expression", text[:sb], text[eb:], text[sb:eb], f.language, f.path))
        # whole-line: a line of code with its indentation, drawn from the file's own stream, so the
        # other shapes' cases do not depend on this shape's draws
        own = random.Random(f"{seed}:whole-line:{f.path}")
        code = [i for i, ln in enumerate(lines[:-1]) if any(ch.isalnum() for ch in ln)
                and _in_function_code(tree, starts[i] + len(ln) - len(ln.lstrip()))]
        for i in own.sample(code, min(2, len(code))):
            a, e = starts[i], starts[i] + len(lines[i]) + 1
            pools["whole-line"].append(Case("whole-line", text[:a], text[e:], text[a:e], f.language, f.path))
    return [c for p in pools.values() for c in p[:per_shape]]


def _in_function_code(tree, byte: int) -> bool:
    """Whether the (ASCII) text at ``byte`` is code in a function's body: not in a string or a
    comment, inside the body of a function or method."""
    node = tree.root_node.descendant_for_byte_range(byte, byte + 1)
    in_function = False
    while node is not None:
        kind = node.type
        if "string" in kind or "comment" in kind:
            return False
        if "function" in kind or "method" in kind:
            body = node.child_by_field_name("body")
            in_function = in_function or (body is not None and body.start_byte <= byte)
        node = node.parent
    return in_function


CASE_SHAPE = {"single-line": "line", "multi-line": "lines", "expression": "line", "whole-line": "line"}
CASE_CANVAS = {"single-line": SHAPE_CANVAS["line"], "multi-line": SHAPE_CANVAS["lines"], "expression": 24,
               "whole-line": SHAPE_CANVAS["line"]}


def case_stop_bias(shape: str, canvas: CanvasConfig | None = None) -> float:
    """The stop token's bias the engine would use for a case's span kind (``infill.canvas.stop_bias``)."""
    canvas = canvas or CanvasConfig()
    return {"single-line": canvas.line_stop_bias, "multi-line": canvas.block_stop_bias,
            "expression": canvas.expression_stop_bias, "whole-line": canvas.line_stop_bias}[shape]


def edit_similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


# With the true length the canvas needs no stop: this bias keeps the stop token from being committed
# (finite, as the sampler requires).
ORACLE_STOP_BIAS = -1e4


def oracle_canvas(tokenizer, reference: str) -> int:
    """The true span length in tokens: the canvas an oracle-length fill gets."""
    return max(1, len(tokenizer.encode(reference)))


def case_span(case: Case):
    """The document and ``infill.spans.Span`` the engine fills for a held-out case, as the editor
    plans them: the rest of a line at a cursor (``line``), whole lines (a ``region`` at the lines'
    own indentation, which the case's prefix ends in front of), an expression at a cursor with
    code after it on the line (``expression``, joining that code), or a whole line (an empty line
    the fill replaces, as ``model.batch_fill.hole_span`` plans HumanEval-Infilling's lines)."""
    from infill.spans import Span

    text, a = case.prefix + case.suffix, len(case.prefix)
    if case.shape == "single-line":
        return text, Span(a, a, "line", False, "")
    if case.shape == "whole-line":
        return text[:a] + "\n" + text[a:], Span(a, a + 1, "line", False, "")
    if case.shape == "multi-line":
        first = case.reference.split("\n", 1)[0]
        return text, Span(a, a, "region", True, first[: len(first) - len(first.lstrip(" \t"))])
    return text, Span(a, a, "expression", False, "", joins=bool(case.suffix.split("\n", 1)[0].strip()))


def _engine_results(denoiser, chunk: list[Case], config) -> list[FillResult]:
    """Each case of ``chunk`` filled through the engine (``model.batch_fill.engine_fill``), as results."""
    out = []
    for c in chunk:
        text, span = case_span(c)
        got = engine_fill(denoiser, text, span, c.language, config)
        # the answer's tokens (the engine reports no per-row counts): tok/call is its tokens per model call
        tokens = denoiser.count_tokens(got["completion"]) if hasattr(denoiser, "count_tokens") else 0
        out.append(FillResult(got["completion"], got["model_calls"], tokens=tokens, confidence=got["confidence"]))
    return out


def score_heldout(denoiser, cases: list[Case], batch_size: int = 8, sampler=None,
                  records: list[dict] | None = None, stop_bias: float | None = None,
                  oracle_length: bool = False, via: str = "raw", engine_config=None) -> dict:
    """Exact match / edit similarity / model calls per shape; with ``records``, one entry per case
    is appended there (shape, path, exact, edit similarity, the output and the reference's length) for
    paired comparisons (``--compare``) and for reading what a checkpoint wrote. ``stop_bias``
    replaces the engine's per-kind setting (``case_stop_bias``) for every case. ``oracle_length``:
    each canvas is the reference's length in tokens and the stop is never committed. ``via``:
    "raw" fills with the denoiser alone at the case's canvas; "engine" plans and finishes each case
    as the editor does (``case_span``, ``engine_config``; not with ``sampler`` or the oracle length)."""
    if via not in ("raw", "engine"):
        raise ValueError(f"via must be 'raw' or 'engine', not {via!r}")
    engine_path = via == "engine" and not oracle_length and sampler is None and stop_bias is None
    per: dict[str, dict] = {}
    for i in range(0, len(cases), batch_size):
        chunk = cases[i:i + batch_size]
        if oracle_length:
            reqs = [FillRequest(c.prefix, c.suffix, oracle_canvas(denoiser.tokenizer, c.reference), c.language,
                                CASE_SHAPE[c.shape] == "line", stop_bias=ORACLE_STOP_BIAS) for c in chunk]
        else:
            reqs = [FillRequest(c.prefix, c.suffix, CASE_CANVAS[c.shape], c.language, CASE_SHAPE[c.shape] == "line",
                                stop_bias=case_stop_bias(c.shape) if stop_bias is None else stop_bias)
                    for c in chunk]
        if engine_path:
            results = _engine_results(denoiser, chunk, engine_config)
        elif sampler is not None:
            results = denoiser.fill(reqs, sampler=sampler)
        else:
            results = denoiser.fill(reqs)
        for c, res in zip(chunk, results):
            text, n_calls, n_tok = res.text, res.model_calls, res.tokens
            out = finish(text, CASE_SHAPE[c.shape], c.prefix, c.suffix)
            if c.shape == "expression":
                out = out.rstrip("\n")
            d = per.setdefault(c.shape, {"n": 0, "exact": 0, "edit_sim": 0.0, "model_calls": 0, "tokens": 0})
            got, want = out.rstrip(), c.reference.rstrip()
            exact, sim = got == want, edit_similarity(got, want)
            d["n"] += 1
            d["exact"] += int(exact)
            d["edit_sim"] += sim
            if records is not None:
                records.append({"shape": c.shape, "path": c.path, "exact": exact, "edit_similarity": round(100 * sim, 2),
                                "output": got, "reference_chars": len(want), "confidence": round(res.confidence, 4)})
            d["model_calls"] += n_calls
            d["tokens"] += n_tok
    for d in per.values():
        d["exact_match"] = round(100 * d["exact"] / max(1, d["n"]), 2)
        d["edit_similarity"] = round(100 * d["edit_sim"] / max(1, d["n"]), 2)
        d["tokens_per_call"] = round(d["tokens"] / max(1, d["model_calls"]), 2)
        del d["edit_sim"]
    return per


def run_program(program: str, timeout: float = 3.0) -> bool:
    """True if ``program`` exits 0 in a fresh interpreter within ``timeout`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "prog.py")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(program)
        try:
            r = subprocess.run([sys.executable, "-I", path], cwd=tmp, capture_output=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0


def humaneval_passed(records: list[dict], timeout: float = 3.0, workers: int = 2) -> list[bool]:
    """Whether each record's program (prompt + ``completion`` + suffix) passes its tests."""
    progs = [r["prompt"] + r["completion"] + r["suffix"] + "\n" + r["test"] + "\n" + f"check({r['entry_point']})\n"
             for r in records]
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(lambda p: run_program(p, timeout), progs))


def humaneval_pass(records: list[dict], timeout: float = 3.0, workers: int = 2) -> float:
    """pass@1 (%) of records carrying ``completion`` (one sample per task)."""
    ok = humaneval_passed(records, timeout, workers)
    return 100.0 * sum(ok) / max(1, len(ok))


FLOORS = (0.2, 0.3, 0.4, 0.5)


def abstention_table(records: list[dict], floors=FLOORS) -> list[dict]:
    """pass@1 when completions whose ``confidence`` is below a floor are left blank (what
    ``infill.minConfidence`` does at the cursor), for records written by ``infill fill --jsonl``.
    Each program runs twice (as filled, and blank); every floor is read from those two results."""
    filled = humaneval_passed(records)
    blank = humaneval_passed([{**r, "completion": ""} for r in records])
    n = max(1, len(records))
    rows = []
    for floor in (0.0, *floors):
        keep = [r["confidence"] >= floor for r in records]
        ok = [f if k else b for f, b, k in zip(filled, blank, keep)]
        rows.append({"floor": floor, "kept_pct": round(100 * sum(keep) / n, 1), "pass@1": round(100 * sum(ok) / n, 2)})
    rows.append({"floor": None, "kept_pct": 0.0, "pass@1": round(100 * sum(blank) / n, 2)})  # every one blank
    return rows


def load_humaneval(data_dir: str | Path, name: str, limit: int = 0) -> list[dict]:
    """Records of one HumanEval-Infilling file; ``limit`` keeps an evenly strided subset."""
    with gzip.open(Path(data_dir, HUMANEVAL_FILES[name]), "rt", encoding="utf-8") as fh:
        recs = [json.loads(l) for l in fh if l.strip()]
    if limit and limit < len(recs):
        stride = len(recs) / limit
        recs = [recs[int(i * stride)] for i in range(limit)]
    return recs


def fill_cases(records: list[dict]) -> list[dict]:
    """Records written by ``infill fill --jsonl`` for HumanEval-Infilling tasks, scored like held-out
    cases against each task's ``canonical_solution`` (exact match and edit similarity, trailing
    whitespace ignored), so ``--score`` can print them and ``--compare`` can pair two such files."""
    out = []
    for r in records:
        if not isinstance(r.get("completion"), str) or not isinstance(r.get("canonical_solution"), str):
            raise ValueError(f"record {r.get('task_id', len(out))!r} lacks a completion or a canonical_solution")
        got, ref = r["completion"].rstrip(), r["canonical_solution"].rstrip()
        out.append({"shape": "humaneval", "path": r.get("task_id", str(len(out))), "exact": got == ref,
                    "edit_similarity": round(100 * edit_similarity(got, ref), 2), "output": got,
                    "reference_chars": len(ref)})
    return out


def read_results(path: str | Path) -> dict:
    """An ``--out`` file, or a ``infill fill --jsonl`` file of HumanEval-Infilling records (as per-case
    results; records carrying their ``test`` and ``entry_point`` are run, and say whether they passed)."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith(".jsonl"):
        recs = [json.loads(l) for l in text.splitlines() if l.strip()]
        cases = fill_cases(recs)
        if recs and all(isinstance(r.get("test"), str) and isinstance(r.get("entry_point"), str) for r in recs):
            for case, ok in zip(cases, humaneval_passed(recs)):
                case["passed"] = ok
        return {"model": path, "heldout_cases": cases}
    return json.loads(text)


def mean_and_standard_error(diffs: list[float]) -> tuple[float, float]:
    """Mean of paired per-case differences and its standard error (0 with fewer than two cases)."""
    n = len(diffs)
    if n == 0:
        return 0.0, 0.0
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return mean, (var / n) ** 0.5


def compare(a: dict, b: dict) -> dict:
    """Paired comparison of two ``--out`` files over the same held-out cases (or two fill files over
    the same tasks): per shape (and over every case, ``all``, when there are several shapes), the mean
    edit-similarity difference (b - a) with its standard error, and how many cases each got exactly
    right that the other did not; where every case says whether it ``passed`` its tests, the pass@1
    difference (points) with its standard error and the tasks only each passed. Raises ValueError
    when the files hold different cases."""
    ca, cb = a.get("heldout_cases"), b.get("heldout_cases")
    if not ca or not cb:
        raise ValueError("both files need per-case results (written by this version of `infill eval --out`)")
    if [(r["shape"], r["path"]) for r in ca] != [(r["shape"], r["path"]) for r in cb]:
        raise ValueError("the two files hold different held-out cases (other corpus, --per-shape or tasks)")
    out: dict[str, dict] = {}
    shapes = list(dict.fromkeys(r["shape"] for r in ca))
    for shape in shapes + (["all"] if len(shapes) > 1 else []):  # "all": every case, pooled
        pairs = [(x, y) for x, y in zip(ca, cb) if shape in ("all", x["shape"])]
        mean, se = mean_and_standard_error([y["edit_similarity"] - x["edit_similarity"] for x, y in pairs])
        out[shape] = {"n": len(pairs), "edit_similarity_diff": round(mean, 2), "standard_error": round(se, 2),
                      "exact_only_a": sum(x["exact"] and not y["exact"] for x, y in pairs),
                      "exact_only_b": sum(y["exact"] and not x["exact"] for x, y in pairs)}
        if all("output" in x and "output" in y for x, y in pairs):  # fill lengths (files since outputs were kept)
            out[shape]["median_chars"] = {"reference": statistics.median(x["reference_chars"] for x, _ in pairs),
                                          "a": statistics.median(len(x["output"]) for x, _ in pairs),
                                          "b": statistics.median(len(y["output"]) for _, y in pairs)}
            out[shape]["identical"] = round(100 * sum(x["output"] == y["output"] for x, y in pairs) / len(pairs), 1)
        if all("passed" in x and "passed" in y for x, y in pairs):
            mean, se = mean_and_standard_error([100.0 * (float(y["passed"]) - float(x["passed"])) for x, y in pairs])
            out[shape]["pass"] = {"a": round(100 * sum(x["passed"] for x, _ in pairs) / len(pairs), 2),
                                  "b": round(100 * sum(y["passed"] for _, y in pairs) / len(pairs), 2),
                                  "diff": round(mean, 2), "standard_error": round(se, 2),
                                  "only_a": sum(x["passed"] and not y["passed"] for x, y in pairs),
                                  "only_b": sum(y["passed"] and not x["passed"] for x, y in pairs)}
    return out


ORACLE_METRICS = (("pass@1", "passed"), ("exact match", "exact"), ("edit similarity", "edit_similarity"))


def oracle_gap(default: list[dict], oracle: list[dict]) -> dict:
    """Per shape (a held-out shape or a HumanEval set): each metric's mean over the default fills
    and over the oracle-length fills of the same cases, and their paired difference (oracle -
    default) with its standard error, in percentage points. Records carry ``shape``, ``path``,
    ``exact`` and ``edit_similarity`` (0-100), and ``passed`` where the case has tests (pass@1).
    Raises ValueError when the two lists hold different cases."""
    if [(r["shape"], r["path"]) for r in default] != [(r["shape"], r["path"]) for r in oracle]:
        raise ValueError("the default and oracle-length records hold different cases")
    out: dict[str, dict] = {}
    for shape in dict.fromkeys(r["shape"] for r in default):
        pairs = [(a, b) for a, b in zip(default, oracle) if a["shape"] == shape]
        row: dict = {"n": len(pairs)}
        for name, key in ORACLE_METRICS:
            if not all(key in a and key in b for a, b in pairs):
                continue
            scale = 1.0 if key == "edit_similarity" else 100.0  # booleans as percentages
            xs = [scale * float(a[key]) for a, _ in pairs]
            ys = [scale * float(b[key]) for _, b in pairs]
            diff, se = mean_and_standard_error([y - x for x, y in zip(xs, ys)])
            row[name] = {"default": round(statistics.fmean(xs), 2), "oracle": round(statistics.fmean(ys), 2),
                         "diff": round(diff, 2), "standard_error": round(se, 2)}
        out[shape] = row
    return out


def print_oracle_gap(table: dict) -> None:
    print("oracle length (canvas = the reference's tokens, no stop) beside the default, paired per case")
    print(f"{'shape / set':<24}{'n':>6}  {'metric':<16}{'default':>9}{'oracle':>9}{'oracle-default':>16}{'+/- SE':>8}")
    for shape, row in table.items():
        for name, _ in ORACLE_METRICS:
            if name in row:
                m = row[name]
                print(f"{shape:<24}{row['n']:>6}  {name:<16}{m['default']:>9.2f}{m['oracle']:>9.2f}"
                      f"{m['diff']:>16.2f}{m['standard_error']:>8.2f}")


def _print_compare(a_path: str, b_path: str) -> int:
    try:
        a, b = (read_results(p) for p in (a_path, b_path))
        table = compare(a, b)
    except (OSError, ValueError) as exc:
        print(f"infill eval --compare: {exc}", file=sys.stderr)
        return 2
    print(f"a = {a.get('model')}\nb = {b.get('model')}")
    print(f"{'held-out shape':<16}{'n':>5}{'edit sim b-a':>14}{'+/- SE':>8}{'exact only a':>14}{'only b':>8}"
          f"{'median chars ref / a / b':>28}{'identical %':>13}")
    for shape, d in table.items():
        m = d.get("median_chars")
        chars = f"{m['reference']:g} / {m['a']:g} / {m['b']:g}" if m else "-"
        same = f"{d['identical']:.1f}" if "identical" in d else "-"
        print(f"{shape:<16}{d['n']:>5}{d['edit_similarity_diff']:>14.2f}{d['standard_error']:>8.2f}"
              f"{d['exact_only_a']:>14}{d['exact_only_b']:>8}{chars:>28}{same:>13}")
    for shape, d in table.items():
        if "pass" in d:
            p = d["pass"]
            print(f"{shape}: pass@1 a {p['a']:.2f} %, b {p['b']:.2f} %, b-a {p['diff']:+.2f} +/- {p['standard_error']:.2f} "
                  f"points ({p['only_a']} passed only by a, {p['only_b']} only by b)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="infill eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint directory or hub id (default: embedded starter)")
    ap.add_argument("--corpus", default="data/corpus", help="corpus directory with heldout.jsonl.gz")
    ap.add_argument("--humaneval", default=None,
                    help="HumanEval-Infilling directory (default: ../shared/data/humaneval-infilling if present)")
    ap.add_argument("--sets", default="single-line,multi-line,random-span-light",
                    help="HumanEval-Infilling sets, comma-separated")
    ap.add_argument("--limit", type=int, default=0, help="at most this many records per HumanEval set (strided)")
    ap.add_argument("--per-shape", type=int, default=100, help="held-out cases per shape")
    ap.add_argument("--exclude-heldout", metavar="CORPUS", default=None,
                    help="skip the files of this corpus's held-out split: a development set of held-out files "
                         "that the evaluation (--corpus data/corpus) never sees, for tuning settings")
    ap.add_argument("--oracle-length", action="store_true",
                    help="also fill every held-out case and HumanEval task with its true length in tokens (no stop) "
                         "and print pass@1, exact match and edit similarity beside the default run, paired")
    ap.add_argument("--via", choices=("engine", "raw"), default="engine",
                    help="engine (default): every case planned, filled and finished by infill.engine as the editor "
                         "does (post-processing, checks, self-correction, choice); raw: the denoiser alone at the "
                         "case's canvas (--stop-bias and --oracle-length always fill this way; the sampler and "
                         "copy-prior flags apply to both)")
    ap.add_argument("--binding-rows", type=int, default=None, metavar="N",
                    help="with the engine: its binding-lead rows (infill fill --binding-rows; default: the engine's)")
    ap.add_argument("--result-rows", type=int, default=None, metavar="N",
                    help="with the engine: its result-lead rows (infill fill --result-rows; default: the engine's)")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--speculate", type=int, default=0,
                    help="self-speculative decoding: model calls score up to this many canvases (the next steps' drafts), "
                         "keeping the drafts the step rule confirms: the output the same settings give without it and the "
                         "canvas cache (which it turns off), in fewer calls (0: off; worth it on a GPU)")
    ap.add_argument("--stop-bias", type=float, default=None,
                    help="added to the stop token's logits for every hole (default: the engine's setting for the "
                         "hole's kind, infill.canvas.CanvasConfig)")
    ap.add_argument("--window", type=int, default=None,
                    help="commit only within this many tokens of the span's frontier (0: anywhere; default: the "
                         "sampler default)")
    ap.add_argument("--canvas-cache", choices=("on", "off"), default=None,
                    help="cache the canvas's keys/values and recompute only around the sampler's window "
                         "(default: the denoiser's setting, DenoiserOptions.canvas_cache)")
    ap.add_argument("--copy-prior", choices=("on", "off"), default=None,
                    help="mix n-gram copies from the context into the model's scores (model.copy_prior; "
                         "default: the denoiser's setting, DenoiserOptions.copy_prior)")
    ap.add_argument("--copy-weight", type=float, default=None,
                    help="the copy prior's weight, lambda's ceiling in [0, 1] (default: CopyPriorConfig.weight)")
    ap.add_argument("--copy-min-match", type=int, default=None,
                    help="the shortest context match, in tokens, that gives the copy prior a say "
                         "(default: CopyPriorConfig.min_match)")
    ap.add_argument("--copy-tau", type=float, default=None,
                    help="how fast the copy prior's weight grows with the match length (default: CopyPriorConfig.tau)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto", choices=DTYPE_NAMES,
                    help="weights' dtype (default auto: bf16 on a GPU or on a CPU with AMX, float32 on other CPUs)")
    ap.add_argument("--out", default=None, help="write results as JSON here")
    ap.add_argument("--score", metavar="JSONL", default=None,
                    help="only score a file written by `infill fill --jsonl` (HumanEval-Infilling records with "
                         "`completion`): runs each program and prints pass@1, and exact match and edit similarity "
                         "against the canonical solutions; loads no model")
    ap.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), default=None,
                    help="paired comparison of two --out files over the same held-out cases, or of two "
                         "`infill fill --jsonl` .jsonl files over the same HumanEval-Infilling tasks (edit "
                         "similarity difference with its standard error, exact matches only one got); loads no model")
    args = ap.parse_args(argv)
    if args.compare:
        return _print_compare(*args.compare)
    if args.score:
        with open(args.score, encoding="utf-8") as fh:
            recs = [json.loads(l) for l in fh if l.strip()]
        result: dict = {"file": args.score, "n": len(recs)}
        if recs and all(isinstance(r.get("confidence"), (int, float)) for r in recs):
            table = abstention_table(recs)
            result["pass@1"], result["abstention"] = table[0]["pass@1"], table
            print(f"{args.score}: {len(recs)} records, pass@1 {result['pass@1']:.2f} %")
            print("completions below a confidence floor left blank (infill.minConfidence):")
            for row in table:
                label = "all blank" if row["floor"] is None else f"floor {row['floor']:.1f}"
                print(f"  {label:<10} kept {row['kept_pct']:5.1f} %  pass@1 {row['pass@1']:.2f} %")
        else:
            result["pass@1"] = round(humaneval_pass(recs), 2)
            print(f"{args.score}: {len(recs)} records, pass@1 {result['pass@1']:.2f} %")
        if recs and all(isinstance(r.get("canonical_solution"), str) for r in recs):
            cases = fill_cases(recs)
            result["exact_match"] = round(100 * sum(c["exact"] for c in cases) / len(cases), 2)
            result["edit_similarity"] = round(statistics.fmean(c["edit_similarity"] for c in cases), 2)
            print(f"against the canonical solutions: exact match {result['exact_match']:.2f} %, "
                  f"edit similarity {result['edit_similarity']:.2f} %")
        if args.out:
            Path(args.out).write_text(json.dumps(result) + "\n")
        return 0

    from ..hub import resolve_model
    from ..sampler import SamplerOptions
    from ..text_denoiser import DenoiserOptions, TextDenoiser, default_model_path

    path = resolve_model(args.model) if args.model else default_model_path()
    sampler = SamplerOptions(steps=args.steps, threshold=args.threshold, speculate=args.speculate)
    if args.window is not None:
        sampler.window = args.window
    options = DenoiserOptions(sampler=sampler)
    if args.canvas_cache is not None:
        options.canvas_cache = args.canvas_cache == "on"
    copy = {k: v for k, v in (("weight", args.copy_weight), ("min_match", args.copy_min_match),
                              ("tau", args.copy_tau)) if v is not None}
    if args.copy_prior == "off":
        copy["weight"] = 0.0
    try:
        options.copy_prior = dataclasses.replace(options.copy_prior, **copy)
        options.copy_prior.validate()
    except ValueError as exc:
        print(f"infill eval: {exc}", file=sys.stderr)
        return 2
    den = TextDenoiser(path, device=args.device, options=options, dtype=args.dtype)
    results: dict = {"model": str(path), "threshold": args.threshold, "steps": args.steps,
                     "stop_bias": args.stop_bias, "window": sampler.window, "canvas_cache": options.canvas_cache,
                     "speculate": args.speculate, "copy_prior": dataclasses.asdict(options.copy_prior)}
    results["via"] = args.via
    engine_config = EngineConfig()
    if args.binding_rows is not None:
        if args.binding_rows < 0:
            print("infill eval: --binding-rows must be >= 0", file=sys.stderr)
            return 2
        engine_config.binding_rows = args.binding_rows
    if args.result_rows is not None:
        if args.result_rows < 0:
            print("infill eval: --result-rows must be >= 0", file=sys.stderr)
            return 2
        engine_config.result_rows = args.result_rows
    results["binding_rows"] = engine_config.binding_rows
    results["result_rows"] = engine_config.result_rows
    t0 = time.time()
    if Path(args.corpus, "heldout.jsonl.gz").is_file() and args.per_shape > 0:
        try:
            exclude = heldout_paths(args.exclude_heldout) if args.exclude_heldout else set()
        except FileNotFoundError as exc:
            print(f"infill eval: --exclude-heldout: {exc}", file=sys.stderr)
            return 2
        cases = heldout_cases(args.corpus, args.per_shape, exclude=exclude)
        results["heldout_cases"] = []
        results["heldout"] = score_heldout(den, cases, records=results["heldout_cases"], stop_bias=args.stop_bias,
                                           via=args.via, engine_config=engine_config)
        print(f"{'held-out shape':<16}{'n':>6}{'exact %':>10}{'edit sim %':>12}{'tok/call':>10}")
        for shape, d in results["heldout"].items():
            print(f"{shape:<16}{d['n']:>6}{d['exact_match']:>10.2f}{d['edit_similarity']:>12.2f}{d['tokens_per_call']:>10.2f}")
        if args.oracle_length:
            results["heldout_cases_oracle"] = []
            score_heldout(den, cases, records=results["heldout_cases_oracle"], oracle_length=True)
        results["by_confidence"] = by_confidence(results["heldout_cases"])
        print("fills kept at a confidence floor (infill.minConfidence): % kept, edit sim % of the kept")
        print(f"{'held-out shape':<16}{'rank corr':>10}" + "".join(f"{'>= ' + str(t):>16}" for t in CONFIDENCE_FLOORS))
        for shape, d in results["by_confidence"].items():
            cells = "".join(f"{row['kept_pct']:>7.0f} {row['edit_similarity']:>8.2f}" for row in d["floors"])
            print(f"{shape:<16}{d['rank_correlation']:>10.2f}{cells}")
        results["tradeoff"] = answered_tradeoff(results["heldout_cases"])
        results["chosen_floor"] = choose_floor(results["heldout_cases"])
        print_tradeoff(results["tradeoff"], results["chosen_floor"])
    elif args.per_shape > 0:
        print(f"(no held-out corpus at {args.corpus}; run `infill corpus` first)")
    he_dir = args.humaneval or next((p for p in ("../shared/data/humaneval-infilling",
                                                  "shared/data/humaneval-infilling") if Path(p).is_dir()), None)
    if he_dir:
        results["humaneval"] = {}
        print(f"{'HumanEval-Infilling':<22}{'n':>6}{'pass@1 %':>10}  setting")
        for name in [s for s in args.sets.split(",") if s]:
            recs = load_humaneval(he_dir, name, args.limit)
            for oracle in ((False, True) if args.oracle_length else (False,)):
                bias = ORACLE_STOP_BIAS if oracle else args.stop_bias
                done = fill_records(den, recs, BatchOptions(oracle_length=oracle, stop_bias=bias,
                                                             via="raw" if bias is not None else args.via,
                                                             engine=engine_config))
                passed = humaneval_passed(done)
                p = 100.0 * sum(passed) / max(1, len(passed))
                label = "oracle length" if oracle else "no oracle length"
                results["humaneval"][f"{name}{'/oracle' if oracle else ''}"] = {"n": len(done), "pass@1": round(p, 2),
                                                                               "setting": label}
                print(f"{name:<22}{len(done):>6}{p:>10.2f}  {label}")
                if args.oracle_length:
                    cases_he = [{**c, "shape": f"humaneval {name}", "passed": ok}
                                for c, ok in zip(fill_cases(done), passed)]
                    results.setdefault("humaneval_cases_oracle" if oracle else "humaneval_cases", []).extend(cases_he)
    if args.oracle_length:
        default = results.get("heldout_cases", []) + results.get("humaneval_cases", [])
        oracle = results.get("heldout_cases_oracle", []) + results.get("humaneval_cases_oracle", [])
        results["oracle_gap"] = oracle_gap(default, oracle)
        print_oracle_gap(results["oracle_gap"])
    results["seconds"] = round(time.time() - t0, 1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
