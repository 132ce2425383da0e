"""``python -m benchmarks.profile_step`` times a cached step of the shipped model and profiles it."""

import re

from benchmarks.profile_step import main


def test_profile_step_prints_the_split_and_the_profile(capsys):
    main(["--context", "64", "--canvas", "8", "--steps", "2", "--dtype", "float32"])
    out = capsys.readouterr().out
    m = re.search(r"float32, 64 context tokens, 9-token block: step ([\d.]+) ms, network ([\d.]+) ms, head ([\d.]+) ms", out)
    assert m, out
    step, network, head = map(float, m.groups())
    assert 0 < head < step and 0 < network < step * 1.5  # the network is most of a step (timing noise aside)
    assert "aten::mm" in out or "aten::addmm" in out  # the profiler's table of operators
