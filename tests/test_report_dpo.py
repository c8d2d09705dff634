"""The DPO results table: every row against the starting policy's baseline on the same records, paired."""

import pytest

from cotgen.report.dpo import Method, compare, dpo_markdown, rounds_plot

TAGS = ["single_object"] * 10 + ["counting"] * 10


def method(name, r, verifier, records, correct):
    return Method(name, r, verifier, records, list(TAGS), correct)


def test_rows_pair_with_the_round_0_baseline_of_their_own_records():
    base = [True] * 5 + [False] * 5 + [True] * 2 + [False] * 8  # overall (0.5 + 0.2) / 2 = 0.35
    better = [True] * 8 + [False] * 2 + [True] * 4 + [False] * 6  # 0.6: better on every record base had wrong
    subset_base = [False] * 20
    methods = [
        method("baseline policy", 0, "baseline", "all", base),
        method("DPO", 1, "baseline", "all", better),
        method("baseline policy", 0, "baseline", "first 10", subset_base),
        method("baseline policy + ORM@8", 0, "orm@8", "first 10", base),
    ]
    rows = compare(methods, resamples=500)
    assert [r.difference for r in rows] == pytest.approx([0.0, 0.25, 0.0, 0.35])
    lo, hi = rows[1].difference_ci
    assert 0 < lo <= 0.25 <= hi  # paired: every record moved one way, so the interval excludes zero
    assert rows[1].ci[0] < rows[1].method.overall < rows[1].ci[1]
    table = dpo_markdown(rows)
    assert "| DPO | all | 0.800 | – | 0.400 | – | – | – | 0.600 [" in table and "+0.250 [" in table
    assert rounds_plot(rows, "title").size == (760, 500)


def test_rows_of_other_records_are_not_paired():
    methods = [method("baseline policy", 0, "baseline", "all", [True] * 20), Method("DPO", 1, "baseline", "all", TAGS[::-1], [True] * 20)]
    with pytest.raises(ValueError, match="DPO: its records differ from those of baseline policy"):
        compare(methods, resamples=10)
    with pytest.raises(ValueError, match=r"ORM: no round-0 baseline on the same records \(first 10\) to pair it with"):
        compare([methods[0], method("ORM", 0, "orm@8", "first 10", [True] * 20)], resamples=10)
