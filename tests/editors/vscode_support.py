"""Helpers for the VS Code real-editor test: find the toolchain that `.ci/install-vscode.sh`
installs (Node 24, code-server, Chromium), build and install the extension, run code-server, and
drive it with `editors/vscode/test-e2e/drive.mjs` (playwright-core in headless Chromium)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXTENSION_DIR = REPO / "editors" / "vscode"
DRIVE_SCRIPT = EXTENSION_DIR / "test-e2e" / "drive.mjs"
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "run `bash .ci/install-vscode.sh`"


def toolchain_home() -> Path:
    """Where .ci/install-vscode.sh put Node 24 wrappers and code-server (same default as the script)."""
    if os.environ.get("INFILL_VSCODE_HOME"):
        return Path(os.environ["INFILL_VSCODE_HOME"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "infill" / "vscode-test"


@dataclass
class Toolchain:
    """Paths of the installed tools; `missing()` says in one sentence what is not there."""

    home: Path

    @property
    def bin(self) -> Path:
        return self.home / "bin"

    @property
    def node(self) -> Path:
        return self.bin / "node"

    @property
    def npm(self) -> Path:
        return self.bin / "npm"

    @property
    def code_server(self) -> Path:
        return self.home / "code-server" / "node_modules" / ".bin" / "code-server"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("npm_config_update_notifier", "false")
        return env

    def missing_node(self) -> str | None:
        if not self.node.exists() or not self.npm.exists():
            return f"Node 24 not installed under {self.home}: {INSTALL_HINT}"
        if not (EXTENSION_DIR / "node_modules" / "typescript").exists():
            return f"extension npm dependencies not installed (editors/vscode/node_modules): {INSTALL_HINT}"
        return None

    def missing_editor(self) -> str | None:
        if (reason := self.missing_node()) is not None:
            return reason
        if not self.code_server.exists():
            return f"code-server not installed under {self.home}: {INSTALL_HINT}"
        if not CHROMIUM.exists():
            return f"{CHROMIUM} not installed (Debian package chromium): {INSTALL_HINT}"
        if not (EXTENSION_DIR / "node_modules" / "playwright-core").exists():
            return f"playwright-core not installed in editors/vscode/node_modules: {INSTALL_HINT}"
        return None


def run(cmd: list[str], tools: Toolchain, cwd: Path = EXTENSION_DIR, timeout: float = 300) -> str:
    """Run a command with Node 24 first on PATH; raise with its output if it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=tools.env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def build_vsix(tools: Toolchain, out_dir: Path) -> Path:
    """Compile the extension and package it with vsce (`vscode:prepublish` compiles)."""
    vsix = out_dir / "diffusion-infill.vsix"
    run([str(tools.node), "node_modules/@vscode/vsce/vsce", "package", "--allow-missing-repository",
         "--skip-license", "-o", str(vsix)], tools)
    return vsix


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class CodeServer:
    url: str
    user_data: Path
    log: Path

    def extension_log(self) -> str:
        """The extension's output channel (server stderr, LSP trace when enabled), as VS Code saved it."""
        logs = sorted(self.user_data.glob("logs/*/exthost*/*/Diffusion Infill.log"))
        return "\n".join(p.read_text(errors="replace") for p in logs)


def user_settings(python: str) -> dict:
    """VS Code user settings for the test: run the repo's server, keep the workbench quiet."""
    return {
        "infill.server.pythonPath": python,
        "infill.threads": 1,
        # The test machine is small and shared: give the model time rather than drop suggestions.
        "infill.latencyBudgetMs": 30000,
        # The starter model is rarely confident: show its completions whatever their confidence.
        "infill.minConfidence": 0,
        "infill.trace.server": "messages",
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "telemetry.telemetryLevel": "off",
        "chat.disableAIFeatures": True,
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "files.autoSave": "off",
    }


@contextlib.contextmanager
def code_server(tools: Toolchain, vsix: Path, root: Path, folder: Path, python: str = sys.executable):
    """Install `vsix` into a fresh code-server profile under `root` and serve `folder` on loopback."""
    user_data, extensions = root / "user-data", root / "extensions"
    # code-server runs extensions on the "remote" side: machine-scoped settings such as
    # infill.server.pythonPath count only in the remote (Machine) settings, so write both files.
    for scope in ("User", "Machine"):
        (user_data / scope).mkdir(parents=True)
        (user_data / scope / "settings.json").write_text(json.dumps(user_settings(python), indent=2))
    common = [str(tools.code_server), "--config", str(root / "config.yaml"),
              "--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    run([*common, "--install-extension", str(vsix)], tools, cwd=root, timeout=120)
    port = free_port()
    log = root / "code-server.log"
    env = tools.env()
    env.pop("VSCODE_IPC_HOOK_CLI", None)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*common, "--auth", "none", "--bind-addr", f"127.0.0.1:{port}", "--log", "trace",
             "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", str(folder)],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"code-server did not start:\n{log.read_text()}") from None
                time.sleep(0.5)
        yield CodeServer(url, user_data, log)
    finally:
        # code-server starts an extension host, which starts `infill serve` and its worker: end the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def drive(tools: Toolchain, options: dict, timeout: float) -> tuple[dict, str]:
    """Run drive.mjs with `options`; returns (its JSON result, its stderr log)."""
    proc = subprocess.run([str(tools.node), str(DRIVE_SCRIPT), json.dumps(options)], cwd=EXTENSION_DIR,
                          env=tools.env(), capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"drive.mjs printed no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[-1]), proc.stderr
