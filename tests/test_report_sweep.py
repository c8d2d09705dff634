"""The sweep's numbers from rows: which run each point comes from, its verdicts, costs and interval."""

import math

import numpy as np
from conftest import run_cli

from cotgen.evaluate.bootstrap import bootstrap_ci
from cotgen.report.sweep import (
    compare_with_baseline,
    comparison_table,
    headline,
    oracle_curve,
    sweep_points,
)
from cotgen.sweep.store import ROW_SCHEMA, to_table


def pool_rows(index: int, tag: str, correct: list[bool], chosen: dict[int, int]) -> list[dict]:
    """An orm@4 pool for one prompt: path p is returned at each n with chosen[n] == p."""
    rows = []
    for p, ok in enumerate(correct):
        at = sorted(n for n, c in chosen.items() if c == p)
        rows.append({
            "unit": f"orm@4/{index:05d}", "run": "orm@4", "strategy": "orm", "n": 4, "pool": True, "prompt_index": index,
            "tag": tag, "path": p, "round": 0, "returned": p == chosen[4], "correct": ok, "chosen_at": at,
            "chosen_tokens": [256 * n for n in at], "chosen_judge_calls": at, "run_image_tokens": 1024, "run_judge_calls": 4,
            "run_seconds": 2.0, "step_scores": [], "reasons": [], "unit_rows": 4,
        })  # fmt: skip
    return rows


def direct_row(run: str, index: int, tag: str, ok: bool) -> dict:
    strategy, n = run.split("@")
    return {
        "unit": f"{run}/{index:05d}", "run": run, "strategy": strategy, "n": int(n), "pool": False, "prompt_index": index,
        "tag": tag, "path": 0, "round": 0, "returned": True, "correct": ok, "chosen_at": [], "chosen_tokens": [],
        "chosen_judge_calls": [], "run_image_tokens": 256, "run_judge_calls": 0, "run_seconds": 1.0, "step_scores": [],
        "reasons": [], "unit_rows": 1,
    }  # fmt: skip


def test_points_name_their_source_and_read_subsets_off_the_pool():
    rows = (
        pool_rows(0, "single_object", [False, True, False, True], {1: 0, 2: 1, 4: 1})
        + pool_rows(1, "counting", [False, False, True, False], {1: 0, 2: 0, 4: 3})
        + [direct_row("baseline@1", 0, "single_object", False), direct_row("baseline@1", 1, "counting", True)]
    )
    table = to_table(rows, ROW_SCHEMA).to_pandas()
    points = {p.name: p for p in sweep_points(table, resamples=200)}
    assert list(points) == ["baseline@1", "orm@1", "orm@2", "orm@4"]
    assert points["orm@2"].source == "first 2 paths of orm@4" and points["orm@4"].source == "orm@4"
    assert points["orm@1"].summary.overall == 0.0 and points["orm@2"].summary.overall == 0.5
    assert points["baseline@1"].summary.overall == 0.5
    assert points["orm@2"].per_prompt("tokens") == 512 and math.isnan(points["orm@2"].per_prompt("seconds"))
    assert points["orm@4"].per_prompt("seconds") == 2.0
    assert [p.name for p in headline(list(points.values()))] == ["baseline@1", "orm@4"]
    run, curve = oracle_curve(table)
    assert run == "orm@4" and curve == [(1, 0.0), (2, 0.5), (4, 1.0)]  # any of the first n correct


def test_bootstrap_interval_covers_the_estimate_and_narrows_with_prompts():
    rng = np.random.default_rng(0)
    tags = np.array(["a", "b"] * 10)
    correct = rng.random(20) < 0.5
    lo, hi = bootstrap_ci(tags, correct, 500)
    estimate = np.mean([correct[tags == t].mean() for t in ("a", "b")])
    assert lo <= estimate <= hi and hi - lo > 0
    lo4, hi4 = bootstrap_ci(np.tile(tags, 4), np.tile(correct, 4), 500)
    assert hi4 - lo4 < hi - lo


def test_report_of_a_folder_without_rows_is_one_clear_error(tmp_path):
    result = run_cli("report", tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == f"cotgen: error: {tmp_path}: no sweep rows (rows/part-*.parquet); run jobs/sweep.py first"


def test_paired_comparison_with_the_baseline():
    # 40 prompts: orm@4 returns a correct image wherever the baseline did, and also on every other
    # prompt where it did not; path 3 is correct on every prompt (the any-of-4 ceiling is 1.0)
    rows = []
    for i in range(40):
        tag = ("single_object", "counting")[i % 2]
        base_ok = i % 3 != 0
        fixed = not base_ok and i % 2 == 0
        returned = 0 if base_ok else (3 if fixed else 1)
        rows += pool_rows(i, tag, [base_ok, False, False, True], {1: 0, 2: 0, 4: returned})
        rows.append(direct_row("baseline@1", i, tag, base_ok))
    table = to_table(rows, ROW_SCHEMA).to_pandas()
    points = headline(sweep_points(table, resamples=500))
    (c,) = compare_with_baseline(points, table, resamples=500)
    orm, base = points[1], points[0]
    assert c.point.name == "orm@4" and c.prompts == 40
    assert math.isclose(c.difference, orm.summary.overall - base.summary.overall) and c.difference > 0
    assert c.ceiling == 1.0 and math.isclose(c.headroom, c.difference / (1.0 - base.summary.overall))
    # paired: the same resamples of prompts for both, so the interval of the difference excludes
    # zero (the strategy never loses a prompt), while the two intervals side by side overlap
    assert 0 < c.ci[0] <= c.difference <= c.ci[1]
    assert base.ci[1] > orm.ci[0]
    assert "orm@4" in comparison_table([c]) and "any-of-N" in comparison_table([c])


def test_a_sweep_without_a_baseline_has_nothing_to_compare():
    table = to_table(pool_rows(0, "counting", [True, False, False, False], {1: 0, 2: 0, 4: 0}), ROW_SCHEMA).to_pandas()
    assert compare_with_baseline(sweep_points(table, resamples=10), table) == []
