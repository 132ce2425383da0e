"""Shared pieces of the benchmark suite: settings, the held-out corpus, statistics, JSON results, goals.

Every benchmark writes ``results/<name>.json`` with the same top level (``benchmark``, ``machine``,
``command``, ``model``, ``params``, ``goals``, ...) so ``summary.py`` can build SUMMARY.md from the
files alone; no figure is ever written anywhere but in what a run measured.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


class BenchError(Exception):
    """A benchmark cannot run (missing data, a server that does not start); the runner reports it."""


@dataclass
class BenchContext:
    """What every benchmark gets from the runner."""

    out_dir: Path = RESULTS
    corpus: Path = REPO / "data" / "corpus"
    model: str | None = None  # checkpoint directory; None = the embedded starter
    threads: int = 1  # torch threads for in-process timing (the server's worker uses its own setting)
    dtype: str = "auto"  # weights' dtype in-process and in the server's worker (model.modeling.pick_dtype)
    quick: bool = False  # smoke sizes (CI)
    command: str = "infill bench"
    sizes: dict = field(default_factory=dict)  # per-benchmark overrides from the command line
    exclude: frozenset = frozenset()  # held-out file paths to skip (--exclude-heldout: a development set)


def machine() -> dict:
    """The machine the numbers come from: cores, CPU model, Python and torch versions, load."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        torch_version = None
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "torch": torch_version,
            "platform": platform.platform(), "loadavg_1min_at_start": load}


def model_path(ctx: BenchContext) -> Path:
    from model.text_denoiser import default_model_path

    return Path(ctx.model) if ctx.model else default_model_path()


def model_info(ctx: BenchContext) -> dict:
    """Which checkpoint was measured (path and a hash of its weights, so results name the model)."""
    import hashlib

    path = model_path(ctx)
    weights = path / "model.safetensors"
    digest = None
    if weights.is_file():
        h = hashlib.blake2b(digest_size=8)
        with weights.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
    import torch

    from model.modeling import pick_dtype

    dtype = str(pick_dtype(torch.device("cpu"), ctx.dtype)).removeprefix("torch.")  # what "auto" chose here
    return {"path": str(path), "weights_blake2b": digest, "dtype": dtype,
            "weights_mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(weights.stat().st_mtime))
            if weights.is_file() else None}


def load_denoiser(ctx: BenchContext, dtype: str | None = None, **options):
    """An in-process TextDenoiser for ``ctx``'s model with ``torch`` on ``ctx.threads`` threads, in
    ``dtype`` (default: ``ctx.dtype``)."""
    import torch

    from model.text_denoiser import DenoiserOptions, TextDenoiser

    torch.set_num_threads(max(1, ctx.threads))
    return TextDenoiser(model_path(ctx), device="cpu", options=DenoiserOptions(**options),
                        dtype=dtype or ctx.dtype)


def ensure_corpus(ctx: BenchContext) -> Path:
    """The held-out corpus, built with ``infill corpus`` when it is missing (about 15 s)."""
    if (ctx.corpus / "heldout.jsonl.gz").is_file():
        return ctx.corpus
    print(f"[bench] no held-out corpus at {ctx.corpus}; building it with `infill corpus --out {ctx.corpus}`",
          flush=True)
    r = subprocess.run([sys.executable, "-m", "diffusion_infill", "corpus", "--out", str(ctx.corpus)], cwd=REPO)
    if r.returncode != 0 or not (ctx.corpus / "heldout.jsonl.gz").is_file():
        raise BenchError(f"could not build the held-out corpus at {ctx.corpus} (infill corpus exited {r.returncode})")
    return ctx.corpus


def heldout_files(ctx: BenchContext, language: str = "python", min_lines: int = 40, limit: int = 50) -> list:
    """Held-out corpus files of one language with at least ``min_lines`` lines, in a fixed order."""
    from model.training.corpus import read_corpus

    files = []
    for f in read_corpus(ensure_corpus(ctx) / "heldout.jsonl.gz"):
        if f.language == language and f.text.isascii() and f.text.count("\n") >= min_lines:
            files.append(f)
    files.sort(key=lambda f: f.path)
    return files[:limit]


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear interpolation); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def distribution(values: list[float]) -> dict:
    """n, mean, p50/p95/p99, min, max of ``values`` (milliseconds), rounded to 0.1."""
    if not values:
        return {"n": 0}

    def r(x):
        return None if x is None else round(float(x), 1)

    return {"n": len(values), "mean": r(statistics.fmean(values)), "p50": r(percentile(values, 50)),
            "p95": r(percentile(values, 95)), "p99": r(percentile(values, 99)), "min": r(min(values)),
            "max": r(max(values))}


def goal(name: str, target: str, value, met: bool | None, note: str = "") -> dict:
    """One goal line: what was asked, what was measured, whether it is met (None: not measured)."""
    return {"name": name, "target": target, "value": value, "met": met, "note": note}


def write_result(ctx: BenchContext, name: str, payload: dict) -> Path:
    """Write ``results/<name>.json`` with the common header; returns its path."""
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": machine(), "command": ctx.command, "quick": ctx.quick, "model": model_info(ctx)}
    doc.update(payload)
    path = ctx.out_dir / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(obj):
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def size(ctx: BenchContext, key: str, full, quick):
    """A benchmark size: the command-line override, else the quick or the full default."""
    value = ctx.sizes.get(key)
    if value is not None:
        return value
    return quick if ctx.quick else full
