"""The ``infill`` command: one entry point, each subcommand handed to its module's ``main(argv)``.

Modules are imported only when their command runs, so ``infill --help``, ``infill --version`` and a
mistyped command answer without loading torch, transformers, tree-sitter or the LSP types.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from dataclasses import dataclass

DISTRIBUTION = "diffusion-infill"


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # imported when the command runs; has main(argv: list[str]) -> int
    summary: str


COMMANDS: tuple[Command, ...] = (
    Command("serve", "lsp_server.server", "run the language server (stdio, or --tcp HOST:PORT)"),
    Command("worker", "model.worker", "run the model worker (msgpack over a unix socket or loopback TCP)"),
    Command("cluster", "model.cluster", "run the model worker as a Ray Serve deployment (needs the 'cluster' extra)"),
    Command("fill", "diffusion_infill.fill",
            "fill a hole in a file, print the diff (FILE --at L:C | --select L1:C1-L2:C2); or JSON lines (--jsonl)"),
    Command("eval", "model.training.evaluate", "evaluate a checkpoint (held-out spans, HumanEval-Infilling pass@1)"),
    Command("train", "model.training.train", "train or continue training the embedded denoiser"),
    Command("export", "model.training.export", "write a training checkpoint as a shippable fp16 checkpoint"),
    Command("adapt", "model.training.adapt",
            "a pretrained autoregressive model (GGUF or local) + diffusion tokens, to train from"),
    Command("corpus", "model.training.corpus", "build a training corpus from local source directories"),
    Command("prepare", "model.training.prepare", "tokenizer + token arrays + syntax spans from a corpus"),
    Command("bench", "benchmarks.run",
            "run the benchmark suite (latency, parallel decoding, cache, typing, scaling, validity, quality)"),
)
BY_NAME = {c.name: c for c in COMMANDS}


def version() -> str:
    """The installed distribution's version, or the package's own when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        from diffusion_infill import __version__

        return __version__


def usage() -> str:
    width = max(len(c.name) for c in COMMANDS)
    lines = ["usage: infill COMMAND [ARGS...]", "       infill --version", "",
             "Local diffusion-LM code infilling: a language server for editors, and the tools around its model.",
             "", "commands:"]
    lines += [f"  {c.name:<{width}}  {c.summary}" for c in COMMANDS]
    lines += ["", "Run `infill COMMAND --help` for a command's options, e.g. `infill fill --help`.",
              "Try: infill fill examples/demo.py --at 13:18"]
    return "\n".join(lines)


def unknown(name: str) -> str:
    """The error for a name that is no command, with the nearest command when one is close."""
    close = difflib.get_close_matches(name, list(BY_NAME), n=1)
    hint = f"; did you mean `infill {close[0]}`?" if close else ""
    what = "option" if name.startswith("-") else "command"
    return f"infill: unknown {what} {name!r}{hint}\nRun `infill --help` for the commands."


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"infill ({DISTRIBUTION}) {version()}")
        return 0
    name, rest = argv[0], argv[1:]
    if name == "help":  # `infill help fill` is `infill fill --help`
        if not rest:
            print(usage())
            return 0
        name, rest = rest[0], ["--help"]
    command = BY_NAME.get(name)
    if command is None:
        print(unknown(name), file=sys.stderr)
        return 2
    module = importlib.import_module(command.module)
    try:
        return int(module.main(rest) or 0)
    except KeyboardInterrupt:
        print("infill: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
