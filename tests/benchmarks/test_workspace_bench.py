"""The workspace benchmark's pure parts: cases rebuild their file, use a name from another file, and the
paired summary is the mean of per-case differences."""

from __future__ import annotations

from benchmarks.workspace import Case, cases_for, python_builtins, sample, summarize
from infill.workspace import keywords

SETTINGS = '''DEFAULT_TIMEOUT = 30


def load_profile(path):
    with open(path) as f:
        return f.read()
'''

CLIENT = '''from .settings import DEFAULT_TIMEOUT, load_profile


class Client:
    def __init__(self, path):
        self.profile = load_profile(path)
        self.timeout = DEFAULT_TIMEOUT

    def describe(self):
        """Say what it is."""
        return "client with " + self.profile
'''


def test_cases_rebuild_their_file_and_use_a_name_defined_elsewhere():
    files = [("/r/pkg/settings.py", SETTINGS), ("/r/pkg/client.py", CLIENT)]
    cases = cases_for("pkg", files, keywords("python") | python_builtins())
    assert {c.kind for c in cases} == {"line-start", "mid-line"}
    for c in cases:
        original = dict(files)[c.path]
        assert c.path == "/r/pkg/client.py" and c.name in ("load_profile", "DEFAULT_TIMEOUT")
        assert c.name in c.reference  # the removed text needs the other file's name
        lines = original.split("\n")
        rebuilt = c.document[:c.offset] + c.reference + c.document[c.offset:]
        assert rebuilt == original and lines[c.line][c.column:] == c.reference
    assert not any("describe" in c.reference or "client with" in c.reference for c in cases)


def test_sample_is_deterministic_and_spread_over_repositories():
    def case(repo, i):
        return Case(repo, f"/{repo}/m.py", "line-start", i, 0, "name", "", 0, "x")

    by_repo = {"a": [case("a", i) for i in range(10)], "b": [case("b", i) for i in range(2)]}
    picked = sample(by_repo, 6)
    assert picked == sample(by_repo, 6) and len(picked) == 6
    assert sum(c.repo == "b" for c in picked) == 2


def test_summary_pairs_each_case_with_its_baseline():
    base = [{"exact": False, "edit_similarity": 0.5, "shown": True, "ms": 100.0, "related_chars": 0,
             "related_has_name": False} for _ in range(4)]
    arm = [dict(b, exact=i < 2, edit_similarity=0.5 + 0.1 * i, ms=110.0 + i, related_chars=50) for i, b in enumerate(base)]
    row = summarize("related", arm, base)
    assert row["exact_match_pct"] == 50 and row["exact_match_diff"] == 50
    assert row["precision_pct"] == 50 and row["shown"] == 4
    assert abs(row["edit_similarity_diff"] - 15.0) < 1e-6 and row["edit_similarity_diff_se"] > 0
    assert abs(row["latency_ms_diff"] - 11.5) < 1e-6 and row["changed_pct"] == 100
