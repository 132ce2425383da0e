"""The precision/coverage trade-off ``infill eval`` prints for choosing ``infill.minConfidence``."""

from __future__ import annotations

from model.training.evaluate import answered_tradeoff, choose_floor


def rec(conf: float, sim: float, output: str = "x", exact: bool = False) -> dict:
    return {"confidence": conf, "edit_similarity": sim, "output": output, "exact": exact}


RECORDS = [rec(0.9, 100, exact=True), rec(0.8, 85), rec(0.7, 40), rec(0.6, 90), rec(0.3, 20), rec(0.2, 10),
           rec(0.1, 30), rec(0.0, 0, output="")]  # the last: the engine offered nothing


def test_rows_count_answered_cases_and_what_is_shown():
    rows = {r["floor"]: r for r in answered_tradeoff(RECORDS, floors=(0.0, 0.5, 0.75))}
    assert rows[0.0]["answered_pct"] == 87.5  # 7 of 8: an empty output is no answer
    assert rows[0.0]["acceptable_pct"] == round(100 * 3 / 7, 2) and rows[0.0]["acceptable_of_all_pct"] == 37.5
    assert rows[0.5]["answered_pct"] == 50.0 and rows[0.5]["acceptable_pct"] == 75.0
    assert rows[0.5]["exact_pct"] == 25.0 and rows[0.5]["edit_similarity"] == 78.75
    assert rows[0.75]["answered_pct"] == 25.0 and rows[0.75]["acceptable_pct"] == 100.0


def test_the_chosen_floor_is_the_most_precise_that_keeps_half_the_answers():
    chosen = choose_floor(RECORDS)
    # 0.65 and up would be more precise but keep fewer than half of the 7 answers
    assert chosen["floor"] == 0.35 and chosen["answered_pct"] == 50.0 and chosen["acceptable_pct"] == 75.0
    assert choose_floor(RECORDS, min_answered=0.25)["floor"] == 0.75
    assert choose_floor(RECORDS, min_answered=1.0)["floor"] == 0.0
