"""Checkpoints load only through safetensors: a directory holding a pickle or any other unexpected
file is refused before anything in it is read, and the refusal reaches the worker's clients and the
editor's user as a message. (tests/model/test_families.py covers a Dream directory with a .bin.)"""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import threading
from pathlib import Path

import pytest

from model import protocol as P
from model.modeling import CheckpointError, check_checkpoint_dir, load_denoiser
from model.worker import Worker, WorkerConfig, default_model_dir
from tests.fuzz.lsp_fuzzer import Fuzzer, FuzzConfig

STARTER = Path(default_model_dir())


def starter_copy(dst: Path) -> Path:
    """The shipped starter checkpoint, as symlinks (loading follows them; nothing is copied)."""
    dst.mkdir()
    for f in STARTER.iterdir():
        if f.is_file():
            (dst / f.name).symlink_to(f)
    return dst


class Payload:
    """A pickle that creates a directory when unpickled: proof that nothing unpickled it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_the_starter_checkpoint_passes_the_check():
    check_checkpoint_dir(STARTER)


def test_a_malicious_pickle_next_to_good_weights_is_refused_and_never_unpickled(tmp_path):
    d = starter_copy(tmp_path / "ckpt")
    marker = tmp_path / "pwned"
    (d / "pytorch_model.bin").write_bytes(pickle.dumps(Payload(str(marker))))
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin.*only safetensors"):
        load_denoiser(d, device="cpu")
    assert not marker.exists()
    pickle.loads((d / "pytorch_model.bin").read_bytes())  # the payload was live: loading it would have run it
    assert marker.exists()


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "model.pth", "optimizer.pt", "weights.pkl",
                                  "model.ckpt", "tf_model.h5", "flax_model.msgpack", "model.onnx", "state.npy",
                                  "model.joblib", "pytorch_model.bin.index.json", "training_args.bin"])
def test_every_unexpected_file_is_refused_by_name(tmp_path, name):
    d = starter_copy(tmp_path / "ckpt")
    (d / name).write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        check_checkpoint_dir(d)


def test_a_directory_without_safetensors_weights_is_refused(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").symlink_to(STARTER / "config.json")
    with pytest.raises(CheckpointError, match="no .safetensors"):
        check_checkpoint_dir(d)
    with pytest.raises(CheckpointError, match="not found"):
        check_checkpoint_dir(tmp_path / "missing")


@pytest.mark.slow
def test_the_worker_reports_the_refusal_to_its_clients(tmp_path):
    d = starter_copy(tmp_path / "ckpt")
    (d / "pytorch_model.bin").write_bytes(b"not loaded")
    path = str(tmp_path / "w.sock")
    worker = Worker(WorkerConfig(model=str(d), device="cpu", threads=1))
    worker.bind_unix(path)
    worker.start()
    threading.Thread(target=worker.serve_forever, daemon=True).start()
    try:
        assert worker.loaded.wait(120)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(path)
        P.write_frame(s, {"id": 1, "op": "fill", "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2}]})
        while True:
            msg = P.check_response(P.read_frame(s))
            if msg.get("id") == 1:
                break
            assert msg["state"] == "failed" and "pytorch_model.bin" in msg["message"]
        assert msg["ok"] is False and msg["code"] == P.MODEL_FAILED and "pytorch_model.bin" in msg["error"]
        assert worker.denoiser is None
    finally:
        worker.stop()


@pytest.mark.slow
async def test_the_editor_user_is_told_why_the_checkpoint_was_refused(tmp_path):
    d = starter_copy(tmp_path / "ckpt")
    (d / "pytorch_model.bin").write_bytes(b"not loaded")
    fz = Fuzzer(FuzzConfig(settings={"model": str(d), "device": "cpu", "threads": 1}))
    await fz.start()
    try:
        p = await fz.request("initialize", {"processId": None, "rootUri": None, "capabilities": {},
                                            "initializationOptions": fz.config.settings})
        await asyncio.wait_for(p.future, 60)
        await fz.notify("initialized", {})
        for _ in range(1200):
            errors = [m for m in fz.messages if m.get("type") == 1]
            if errors:
                break
            await asyncio.sleep(0.1)
        (error,) = errors
        assert "could not be loaded" in error["message"] and "pytorch_model.bin" in error["message"]
        assert "infill.model" in error["message"]  # the setting to fix is named
        assert (await fz.stats())["worker_state"] == "failed"
    finally:
        await fz.shutdown()
