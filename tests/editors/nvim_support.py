"""Helpers for the Neovim tests: paths, the server settings and environment the editor gets, and
`NvimDriver`, a thin wrapper over a pynvim session (polling with timeouts, ghost text from extmarks)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
NVIM_PLUGIN = REPO / "editors" / "nvim"
NVIM_INIT = NVIM_PLUGIN / "tests" / "minimal_init.lua"
# The embedded checkpoint, or another one to try the editor tests against (INFILL_TEST_MODEL=DIR).
STARTER_MODEL = Path(os.environ.get("INFILL_TEST_MODEL") or REPO / "model" / "starter")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

# The first suggestion includes starting the server, its model worker and loading the model on
# a shared CPU; later ones are a few model calls.
FIRST_SUGGESTION_TIMEOUT_S = float(os.environ.get("INFILL_TEST_NVIM_TIMEOUT", "240"))
CURSOR = "<|cursor|>"


def server_settings() -> dict[str, Any]:
    """The `infill` settings section the tests give the server: the starter model on CPU, small
    canvases, and a latency budget large enough for a loaded CI machine."""
    return {
        "model": {"path": str(STARTER_MODEL), "device": "cpu", "maxTokens": 16, "threads": 1},
        # minConfidence 0: the starter model is rarely confident; these tests are about the editor
        "completion": {"latencyBudgetMs": 60000, "debounceMs": 0, "minConfidence": 0},
    }


def nvim_env(home: Path) -> dict[str, str]:
    """Environment overrides for the editor (and so the server): hermetic XDG dirs, the real server."""
    env: dict[str, str] = {}
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = home / var.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    env.update(
        INFILL_NVIM_CMD=json.dumps([sys.executable, "-m", "diffusion_infill", "serve"]),
        INFILL_NVIM_SETTINGS=json.dumps(server_settings()),
        INFILL_NVIM_LOG="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
    )
    return env


def split_cursor(text: str) -> tuple[str, int, int]:
    """Remove the cursor marker; return (text, 0-based row, 0-based byte column)."""
    offset = text.index(CURSOR)
    before = text[:offset]
    row = before.count("\n")
    col = len(before.rsplit("\n", 1)[-1].encode())
    return text.replace(CURSOR, "", 1), row, col


def byte_offset(text: str, row: int, col: int) -> int:
    """Byte offset in `text` (UTF-8) of a 0-based (row, byte col)."""
    data = text.encode()
    start = 0
    for _ in range(row):
        start = data.index(b"\n", start) + 1
    return start + col


class NvimDriver:
    """A running headless Neovim with small helpers for the tests; all calls from one thread."""

    def __init__(self, nvim: Any, workdir: Path, home: Path):
        self.nvim = nvim
        self.workdir = workdir
        self.home = home
        self.ghost_ns = nvim.exec_lua("return require('infill.ghost').ns")

    def lua(self, code: str, *args: Any) -> Any:
        return self.nvim.exec_lua(code, *args)

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Poll `predicate` until truthy; fail with `what` and the editor's logs on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{self.diagnostics()}")
            time.sleep(0.05)

    def diagnostics(self) -> str:
        """:messages, ghost counters and the tail of the LSP log, for failure messages."""
        parts = []
        try:
            parts.append("messages:\n" + self.nvim.command_output("messages"))
            parts.append("ghost stats: " + json.dumps(self.stats()))
            parts.append("last error: " + str(self.lua("return require('infill.ghost').last_error")))
            log_path = Path(self.lua("return vim.lsp.get_log_path()"))
        except Exception as exc:  # the editor may be gone; say so instead of hiding the real failure
            parts.append(f"(could not query nvim: {exc!r})")
            log_path = self.home / "xdg_state_home" / "nvim" / "lsp.log"
        if log_path.exists():
            lines = [line for line in log_path.read_text(errors="replace").splitlines() if "ERROR" in line or "stderr" in line]
            parts.append("lsp.log (errors/stderr, last 30):\n" + "\n".join(line[:400] for line in lines[-30:]))
        return "\n".join(parts)

    def open(self, name: str, text_with_cursor: str) -> tuple[str, int, int]:
        """Write a file into the project, edit it, wait for the infill client; returns (text, row, col)."""
        text, row, col = split_cursor(text_with_cursor)
        path = self.workdir / name
        path.write_text(text)
        self.nvim.input("<Esc>")
        self.nvim.command(f"edit! {path}")
        self.wait_for(
            "the infill LSP client to attach and initialize",
            lambda: self.lua(
                "local c = vim.lsp.get_clients({ bufnr = 0, name = 'infill' })[1]"
                " return c ~= nil and c.initialized == true and require('infill.ghost').is_attached(0)"
            ),
            timeout=FIRST_SUGGESTION_TIMEOUT_S,
        )
        return text, row, col

    def insert_at(self, row: int, col: int) -> None:
        """Enter insert mode with the cursor before byte `col` of 0-based `row` (end of line: `A`)."""
        line = self.nvim.current.buffer[row]
        if col >= len(line.encode()):
            self.nvim.current.window.cursor = (row + 1, 0)
            self.nvim.input("A")
        else:
            self.nvim.current.window.cursor = (row + 1, col)
            self.nvim.input("i")
        self.wait_for("insert mode", lambda: self.nvim.api.get_mode()["mode"] == "i", timeout=10)

    def buffer_text(self) -> str:
        return "\n".join(self.nvim.current.buffer[:]) + "\n"

    def ghost_marks(self) -> list[Any]:
        return self.nvim.api.buf_get_extmarks(0, self.ghost_ns, 0, -1, {"details": True})

    def ghost_from_extmarks(self) -> tuple[int, int, str] | None:
        """(row, col, text) of the drawn ghost text, rebuilt from the extmark's virt_text/virt_lines."""
        marks = self.ghost_marks()
        if not marks:
            return None
        assert len(marks) == 1, f"expected one ghost extmark, got {marks}"
        _, row, col, details = marks[0]
        first = "".join(chunk[0] for chunk in details.get("virt_text") or [])
        rest = ["".join(chunk[0] for chunk in line) for line in details.get("virt_lines") or []]
        return row, col, "\n".join([first, *rest])

    def wait_for_ghost(self, timeout: float = FIRST_SUGGESTION_TIMEOUT_S) -> tuple[int, int, str]:
        return self.wait_for("ghost text to appear", self.ghost_from_extmarks, timeout=timeout)

    def stats(self) -> dict[str, int]:
        return self.lua("return vim.deepcopy(require('infill.ghost').stats)")

    def open_with_suggestion(self, name: str, samples: list[str]) -> tuple[str, int, int, str]:
        """Open each sample (text with a cursor marker) in turn, enter insert mode at its cursor and
        wait for the server's answer; return (text, row, col, ghost) for the first one answered
        with ghost text, left in insert mode. What the model says at a given place changes with
        every checkpoint (and the server drops fills that add parse errors), so the tests ask at
        several places instead of depending on one answer."""
        answered = []
        for i, sample in enumerate(samples):
            path = Path(name)
            original, row, col = self.open(f"{path.stem}_{i}{path.suffix}", sample)
            before = self.stats()["responses"]
            self.insert_at(row, col)

            def settled() -> bool:
                stats = self.stats()
                return stats["responses"] > before and stats["responses"] == stats["requests"]

            self.wait_for(f"an answer at {name} sample {i}", settled, timeout=FIRST_SUGGESTION_TIMEOUT_S)
            ghost = self.ghost_from_extmarks()
            if ghost is not None:
                assert ghost[:2] == (row, col), "ghost text must be drawn at the cursor"
                return original, row, col, ghost[2]
            answered.append(original.splitlines()[row])
            self.nvim.input("<Esc>")
        pytest.fail(f"no ghost text at any of {len(samples)} places ({answered})\n{self.diagnostics()}")

    def suggestion(self) -> dict[str, Any] | None:
        return self.lua("return require('infill.ghost').get()")
