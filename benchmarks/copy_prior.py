"""What the copy prior costs a request: ``python -m benchmarks.copy_prior [--context 2048]``.

On one torch thread: the time to build a request's index over ``--context`` tokens (the model's
prefix and suffix plus related texts), the time of one lookup at a frontier, and a fill's model time
with the prior at its configured weight and with weight 0 (the same request, repeated; medians).
The text is this repository's own source, so the n-gram statistics are those of real code. Not part
of ``infill bench`` (no goal); prints its figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="checkpoint directory (default: the embedded starter)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--context", type=int, default=2048, help="tokens indexed per request (prefix + suffix + related)")
    ap.add_argument("--repeats", type=int, default=7, help="timed fills per setting")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from infill.types import FillRequest
    from model.copy_prior import CopyPrior
    from model.text_denoiser import DenoiserOptions, TextDenoiser, default_model_path

    den = TextDenoiser(args.model or default_model_path(), options=DenoiserOptions(), dtype=args.dtype)
    config = den.options.copy_prior
    document = (REPO / "model" / "text_denoiser.py").read_text()
    others = [(REPO / "model" / name).read_text() for name in ("sampler.py", "cache.py", "worker.py")]
    cut = document.index("        prefix = tok.encode(req.prefix)") + len("        prefix = ")
    prefix, suffix = document[:cut], document[document.index("\n", cut):]
    budget = den.options.context
    seen = len(den.tokenizer.encode(prefix)[-budget.prefix_tokens:]) + len(den.tokenizer.encode(suffix)[:budget.suffix_tokens])
    related, room = [], args.context - seen
    for text in others:  # related texts up to the context size asked for
        ids = den.tokenizer.encode(text)[:max(0, room)]
        if ids:
            related.append(den.tokenizer.decode(ids))
            room -= len(ids)
    config = replace(config, max_related_tokens=max(config.max_related_tokens, args.context))
    den.options.copy_prior = config

    rows = [den._row(FillRequest(prefix, suffix, 32, "python"))[0]]
    req = FillRequest(prefix, suffix, 32, "python", single_line=True, related=tuple(related))
    seqs = [[rows[0].prefix, rows[0].suffix, *den.related_tokens(related, config)[0]]]
    indexed = sum(len(s) for s in seqs[0])
    build_ms = _median_ms(lambda: CopyPrior(config, [rows[0].prefix], seqs), 50)
    prior = CopyPrior(config, [rows[0].prefix], seqs)
    lefts = [torch.tensor(rows[0].suffix[i:i + 4]) for i in range(0, 64, 4)]  # assorted committed canvases
    t = time.perf_counter()
    for _ in range(20):
        for left in lefts:
            prior.at(0, left)
    lookup_us = (time.perf_counter() - t) / (20 * len(lefts)) * 1e6

    def fill_ms(weight: float) -> dict:
        copy = replace(config, weight=weight)
        den.fill([req], copy_prior=copy)  # warm: the context's keys/values are kept from here on
        results = [den.fill([req], copy_prior=copy)[0] for _ in range(args.repeats)]
        return {key: statistics.median(r.timings[key] for r in results) for key in ("model_ms", "copy_ms")} | {
            "calls": statistics.median(r.model_calls for r in results)}

    with torch.no_grad():
        off, on = fill_ms(0.0), fill_ms(config.weight)
    print(f"copy prior at {indexed} indexed tokens ({args.dtype}, 1 thread, {den.device}):")
    print(f"  index build           {build_ms:8.3f} ms per request")
    print(f"  lookup                {lookup_us:8.1f} us per frontier position")
    print(f"  fill, weight 0        {off['model_ms']:8.1f} ms model time ({off['calls']:.0f} model calls)")
    print(f"  fill, weight {config.weight:<8} {on['model_ms']:8.1f} ms model time ({on['calls']:.0f} model calls)")
    print(f"  the prior's own time  {on['copy_ms']:8.2f} ms per request (index and lookups, in the fill above)")


if __name__ == "__main__":
    main()
