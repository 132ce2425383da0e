"""``infill`` itself: help, version, unknown commands, and that none of them loads heavy libraries.

Each run is a subprocess of ``python -m diffusion_infill``; nothing here loads a model.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from diffusion_infill import __version__, cli

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "tree_sitter", "lsprotocol", "pygls", "numpy")


def infill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffusion_infill", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_help_lists_every_command():
    r = infill("--help")
    assert r.returncode == 0 and r.stderr == ""
    listed = [line.split()[0] for line in r.stdout.split("commands:\n", 1)[1].splitlines() if line.startswith("  ")]
    assert listed == [c.name for c in cli.COMMANDS]
    assert infill().stdout == r.stdout  # no arguments: the same help


def test_help_command_is_the_command_s_own_help():
    assert infill("help", "fill").stdout == infill("fill", "--help").stdout


def test_version_comes_from_the_distribution_and_matches_the_fallback():
    r = infill("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"infill (diffusion-infill) {metadata.version('diffusion-infill')}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"] == metadata.version("diffusion-infill")


def test_version_falls_back_to_the_package_version_without_metadata(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert cli.version() == __version__


def test_unknown_commands_and_options_are_refused_with_a_hint():
    r = infill("fil")
    assert r.returncode == 2 and r.stdout == ""
    assert "unknown command 'fil'; did you mean `infill fill`?" in r.stderr
    r = infill("--verbose")
    assert r.returncode == 2 and "unknown option '--verbose'" in r.stderr
    assert "did you mean" not in infill("zzzz").stderr


def test_the_entry_point_is_this_dispatcher():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"infill": "diffusion_infill.cli:main"}
    script = shutil.which("infill")
    if script is None:
        pytest.skip("the package is not installed (no `infill` on PATH)")
    r = subprocess.run([script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == infill("--help").stdout


@pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda c: c.name)
def test_every_command_module_has_a_main(command):
    """Read from the source, so the check imports nothing (Ray, torch) itself."""
    parts = command.module.split(".")
    path = ROOT.joinpath(*parts).with_suffix(".py")
    if not path.is_file():
        path = ROOT.joinpath(*parts, "__init__.py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), command.module


PROBE = """
import json, sys
from diffusion_infill.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:  # argparse's --help and usage errors
    rc = exc.code
print(json.dumps({"rc": rc, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))
""" % (HEAVY,)


@pytest.mark.parametrize("argv", [
    ["--help"], ["--version"], ["nope"], ["fill", "--help"], ["fill"], ["fill", "examples/demo.py"],
    ["fill", "examples/demo.py", "--at", "99:1"], ["fill", "examples/demo.py", "--select", "14:1-13:1"],
    ["fill", "README.md", "--at", "1:1"], ["fill", "examples/demo.py", "--at", "1:1", "--steps", "-1"],
    ["fill", "--jsonl", "missing.jsonl", "--out", "x.jsonl"],
], ids=" ".join)
def test_help_and_argument_errors_load_nothing_heavy(argv):
    r = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], f"{argv} loaded {result['heavy']}"
    assert result["rc"] in (0, 2)
