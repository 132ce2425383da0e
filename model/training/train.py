"""Training: AR pre-training and masked-diffusion adaptation of the embedded denoiser.

``--objective ar``: next-token loss with a causal mask (fast to learn per unit of compute).
``--objective diffusion``: MDLM/LLaDA loss with a full mask, mixed with syntax-span canvases
(``model.training.masking``). With the logit shift (Dream/DiffuLLaMA) the AR head is reused unchanged: the
hidden state at i-1 predicts the masked token at i.

Resumable (``--resume DIR`` restores weights, optimizer and counters), saves every
``--save-minutes``, stops at ``--budget-minutes``; the learning rate follows the wall-clock budget
(warmup, then cosine to 10 %). Deterministic for a given seed and thread count.

``--ema DECAY`` also keeps an exponential moving average of the weights (updated every step, in
fp32) and saves it with every save as a checkpoint of its own, ``OUT/ema`` (held-out loss printed
beside the weights'): an average over the last ~1/(1 - DECAY) steps, which smooths what a high
learning rate leaves noisy, at no training cost. ``--resume`` continues the average when the
directory has one. ``infill export OUT/ema DST`` ships it.

``--preset NAME`` takes its defaults from a preset (``PRESETS``; explicit flags override them).
``gpu-lease`` trains from scratch on a GPU for a fixed lease: AR first, then diffusion, in bf16 and
compiled, at the largest batch that fits (``--batch-size 0`` probes it), saving every few minutes,
stopping early enough that the final save, ``infill export`` into ``OUT/export`` and the report
(``OUT/report/report.json`` and ``report.md``: tokens, throughput, held-out loss curve) fit the budget.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import math
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..config import DiffusionConfig
from .masking import MaskingConfig, ar_batch, make_batch
from ..modeling import causal_mask, count_parameters, embedded_qwen2_config, full_mask, pick_dtype, save_denoiser
from ..tokenizer import TOKENIZER_FILE, Tokenizer

from transformers import AutoModelForCausalLM, Qwen2ForCausalLM


def diffusion_loss(model, batch, shift: bool, device, body=None) -> torch.Tensor:
    """Sum of w * CE over scored positions / number of eligible positions. ``body`` runs in place
    of ``model.model`` (the same weights, e.g. ``torch.compile``d)."""
    inp = torch.from_numpy(batch.input_ids).to(device)  # (B, S)
    tgt = torch.from_numpy(batch.targets).to(device)  # (B, S)
    lm = torch.from_numpy(batch.loss_mask).to(device)  # (B, S)
    w = torch.from_numpy(batch.weights).to(device)  # (B, S)
    B, S = inp.shape
    hidden = (model.model if body is None else body)(input_ids=inp, attention_mask=full_mask(B, S, S, device)).last_hidden_state  # (B, S, D)
    if shift:
        lm = lm.clone()
        lm[:, 0] = False
        src = torch.nn.functional.pad(lm[:, 1:], (0, 1))  # hidden at i-1 predicts token i
        h = hidden[src]  # (N, D)
    else:
        h = hidden[lm]  # (N, D)
    logits = model.lm_head(h).float()  # (N, V)
    ce = F.cross_entropy(logits, tgt[lm], reduction="none")  # (N,)
    return (ce * w[lm]).sum() / max(1, batch.n_eligible)


def ar_loss(model, windows: np.ndarray, device, body=None) -> torch.Tensor:
    x = torch.from_numpy(windows).to(device)  # (B, S+1)
    inp, tgt = x[:, :-1], x[:, 1:]
    B, S = inp.shape
    hidden = (model.model if body is None else body)(input_ids=inp, attention_mask=causal_mask(B, S, device)).last_hidden_state  # (B, S, D)
    return F.cross_entropy(model.lm_head(hidden).float().reshape(B * S, -1), tgt.reshape(-1))


def sorted_spans(spans: np.ndarray) -> np.ndarray:
    """Span rows ordered by start (``model.training.masking`` finds the spans inside a window by binary search)."""
    return spans[np.argsort(spans[:, 0], kind="stable")] if len(spans) else spans


def load_data(dirs: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training tokens and spans of one or more ``infill prepare`` outputs, one stream after the other
    (a corpus given twice, or contained in another, is seen that much more often: a mix by weight), and
    the first one's held-out tokens and spans. Every directory must share the first one's tokenizer."""
    first = (dirs[0] / TOKENIZER_FILE).read_bytes()
    for d in dirs[1:]:
        if (d / TOKENIZER_FILE).read_bytes() != first:
            raise SystemExit(f"infill train: {d} was prepared with another tokenizer than {dirs[0]}")
    if len(dirs) == 1:
        tokens = np.load(dirs[0] / "train.tokens.npy", mmap_mode="r")
        spans = np.load(dirs[0] / "train.spans.npy")
    else:
        parts = [np.load(d / "train.tokens.npy", mmap_mode="r") for d in dirs]
        starts = np.cumsum([0] + [len(p) for p in parts[:-1]])
        tokens = np.concatenate(parts)
        spans = np.concatenate([np.load(d / "train.spans.npy") + s for d, s in zip(dirs, starts)])
    held_tokens = np.load(dirs[0] / "heldout.tokens.npy", mmap_mode="r")
    held_spans = np.load(dirs[0] / "heldout.spans.npy")
    return tokens, sorted_spans(spans), held_tokens, sorted_spans(held_spans)


def lr_at(frac: float, base: float, warmup_frac: float) -> float:
    if frac < warmup_frac:
        return base * max(frac / warmup_frac, 0.02)
    p = min(1.0, (frac - warmup_frac) / max(1e-9, 1 - warmup_frac))
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


EMA_DIR = "ema"  # inside a training checkpoint: the moving average of its weights, a checkpoint itself


def save_state(out: Path, model, tok, dcfg, opt, meta: dict, ema=None, ema_meta: dict | None = None) -> None:
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    save_denoiser(model, tok, dcfg, tmp, extra=meta)
    if ema is not None:
        save_denoiser(ema, tok, dcfg, tmp / EMA_DIR, extra=ema_meta)
    state = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p)
            if st:
                n = names[id(p)]
                state[f"{n}.exp_avg"] = st["exp_avg"].contiguous()
                state[f"{n}.exp_avg_sq"] = st["exp_avg_sq"].contiguous()
                state[f"{n}.step"] = torch.as_tensor(st["step"]).reshape(1).float()
    save_file(state, str(tmp / "train_state.safetensors"))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def load_opt_state(path: Path, model, opt) -> None:
    f = path / "train_state.safetensors"
    if not f.is_file():
        return
    state = load_file(str(f))
    for n, p in model.named_parameters():
        if f"{n}.exp_avg" in state:
            opt.state[p] = {"exp_avg": state[f"{n}.exp_avg"], "exp_avg_sq": state[f"{n}.exp_avg_sq"],
                            "step": state[f"{n}.step"].reshape(())}


@torch.no_grad()
def evaluate(model, objective, tokens, spans, dcfg, mcfg, device, batches: int = 4, batch_size: int = 8) -> float:
    model.eval()
    rng = np.random.default_rng(1234)
    total = 0.0
    for _ in range(batches):
        if objective == "ar":
            total += ar_loss(model, ar_batch(tokens, batch_size, rng, mcfg.seq_len), device).item()
        else:
            b = make_batch(tokens, spans, batch_size, rng, mcfg, dcfg.mask_id, dcfg.delete_id)
            total += diffusion_loss(model, b, dcfg.shift, device).item()
    model.train()
    return total / batches


@dataclass(frozen=True)
class GpuLease:
    """``--preset gpu-lease``: one GPU for a fixed number of minutes, from scratch to a shippable
    checkpoint. Each field is the default of the ``infill train`` flag of the same name."""

    objective: str = "diffusion"
    ar_fraction: float = 0.3  # the first 30 % of the run next-token, the rest diffusion (AR -> diffusion route)
    hidden: int = 384  # 8 x 384: 16.9 M parameters, 33.8 MB of fp16 weights (the size MODEL_CARD.md chooses)
    layers: int = 8
    heads: int = 6
    kv_heads: int = 2
    intermediate: int = 1152
    seq_len: int = 512
    batch_size: int = 0  # the largest that fits, probed
    max_batch_size: int = 512
    lr: float = 1e-3
    max_holes: int = 16
    engine_canvas_fraction: float = 0.5
    bf16: str = "on"
    compile: bool = True
    save_minutes: float = 3.0
    on_time: bool = True
    export: bool = True
    report: bool = True
    max_weights_mb: float = 64.0


PRESETS = {"gpu-lease": GpuLease}


def apply_preset(ap: argparse.ArgumentParser, name: str) -> None:
    """Make a preset's fields the parser's defaults (flags given on the command line still win)."""
    fields = dataclasses.asdict(PRESETS[name]())
    dests = {a.dest for a in ap._actions}
    unknown = set(fields) - dests
    assert not unknown, f"preset {name} sets options infill train does not have: {sorted(unknown)}"
    ap.set_defaults(**fields)


def probe_batch_size(fits: Callable[[int], bool], start: int, limit: int) -> int:
    """The largest batch, doubling from ``start`` up to ``limit`` (the last one tried is ``limit``
    itself), for which ``fits(batch)`` is true. Raises ValueError when ``start`` does not fit."""
    if not 1 <= start <= limit:
        raise ValueError(f"batch probe: need 1 <= start ({start}) <= limit ({limit})")
    best, b = 0, start
    while True:
        if not fits(b):
            break
        best = b
        if b == limit:
            break
        b = min(2 * b, limit)
    if best == 0:
        raise ValueError(f"batch probe: a batch of {start} rows does not fit")
    return best


def step_fits(step: Callable[[int], torch.Tensor], model, device, memory_fraction: float = 0.85) -> Callable[[int], bool]:
    """``fits`` for ``probe_batch_size``: one forward and backward of ``step(batch)`` (gradients
    dropped, weights untouched) runs, and on a GPU its peak stays under ``memory_fraction`` of the
    device's memory (room for the optimizer state and the compiled graph)."""
    def fits(batch: int) -> bool:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            step(batch).backward()
            ok = True
            if device.type == "cuda":
                ok = torch.cuda.max_memory_allocated(device) <= memory_fraction * torch.cuda.get_device_properties(device).total_memory
        except torch.OutOfMemoryError:
            ok = False
        model.zero_grad(set_to_none=True)
        return ok
    return fits


# in a folder of their own: a checkpoint directory holds only the files a checkpoint load accepts
REPORT_DIR, REPORT_JSON, REPORT_MD = "report", "report.json", "report.md"


def write_report(out: Path, report: dict) -> None:
    """``OUT/report/report.json`` and a short ``OUT/report/report.md`` of one run: tokens, throughput,
    held-out loss curve."""
    out = out / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    r = report
    lines = [f"# infill train: {r['params'] / 1e6:.2f} M parameters on {r['device_name']}", "",
             f"- shape: {r['layers']} layers, hidden {r['hidden']}, {r['heads']} heads ({r['kv_heads']} key/value), "
             f"MLP {r['intermediate']}; {r['fp16_mb']:.1f} MB of fp16 weights",
             f"- batch {r['batch_size']} x {r['seq_len']} tokens{' (probed)' if r['batch_probed'] else ''}, "
             f"bf16 autocast {'on' if r['bf16'] else 'off'}, {'compiled' if r['compiled'] else 'eager'}",
             f"- {r['tokens_run']:,} tokens in {r['steps']:,} steps; {r['tokens_per_second']:,.0f} tokens/s over the "
             f"training steps, {r['tokens_per_wall_second']:,.0f} over the whole run",
             f"- wall time {r['wall_seconds']:.0f} s of a {r['budget_seconds']:.0f} s budget"
             + (f"; exported to {r['export']}" if r.get("export") else ""),
             "", "| tokens seen | objective | held-out loss |", "|---:|---|---:|"]
    lines += [f"| {h['tokens_seen']:,} | {h['objective']} | {h['heldout_loss']:.4f} |" for h in r["heldout"]]
    (out / REPORT_MD).write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="infill train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", default=None,
                    help="output of `infill prepare` (default data/prepared); given more than once, the training "
                         "streams are concatenated (same tokenizer) and the first one's held-out split is scored")
    ap.add_argument("--out", default="runs/train", help="checkpoint directory written every --save-minutes")
    ap.add_argument("--resume", default=None, help="checkpoint directory to continue from (weights + optimizer)")
    ap.add_argument("--init", default=None, help="checkpoint to take weights from (fresh optimizer), e.g. after AR")
    ap.add_argument("--objective", choices=("ar", "diffusion"), default="diffusion")
    ap.add_argument("--budget-minutes", type=float, default=60.0, help="wall-clock budget; LR schedule follows it")
    ap.add_argument("--save-minutes", type=float, default=5.0)
    ap.add_argument("--batch-size", type=int, default=8,
                    help="rows per step; 0: the largest that fits, doubling from 8 up to --max-batch-size (on a GPU: "
                         "until one step's peak memory passes 85 %% of the device's)")
    ap.add_argument("--max-batch-size", type=int, default=512, help="the most rows the --batch-size 0 probe tries")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup-frac", type=float, default=0.03)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--span-fraction", type=float, default=0.7)
    ap.add_argument("--engine-canvas-fraction", type=float, default=0.0,
                    help="share of span canvases sized like the engine's (a short span on a 64-token canvas); "
                         "the rest get span + 0..32 deletes (0: every span canvas is span + deletes)")
    ap.add_argument("--max-holes", type=int, default=1,
                    help="span canvases per span row (more: more scored tokens per forward; held-out loss uses 1)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                    help="bf16 autocast for the forward and loss, weights and optimizer state in fp32 (auto: on a "
                         "GPU with bf16 units and on a CPU with AMX tiles, where it trains about 1.8x faster; "
                         "off elsewhere)")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="also keep a moving average of the weights with this decay per step (e.g. 0.999), "
                         "saved as OUT/ema (0: off)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                    help="run the training forward and backward through torch.compile (needs a C++ compiler on a "
                         "CPU; the first steps wait for it): 1.3-1.4x the tokens/s on this project's CPU")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=0,
                    help="stop after this many steps (0: budget only); the learning rate then follows whichever of "
                         "steps and wall clock is further along")
    ap.add_argument("--ar-fraction", type=float, default=0.0,
                    help="train the first this share of the run with the AR objective, then --objective (0: off)")
    ap.add_argument("--on-time", action=argparse.BooleanOptionalAction, default=False,
                    help="count the budget from launch and stop training early enough that the final save, the "
                         "export and the report fit in it (saves once at the start to time a save)")
    ap.add_argument("--export", action=argparse.BooleanOptionalAction, default=False,
                    help="at the end, write the shippable fp16 checkpoint to OUT/export (`infill export`)")
    ap.add_argument("--report", action=argparse.BooleanOptionalAction, default=False,
                    help="at the end, write OUT/report/report.json and report.md (tokens, throughput, held-out loss curve)")
    ap.add_argument("--max-weights-mb", type=float, default=0.0,
                    help="refuse a model whose fp16 weights would be larger than this (0: any size)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default=None,
                    help="take the defaults of a preset (explicit flags override them); gpu-lease: "
                         + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in dataclasses.asdict(GpuLease()).items()))
    launched = time.time()
    known, _ = ap.parse_known_args(argv)
    if known.preset:
        apply_preset(ap, known.preset)
    args = ap.parse_args(argv)
    if not 0.0 <= args.ar_fraction < 1.0:
        raise SystemExit("infill train: --ar-fraction must be in [0, 1)")
    if args.batch_size < 0 or args.max_batch_size < 1:
        raise SystemExit("infill train: --batch-size must be >= 0 and --max-batch-size >= 1")

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    dirs = [Path(d) for d in (args.data or ["data/prepared"])]
    data = dirs[0]
    tokens, spans, held_tokens, held_spans = load_data(dirs)
    src = args.resume or args.init
    if src:
        tok = Tokenizer.from_dir(src)
        dcfg = DiffusionConfig.load(src)
        model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, use_safetensors=True)
        model.config._attn_implementation = "sdpa"
        meta = json.loads((Path(src) / "training.json").read_text()) if (Path(src) / "training.json").is_file() else {}
    else:
        tok = Tokenizer.from_dir(data)
        dcfg = DiffusionConfig.load(data)
        model = Qwen2ForCausalLM(embedded_qwen2_config(
            tok.vocab_size, args.hidden, args.layers, args.heads, args.kv_heads, args.intermediate,
            max_position=dcfg.max_position))
        meta = {}
    fp16_mb = 2 * count_parameters(model) / 1e6
    if args.max_weights_mb and fp16_mb > args.max_weights_mb:
        raise SystemExit(f"infill train: the model's fp16 weights would be {fp16_mb:.1f} MB, over "
                         f"--max-weights-mb {args.max_weights_mb:g}")
    model.to(device).train()
    history = meta.get("history", [])
    tokens_seen = int(meta.get("tokens_seen", 0))
    seconds_total = float(meta.get("seconds", 0.0))
    mcfg = MaskingConfig(seq_len=args.seq_len, span_fraction=args.span_fraction, max_holes=args.max_holes,
                         engine_canvas_fraction=args.engine_canvas_fraction)
    held_mcfg = dataclasses.replace(mcfg, max_holes=1)  # held-out loss: one span canvas per row
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    if args.resume:
        load_opt_state(Path(args.resume), model, opt)
    if not 0.0 <= args.ema < 1.0:
        raise SystemExit("infill train: --ema must be in [0, 1)")
    ema = None
    if args.ema:  # fp32, on the training device; continued from the resumed run's average if it has one
        ema = copy.deepcopy(model).eval().requires_grad_(False)
        saved = Path(args.resume) / EMA_DIR / "model.safetensors" if args.resume else None
        if saved is not None and saved.is_file():
            got = ema.load_state_dict(load_file(str(saved)), strict=False)  # a tied head is stored once
            if got.unexpected_keys or set(got.missing_keys) - {"lm_head.weight"}:
                raise SystemExit(f"infill train: {saved} does not match the model: {got}")
        ema_params, live_params = list(ema.parameters()), list(model.parameters())
        ema_history = meta.get("ema_history", [])
    rng = np.random.default_rng(args.seed + len(history) * 7919)
    # bf16 autocast for the forward and loss (weights and optimizer state stay fp32) where bf16 matmuls are
    # fast: a GPU (with TF32 for what stays fp32) or an AMX CPU (measured 4.9k vs 2.8k tokens/s on one thread).
    autocast = contextlib.nullcontext()
    if args.bf16 == "on" or (args.bf16 == "auto" and pick_dtype(device, "auto") == torch.bfloat16):
        autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    bf16 = not isinstance(autocast, contextlib.nullcontext)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True

    def loss_of(objective: str, batch_size: int, batch_rng, body=None) -> torch.Tensor:
        with autocast:
            if objective == "ar":
                return ar_loss(model, ar_batch(tokens, batch_size, batch_rng, args.seq_len), device, body)
            b = make_batch(tokens, spans, batch_size, batch_rng, mcfg, dcfg.mask_id, dcfg.delete_id)
            return diffusion_loss(model, b, dcfg.shift, device, body)

    batch_size = args.batch_size
    if batch_size == 0:  # every objective the run trains must fit (AR scores every position: the larger logits)
        objectives = {args.objective} | ({"ar"} if args.ar_fraction else set())
        probe_rng = np.random.default_rng(args.seed + 1)  # the training batches' order stays the seed's
        fits = [step_fits(lambda b, o=o: loss_of(o, b, probe_rng), model, device) for o in sorted(objectives)]
        start = min(8, args.max_batch_size)
        batch_size = probe_batch_size(lambda b: all(f(b) for f in fits), start, args.max_batch_size)
        print(f"train: batch probe chose {batch_size} rows (tried up to {args.max_batch_size})", flush=True)
    # the training step's forward through torch.compile (fixed shapes: one graph); the held-out loss stays eager
    body = torch.compile(model.model, dynamic=False) if args.compile else None
    print(f"train: {count_parameters(model) / 1e6:.2f}M params, objective="
          f"{'ar then ' if args.ar_fraction else ''}{args.objective}, "
          f"{len(tokens):,} train tokens, device={device}, threads={args.threads}, batch {batch_size}, "
          f"bf16 autocast {'on' if bf16 else 'off'}{', compiled' if body is not None else ''}", flush=True)
    budget = args.budget_minutes * 60
    t0 = launched if args.on_time else time.time()
    last_save = -math.inf if args.on_time else t0  # an on-time run saves at once: the save's cost sets the reserve
    last_print = time.time()
    save_cost = 0.0  # seconds of the last save (evaluation and writing)
    step_seconds, train_seconds = 0.0, 0.0  # the last training step's seconds; all of them
    step = 0
    run_tokens = 0
    run_history: list[dict] = []
    out = Path(args.out)
    phase = {"objective": args.objective, "start_tokens": tokens_seen, "lr": args.lr, "batch": batch_size,
             "seq_len": args.seq_len, "max_holes": args.max_holes}
    if args.ar_fraction:
        phase["ar_fraction"] = args.ar_fraction
    objective = "ar" if args.ar_fraction else args.objective
    while True:
        elapsed = time.time() - t0
        # on time: the final save and the export each cost about one save
        reserve = 2.5 * save_cost + step_seconds if args.on_time else 0.0
        train_budget = max(1e-9, budget - reserve)
        frac = elapsed / train_budget
        if args.max_steps:
            frac = max(frac, step / args.max_steps)
        done = frac >= 1.0 or (args.max_steps and step >= args.max_steps)
        if done or time.time() - last_save >= args.save_minutes * 60:
            t_save = time.time()
            held = evaluate(model, objective, held_tokens, held_spans, dcfg, held_mcfg, device)
            entry = {"tokens_seen": tokens_seen, "heldout_loss": round(held, 4),
                     "objective": objective, "seconds": round(seconds_total + elapsed, 1)}
            history.append(entry)
            run_history.append(entry)
            meta = {"tokens_seen": tokens_seen, "seconds": seconds_total + elapsed, "history": history,
                    "phases": meta.get("phases", []) + ([phase] if phase else []),
                    "params": count_parameters(model), "data": " + ".join(map(str, dirs))}
            phase = None
            ema_meta, ema_note = None, ""
            if ema is not None:
                ema_held = evaluate(ema, objective, held_tokens, held_spans, dcfg, held_mcfg, device)
                ema_history.append({"tokens_seen": tokens_seen, "heldout_loss": round(ema_held, 4), "decay": args.ema})
                meta["ema_history"] = ema_history
                ema_meta = {**meta, "ema_decay": args.ema}
                ema_note = f" (moving average {ema_held:.4f})"
            save_state(out, model, tok, dcfg, opt, meta, ema, ema_meta)
            print(f"saved {out} at {tokens_seen:,} tokens, held-out loss {held:.4f}{ema_note}", flush=True)
            last_save = time.time()
            save_cost = last_save - t_save
            if done:
                break
        objective = "ar" if frac < args.ar_fraction else args.objective
        lr = lr_at(frac, args.lr, args.warmup_frac)
        for g in opt.param_groups:
            g["lr"] = lr
        t_step = time.time()
        loss = loss_of(objective, batch_size, rng, body)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(ema_params, live_params, 1.0 - args.ema)
        loss_value = loss.item()  # waits for the device: the step's time is its real time
        step_seconds = time.time() - t_step
        train_seconds += step_seconds
        step += 1
        run_tokens += batch_size * args.seq_len
        tokens_seen += batch_size * args.seq_len
        if time.time() - last_print >= 30 or step <= 3:
            el = time.time() - t0
            rate = run_tokens / max(train_seconds, 1e-9)
            print(f"step {step} {objective} loss {loss_value:.4f} lr {lr:.2e} {rate:,.0f} tok/s "
                  f"tokens {tokens_seen:,} ETA {max(0, budget - el) / 60:.1f} min", flush=True)
            last_print = time.time()
    exported = None
    if args.export:
        from .export import export

        exported = export(out, out / "export")
        print(f"exported {exported}", flush=True)
    if args.report:
        wall = time.time() - t0
        write_report(out, {
            "preset": args.preset, "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
            (platform.processor() or platform.machine()) + f", {args.threads} threads",
            "params": count_parameters(model), "fp16_mb": round(fp16_mb, 1),
            "hidden": model.config.hidden_size, "layers": model.config.num_hidden_layers,
            "heads": model.config.num_attention_heads, "kv_heads": model.config.num_key_value_heads,
            "intermediate": model.config.intermediate_size,
            "batch_size": batch_size, "batch_probed": args.batch_size == 0, "seq_len": args.seq_len,
            "bf16": bf16, "compiled": body is not None, "objective": args.objective, "ar_fraction": args.ar_fraction,
            "steps": step, "tokens_run": run_tokens, "tokens_seen": tokens_seen,
            "train_seconds": round(train_seconds, 1), "wall_seconds": round(wall, 1), "budget_seconds": budget,
            "tokens_per_second": round(run_tokens / max(train_seconds, 1e-9), 1),
            "tokens_per_wall_second": round(run_tokens / max(wall, 1e-9), 1),
            "heldout": run_history, "export": str(exported) if exported else None,
            "args": {k: v for k, v in vars(args).items() if k != "data"} | {"data": [str(d) for d in dirs]}})
        print(f"report {out / REPORT_DIR / REPORT_MD}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
