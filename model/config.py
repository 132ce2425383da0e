"""Diffusion settings stored next to a HF checkpoint as ``diffusion_config.json``.

Every special value the sampler or trainer needs (mask id, delete id, shift convention) lives
here; no other module hard-codes a token id.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

DIFFUSION_CONFIG = "diffusion_config.json"

# Special tokens of the embedded tokenizer, in id order (ids 0..n-1).
SPECIAL_TOKENS = ("<|pad|>", "<|mask|>", "<|delete|>", "<|eof|>")

# What a checkpoint's weights may be loaded as (``model.modeling.pick_dtype``); "auto" lets the device decide.
DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")

# Where a checkpoint runs (``model.modeling.pick_device``): "auto" is the GPU when torch sees one, else
# the CPU; "cuda:N" picks a GPU. The server's ``infill.device`` and ``infill fill --device`` mean the same.
DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N")


def check_device(value: str) -> str:
    """``value`` normalized (stripped, lower case) if it is one of ``DEVICE_NAMES``; ValueError if not."""
    v = value.strip().lower()
    if v in DEVICE_NAMES[:3] or (v.startswith("cuda:") and v[5:].isdigit()):
        return v
    raise ValueError(f"unknown device {value!r}: one of {', '.join(DEVICE_NAMES)}")


# Canvas tokens per hole shape where only the shape is known: a batch fill's record (its HumanEval-Infilling
# task id, ``model.batch_fill.record_shape``) and ``infill eval``'s cases. The editor's requests are sized
# from their span instead (``infill.canvas``); training places canvases of these lengths too.
SHAPE_CANVAS = {"line": 32, "lines": 96, "free": 64}


@dataclass
class DiffusionConfig:
    """How a checkpoint is used as a masked-diffusion denoiser."""

    family: str = "embedded"  # embedded | dream | dreamon | open-dcoder | llada
    mask_id: int = 1
    delete_id: int | None = 2  # pad/delete: fills the canvas after the span ends (trimmed)
    eof_id: int | None = 3  # separates files in training data
    pad_id: int | None = 0  # batch padding (never attended)
    expand_id: int | None = None  # DreamOn: one mask may expand into two
    shift: bool = True  # logits at position i predict token i+1 (Dream/DiffuCoder, AR-adapted)
    bos_id: int | None = None  # prepended to every sequence when set
    max_position: int = 1024
    extra: dict = field(default_factory=dict)

    def save(self, directory: str | Path) -> None:
        Path(directory, DIFFUSION_CONFIG).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> "DiffusionConfig":
        data = json.loads(Path(directory, DIFFUSION_CONFIG).read_text())
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{DIFFUSION_CONFIG}: unknown keys {sorted(unknown)}")
        return cls(**data)
