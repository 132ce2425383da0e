"""The product's documents, --help texts and comments speak of the product, not of the order in which
it was built: no phases or sessions of work, no paths under the ignored runs/ folder (the training command's default output directory, a quoted default, is the product's own), no README
beyond 15 KB."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HISTORY = re.compile(
    r"\bphases? \d|\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"thirteenth|\d+th) session\b|\bthis session\b|\bsession \d|(?<!\")\bruns/[a-z0-9_]", re.IGNORECASE)
SUFFIXES = {".md", ".py", ".lua", ".ts", ".mjs", ".scm", ".toml", ".sh"}


def product_files() -> list[Path]:
    """Tracked files outside tests/ and generated benchmark results."""
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.split()
            if Path(p).suffix in SUFFIXES and not p.startswith(("tests/", "benchmarks/results/"))
            and "node_modules" not in p]


def test_no_words_about_the_order_of_work():
    hits = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
            for p in product_files() for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
            if HISTORY.search(line)]
    assert hits == [], "\n".join(hits)


def test_readme_is_short():
    assert (ROOT / "README.md").stat().st_size <= 15 * 1024
