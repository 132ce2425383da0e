"""The workspace index (ranking, caps, incremental updates) and its scanner (what it skips, and says)."""

from __future__ import annotations

import logging
import os

import pytest

from infill.workspace import WorkspaceConfig, WorkspaceIndex, scan

CONFIG_PY = '''"""Reading the settings file."""

import json


class ConfigError(ValueError):
    """The settings file is broken."""


def load_settings(path, defaults=None):
    with open(path) as f:
        raw = json.load(f)
    merged = dict(defaults or {})
    merged.update(raw)
    return merged


def settings_value(settings, key, fallback):
    return settings.get(key, fallback)
'''

GEOMETRY_PY = '''import math


def rotate_point(x, y, angle):
    c, s = math.cos(angle), math.sin(angle)
    return x * c - y * s, x * s + y * c


def polygon_area(points):
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2
'''

MAIN_PY = '''from config import load_settings, settings_value


def run(path):
    settings = load_settings(path, defaults={"verbose": False})
    verbose = settings_value('''


def index_of(**files) -> WorkspaceIndex:
    index = WorkspaceIndex()
    for name, text in files.items():
        assert index.update(f"{name}.py", text)
    return index


def test_ranking_picks_the_file_that_defines_the_names_near_the_cursor():
    index = index_of(geometry=GEOMETRY_PY, config=CONFIG_PY)
    snippets = index.related("main.py", MAIN_PY, len(MAIN_PY), "python")
    assert snippets, "nothing related found"
    assert "def settings_value(settings, key, fallback):" in snippets[0]
    assert not any("rotate_point" in s for s in snippets)  # shares no names with the cursor's lines


def test_only_the_same_language_family_and_never_the_document_itself():
    index = index_of(config=CONFIG_PY)
    index.update("config.js", "function load_settings(path, defaults) { return settings_value(path); }\n")
    snippets = index.related("main.py", MAIN_PY, len(MAIN_PY), "python")
    assert snippets and not any("function" in s for s in snippets)
    assert index.related("config.py", MAIN_PY, len(MAIN_PY), "python") == []  # its own text is excluded
    ts = index.related("main.ts", "load_settings(path, settings_value)", 10, "typescript")
    assert ts and "function load_settings" in ts[0]  # TypeScript sees JavaScript files


def test_snippets_are_whole_lines_within_the_budget_and_distinct():
    index = WorkspaceIndex(WorkspaceConfig(snippet_lines=4))
    index.update("config.py", CONFIG_PY)
    index.update("copy_of_config.py", CONFIG_PY)  # the same text twice is offered once
    snippets = index.related("main.py", MAIN_PY, len(MAIN_PY), "python", budget_chars=150)
    assert snippets and sum(len(s) for s in snippets) <= 150
    lines = CONFIG_PY.splitlines(keepends=True)
    for s in snippets:
        assert s.endswith("\n") and s in CONFIG_PY
        assert any(CONFIG_PY.startswith(s, sum(len(x) for x in lines[:i])) for i in range(len(lines)))
    assert len(set(snippets)) == len(snippets)
    assert index.related("main.py", MAIN_PY, len(MAIN_PY), "python", budget_chars=0) == []


def test_open_documents_rank_first_on_equal_evidence():
    index = WorkspaceIndex()
    index.update("b_disk.py", CONFIG_PY)
    index.update("a_open.py", CONFIG_PY.replace("merged", "combined"), opened=True)
    snippets = index.related("main.py", MAIN_PY, len(MAIN_PY), "python")
    assert "combined" in snippets[0] and "merged" in snippets[1]


def test_update_re_indexes_and_remove_forgets():
    index = index_of(config=CONFIG_PY, geometry=GEOMETRY_PY)
    query = "area = polygon_area(points)\n"
    assert any("polygon_area" in s for s in index.related("m.py", query, len(query), "python"))
    index.update("geometry.py", GEOMETRY_PY.replace("polygon_area", "shoelace"))
    assert not any("polygon_area" in s for s in index.related("m.py", query, len(query), "python"))
    query2 = "area = shoelace(points)\n"
    assert any("def shoelace" in s for s in index.related("m.py", query2, len(query2), "python"))
    index.remove("geometry.py")
    assert index.related("m.py", query2, len(query2), "python") == []
    assert len(index) == 1 and "geometry.py" not in index
    assert index.total_bytes == len(CONFIG_PY.encode())


def test_many_updates_of_one_file_keep_the_postings_bounded():
    index = WorkspaceIndex()
    for i in range(3000):
        index.update("geometry.py", GEOMETRY_PY.replace("polygon_area", f"area_{i}"))
    stats = index.stats()
    live = stats["posting_entries"] - stats["dead_entries"]
    assert stats["files"] == 1 and stats["posting_entries"] <= 2 * live + 20_000
    query = "area_2999(points)"
    assert "def area_2999" in index.related("m.py", query, 5, "python")[0]


def test_caps_hold_and_an_open_document_evicts_a_workspace_file():
    config = WorkspaceConfig(max_files=3, max_total_bytes=3 * len(CONFIG_PY), max_file_bytes=len(CONFIG_PY))
    index = WorkspaceIndex(config)
    for i in range(3):
        assert index.update(f"f{i}.py", CONFIG_PY)
    assert not index.update("f3.py", CONFIG_PY)  # full
    assert not index.update("big.py", CONFIG_PY + "x = 1\n")  # over max_file_bytes
    assert index.update("open.py", GEOMETRY_PY, opened=True)  # evicts the oldest workspace file
    assert len(index) == 3 and "f0.py" not in index and "open.py" in index
    assert index.total_bytes <= config.max_total_bytes and index.stats()["refused"] == 1


def test_a_cursor_outside_the_text_or_an_unknown_language_gives_nothing():
    index = index_of(config=CONFIG_PY)
    assert index.related("m.py", MAIN_PY, len(MAIN_PY) + 1, "python") == []
    assert index.related("m.py", MAIN_PY, -1, "python") == []
    assert index.related("m.txt", MAIN_PY, 0, None) == []
    assert not index.update("notes.txt", "load_settings")


def test_config_values_are_checked():
    with pytest.raises(ValueError, match="max_files"):
        WorkspaceConfig(max_files=0)


# ---------------------------------------------------------------------- the scanner


def write(path, data) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def test_scan_skips_what_it_should_and_logs_each_skip(tmp_path, caplog):
    root = str(tmp_path)
    write(f"{root}/pkg/config.py", CONFIG_PY)
    write(f"{root}/pkg/geometry.py", GEOMETRY_PY)
    write(f"{root}/pkg/blob.py", b"x = 1\n\x00\x01\x02")
    write(f"{root}/pkg/latin.py", "name = 'caf\xe9'\n".encode("latin-1"))
    write(f"{root}/pkg/minified.js", "var a=" + "1+" * 1000 + "1;\n")
    write(f"{root}/pkg/huge.py", "x = 1\n" * 40_000)
    write(f"{root}/pkg/schema_pb2.py", "x = 1\n")
    write(f"{root}/pkg/gen.py", "# Code generated by a tool. DO NOT EDIT.\nx = 1\n")
    write(f"{root}/node_modules/dep/index.js", "module.exports = 1;\n")
    write(f"{root}/.git/hooks/hook.py", "x = 1\n")
    write(f"{root}/logs/out.py", "x = 1\n")
    write(f"{root}/notes.txt", "not source\n")
    write(f"{root}/.gitignore", "# comment\nlogs/\n!keep.py\n")
    os.symlink(root, f"{root}/pkg/loop")  # a directory symlink back to the root
    with caplog.at_level(logging.DEBUG, logger="infill.workspace"):
        found = {os.path.relpath(p, root): lang for p, lang, _ in scan(root, WorkspaceConfig(max_file_bytes=100_000))}
    assert found == {"pkg/config.py": "python", "pkg/geometry.py": "python"}
    log = caplog.text
    for expected in ("blob.py: binary", "latin.py: not UTF-8", "minified.js: a line of", "huge.py: 240000 bytes",
                     "schema_pb2.py: a generated file", "gen.py: a generated file", "excluded directory",
                     "node_modules", "logs (.gitignore)", "symlink loop", "negated pattern"):
        assert expected in log, expected


def test_scan_stops_at_the_caps_and_survives_bad_roots(tmp_path, caplog):
    for i in range(20):
        write(f"{tmp_path}/m{i:02}.py", f"def f{i}(x):\n    return x + {i}\n")
    with caplog.at_level(logging.INFO, logger="infill.workspace"):
        assert len(list(scan(str(tmp_path), WorkspaceConfig(max_files=5)))) == 5
        assert "stopped at the index's caps" in caplog.text
        assert list(scan(str(tmp_path / "missing"))) == []
        assert list(scan(str(tmp_path / "m00.py"))) == []
    assert "cannot read" in caplog.text and "not a directory" in caplog.text


def test_scan_feeds_an_index_that_ranks_across_files(tmp_path):
    write(f"{tmp_path}/config.py", CONFIG_PY)
    write(f"{tmp_path}/geometry.py", GEOMETRY_PY)
    index = WorkspaceIndex()
    for path, lang, text in scan(str(tmp_path)):
        index.update(path, text, lang)
    snippets = index.related(str(tmp_path / "main.py"), MAIN_PY, len(MAIN_PY), "python")
    assert snippets and "load_settings" in snippets[0]
