import contextlib

import numpy as np
import pytest
import torch
from transformers import Qwen2ForCausalLM

from model.training.masking import MaskingConfig, make_batch
from model.modeling import embedded_qwen2_config, load_denoiser, save_denoiser
from model.training.train import ar_loss, diffusion_loss
from tests.model.conftest import tiny_config


def _tiny_model(tok, seed=0):
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(embedded_qwen2_config(tok.vocab_size, hidden=32, layers=2, heads=2, kv_heads=1,
                                                  intermediate=64, max_position=256))


def _stream(tok):
    from tests.model.conftest import SAMPLE_CODE

    ids = []
    for t in SAMPLE_CODE:
        ids += tok.encode(t) + [tiny_config(tok).eof_id]
    return np.asarray(ids, dtype=np.uint16)


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16-autocast"])
def test_diffusion_loss_decreases_on_a_tiny_model(tiny_tokenizer, bf16):
    """Also under bf16 autocast on the CPU (``infill train --bf16``): fp32 weights, bf16 matmuls."""
    torch.set_num_threads(1)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    tok = tiny_tokenizer
    cfg = tiny_config(tok)
    model = _tiny_model(tok)
    tokens = _stream(tok)
    spans = np.array([[i, i + 4] for i in range(20, len(tokens) - 40, 7)], dtype=np.int64)
    mcfg = MaskingConfig(seq_len=48, max_span=8, max_extra_delete=4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    fixed = make_batch(tokens, spans, 8, np.random.default_rng(99), mcfg, cfg.mask_id, cfg.delete_id)
    with torch.no_grad():
        before = diffusion_loss(model, fixed, True, torch.device("cpu")).item()
    rng = np.random.default_rng(0)
    for _ in range(40):
        b = make_batch(tokens, spans, 8, rng, mcfg, cfg.mask_id, cfg.delete_id)
        with autocast:
            loss = diffusion_loss(model, b, True, torch.device("cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = diffusion_loss(model, fixed, True, torch.device("cpu")).item()
    assert after < before * 0.8, (before, after)


def test_ar_loss_decreases(tiny_tokenizer):
    torch.set_num_threads(1)
    model = _tiny_model(tiny_tokenizer, 1)
    tokens = _stream(tiny_tokenizer)
    x = np.stack([tokens[i:i + 33] for i in range(0, 256, 32)]).astype(np.int64)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = ar_loss(model, x, torch.device("cpu")).item()
    for _ in range(30):
        loss = ar_loss(model, x, torch.device("cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first * 0.7


def test_checkpoint_save_load_equality(tmp_path, tiny_tokenizer):
    model = _tiny_model(tiny_tokenizer, 2)
    cfg = tiny_config(tiny_tokenizer)
    save_denoiser(model, tiny_tokenizer, cfg, tmp_path / "a")
    loaded = load_denoiser(tmp_path / "a", device="cpu", dtype="float32")
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), loaded.model.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    assert loaded.config == cfg
    ids = torch.tensor([tiny_tokenizer.encode("def add(a, b):")])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, loaded.model(ids).logits)
    # fp16 shipping copy loads with the same weights up to fp16 rounding
    save_denoiser(model, tiny_tokenizer, cfg, tmp_path / "h", dtype=torch.float16)
    half = load_denoiser(tmp_path / "h", device="cpu", dtype=torch.float32)
    for (n1, p1), (_, p2) in zip(model.state_dict().items(), half.model.state_dict().items()):
        assert torch.allclose(p1, p2, atol=1e-2, rtol=1e-2), n1


def _train_args(tmp_path, tok):
    """A tiny ``infill prepare`` output and the ``infill train`` arguments for a tiny model on it."""
    data = tmp_path / "data"
    data.mkdir()
    tok.save(data)
    tiny_config(tok).save(data)
    tokens = _stream(tok)
    spans = np.array([[i, i + 4] for i in range(20, len(tokens) - 40, 7)], dtype=np.int64)
    for split in ("train", "heldout"):
        np.save(data / f"{split}.tokens.npy", tokens)
        np.save(data / f"{split}.spans.npy", spans)
    return ["--data", str(data), "--seq-len", "48", "--batch-size", "2", "--threads", "1", "--hidden", "32",
            "--layers", "1", "--heads", "2", "--kv-heads", "1", "--intermediate", "32"]


def test_training_cli_runs_resumes_and_saves(tmp_path, tiny_checkpoint, tiny_tokenizer):
    from model.training import train

    args = _train_args(tmp_path, tiny_tokenizer)
    assert train.main(args + ["--out", str(tmp_path / "run"), "--max-steps", "3", "--objective", "ar"]) == 0
    import json

    meta = json.loads((tmp_path / "run" / "training.json").read_text())
    assert meta["tokens_seen"] == 3 * 2 * 48
    assert (tmp_path / "run" / "train_state.safetensors").is_file()
    assert train.main(args + ["--out", str(tmp_path / "run2"), "--resume", str(tmp_path / "run"),
                              "--max-steps", "2"]) == 0
    meta2 = json.loads((tmp_path / "run2" / "training.json").read_text())
    assert meta2["tokens_seen"] == 5 * 2 * 48
    assert [p["objective"] for p in meta2["phases"]] == ["ar", "diffusion"]


def test_moving_average_of_the_weights_is_saved_and_continued(tmp_path, tiny_tokenizer):
    """``--ema 0.5``: after one step the average is half the start, half the new weights; a resumed
    run continues that average (not a fresh one) and ``OUT/ema`` loads as a checkpoint."""
    import json

    from safetensors.torch import load_file

    from model.training import train

    args = _train_args(tmp_path, tiny_tokenizer) + ["--objective", "diffusion", "--ema", "0.5"]
    assert train.main(args + ["--out", str(tmp_path / "a"), "--max-steps", "2", "--ema", "0"]) == 0
    assert not (tmp_path / "a" / "ema").exists()  # off by default
    assert train.main(args + ["--out", str(tmp_path / "b"), "--resume", str(tmp_path / "a"), "--max-steps", "1"]) == 0
    assert train.main(args + ["--out", str(tmp_path / "c"), "--resume", str(tmp_path / "b"), "--max-steps", "1"]) == 0
    w = {k: load_file(str(tmp_path / k / "model.safetensors")) for k in "abc"}
    ema_b = load_file(str(tmp_path / "b" / "ema" / "model.safetensors"))
    ema_c = load_file(str(tmp_path / "c" / "ema" / "model.safetensors"))
    for name in w["a"]:
        assert torch.allclose(ema_b[name], 0.5 * w["a"][name] + 0.5 * w["b"][name], atol=1e-6), name
        assert torch.allclose(ema_c[name], 0.5 * ema_b[name] + 0.5 * w["c"][name], atol=1e-6), name
    assert not torch.equal(ema_c["model.norm.weight"], w["c"]["model.norm.weight"])  # an average, not a copy
    meta = json.loads((tmp_path / "c" / "ema" / "training.json").read_text())
    assert meta["ema_decay"] == 0.5 and len(meta["ema_history"]) == 2
    assert load_denoiser(tmp_path / "c" / "ema", device="cpu").model is not None
    with pytest.raises(SystemExit):
        train.main(args + ["--out", str(tmp_path / "d"), "--ema", "1.5", "--max-steps", "1"])


def test_export_writes_fp16_weights_without_optimizer_state(tmp_path, tiny_checkpoint):
    import json
    import shutil

    from safetensors import safe_open

    from model.training.export import main as export_main

    src = tmp_path / "run"
    shutil.copytree(tiny_checkpoint, src)
    (src / "train_state.safetensors").write_bytes(b"optimizer state")
    (src / "training.json").write_text(json.dumps({"tokens_seen": 123}))
    assert export_main([str(src), str(tmp_path / "ship")]) == 0
    ship = tmp_path / "ship"
    assert not (ship / "train_state.safetensors").exists()
    assert json.loads((ship / "training.json").read_text()) == {"tokens_seen": 123}
    with safe_open(str(ship / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    x = torch.arange(1, 20).unsqueeze(0)
    with torch.no_grad():
        la = load_denoiser(src, device="cpu", dtype="float32").model(input_ids=x).logits
        lb = load_denoiser(ship, device="cpu", dtype="float32").model(input_ids=x).logits
    assert torch.allclose(la, lb, atol=2e-2), (la - lb).abs().max()
    assert export_main([str(tmp_path / "missing"), str(tmp_path / "x")]) == 2


def _prepared(path, tok, tokens, spans):
    path.mkdir()
    tok.save(path)
    np.save(path / "train.tokens.npy", np.asarray(tokens, dtype=np.uint16))
    np.save(path / "train.spans.npy", np.asarray(spans, dtype=np.int64).reshape(-1, 2))
    np.save(path / "heldout.tokens.npy", np.asarray(tokens[:3], dtype=np.uint16))
    np.save(path / "heldout.spans.npy", np.zeros((0, 2), np.int64))
    return path


def test_several_data_directories_are_one_stream_with_spans_moved_along(tmp_path, tiny_tokenizer):
    from model.training.train import load_data

    a = _prepared(tmp_path / "a", tiny_tokenizer, [5, 6, 7, 8], [[1, 3]])
    b = _prepared(tmp_path / "b", tiny_tokenizer, [9, 10, 11], [[2, 3], [0, 2]])
    tokens, spans, held, held_spans = load_data([a, b])
    assert tokens.tolist() == [5, 6, 7, 8, 9, 10, 11]
    assert spans.tolist() == [[1, 3], [4, 6], [6, 7]]  # b's spans shifted by a's length, sorted by start
    assert held.tolist() == [5, 6, 7] and len(held_spans) == 0  # the first directory's held-out split
    one = load_data([a])
    assert one[0].tolist() == [5, 6, 7, 8] and one[1].tolist() == [[1, 3]]


def test_data_directories_with_different_tokenizers_are_refused(tmp_path, tiny_tokenizer):
    from model.tokenizer import Tokenizer, train_tokenizer
    from model.training.train import load_data
    from tests.model.conftest import SAMPLE_CODE

    other = Tokenizer(train_tokenizer(SAMPLE_CODE[:2], vocab_size=300, min_frequency=1))
    a = _prepared(tmp_path / "a", tiny_tokenizer, [5, 6, 7, 8], [[1, 3]])
    b = _prepared(tmp_path / "b", other, [9, 10, 11], [[0, 2]])
    with pytest.raises(SystemExit, match="another tokenizer"):
        load_data([a, b])


def test_compiled_training_step_matches_the_eager_one_and_saves_the_same_checkpoint(tmp_path, tiny_tokenizer):
    """``--compile`` runs the step's forward through torch.compile on the same parameters: the same
    loss and gradients as eager on one batch, and the run saves its weights under the same names.
    (Whole runs are not compared: the rate follows the wall clock, and compiling takes seconds.)"""
    from safetensors.torch import load_file

    from model.training import train

    torch.set_num_threads(1)
    tok = tiny_tokenizer
    cfg = tiny_config(tok)
    model = _tiny_model(tok)
    tokens = _stream(tok)
    spans = np.array([[i, i + 4] for i in range(20, len(tokens) - 40, 7)], dtype=np.int64)
    batch = make_batch(tokens, spans, 4, np.random.default_rng(5), MaskingConfig(seq_len=48, max_span=8), cfg.mask_id,
                       cfg.delete_id)
    grads = []
    for body in (None, torch.compile(model.model, dynamic=False)):
        model.zero_grad()
        loss = diffusion_loss(model, batch, True, torch.device("cpu"), body)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    (eager_loss, eager_grads), (compiled_loss, compiled_grads) = grads
    assert abs(eager_loss - compiled_loss) < 1e-4 * abs(eager_loss)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(eager_grads, compiled_grads))
    args = _train_args(tmp_path, tiny_tokenizer) + ["--objective", "diffusion", "--max-steps", "1"]
    assert train.main(args + ["--out", str(tmp_path / "eager")]) == 0
    assert train.main(args + ["--out", str(tmp_path / "compiled"), "--compile"]) == 0
    saved = [load_file(str(tmp_path / d / "model.safetensors")) for d in ("eager", "compiled")]
    assert saved[0].keys() == saved[1].keys()


def test_batch_probe_doubles_to_the_largest_batch_that_fits():
    from model.training.train import probe_batch_size

    tried = []

    def fits(b):
        tried.append(b)
        return b <= 40

    assert probe_batch_size(fits, 8, 512) == 32 and tried == [8, 16, 32, 64]
    assert probe_batch_size(lambda b: True, 8, 24) == 24  # the limit itself is tried last
    assert probe_batch_size(lambda b: True, 8, 8) == 8
    with pytest.raises(ValueError, match="does not fit"):
        probe_batch_size(lambda b: False, 8, 64)


def test_gpu_lease_preset_runs_on_time_and_ships_a_checkpoint_with_a_report(tmp_path, tiny_tokenizer):
    """``--preset gpu-lease`` end to end at a tiny size on the CPU: the batch is probed, AR then
    diffusion, saves along the way, and within the budget (counted from launch) the final save, the
    fp16 export and the report. Flags given explicitly override the preset (size, no compile)."""
    import json
    import time

    from safetensors import safe_open

    from model.training import train

    args = [a for a in _train_args(tmp_path, tiny_tokenizer)]
    i = args.index("--batch-size")
    del args[i:i + 2]  # the preset's probe chooses the batch
    budget_s = 12.0
    t = time.time()
    assert train.main(args + ["--preset", "gpu-lease", "--no-compile", "--max-batch-size", "16", "--seq-len", "128",
                              "--budget-minutes", str(budget_s / 60), "--save-minutes", "0.05",
                              "--out", str(tmp_path / "lease")]) == 0
    took = time.time() - t
    assert took <= budget_s + 3.0, took  # the budget covers the export and the report too
    run = tmp_path / "lease"
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["batch_probed"] and report["batch_size"] == 16  # no memory limit on a CPU: the probe's ceiling
    assert report["hidden"] == 32 and not report["compiled"] and report["bf16"]
    assert report["tokens_run"] == report["steps"] * 16 * 128 > 0 and report["tokens_per_second"] > 0
    assert report["wall_seconds"] <= budget_s
    objectives = [h["objective"] for h in report["heldout"]]
    assert len(objectives) >= 3 and objectives[0] == "ar" and objectives[-1] == "diffusion"
    assert "| tokens seen | objective | held-out loss |" in (run / "report" / "report.md").read_text()
    ship = run / "export"
    assert report["export"] == str(ship) and not (ship / "train_state.safetensors").exists()
    with safe_open(str(ship / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert load_denoiser(run, device="cpu").model is not None  # the report leaves the checkpoint loadable
    loaded = load_denoiser(ship, device="cpu", dtype="float32")
    with torch.no_grad():
        assert loaded.model(input_ids=torch.tensor([tiny_tokenizer.encode("def f(x):")])).logits.isfinite().all()
    meta = json.loads((ship / "training.json").read_text())
    assert meta["phases"][0]["ar_fraction"] == 0.3 and meta["tokens_seen"] == report["tokens_seen"]


def test_a_model_over_the_weights_cap_is_refused(tmp_path, tiny_tokenizer):
    from model.training import train

    with pytest.raises(SystemExit, match="max-weights-mb"):
        train.main(_train_args(tmp_path, tiny_tokenizer) + ["--max-weights-mb", "0.01", "--max-steps", "1",
                                                             "--out", str(tmp_path / "x")])
