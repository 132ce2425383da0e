"""``infill export SRC DST``: turn a training checkpoint into a shippable one.

Casts the weights to fp16 (or bf16), drops the optimizer state (``train_state.safetensors``) and
keeps the tokenizer, the diffusion settings and ``training.json`` (how the weights were trained).
This is how ``model/starter/`` is made from the ``--out`` of ``infill train``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from ..modeling import CheckpointError, load_denoiser, save_denoiser

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def export(src: str | Path, dst: str | Path, dtype: str = "float16") -> Path:
    """Write ``src``'s weights as ``dtype`` into a fresh ``dst`` directory (replaced atomically)."""
    src, dst = Path(src), Path(dst)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{src} is not a checkpoint directory (no config.json)")
    loaded = load_denoiser(src, device="cpu", dtype=torch.float32)  # the same checks as every other load
    meta_file = src / "training.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else None
    tmp = dst.with_name(dst.name + ".export-tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    save_denoiser(loaded.model, loaded.tokenizer, loaded.config, tmp, dtype=DTYPES[dtype], extra=meta)
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="infill export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="training checkpoint directory (the --out of infill train)")
    ap.add_argument("dst", help="where to write the shippable checkpoint (e.g. model/starter); replaced")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float16")
    args = ap.parse_args(argv)
    try:
        out = export(args.src, args.dst, args.dtype)
    except (CheckpointError, OSError, ValueError) as exc:
        print(f"infill export: {exc}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.1f} MB, {args.dtype})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
