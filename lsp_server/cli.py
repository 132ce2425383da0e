"""The ``infill`` command: one entry point, each subcommand delegating to its module's ``main``.

Imports are lazy so ``infill --help`` and the server start fast and torch loads only where needed.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("lsp_server.server", "run the language server (stdio, or --tcp HOST:PORT)"),
    "worker": ("model.worker", "run the model worker (msgpack over a unix socket or loopback TCP)"),
    "fill": ("model.fill_cli", "fill a hole: --jsonl IN --out OUT, or FILE --at L:C / --select L1:C1-L2:C2"),
    "eval": ("model.training.evaluate", "evaluate a checkpoint (held-out spans, HumanEval-Infilling pass@1)"),
    "train": ("model.training.train", "train or continue training the embedded denoiser"),
    "export": ("model.training.export", "write a training checkpoint as a shippable fp16 checkpoint (e.g. model/starter)"),
    "adapt": ("model.training.adapt", "a pretrained autoregressive model (GGUF or local) + diffusion tokens, to train from"),
    "corpus": ("model.training.corpus", "build a training corpus from local source directories"),
    "prepare": ("model.training.prepare", "tokenizer + token arrays + syntax spans from a corpus"),
    "bench": ("benchmarks.run", "run the benchmark suite (latency, parallel decoding, cache, typing, scaling, validity, quality)"),
}


def usage() -> str:
    lines = ["usage: infill COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "Run `infill COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"infill: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
