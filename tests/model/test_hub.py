"""``--model`` resolution: local directories, the local HF cache, and the explicit download path (mocked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model import hub


def fake_cache(cache: Path, hub_id: str, files: dict[str, str]) -> Path:
    """The huggingface_hub cache layout: models--owner--name/{refs/main, snapshots/<commit>/...}."""
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name, text in files.items():
        (snap / name).write_text(text)
    return snap


def test_local_directory_is_returned_as_is(tmp_path):
    assert hub.resolve_model(str(tmp_path)) == tmp_path


def test_hub_id_resolves_from_the_local_cache(tmp_path):
    snap = fake_cache(tmp_path, "Dream-org/DreamOn-v0-7B", {"config.json": "{}"})
    got = hub.resolve_model("Dream-org/DreamOn-v0-7B", cache_dir=tmp_path)
    assert got == snap and (got / "config.json").is_file()


def test_missing_hub_id_names_the_download_command(tmp_path, monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("the network path was taken without --download")

    monkeypatch.setattr(hub, "download_model", no_network)
    with pytest.raises(hub.ModelNotFoundError) as err:
        hub.resolve_model("GSAI-ML/LLaDA-8B-Instruct", cache_dir=tmp_path)
    msg = str(err.value)
    assert "'GSAI-ML/LLaDA-8B-Instruct' is not in the local Hugging Face cache" in msg
    assert "hf download GSAI-ML/LLaDA-8B-Instruct --include '*.safetensors'" in msg
    assert "not one of the supported models" not in msg  # it is a supported one


def test_unknown_hub_id_is_flagged_as_unsupported(tmp_path):
    with pytest.raises(hub.ModelNotFoundError, match="not one of the supported models"):
        hub.resolve_model("someone/some-model", cache_dir=tmp_path)


@pytest.mark.parametrize("spec", ["", "no-such-dir", "../escape/x", "a/b/c"])
def test_bad_specs_are_clear_errors(spec, tmp_path):
    with pytest.raises(hub.ModelNotFoundError):
        hub.resolve_model(spec, cache_dir=tmp_path)


def test_download_path_calls_the_hub_with_safe_patterns(tmp_path, monkeypatch):
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        if kwargs.get("local_files_only"):
            from huggingface_hub.errors import LocalEntryNotFoundError
            raise LocalEntryNotFoundError("not cached")
        return str(tmp_path / "snap")

    monkeypatch.setattr(hub, "snapshot_download", fake_snapshot_download)
    got = hub.resolve_model("fredzzp/open-dcoder-0.5B", download=True, cache_dir=tmp_path)
    assert got == tmp_path / "snap"
    (first_id, first), (second_id, second) = calls
    assert first_id == second_id == "fredzzp/open-dcoder-0.5B"
    assert first == {"local_files_only": True, "cache_dir": tmp_path}
    assert second == {"allow_patterns": hub.DOWNLOAD_PATTERNS, "cache_dir": tmp_path}
    assert not any(p.endswith((".bin", ".pt", ".pth", ".py", ".pkl")) for p in hub.DOWNLOAD_PATTERNS)


def test_download_refuses_non_hub_ids():
    with pytest.raises(hub.ModelNotFoundError):
        hub.download_model("/etc/passwd")
