"""Measure the machine at model load and pick the serving defaults from what it measured.

On a CPU the fastest settings depend on the machine as it is: bf16 weights halve the time of a
long-context forward on a CPU with bf16 instructions (AMX, avx512_bf16) but can slow the short
cached steps; torch's default of one thread per core is several times slower than one thread when
another process keeps a core busy. So the worker times one single-line fill's two kinds of model
call (the first, over the whole context; a cached step over a few canvas positions) for each
candidate (threads, dtype), in well under two seconds, and keeps the one whose estimated fill is
fastest. Settings the user gave (dtype, threads, steps) are kept as given and only measured. If a
single-line fill would not fit the latency budget, a step budget (fewer, wider model calls) is
set; if even that does not fit, ``Calibration.message`` says so for the client to show.

``decide`` is the pure part (timings in, choice out); ``measure`` and ``load_calibrated`` time the
real model. Nothing is written to disk: every load measures again.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

log = logging.getLogger(__name__)

DTYPE_CHOICES = ("float32", "bfloat16")  # what a CPU's "auto" chooses between


def _line_rest_tokens() -> int:
    from infill.canvas import CanvasConfig

    return CanvasConfig().line_rest_tokens


def _context_budget():
    from infill.types import ContextBudget

    return ContextBudget()


@dataclass
class CalibrationConfig:
    """What the load-time measurement times and what it aims for."""

    # The single-line fill timed: the context at the denoiser's caps (a cursor inside a file of
    # some size) and the rest-of-line canvas the engine lays out (plus the token a healed word adds).
    prefix_tokens: int = field(default_factory=lambda: _context_budget().prefix_tokens)
    suffix_tokens: int = field(default_factory=lambda: _context_budget().suffix_tokens)
    canvas_tokens: int = field(default_factory=lambda: _line_rest_tokens() + 1)
    timed_steps: int = 3  # cached steps timed per candidate (their median is the step time)
    window: int = 4  # canvas columns a step scores (the sampler's window)
    # The time a single-line fill should fit in (the language server's default latency budget;
    # a worker told its client's budget passes that), and the share of it the estimate may use:
    # on a shared machine one call's time varies twofold from one call to the next.
    budget_ms: float = 2000.0
    budget_share: float = 0.5
    # A step budget below this commits a quarter of a line per call or more; rather than fill that
    # coarsely, the fill is reported as not fitting.
    min_steps: int = 4
    # bf16 weights round the model's scores: chosen only when their fill is this much faster.
    bf16_min_speedup: float = 1.1
    # Thread counts are compared on a short first call (this many context tokens) before the full
    # timing, which runs at the fastest count only: a count whose threads wait on a busy core takes
    # seconds per full call.
    probe_tokens: int = 64
    probe_slower: float = 3.0
    max_measure_s: float = 2.0  # bf16 is not timed when float32's timing alone took longer
    max_parameters: int = 200_000_000  # larger models are not timed at load (one call takes seconds)


@dataclass(frozen=True)
class Timing:
    """One candidate's measured calls, in milliseconds (None: not timed)."""

    dtype: str
    threads: int
    warmup_ms: float
    first_ms: float | None = None
    step_ms: float | None = None

    @property
    def complete(self) -> bool:
        return self.first_ms is not None and self.step_ms is not None


def fill_ms(first_ms: float, step_ms: float, calls: int) -> float:
    """A fill of ``calls`` model calls: the first over the whole context, the rest cached steps."""
    return first_ms + max(0, calls - 1) * step_ms


def steps_within(target_ms: float, first_ms: float, step_ms: float, canvas: int) -> int:
    """The most model calls (at most one per canvas token) whose fill takes at most ``target_ms``;
    0 when even the first call alone takes longer."""
    if first_ms > target_ms:
        return 0
    if step_ms <= 0:
        return canvas
    return min(canvas, 1 + int(math.floor((target_ms - first_ms) / step_ms)))


@dataclass
class Calibration:
    """What the load-time measurement chose and why (``to_wire``: the worker's health fields)."""

    dtype: str
    threads: int
    steps: int  # the sampler's step budget the worker set; 0: the sampler's default (one per token)
    forward_ms: float | None  # the chosen candidate's first call over the timed context
    step_ms: float | None  # ... and one cached step
    fill_calls: int  # model calls of the estimated single-line fill (its canvas, or the step budget)
    fill_ms_estimate: float | None
    budget_ms: float
    fits: bool  # the estimate is within the budget's share
    dtype_reason: str
    threads_reason: str
    steps_reason: str
    message: str | None = None  # one sentence for the user when the fill does not fit
    timings: list[dict] = field(default_factory=list)
    probes_ms: dict = field(default_factory=dict)  # {threads: ms of the short call thread counts were compared on}
    measure_ms: float | None = None
    context_tokens: int = 0
    machine: dict = field(default_factory=dict)

    def to_wire(self) -> dict:
        return asdict(self)


def choose_threads(probes: dict[int, float], setting: int = 0) -> tuple[int, str]:
    """The thread count to serve on from ``probes`` ({threads: ms of the same short call}): the
    setting when one is given, else the fastest, fewer threads on ties within 5 %."""
    if setting > 0:
        return setting, "as set"
    if not probes:
        raise ValueError("no thread counts were timed")
    fastest = min(probes.values())
    n = min(k for k, v in probes.items() if v <= fastest * 1.05)
    rest = "; ".join(f"{k}: {v:.0f} ms" for k, v in sorted(probes.items()))
    return n, (f"{n} thread(s) fastest on a short call ({rest})" if len(probes) > 1
               else "the only thread count timed")


def _best(timings: list[Timing], calls: int, min_speedup: float) -> Timing | None:
    """The candidate with the fastest estimated fill, bf16 handicapped by ``min_speedup``."""
    done = [t for t in timings if t.complete]
    if not done:
        return None
    return min(done, key=lambda t: fill_ms(t.first_ms, t.step_ms, calls) * (min_speedup if t.dtype == "bfloat16" else 1.0))


def decide(timings: list[Timing], config: CalibrationConfig, dtype_setting: str = "auto", threads_setting: int = 0,
           steps_setting: int = 0, default_dtype: str = "float32", default_threads: int = 1,
           threads_reason: str | None = None) -> Calibration:
    """The serving choice from measured ``timings``: the candidate (dtype, threads) with the fastest
    estimated single-line fill among those the settings allow, then a step budget when that fill
    would take more than the budget's share. ``default_*``: what is used when nothing was timed;
    ``threads_reason``: how the thread count of ``timings`` was chosen, when it was chosen before."""
    canvas = config.canvas_tokens
    calls = canvas if steps_setting <= 0 else min(steps_setting, canvas)
    allowed = [t for t in timings
               if (dtype_setting == "auto" or t.dtype == dtype_setting) and (threads_setting <= 0 or t.threads == threads_setting)]
    best = _best(allowed, calls, config.bf16_min_speedup)
    target = config.budget_ms * config.budget_share
    wire = [asdict(t) for t in timings]
    if best is None:
        return Calibration(dtype=default_dtype, threads=default_threads, steps=max(0, steps_setting), forward_ms=None,
                           step_ms=None, fill_calls=calls, fill_ms_estimate=None, budget_ms=config.budget_ms, fits=True,
                           dtype_reason="not measured", threads_reason="not measured", steps_reason="not measured",
                           timings=wire)
    dtype_reason = _dtype_reason(best, allowed, calls, dtype_setting, config.bf16_min_speedup)
    threads_reason = threads_reason or _threads_reason(best, allowed, calls, threads_setting)
    steps = max(0, steps_setting)
    estimate = fill_ms(best.first_ms, best.step_ms, calls)
    if steps_setting > 0:
        steps_reason = "as set"
    elif estimate <= target:
        steps_reason = f"one call per token fits: about {estimate:.0f} ms for {calls} calls"
    else:
        k = steps_within(target, best.first_ms, best.step_ms, canvas)
        steps = max(k, config.min_steps)
        calls = min(steps, canvas)
        estimate = fill_ms(best.first_ms, best.step_ms, calls)
        steps_reason = (f"one call per token ({canvas}) would take about "
                        f"{fill_ms(best.first_ms, best.step_ms, canvas):.0f} ms; at most {steps} calls per fill")
    fits = estimate <= target
    message = None
    if not fits:
        message = (f"a single-line fill takes about {estimate:.0f} ms on this machine ({best.dtype}, "
                   f"{best.threads} thread(s), {best.first_ms:.0f} ms per forward), more than half the latency "
                   f"budget of {config.budget_ms:.0f} ms: completions will often come back empty; raise the "
                   f"latency budget or use a faster device")
    return Calibration(dtype=best.dtype, threads=best.threads, steps=steps, forward_ms=round(best.first_ms, 1),
                       step_ms=round(best.step_ms, 1), fill_calls=calls, fill_ms_estimate=round(estimate, 1),
                       budget_ms=config.budget_ms, fits=fits, dtype_reason=dtype_reason,
                       threads_reason=threads_reason, steps_reason=steps_reason, message=message, timings=wire)


def _dtype_reason(best: Timing, allowed: list[Timing], calls: int, setting: str, min_speedup: float) -> str:
    if setting != "auto":
        return "as set"
    rival = next((t for t in allowed if t.complete and t.threads == best.threads and t.dtype != best.dtype), None)
    if rival is None:
        return "the only dtype timed (the CPU has no bf16 instructions)" if best.dtype == "float32" \
            else "the only dtype timed"
    ours, theirs = fill_ms(best.first_ms, best.step_ms, calls), fill_ms(rival.first_ms, rival.step_ms, calls)
    if best.dtype == "bfloat16":
        return f"bfloat16 fill {ours:.0f} ms vs float32 {theirs:.0f} ms"
    return (f"float32 fill {ours:.0f} ms vs bfloat16 {theirs:.0f} ms "
            f"(bfloat16 must be {min_speedup:.2g}x faster to be chosen)")


def _threads_reason(best: Timing, allowed: list[Timing], calls: int, setting: int) -> str:
    if setting > 0:
        return "as set"
    others = [t for t in allowed if t.dtype == best.dtype and t.threads != best.threads]
    if not others:
        return "the only thread count timed"
    parts = []
    for t in others:
        if t.complete:
            parts.append(f"{t.threads} thread(s): {fill_ms(t.first_ms, t.step_ms, calls):.0f} ms")
    return f"{best.threads} thread(s): {fill_ms(best.first_ms, best.step_ms, calls):.0f} ms; " + "; ".join(parts)


# --------------------------------------------------------------------------- the machine

def physical_cores() -> int:
    """Cores this process may run on, counting a core's hardware threads once (``/proc/cpuinfo``'s
    (physical id, core id) pairs; the CPU count where those are missing)."""
    try:
        usable = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        usable = set(range(os.cpu_count() or 1))
    cores, proc, phys = set(), None, "0"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "processor":
                proc = int(value) if value.isdigit() else None
            elif key == "physical id":
                phys = value
            elif key == "core id" and proc in usable:
                cores.add((phys, value))
    except OSError:
        pass
    return max(1, min(len(cores) or len(usable), len(usable)))


def machine_info() -> dict:
    """The CPU this process runs on, the flags that decide bf16's speed, and its cores and threads."""
    import torch

    from .modeling import cpu_bf16_kind, cpu_flags

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = cpu_flags()
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        capability = None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "physical_cores": physical_cores(),
            "torch_threads_default": torch.get_num_threads(), "torch_cpu_capability": capability,
            "bf16": cpu_bf16_kind(flags),
            "flags": {f: f in flags for f in ("amx_tile", "amx_bf16", "avx512_bf16", "avx512f", "avx2")}}


def thread_candidates(default: int, cores: int) -> list[int]:
    """Thread counts worth timing, fewest first: one, the physical cores and torch's default."""
    return sorted({1, max(1, cores), max(1, default)})


# --------------------------------------------------------------------------- timing the model

def _row(config: CalibrationConfig, vocab: int, first_id: int):
    import torch

    from .cache import Row

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(first_id, vocab, (config.prefix_tokens + config.suffix_tokens,), generator=g).tolist()
    return Row(prefix=ids[: config.prefix_tokens], suffix=ids[config.prefix_tokens:], canvas=config.canvas_tokens)


class _Bench:
    """Timed calls of one model on the calibration's row, the way the sampler makes them."""

    def __init__(self, model, dcfg, config: CalibrationConfig, canvas_cache: bool = True, refresh_span: int = 8):
        vocab = model.get_input_embeddings().weight.shape[0]
        specials = [i for i in (dcfg.mask_id, dcfg.delete_id, dcfg.eof_id, dcfg.pad_id, dcfg.bos_id) if i is not None]
        self.model, self.dcfg, self.config = model, dcfg, config
        self.row = _row(config, vocab, max(specials) + 1)
        self.pad = dcfg.pad_id if dcfg.pad_id is not None else 0
        self.boundary = next((i for i in (dcfg.bos_id, dcfg.eof_id, dcfg.pad_id) if i is not None), 0)
        self.canvas_cache, self.refresh_span = canvas_cache, refresh_span

    def canvas_model(self, row=None):
        from .cache import CanvasModel

        cm = CanvasModel(self.model, [row or self.row], self.dcfg.mask_id, self.pad, self.dcfg.shift, self.boundary,
                         use_cache=True, canvas_cache=self.canvas_cache, refresh_span=self.refresh_span)
        return cm, cm.initial_canvas(self.dcfg.mask_id)

    def probe_ms(self) -> float:
        """One first call over a short context (``probe_tokens``): cheap, and as slow as a step when
        threads wait on a busy core."""
        n = self.config.probe_tokens
        row = replace(self.row, prefix=self.row.prefix[-n:], suffix=self.row.suffix[: max(1, n // 4)])
        cm, canvas = self.canvas_model(row)
        t = time.perf_counter()
        cm(canvas)
        return (time.perf_counter() - t) * 1e3

    def calls_ms(self) -> tuple[float, float, float]:
        """(warm-up first call, first call, median cached step) in ms over the calibration's row."""
        cm, canvas = self.canvas_model()
        t = time.perf_counter()
        cm(canvas)
        warmup = (time.perf_counter() - t) * 1e3
        cm, canvas = self.canvas_model()
        t = time.perf_counter()
        cm(canvas)
        first = (time.perf_counter() - t) * 1e3
        steps = []
        for i in range(min(self.config.timed_steps, canvas.shape[1])):
            canvas = canvas.clone()
            canvas[0, i] = self.row.prefix[i]  # a committed token
            t = time.perf_counter()
            cm(canvas, slice(i, min(canvas.shape[1], i + self.config.window)))
            steps.append((time.perf_counter() - t) * 1e3)
        return warmup, first, (sorted(steps)[len(steps) // 2] if steps else 0.0)


def measure(model, dcfg, config: CalibrationConfig, dtype: str, threads: int, canvas_cache: bool = True,
            refresh_span: int = 8) -> Timing:
    """Time one candidate on ``threads`` threads: a warm-up first call, then a first call and
    ``timed_steps`` cached steps as the sampler makes them (one position committed per step,
    ``window`` columns scored)."""
    import torch

    torch.set_num_threads(threads)
    with torch.inference_mode():
        warmup, first, step = _Bench(model, dcfg, config, canvas_cache, refresh_span).calls_ms()
    return Timing(dtype, threads, round(warmup, 1), round(first, 1), round(step, 2))


def probe_threads(model, dcfg, config: CalibrationConfig, counts: list[int]) -> dict[int, float]:
    """{threads: ms of a short first call}, timed after one call at each count that starts its thread
    pool; a count whose starting call alone takes ``probe_slower`` times the best so far keeps that
    time (it is slower; timing it again would only cost load time)."""
    import torch

    bench = _Bench(model, dcfg, config)
    out: dict[int, float] = {}
    with torch.inference_mode():
        for n in counts:
            torch.set_num_threads(n)
            start = bench.probe_ms()
            if out and start > config.probe_slower * min(out.values()):
                out[n] = round(start, 1)
                continue
            out[n] = round(bench.probe_ms(), 1)
    return out


def as_bf16(loaded):
    """A copy of a float32 ``model.modeling.Denoiser`` with bf16 parameters (buffers such as the
    rotary frequencies stay float32, as when the checkpoint is loaded as bf16)."""
    import torch

    model = copy.deepcopy(loaded.model)
    for p in model.parameters():
        p.data = p.data.to(torch.bfloat16)
    return replace(loaded, model=model)


def calibrate_loaded(loaded, config: CalibrationConfig, dtype_setting: str = "auto", threads_setting: int = 0,
                     steps_setting: int = 0, canvas_cache: bool = True, refresh_span: int = 8):
    """Time the candidates on a loaded CPU model (float32 when ``dtype_setting`` is auto); returns
    (the model to serve, possibly its bf16 copy, and the ``Calibration``). Leaves torch on the
    chosen thread count."""
    import torch

    started = time.perf_counter()
    info = machine_info()
    default_threads = torch.get_num_threads()
    n_params = sum(p.numel() for p in loaded.model.parameters())
    current = str(loaded.dtype).removeprefix("torch.")
    if n_params > config.max_parameters:
        cal = decide([], config, dtype_setting, threads_setting, steps_setting, current,
                     threads_setting or default_threads)
        cal.dtype_reason = cal.threads_reason = cal.steps_reason = \
            f"not measured: {n_params / 1e6:.0f} M parameters take seconds per call on a CPU"
        cal.machine = info
        return loaded, cal
    counts = [threads_setting] if threads_setting > 0 else thread_candidates(default_threads, info["physical_cores"])
    probes = probe_threads(loaded.model, loaded.config, config, counts) if len(counts) > 1 else {}
    threads, threads_reason = choose_threads(probes, threads_setting) if probes else (counts[0], None)
    timings = [measure(loaded.model, loaded.config, config, current, threads, canvas_cache, refresh_span)]
    bf16, skipped = None, None
    if dtype_setting == "auto" and current == "float32" and info["bf16"] is not None:
        if time.perf_counter() - started <= config.max_measure_s:
            bf16 = as_bf16(loaded)
            timings.append(measure(bf16.model, loaded.config, config, "bfloat16", threads, canvas_cache, refresh_span))
        else:
            skipped = f"bfloat16 not timed: float32's timing took {time.perf_counter() - started:.1f} s"
    cal = decide(timings, config, dtype_setting, threads_setting, steps_setting, current, default_threads,
                 threads_reason)
    cal.probes_ms = {str(k): v for k, v in probes.items()}
    cal.dtype_reason = skipped or cal.dtype_reason
    cal.machine = info
    cal.context_tokens = config.prefix_tokens + config.suffix_tokens
    cal.measure_ms = round((time.perf_counter() - started) * 1e3, 1)
    torch.set_num_threads(cal.threads)
    chosen = bf16 if cal.dtype == "bfloat16" and bf16 is not None else loaded
    log.info("calibration: %s, %d thread(s), steps %s: %s ms per forward, single-line fill about %s ms (%s; %s) "
             "measured in %.0f ms", cal.dtype, cal.threads, cal.steps or "auto", cal.forward_ms, cal.fill_ms_estimate,
             cal.dtype_reason, cal.threads_reason, cal.measure_ms)
    if cal.message:
        log.warning("%s", cal.message)
    return chosen, cal


def load_calibrated(path, device: str = "auto", dtype: str = "auto", threads: int = 0,
                    config: CalibrationConfig | None = None, options=None):
    """A ``TextDenoiser`` on the settings the machine serves fastest (CPU: measured here; a GPU keeps
    ``pick_dtype``'s choice). Its ``calibration`` attribute holds the ``Calibration`` (None on a GPU
    or when timing failed, which is logged and leaves the settings as given). ``options``: the
    ``DenoiserOptions`` to serve with (default: its defaults); their sampler's steps are the steps
    setting, and a step budget the measurement sets replaces them in a copy."""
    import torch

    from .modeling import load_denoiser, pick_device
    from .text_denoiser import DenoiserOptions, TextDenoiser, default_model_path

    path = path or default_model_path()
    config = config or CalibrationConfig()
    if threads > 0:
        torch.set_num_threads(threads)
    options = replace(options) if options is not None else DenoiserOptions()
    if pick_device(device).type != "cpu":
        den = TextDenoiser(path, device=device, options=options, dtype=dtype)
        den.calibration = None
        return den
    loaded = load_denoiser(path, device="cpu", dtype="float32" if dtype == "auto" else dtype)
    calibration = None
    try:
        loaded, calibration = calibrate_loaded(loaded, config, dtype, threads, options.sampler.steps,
                                               options.canvas_cache, options.refresh_span)
    except Exception:  # noqa: BLE001 - timing is an optimisation: serve on the settings as given
        log.exception("calibration failed; serving %s on %d thread(s)", loaded.dtype, torch.get_num_threads())
    if calibration is not None and calibration.steps != options.sampler.steps:
        options.sampler = replace(options.sampler, steps=calibration.steps)
    den = TextDenoiser(options=options, loaded=loaded)
    den.calibration = calibration
    return den
