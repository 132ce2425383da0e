"""The benchmark suite keeps working: every benchmark runs at smoke size (``infill bench --quick``)
and its JSON is complete and self-consistent. Speed is not asserted; the machine is shared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import run as bench
from benchmarks import summary
from benchmarks.common import distribution, percentile

NAMES = [n for n in bench.BENCHMARKS if n not in bench.NAMED_ONLY]  # what a plain `infill bench` runs


# ------------------------------------------------------------------ pure helpers (fast)

def test_percentile_interpolates_and_handles_edges():
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile(list(range(101)), 95) == pytest.approx(95)
    d = distribution([5.0, 1.0, 3.0])
    assert (d["n"], d["min"], d["p50"], d["max"]) == (3, 1.0, 3.0, 5.0)
    assert distribution([]) == {"n": 0}


def test_unknown_benchmark_and_bad_sizes_are_rejected(capsys):
    assert bench.main(["nosuch"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--limit", "0"])
    with pytest.raises(SystemExit):
        bench.main(["--cache-contexts", "256,x"])
    assert bench.main(["--model", "/nonexistent/checkpoint", "cache"]) == 2
    capsys.readouterr()
    assert bench.main(["--exclude-heldout", "/nonexistent/corpus", "validity"]) == 2
    assert "--exclude-heldout" in capsys.readouterr().err


def test_summary_without_results_says_so(tmp_path):
    assert "No results yet" in summary.render(tmp_path)


# ------------------------------------------------------------------ the whole suite at smoke size

@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    code = bench.main(["--quick", "--out", str(out)])
    run = json.loads((out / "run.json").read_text())
    assert code == 0, run
    return out


def load(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}.json").read_text())


def ordered(d: dict) -> bool:
    return d["n"] == 0 or d["min"] <= d["p50"] <= d["p95"] <= d["p99"] <= d["max"]


@pytest.mark.slow
def test_every_benchmark_writes_json_with_the_common_header(results):
    run = load(results, "run")
    assert [b["name"] for b in run["benchmarks"]] == NAMES
    assert all(b["status"] == "ok" for b in run["benchmarks"])
    for name in NAMES:
        doc = load(results, name)
        assert doc["benchmark"] == name and doc["quick"] is True
        assert doc["machine"]["nproc"] >= 1 and doc["machine"]["cpu"]
        assert doc["command"].startswith("infill bench") and "--quick" in doc["command"]
        assert Path(doc["model"]["path"], "config.json").is_file()
        for g in doc["goals"]:
            assert set(g) >= {"name", "target", "value", "met"} and g["met"] in (True, False, None)
        for png in doc.get("plots", []):
            data = (results / png).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


@pytest.mark.slow
def test_latency_is_split_and_consistent(results):
    d = load(results, "latency")
    total = d["single_line"]["end_to_end_ms"]["n"] + d["multi_line"]["end_to_end_ms"]["n"]
    assert total >= 1
    for part in ("single_line", "multi_line"):
        for key in ("end_to_end_ms", "model_ms_in_process", "engine_ms_in_process"):
            assert ordered(d[part][key])
        assert d[part]["answered"] <= d[part]["end_to_end_ms"]["n"]
    assert d["server_stats"]["engine_calls"] >= 1
    assert [g["name"] for g in d["goals"]] == ["single-line p50 <= 60 ms", "single-line p95 <= 150 ms",
                                               "multi-line (<= 64 tokens) p50 <= 200 ms",
                                               "single-line answered >= 90 % (default latency budget)"]
    for g in d["goals"]:
        if g["value"] is not None:
            op, limit = g["target"].split()[:2]
            assert g["met"] == (g["value"] <= float(limit) if op == "<=" else g["value"] >= float(limit))
    # the machine and what was chosen on it are named
    cal = d["calibration"]
    assert cal["dtype"] in ("float32", "bfloat16") and cal["threads"] >= 1 and cal["dtype_reason"]
    assert cal["machine"]["cpu"] and set(cal["machine"]["flags"]) >= {"amx_tile", "avx512_bf16", "avx512f"}
    assert "latencyBudgetMs" not in d["params"]["server_settings"]  # the server's default budget


@pytest.mark.slow
def test_parallel_curve_has_every_setting_and_consistent_rates(results):
    d = load(results, "parallel")
    rows = {r["setting"]: r for r in d["rows"]}
    assert list(rows) == ["1/step", "2/step", "4/step", "8/step", "threshold 0.9", "threshold 0.7", "threshold 0.5",
                          "1/step, speculating 4", "1/step, speculating 8", "1/step, stops anywhere"]
    assert rows["1/step, stops anywhere"]["options"] == {"stop_at_frontier": False}
    for label in ("1/step, speculating 4", "1/step, speculating 8"):  # exact by construction, in fewer calls
        assert rows[label]["same_as_1_per_step"] == 100.0
        # No more calls than 1/step up to one per case: a draft call scores several canvases in one
        # batch, whose float32 sums can break a near-tie (common where the copy prior gives tokens equal
        # mass) the other way, so a step may differ on the way to the same output.
        assert rows[label]["calls_per_case"] <= rows["1/step"]["calls_per_case"] + 1
    for r in rows.values():
        assert r["n"] == d["params"]["cases"] > 0
        assert 0 <= r["exact_match"] <= 100
        assert r["positions_per_call"] >= r["tokens_per_call"] >= 0 and r["positions_per_call"] > 0
        assert r["calls_per_case"] >= 1
    # agreement with 1/step is computed from the outputs stored in the same run
    base = rows["1/step"]["outputs"]
    assert rows["1/step"]["same_as_1_per_step"] is None and len(base) == d["params"]["cases"]
    for r in list(rows.values())[1:]:
        same = sum(a == b for a, b in zip(r["outputs"], base))
        assert r["same_as_1_per_step"] == round(100 * same / len(base), 2)
    # each row's paired loss against 1/step is the difference of the two rows' means, with an error bar
    for r in list(rows.values())[1:]:
        assert len(r["exact"]) == len(r["edit"]) == d["params"]["cases"]
        assert abs(r["exact_loss"] - (rows["1/step"]["exact_match"] - r["exact_match"])) < 0.02
        assert abs(r["edit_loss"] - (rows["1/step"]["edit_similarity"] - r["edit_similarity"])) < 0.02
        assert r["exact_loss_se"] >= 0 and r["edit_loss_se"] >= 0
    # more tokens per step commit more per call (the fills themselves differ, so their lengths and call
    # counts may too: a fill that runs longer can take more calls at 2/step than another at 1/step)
    per = [rows[f"{k}/step"]["tokens_per_call"] for k in (1, 2, 4, 8)]
    assert per == sorted(per)


@pytest.mark.slow
def test_typing_compares_reuse_with_whole_contexts_over_the_same_requests(results):
    d = load(results, "typing")
    (row,) = d["rows"]
    assert row["requests"] > row["cases"] > 0 and 0 <= row["reused"] <= row["requests"] - row["cases"]
    assert 0 <= row["identical_pct"] <= 100
    assert row["edit_similarity_diff"] == pytest.approx(row["edit_similarity_reuse"] - row["edit_similarity_whole"],
                                                        abs=0.02)
    if row["ratio"] is not None:
        assert row["ratio"] == pytest.approx(row["model_ms_p50_reuse"] / row["model_ms_p50_whole"], abs=2e-3)


@pytest.mark.slow
def test_cache_ratio_matches_its_timings(results):
    d = load(results, "cache")
    assert [r["context_tokens"] for r in d["rows"]] == d["params"]["contexts"]
    for r in d["rows"]:
        assert r["full_forward_ms"] > 0 and r["cached_step_ms"] > 0
        assert r["ratio"] == pytest.approx(r["cached_step_ms"] / r["full_forward_ms"], abs=2e-3)
        assert r["window_ratio"] == pytest.approx(r["window_step_ms"] / r["full_forward_ms"], abs=2e-3)


@pytest.mark.slow
def test_scaling_measures_each_size_and_concurrency_level(results):
    d = load(results, "scaling")
    assert [r["lines"] for r in d["sizes"]] == d["params"]["sizes"]
    for r in d["sizes"]:
        assert r["inline_ms"]["n"] >= 1 and ordered(r["inline_ms"]) and ordered(r["keystroke_ms"])
    assert [r["documents"] for r in d["concurrency"]] == d["params"]["concurrency_levels"]
    for r in d["concurrency"]:
        assert r["request_ms"]["n"] == r["documents"] * r["rounds"]


@pytest.mark.slow
def test_validity_counts_are_consistent(results):
    d = load(results, "validity")
    no_corr, corr, default = d["rows"]
    assert no_corr["correction_rounds"] == 0 and corr["correction_rounds"] == d["params"]["default_correction_rounds"]
    assert no_corr["repair_cuts"] == corr["repair_cuts"] == 0 < default["repair_cuts"]
    assert default["correction_rounds"] == corr["correction_rounds"]
    assert sum(d["params"]["languages"].values()) == d["params"]["cases"]
    for r in d["rows"]:
        assert r["suggestions"] <= r["cases"] == d["params"]["cases"]
        assert r["errors_added_after_correction"] <= r["errors_added_before_correction"]
        if r["valid_pct"] is not None:
            assert 0 <= r["valid_pct"] <= 100
    assert no_corr["errors_added_after_correction"] == no_corr["errors_added_before_correction"]
    assert no_corr["corrected"] == 0 and no_corr["repaired"] == corr["repaired"] == 0
    assert no_corr["retried"] == corr["retried"] == 0 == no_corr["invalid_retry_candidates"]
    assert default["retried"] <= default["suggestions"]
    # the same deterministic fills: repair only acts on what self-correction left broken
    assert default["suggestions"] == corr["suggestions"]


@pytest.mark.slow
def test_quality_table_labels_settings_and_sources(results):
    d = load(results, "quality")
    assert {r["setting"] for r in d["ours"]} <= {"no oracle length", "oracle length"}
    assert any(r["benchmark"] == "held-out corpus spans" for r in d["ours"])
    if d["humaneval_skipped"] is None:
        assert {(r["set"], r["setting"]) for r in d["ours"] if r["benchmark"] == "HumanEval-Infilling"} == {
            (s, o) for s in d["params"]["humaneval_sets"] for o in ("no oracle length", "oracle length")}
    for p in d["published"]:
        assert p["source"] and p["setting"] and isinstance(p["value"], float)
    md = (results / "quality.md").read_text()
    assert "oracle length" in md and "[1]" in md


@pytest.mark.slow
def test_summary_is_built_from_the_json(results):
    text = (results / "SUMMARY.md").read_text()
    cpu = load(results, "cache")["machine"]["cpu"]
    assert cpu in text and "--quick" in text
    for name in NAMES:
        for g in load(results, name)["goals"]:
            assert g["name"] in text
    lat = load(results, "latency")["single_line"]["end_to_end_ms"]
    if lat["n"]:
        assert f"p50 {lat['p50']:g}" in text


@pytest.mark.slow
def test_the_ablation_runs_when_named_and_pairs_every_variant_with_the_engine_alone(tmp_path):
    from benchmarks.ablation import table, variants
    from benchmarks.quality import humaneval_dir

    if humaneval_dir() is None:
        pytest.skip("no HumanEval-Infilling data beside the checkout (../shared/data/humaneval-infilling)")

    assert bench.main(["ablation", "--quick", "--out", str(tmp_path), "--ablation-limit", "4"]) == 0
    doc = load(tmp_path, "ablation")
    rows = doc["rows"]
    assert [r["variant"] for r in rows] == [v[0] for v in variants(2, 2, 2)]
    assert all(r["n"] == 4 and 0 <= r["pass@1"] <= 100 and 0 <= r["shown_pct"] <= 100 for r in rows)
    assert "pass_diff" not in rows[0] and all({"pass_diff", "pass_se", "edit_sim_diff", "time_ratio"} <= set(r)
                                              for r in rows[1:])
    assert len(doc["tasks"]) == len(rows) and all(len(t) == 4 for t in doc["tasks"].values())
    assert "engine alone" in table(rows) and "Ablation" in (tmp_path / "SUMMARY.md").read_text()
