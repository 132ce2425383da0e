"""The weights' dtype: ``auto`` picks bf16 where it is fast (a GPU, a CPU with AMX), fp32 elsewhere;
a bf16 denoiser runs the same paths (canvas cache, context reuse) as an fp32 one."""

from __future__ import annotations

import pytest
import torch

from infill.types import FillRequest
from model import modeling
from model.cache import CanvasModel, Row
from model.modeling import load_denoiser, pick_dtype
from model.text_denoiser import DenoiserOptions, TextDenoiser

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("amx,expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_is_bf16_on_a_gpu_and_on_an_amx_cpu_only(monkeypatch, amx, expected):
    monkeypatch.setattr(modeling, "cpu_has_amx", lambda: amx)
    assert pick_dtype(CPU, "auto") == pick_dtype(CPU, None) == expected
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert pick_dtype(CUDA, "auto") == torch.bfloat16


def test_auto_is_fp16_on_a_gpu_without_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert pick_dtype(CUDA, "auto") == torch.float16  # emulated bf16 does not count


def test_named_and_torch_dtypes_are_taken_as_given_and_unknown_names_refused():
    assert pick_dtype(CPU, "float32") == torch.float32
    assert pick_dtype(CPU, "bfloat16") == torch.bfloat16
    assert pick_dtype(CUDA, "float16") == torch.float16
    assert pick_dtype(CUDA, torch.float32) == torch.float32
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        pick_dtype(CPU, "int8")


def test_a_failing_amx_probe_means_no_amx(monkeypatch):
    def broken():
        raise RuntimeError("no cpuinfo")

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", broken, raising=False)
    assert modeling.cpu_has_amx() is False
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert modeling.cpu_has_amx() is False


def test_bf16_cached_steps_match_the_full_forward_within_bf16_precision(tiny_checkpoint):
    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="bfloat16")
    assert d.dtype == torch.bfloat16
    cfg = d.config
    row = Row(prefix=d.tokenizer.encode("def add(a, b):\n    return "), suffix=d.tokenizer.encode("\n\nx = 1\n"),
              canvas=6)
    cached = CanvasModel(d.model, [row], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id, use_cache=True)
    full = CanvasModel(d.model, [row], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id, use_cache=False)
    canvas = cached.initial_canvas(cfg.mask_id)
    cached(canvas)  # the first call fills the context cache
    step = canvas.clone()
    step[0, 0] = d.tokenizer.encode("a")[0]
    a, b = cached(step).float(), full(step).float()  # (1, canvas, V) each
    assert a.shape == b.shape
    assert (a - b).abs().max() < 0.1  # bf16 keeps ~3 significant digits


def test_a_bf16_text_denoiser_fills_and_reuses_the_context_while_typing_when_asked(tiny_checkpoint):
    text = "def add(a, b):\n    total = a + b\n    return total\n\nresult = add(1, 2)\nprint(result"
    reqs = [FillRequest(text[:n], ")\n", 6, "python", single_line=True) for n in range(len(text) - 8, len(text) + 1, 2)]
    # reuse is off by default in bf16 (test_cache); asked for, it works there too
    den = TextDenoiser(tiny_checkpoint, dtype="bfloat16", options=DenoiserOptions(canvas_cache=True, reuse_context=True))
    assert den.dtype == torch.bfloat16 and den.device == CPU
    for r in reqs:
        res, = den.fill([r])
        assert "<|mask|>" not in res.text and res.model_calls >= 1
    assert den.stats["context_reuses"] == len(reqs) - 1
