"""The parallel-decoding goal's verdict (``benchmarks.parallel.judge``), on hand-made rows."""

from benchmarks.parallel import judge, paired


def row(setting, em, tpc, same=None, kind="fixed"):
    return {"setting": setting, "exact_match": em, "tokens_per_call": tpc, "same_as_1_per_step": same,
            "kind": kind}


def test_met_when_fast_and_within_two_points():
    g = judge([row("1/step", 30.0, 1.0, kind="baseline"), row("2/step", 29.0, 1.9, 40.0),
               row("4/step", 28.5, 3.7, 20.0), row("8/step", 20.0, 7.0, 5.0)])
    assert g["met"] is True
    assert g["value"]["setting"] == "4/step" and g["value"]["loss_points"] == 1.5


def test_not_met_when_every_fast_setting_loses_more():
    g = judge([row("1/step", 30.0, 1.0, kind="baseline"), row("4/step", 27.0, 3.7, 20.0),
               row("threshold 0.9", 30.0, 1.2, 100.0, "threshold")])
    assert g["met"] is False
    assert g["value"]["setting"] == "4/step" and g["value"]["loss_points"] == 3.0


def test_weak_baseline_is_not_judged_even_with_a_small_loss():
    # 1.5 % at 1/step: 4/step at 0 % "loses" only 1.5 points, which says nothing about the sampler
    rows = [row("1/step", 1.5, 1.0, kind="baseline"), row("4/step", 0.0, 3.7, 0.0),
            row("1/step, speculating 4", 1.5, 1.85, 100.0, "speculative")]
    g = judge(rows)
    assert g["met"] is None and "not judged" in g["note"]
    assert g["value"]["setting"] == "1/step, speculating 4"  # the fastest with identical outputs


def test_identical_outputs_count_even_with_a_weak_baseline():
    g = judge([row("1/step", 0.0, 1.0, kind="baseline"), row("1/step, speculating 8", 0.0, 3.2, 100.0,
                                                              "speculative")])
    assert g["met"] is True and g["value"]["setting"] == "1/step, speculating 8"


def test_the_ablation_is_never_the_answer():
    g = judge([row("1/step", 10.0, 1.0, kind="baseline"), row("stops anywhere", 10.0, 9.0, 100.0, "ablation"),
               row("2/step", 9.0, 1.9, 50.0)])
    assert g["met"] is False and g["value"]["setting"] == "2/step"


def test_paired_loss_is_the_mean_difference_with_its_standard_error():
    base = [1, 1, 0, 0, 1, 0, 0, 0]
    same = list(base)
    assert paired(same, base) == (0.0, 0.0)
    worse = [0, 1, 0, 0, 0, 0, 0, 0]  # two cases lost of eight: 25 points, sd of (100,0,0,0,100,0,0,0) / sqrt(8)
    mean, se = paired(worse, base)
    assert mean == 25.0 and se == round((((75 ** 2) * 2 + (25 ** 2) * 6) / 7 / 8) ** 0.5, 2)
