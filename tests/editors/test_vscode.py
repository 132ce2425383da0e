"""The VS Code extension (editors/vscode): its settings mirror the server's; its TypeScript compiles
and its unit tests pass; and in real VS Code (code-server in headless Chromium) with the real
`infill serve` and starter model, a typed edit gets an inline suggestion that Tab accepts.

The toolchain comes from `bash .ci/install-vscode.sh`; without it the editor tests skip with the
reason. The starter model writes junk text, so the end-to-end test checks that a suggestion is
shown and that accepting it inserts exactly what was shown, not what it says.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from lsp_server.settings import SETTINGS, Settings

try:  # tests/editors is a plain directory (pytest prepend import mode) or a package
    from .vscode_support import EXTENSION_DIR, REPO, Toolchain, build_vsix, code_server, drive, run, toolchain_home
except ImportError:
    from vscode_support import EXTENSION_DIR, REPO, Toolchain, build_vsix, code_server, drive, run, toolchain_home

ARTIFACTS = Path(__file__).parent / "artifacts"
MANIFEST = json.loads((EXTENSION_DIR / "package.json").read_text())
PROPERTIES: dict[str, dict] = MANIFEST["contributes"]["configuration"]["properties"]

SAMPLE = '''import math


def area(radius):
    return math.pi * radius ** 2


def describe(radius):
    label = ""  #
    unit = "metres"
    return label + unit
'''
# Typed in the comment at the end of line 9 (column 18, 1-based): any one-line text the starter
# model writes there keeps the file valid, so the server's syntax check lets the suggestion through
# (inside a string literal its fills sometimes close the string and are dropped).
LINE, COLUMN, TYPED = 9, 18, " radius "
SETTINGS_PUSHED = "Sending notification 'workspace/didChangeConfiguration'"
# "Infill: Rewrite selection", tried in order until the server applies one (it refuses a rewrite
# that adds parse errors, and where a small model writes a valid one changes with each checkpoint):
# first the blank line 2, which holds no syntax node, so the server always refuses it ("no
# suggestion": the refusal path runs on every run), then `metres` inside its string (line 10,
# columns 13-18, 1-based), then the operand `unit` of line 11. With each, what must stay at the
# start and the end of the edited line.
REWRITES = [
    ({"title": "Infill: Rewrite selection", "line": 2, "column": 1, "selectChars": 1,
      "original": "import math\n\n\ndef area(radius):"}, "", ""),
    ({"title": "Infill: Rewrite selection", "line": 10, "column": 13, "selectChars": 6,
      "original": 'unit = "metres"'}, '    unit = "', '"'),
    ({"title": "Infill: Rewrite selection", "line": 11, "column": 20, "selectChars": 4,
      "original": "return label + unit"}, "    return label + ", ""),
]


@pytest.fixture(scope="module")
def tools() -> Toolchain:
    return Toolchain(toolchain_home())


# The extension's own settings; every other `infill.*` setting must be one of the server's.
CLIENT_ONLY = ("infill.server.", "infill.vscode.", "infill.trace.")


def server_defaults() -> dict[str, object]:
    """Every server setting by its VS Code name, with its default (lsp_server/settings.py)."""
    defaults = Settings()
    return {f"infill.{name}": getattr(getattr(defaults, section), attr)
            for name, (section, attr, _) in SETTINGS.items()}


def test_package_json_mirrors_every_server_setting():
    """Each server setting is contributed with the server's default, and nothing the server lacks."""
    expected = server_defaults()
    contributed = [k for k in PROPERTIES if not k.startswith(CLIENT_ONLY)]
    assert sorted(contributed) == sorted(expected)
    for name, default in expected.items():
        assert PROPERTIES[name]["default"] == default, name


def test_package_json_ranges_are_the_servers():
    """Minimum/maximum in package.json are exactly what the server accepts (probe each bound)."""
    for name, spec in PROPERTIES.items():
        if name.startswith(CLIENT_ONLY) or spec.get("type") not in ("integer", "number"):
            continue
        check = SETTINGS[name.removeprefix("infill.")][2]
        lo, hi = spec["minimum"], spec["maximum"]
        assert check(lo) == lo and check(hi) == hi, name
        for bad in (lo - 1, hi + 1):
            with pytest.raises(ValueError):
                check(bad)


def test_every_setting_is_documented():
    for name, spec in PROPERTIES.items():
        assert "default" in spec and "type" in spec, name
        assert len(spec.get("markdownDescription", "")) > 10, name


@pytest.mark.editor
def test_typescript_compiles_and_unit_tests_pass(tools: Toolchain):
    if (reason := tools.missing_node()) is not None:
        pytest.skip(reason)
    out = run([str(tools.npm), "test"], tools, timeout=300)
    counts = dict(re.findall(r"^ℹ (pass|fail) (\d+)$", out, flags=re.M))
    assert counts.get("fail") == "0" and int(counts.get("pass", 0)) >= 20, out


@pytest.mark.editor
@pytest.mark.slow
def test_inline_suggestion_in_vscode(tools: Toolchain, tmp_path: Path):
    """Real VS Code: the status bar goes to ready, typing shows ghost text, Tab inserts it, and
    "Infill: Rewrite selection" replaces the selection through the server's workspace edit, and a
    changed setting is pushed to the running server."""
    if (reason := tools.missing_editor()) is not None:
        pytest.skip(reason)
    vsix = build_vsix(tools, tmp_path)
    folder = tmp_path / "project"
    folder.mkdir()
    sample = folder / "sample.py"
    sample.write_text(SAMPLE)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "vscode-inline.png"
    with code_server(tools, vsix, tmp_path / "vscode", folder, python=sys.executable) as server:
        result, log = drive(tools, {
            "url": server.url, "folder": str(folder), "file": sample.name,
            "line": LINE, "column": COLUMN, "type": TYPED,
            "screenshot": str(screenshot), "timeoutMs": 180_000, "commands": [c for c, _, _ in REWRITES],
            "commandScreenshot": str(ARTIFACTS / "vscode-rewrite.png"),
            "failureScreenshot": str(tmp_path / "failure.png"),
            # A changed setting reaches the running server as workspace/didChangeConfiguration.
            "settingsChange": {"file": str(server.user_data / "Machine" / "settings.json"),
                               "values": {"infill.debounceMs": 60}, "logDir": str(server.user_data / "logs"),
                               "expect": SETTINGS_PUSHED},
        }, timeout=600)
        ext_log = server.extension_log()
    context = f"screenshot of a failure: {tmp_path / 'failure.png'}\ndrive: {json.dumps(result, indent=1)}\n{log}\nextension log:\n{ext_log[-4000:]}"
    assert result["error"] is None, context
    # $/progress while the model loads reaches the extension and the status bar ends at ready. The
    # bar is polled every 100 ms and the fp16 starter can load in less, so "loading" is not always
    # seen (the progress-to-status mapping is unit-tested in editors/vscode/src/test/status.test.ts).
    assert "Received notification '$/progress'" in ext_log, context
    assert result["statusKinds"][-1] == "ready" and "error" not in result["statusKinds"], context
    assert "Infill" in result["statusText"], context
    # The item's tooltip (VS Code draws it as a hover) is read back at ready.
    assert (result["statusTooltip"] or "").startswith("Infill:"), context
    # One line of ghost text (the span is single-line) may come back from the DOM in several pieces
    # when VS Code draws it in parts: join them.
    ghost = result["ghostText"].replace("\u00a0", " ").replace("\n", "")
    assert ghost.strip(), context
    assert "textDocument/inlineCompletion" in ext_log, context
    assert f"Starting {sys.executable} -m diffusion_infill serve" in ext_log, "not the configured server"

    lines = sample.read_text().splitlines()
    before = SAMPLE.splitlines()
    prefix = f'    label = ""  #{TYPED}'
    # Two lines were edited, line 9 (typing and Tab) and the applied rewrite's; nothing else.
    assert result.get("commandDone"), context
    chosen = result["commandIndex"]
    command, keep_start, keep_end = REWRITES[chosen]
    row = command["line"] - 1
    assert len(lines) == len(before), context
    assert [i for i in range(len(before)) if lines[i] != before[i] and i not in (LINE - 1, row)] == [], context
    edited = lines[LINE - 1]
    assert edited.startswith(prefix), (edited, context)
    inserted = edited[len(prefix):]
    assert inserted, "Tab inserted nothing"
    assert inserted == ghost or ghost.startswith(inserted) or inserted.startswith(ghost.rstrip()), (inserted, ghost)
    # The accepted ghost text is gone; a new suggestion for the new cursor position may already be
    # shown (the server answers within the 300 ms the driver waits), but not the accepted text again.
    after = result["ghostTextAfterTab"].replace("\u00a0", " ").replace("\n", "")
    assert result["ghostAfterTab"] == 0 or after != ghost, ("the accepted ghost text is still shown after Tab", after)
    assert screenshot.stat().st_size > 10_000

    # The rewrites before the applied one were refused (and left the file alone: checked above), the
    # blank line with the server's reason; the applied one replaced its selection and nothing else
    # on its line.
    assert chosen >= 1 and len(result["commandRefusals"]) == chosen, context
    assert "nothing changed (no suggestion)" in result["commandRefusals"][0], context
    rewritten = lines[row]
    assert rewritten != before[row], context
    assert rewritten.startswith(keep_start) and rewritten.endswith(keep_end), (rewritten, context)
    assert "infill.rewriteSelection" in ext_log or "workspace/executeCommand" in ext_log, context
    assert result.get("settingsPushed") and SETTINGS_PUSHED in ext_log, "settings change not sent"


@pytest.mark.editor
@pytest.mark.slow
def test_status_bar_shows_error_when_the_server_cannot_start(tools: Toolchain, tmp_path: Path):
    """Real VS Code with `infill.server.pythonPath` pointing nowhere: the status bar item shows the error."""
    if (reason := tools.missing_editor()) is not None:
        pytest.skip(reason)
    vsix = build_vsix(tools, tmp_path)
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "sample.py").write_text(SAMPLE)
    missing = tmp_path / "no-such-python"
    with code_server(tools, vsix, tmp_path / "vscode", folder, python=str(missing)) as server:
        result, log = drive(tools, {
            "url": server.url, "folder": str(folder), "file": "sample.py", "expectStatus": "error",
            "screenshot": str(tmp_path / "error.png"), "timeoutMs": 120_000,
        }, timeout=300)
        ext_log = server.extension_log()
    context = f"drive: {json.dumps(result, indent=1)}\n{log}\nextension log:\n{ext_log[-3000:]}"
    assert result["error"] is None, context
    assert result["statusKinds"][-1] == "error", context
    assert "Infill" in result["statusText"], context
    assert str(missing) in ext_log, context


def test_toolchain_hint_names_the_install_script(tmp_path: Path):
    """Without the toolchain the editor tests skip with a reason that says how to install it."""
    reason = Toolchain(tmp_path / "nowhere").missing_editor()
    assert reason is not None and ".ci/install-vscode.sh" in reason
    assert shutil.which("bash") and (REPO / ".ci" / "install-vscode.sh").exists()
