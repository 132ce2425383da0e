"""Where a cached denoising step's time goes: ``python -m benchmarks.profile_step [--dtype bfloat16]``.

One row with ``--context`` tokens of context and a ``--canvas``-token canvas on one torch thread:
times a whole step (``CanvasModel``), the network alone and the head alone, then prints
``torch.profiler``'s table for ``--steps`` steps. Not part of ``infill bench`` (no goal); it
explains the latency figures (README, Performance).
"""

from __future__ import annotations

import argparse
import time

import torch


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="model/starter")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    ap.add_argument("--context", type=int, default=1000, help="context tokens (half before, half after)")
    ap.add_argument("--canvas", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from torch.profiler import ProfilerActivity, profile

    from model.cache import CanvasModel, Row, _crop
    from model.modeling import load_denoiser

    d = load_denoiser(args.model, "cpu", args.dtype)
    cfg = d.config
    half = args.context // 2
    ids = [i % (d.tokenizer.vocab_size - 16) + 10 for i in range(args.context)]  # ordinary token ids
    row = Row(prefix=ids[:half], suffix=ids[half:], canvas=args.canvas)
    cm = CanvasModel(d.model, [row], cfg.mask_id, cfg.pad_id or 0, cfg.shift, cfg.eof_id)
    canvas = cm.initial_canvas(cfg.mask_id)  # (1, L)

    def timed(fn) -> float:
        for _ in range(3):
            fn()
        t = time.perf_counter()
        for _ in range(args.steps):
            fn()
        return (time.perf_counter() - t) / args.steps * 1000

    with torch.no_grad():
        cm(canvas)  # the context's keys/values, computed once
        block = cm._block(canvas)  # (1, Q)
        key_valid = torch.cat([cm.ctx_valid, cm.block_valid], 1)  # (1, C+Q)

        def network():
            out = d.model.model(input_ids=block, position_ids=cm.block_pos, past_key_values=cm.cache,
                                attention_mask=cm._mask(block.shape[1], key_valid), use_cache=True)
            _crop(cm.cache, cm.C)
            return out

        hidden = network().last_hidden_state  # (1, Q, D)
        step_ms = timed(lambda: cm(canvas))
        net_ms = timed(network)
        head_ms = timed(lambda: d.model.lm_head(hidden[:, 1:]))
        print(f"{args.dtype}, {args.context} context tokens, {block.shape[1]}-token block: step {step_ms:.2f} ms, "
              f"network {net_ms:.2f} ms, head {head_ms:.2f} ms")
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                cm(canvas)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
