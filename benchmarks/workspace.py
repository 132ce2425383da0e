"""Related snippets from the workspace (``infill.workspace``): fills with and without them, paired, on
whole repositories the model was never trained on; and the index's size on a large synthetic workspace.

Repositories (a fixed rule): the Python packages of the system Python's ``/usr/lib/python3/dist-packages``,
a tree ``infill corpus`` never walks (its sources are this Python's stdlib and site-packages,
``/usr/include``, the JDK's ``src.zip``, ``/usr/lib/node_modules`` and Go sources, and it skips
nested ``site-packages``/``dist-packages`` directories), that are a directory with ``__init__.py``,
have no namesake in this Python's site-packages or stdlib, hold no vendored copy of another
distribution (no ``vendored``/``_vendor``/``vendor`` directory), have 4 to 40 files the workspace
scanner indexes, and none of whose files appears, by path or by the SHA-256 of its normalized text,
in the training split of ``data/corpus`` or ``data/corpus-big`` (the corpora the shipped model was
trained on; the result names the ones checked). They are ordered by the SHA-256 of their name and
the first ``REPOSITORIES`` are taken. No JavaScript repository qualifies on this machine: its only
JavaScript packages (``/usr/lib/node_modules``) are a corpus source.

Cases: in each repository's files, lines of function bodies that use a name (a ``def``, ``class`` or
top-level assignment) defined in another file of the repository and not in their own; the cursor at
the start of the line's code (the line's code removed) or mid-line after an identifier, ``.`` or
``(`` before that name (the rest of the line removed); a deterministic sample by hash, spread over the
repositories. The workspace is the repository's other files (``scan`` + ``WorkspaceIndex``; the
case's own file is never a related text). Each case is completed with ``infill.engine.complete``
within the server's default latency budget and the real model (``model/starter`` by default)
without related texts and with them (``WorkspaceIndex.related`` at the default ``related_chars``),
and, where the denoiser has a copy prior, also without related texts and with the prior off:
related texts reach the model only through the copy prior, so "related, prior off" is "none,
prior off" by construction. The arms' order rotates per case (the denoiser's context cache
favours a later request on the same context).

Per arm: exact match (the completed line equals the original), edit similarity of the text after
the cursor on that line, the share of non-empty answers, precision (exact matches among the
answers shown) and latency; paired differences against the arm without related texts with their
standard errors.

Memory: a temporary directory with ``WORKSPACE_FILES`` small files and one 10 MB file, scanned into
an index with the default caps and with the file cap lifted (the byte cap then binds); the figures
are the index's own accounting and the process's resident memory before and after.
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import math
import os
import re
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from .common import REPO, BenchContext, BenchError, load_denoiser, size, write_result

NAME = "workspace"
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")
CORPORA = (REPO / "data" / "corpus", REPO / "data" / "corpus-big")
say = partial(print, flush=True)


def default_budget_s() -> float:
    """``infill.latencyBudgetMs``'s default: past it self-correction stops, as in the server."""
    from lsp_server.settings import CompletionSettings

    return CompletionSettings().latency_budget_ms / 1000
REPOSITORIES = 6
MIN_FILES, MAX_FILES = 4, 40
VENDORED = {"vendored", "_vendor", "vendor"}
# A name a file defines for others: a function, method or class, or a top-level UPPER_CASE constant.
DEFINITION = re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)|^([A-Z][A-Z0-9_]+)\s*(?::[^=]*)?=(?!=)", re.M)
STRING = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
WORD = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Case:
    repo: str
    path: str  # the file (its path is its key in the workspace index)
    kind: str  # "line-start" or "mid-line"
    line: int  # 0-based line of the cursor
    column: int  # cursor column in the original line
    name: str  # the name defined in another file that the rest of the line uses
    document: str  # the file with the rest of the line removed
    offset: int
    reference: str  # the removed rest of the line


# ---------------------------------------------------------------------- repositories


def _train_fingerprints(log) -> tuple[set[str], list[str], list[str]]:
    """SHA-256 of every training text and the source roots of the corpora that exist."""
    from model.training.corpus import content_hash, read_corpus

    hashes: set[str] = set()
    checked, roots = [], set()
    for corpus in CORPORA:
        train = corpus / "train.jsonl.gz"
        if not train.is_file():
            continue
        for f in read_corpus(train):
            hashes.add(content_hash(f.text))
            roots.add(f.path.split("!")[0].rsplit("/", 1)[0])
        checked.append(str(corpus.relative_to(REPO)))
    log(f"[workspace] training texts checked: {len(hashes)} from {', '.join(checked) or 'no corpus'}")
    return hashes, checked, sorted(roots)


def repositories(config, log=say) -> tuple[list[tuple[str, list[tuple[str, str]]]], dict]:
    """The benchmark's repositories by the rule in the module docstring: ``[(name, [(path, text)])]``."""
    from infill.workspace import scan
    from model.training.corpus import content_hash

    if not DIST_PACKAGES.is_dir():
        raise BenchError(f"{DIST_PACKAGES} is missing: no repository the model cannot have been trained on")
    paths = sysconfig.get_paths()
    taken_names = set(os.listdir(paths["purelib"])) | set(os.listdir(paths["stdlib"]))
    hashes, checked, _ = _train_fingerprints(log)
    if not checked:
        raise BenchError("no training corpus (data/corpus, data/corpus-big) to check the repositories against")
    candidates, rejected = [], {}
    for entry in sorted(DIST_PACKAGES.iterdir()):
        name = entry.name
        if not entry.is_dir() or not (entry / "__init__.py").is_file():
            continue
        if name in taken_names or name + ".py" in taken_names:
            rejected[name] = "a namesake in site-packages or the stdlib"
            continue
        if any(d in VENDORED for _, dirs, _ in os.walk(entry) for d in dirs):
            rejected[name] = "holds a vendored copy"
            continue
        files = [(p, text) for p, lang, text in scan(str(entry), config) if lang == "python"]
        if not MIN_FILES <= len(files) <= MAX_FILES:
            rejected[name] = f"{len(files)} files"
            continue
        if any(content_hash(text) in hashes for _, text in files):
            rejected[name] = "a file in a training split"
            continue
        candidates.append((hashlib.sha256(name.encode()).hexdigest(), name, files))
    candidates.sort()
    chosen = [(name, files) for _, name, files in candidates[:REPOSITORIES]]
    rule = {"corpora_checked": checked, "candidates": [n for _, n, _ in candidates], "rejected": rejected}
    return chosen, rule


# ---------------------------------------------------------------------- cases


def python_builtins() -> frozenset[str]:
    from importlib import resources

    res = resources.files("infill").joinpath("queries", "python", "builtins.txt")
    return frozenset(w.strip() for w in res.read_text(encoding="utf-8").splitlines() if w and not w.startswith("#"))


def _definitions(text: str) -> set[str]:
    return {a or b for a, b in DEFINITION.findall(text)}


def _body_lines(text: str) -> list[tuple[int, str]]:
    """(index, line) of code lines inside function bodies, outside strings spanning lines."""
    out, in_string, in_def, depth = [], None, None, 0
    for i, line in enumerate(text.split("\n")):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        opened_before = depth
        bare = STRING.sub("", line.split("#", 1)[0])
        depth = max(0, depth + sum(bare.count(c) for c in "([{") - sum(bare.count(c) for c in ")]}"))
        if in_string:
            if in_string in line:
                in_string = None
            continue
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                in_string = quote
        if in_string or not stripped:
            continue
        if re.match(r"(async\s+)?def\s", stripped):
            in_def = indent
            continue
        if in_def is not None and indent <= in_def:
            in_def = None
        if in_def is None or opened_before or stripped.startswith(("#", "@", '"', "'")) \
                or not 8 <= len(stripped) <= 100:
            continue
        out.append((i, line))
    return out


def _distinctive(name: str) -> bool:
    """A name that says which definition it means (``iso_strptime``, ``X509``), not a common word (``close``)."""
    return "_" in name.strip("_") or any(c.isupper() for c in name) or len(name) >= 8


def cases_for(repo: str, files: list[tuple[str, str]], common: frozenset[str]) -> list[Case]:
    """Every candidate case of a repository (see the module docstring): the name, used in code (not
    in a string), is a distinctive one another file defines, that the case's file neither defines
    nor assigns, and at most three files define."""
    defs = {path: _definitions(text) for path, text in files}
    counts: dict[str, int] = {}
    for names in defs.values():
        for n in names:
            counts[n] = counts.get(n, 0) + 1
    out = []
    for path, text in files:
        external = {n for p, names in defs.items() if p != path for n in names}
        external = {n for n in external - defs[path]
                    if len(n) >= 4 and not n.startswith("__") and n not in common and counts[n] <= 3
                    and _distinctive(n)
                    and not re.search(rf"\b{n}\s*=(?!=)", text)}
        lines = text.split("\n")
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line) + 1)
        for i, line in _body_lines(text):
            code_only = STRING.sub(lambda m: " " * len(m.group()), line.split("#", 1)[0])
            hits = [m for m in WORD.finditer(code_only) if m.group() in external]
            if not hits:
                continue
            name = hits[0]
            code = len(line) - len(line.lstrip())
            after = "\n".join(lines[i + 1:])
            out.append(Case(repo, path, "line-start", i, code, name.group(),
                            text[:starts[i] + code] + "\n" + after, starts[i] + code, line[code:]))
            cuts = [j for j in range(code + 1, name.start() + 1)
                    if line[j - 1] in ".(" or (line[j - 1].isalnum() or line[j - 1] == "_") and
                    not (j < len(line) and (line[j].isalnum() or line[j] == "_"))]
            if cuts:
                j = cuts[int(hashlib.sha256(f"{path}:{i}".encode()).hexdigest(), 16) % len(cuts)]
                out.append(Case(repo, path, "mid-line", i, j, name.group(),
                                text[:starts[i] + j] + "\n" + after, starts[i] + j, line[j:]))
    return out


def sample(by_repo: dict[str, list[Case]], n: int) -> list[Case]:
    """``n`` cases spread evenly over the repositories, each repository's in hash order."""
    def key(c: Case) -> str:
        return hashlib.sha256(f"{c.repo}/{c.path}:{c.line}:{c.kind}".encode()).hexdigest()

    queues = [sorted(cs, key=key) for _, cs in sorted(by_repo.items())]
    out: list[Case] = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


# ---------------------------------------------------------------------- filling


class _PriorSwitch:
    """The denoiser with its copy prior at a given setting (``TextDenoiser.fill``'s ``copy_prior``)."""

    def __init__(self, den, copy_prior) -> None:
        self.den, self.copy_prior = den, copy_prior

    def fill(self, requests, cancel=None):
        return self.den.fill(requests, cancel, None, self.copy_prior)


def _edit_similarity(a: str, b: str) -> float:
    from model.training.evaluate import edit_similarity

    return edit_similarity(a, b)


def fill_case(case: Case, denoiser, index, related: bool, budget_s: float) -> dict:
    """One completion within the server's default latency budget: the text after the cursor on the
    completed line, and the time it took."""
    from infill import engine
    from infill.types import CancelToken, Cancelled

    started = time.perf_counter()
    texts: list[str] = []
    if related:
        texts = index.related(case.path, case.document, case.offset, "python")
    try:
        s = engine.complete(case.document, case.offset, "python", denoiser, related=texts,
                            cancel=CancelToken(deadline=time.monotonic() + budget_s))
    except Cancelled:  # the budget ran out before a first fill: the server answers nothing
        s = None
    ms = (time.perf_counter() - started) * 1000
    if s is None:
        fill = ""
    else:
        new = case.document[:s.edit.start] + s.edit.text + case.document[s.edit.end:]
        line_start = case.document.rfind("\n", 0, case.offset) + 1
        line_end = new.find("\n", case.offset)
        fill = new[line_start:len(new) if line_end < 0 else line_end][case.column:]
    fill, ref = fill.rstrip(), case.reference.rstrip()
    return {"shown": bool(fill.strip()), "exact": fill == ref, "edit_similarity": _edit_similarity(fill, ref),
            "ms": ms, "related_chars": sum(len(t) for t in texts), "related_texts": len(texts),
            "related_has_name": any(re.search(rf"\b{re.escape(case.name)}\b", t) for t in texts)}


def _mean_se(xs: list[float]) -> tuple[float | None, float | None]:
    if not xs:
        return None, None
    m = statistics.fmean(xs)
    se = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else None
    return m, se


def _r(x, digits=2):
    return None if x is None else round(x, digits)


def summarize(label: str, rows: list[dict], base: list[dict] | None) -> dict:
    n = len(rows)
    shown = sum(r["shown"] for r in rows)
    exact = sum(r["exact"] for r in rows)
    em, em_se = _mean_se([100.0 * r["exact"] for r in rows])
    es, es_se = _mean_se([100.0 * r["edit_similarity"] for r in rows])
    ne, ne_se = _mean_se([100.0 * r["shown"] for r in rows])
    precision = 100.0 * exact / shown if shown else None
    precision_se = math.sqrt(precision * (100 - precision) / shown) if shown else None
    out = {"arm": label, "cases": n, "exact_match_pct": _r(em), "exact_match_se": _r(em_se),
           "edit_similarity_pct": _r(es), "edit_similarity_se": _r(es_se),
           "non_empty_pct": _r(ne), "non_empty_se": _r(ne_se),
           "precision_pct": _r(precision), "precision_se": _r(precision_se), "shown": shown,
           "latency_ms_mean": _r(statistics.fmean(r["ms"] for r in rows), 1),
           "latency_ms_p50": _r(statistics.median(r["ms"] for r in rows), 1),
           "related_chars_mean": _r(statistics.fmean(r["related_chars"] for r in rows), 1),
           "related_has_name_pct": _r(100.0 * sum(r["related_has_name"] for r in rows) / n, 1)}
    if base is not None:
        for key, scale in (("exact", 100.0), ("edit_similarity", 100.0), ("shown", 100.0), ("ms", 1.0)):
            d, d_se = _mean_se([scale * (float(a[key]) - float(b[key])) for a, b in zip(rows, base)])
            name = {"exact": "exact_match", "shown": "non_empty", "ms": "latency_ms"}.get(key, key)
            out[f"{name}_diff"], out[f"{name}_diff_se"] = _r(d), _r(d_se)
        out["changed_pct"] = _r(100.0 * sum(a["edit_similarity"] != b["edit_similarity"] or a["exact"] != b["exact"]
                                            for a, b in zip(rows, base)) / n, 1)
    return out


# ---------------------------------------------------------------------- memory


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def memory(files: int, log=say) -> list[dict]:
    """Scan a temporary workspace of ``files`` small files and one 10 MB file, with the default caps and
    with the file cap lifted; the index's accounting and the resident memory it added."""
    from infill.workspace import WorkspaceConfig, WorkspaceIndex, scan

    tmp = tempfile.mkdtemp(prefix="infill-bench-workspace-")
    try:
        started = time.perf_counter()
        per_dir = 1000
        for i in range(files):
            d = os.path.join(tmp, f"pkg{i // per_dir:04}")
            if i % per_dir == 0:
                os.makedirs(d)
            with open(os.path.join(d, f"mod{i % per_dir:04}.py"), "w") as f:
                f.write(f'"""Handlers of group {i % 53}."""\n\n\n'
                        f"def handler_{i}(request, ctx):\n    value = lookup_{i % 97}(request.key)\n"
                        f"    if value is None:\n        raise KeyError(request.key)\n"
                        f"    return transform_{i % 31}(value, ctx.options)\n\n\n"
                        f"def lookup_{i % 97}(key):\n    return REGISTRY_{i % 13}.get(key)\n\n\n"
                        f"def validate_{i}(payload, schema=None):\n    schema = schema or SCHEMA_{i % 7}\n"
                        f"    missing = [k for k in schema.required if k not in payload]\n"
                        f"    return not missing, missing\n")
        with open(os.path.join(tmp, "big.py"), "w") as f:
            f.write("def f(x):\n    return x + 1\n\n\n" * (10 * 1024 * 1024 // 29))
        made = time.perf_counter() - started
        log(f"[workspace] synthetic workspace: {files} files + a 10 MB file in {made:.1f} s")
        rows = []
        for label, config in (("default caps", WorkspaceConfig()),
                              ("file cap lifted", WorkspaceConfig(max_files=10 * files + 10))):
            gc.collect()
            before = _rss_kb()
            t = time.perf_counter()
            index = WorkspaceIndex(config)
            scanned = 0
            for path, lang, text in scan(tmp, config):
                scanned += 1
                index.update(path, text, lang)
            seconds = time.perf_counter() - t
            gc.collect()
            after = _rss_kb()
            stats = index.stats()
            q = "def handler(request, ctx):\n    value = lookup_5(request.key)\n    return transform_"
            t = time.perf_counter()
            for _ in range(20):
                index.related("q.py", q, len(q), "python")
            related_ms = (time.perf_counter() - t) * 1000 / 20
            rows.append({"setting": label, "max_files": config.max_files, "max_total_bytes": config.max_total_bytes,
                         "files_on_disk": files + 1, "files_indexed": stats["files"],
                         "text_bytes": stats["text_bytes"], "posting_bytes": stats["posting_bytes"],
                         "chunks": stats["chunks"], "identifiers": stats["identifiers"],
                         "within_caps": stats["files"] <= config.max_files
                         and stats["text_bytes"] <= config.max_total_bytes,
                         "big_file_indexed": os.path.join(tmp, "big.py") in index,
                         "rss_added_mb": round((after - before) / 1024, 1), "rss_mb": round(after / 1024, 1),
                         "scan_s": round(seconds, 1), "related_ms": round(related_ms, 2)})
            log(f"[workspace] {label}: {stats['files']} files, {stats['text_bytes'] / 1e6:.1f} MB text, "
                f"{stats['posting_bytes'] / 1e6:.1f} MB postings, RSS +{rows[-1]['rss_added_mb']} MB "
                f"({rows[-1]['rss_mb']} MB in all), scan {seconds:.1f} s, related() {related_ms:.2f} ms")
            del index
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------- the benchmark


def run(ctx: BenchContext) -> dict:
    from infill.workspace import WorkspaceConfig, WorkspaceIndex, keywords, scan

    n_cases = size(ctx, "workspace_cases", 120, 6)
    n_files = size(ctx, "workspace_files", 100_000, 2_000)
    phases = {}
    t = time.perf_counter()
    mem = memory(n_files)
    phases["memory_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    config = WorkspaceConfig()
    repos, rule = repositories(config)
    if not repos:
        raise BenchError(f"no repository qualifies under the rule (rejected: {rule['rejected']})")
    common = keywords("python") | python_builtins()
    by_repo = {name: cases_for(name, files, common) for name, files in repos}
    cases = sample(by_repo, n_cases)
    say(f"[workspace] repositories: " + ", ".join(f"{n} ({len(f)} files, {len(by_repo[n])} candidates)"
                                                    for n, f in repos), flush=True)
    indexes = {}
    for name, files in repos:
        index = WorkspaceIndex(config)
        for path, text in files:
            index.update(path, text, "python")
        indexes[name] = index
    phases["repositories_s"] = round(time.perf_counter() - t, 1)
    budget = default_budget_s()
    den = load_denoiser(ctx)
    has_prior = "copy_prior" in inspect.signature(den.fill).parameters
    arms: list[tuple[str, object, bool]] = [("no related", den, False), ("related", den, True)]
    if has_prior:
        from model.copy_prior import CopyPriorConfig

        off = replace(den.options.copy_prior, weight=0.0)
        arms = [("no related, copy prior off", _PriorSwitch(den, off), False),
                ("no related", den, False), ("related", den, True)]
    results: dict[str, list[dict]] = {label: [] for label, _, _ in arms}
    started = time.perf_counter()
    for i, case in enumerate(cases):
        for k in range(len(arms)):
            label, denoiser, related = arms[(i + k) % len(arms)]
            results[label].append(fill_case(case, denoiser, indexes[case.repo], related, budget))
        if (i + 1) % 20 == 0:
            print(f"[workspace] {i + 1}/{len(cases)} cases ({time.perf_counter() - started:.0f} s)", flush=True)
    phases["fills_s"] = round(time.perf_counter() - started, 1)
    base = results["no related"]
    rows = [summarize(label, results[label], None if label == "no related" else base) for label, _, _ in arms]
    for r in rows:
        diff = "" if "exact_match_diff" not in r else (
            f"; vs no related: exact {r['exact_match_diff']:+g} ± {r['exact_match_diff_se']}, edit sim "
            f"{r['edit_similarity_diff']:+g} ± {r['edit_similarity_diff_se']}, latency {r['latency_ms_diff']:+g} ± "
            f"{r['latency_ms_diff_se']} ms")
        print(f"[workspace] {r['arm']}: exact {r['exact_match_pct']}%, edit sim {r['edit_similarity_pct']}%, "
              f"non-empty {r['non_empty_pct']}%, precision {r['precision_pct']}%, latency p50 {r['latency_ms_p50']} ms"
              + diff, flush=True)
    kinds: dict[str, int] = {}
    for c in cases:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    payload = {
        "params": {"cases": len(cases), "kinds": kinds, "threads": ctx.threads, "copy_prior_in_denoiser": has_prior,
                   "related_chars": config.related_chars, "snippet_lines": config.snippet_lines,
                   "repositories": {n: {"files": len(f), "candidates": len(by_repo[n]),
                                        "cases": sum(c.repo == n for c in cases)} for n, f in repos},
                   "rule": rule, "synthetic_files": n_files, "latency_budget_s": budget, **phases},
        "rows": rows, "memory": mem,
        "goals": [],
        "notes": f"Each fill has the server's default latency budget ({budget:g} s). Paired differences are "
                 "against the 'no related' arm (copy prior at the denoiser's default), mean of per-case "
                 "differences with its standard error. Precision: exact matches among the "
                 "non-empty answers (binomial standard error). Latency includes picking the related snippets. "
                 "related_has_name_pct: cases whose related texts contain the name the removed text uses.",
    }
    write_result(ctx, NAME, payload)
    return payload


if __name__ == "__main__":  # python -m benchmarks.workspace [--quick]
    from .common import BenchContext as _Ctx

    sys.exit(0 if run(_Ctx(quick="--quick" in sys.argv)) else 1)
