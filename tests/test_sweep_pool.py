"""Best-of-n read off a pool equals a run at n: same path returned, same cost (tiny random models, no Ray)."""

import pytest
from test_verify import engine, judge, tokenize  # noqa: F401 (the same tiny models and prompt tokens)

from cotgen.verify.pool import subset_picks
from cotgen.verify.strategies import Verifier, VerifyConfig

POOL = 4


@pytest.mark.parametrize(
    "settings",
    [
        {"strategy": "orm"},
        {"strategy": "prm", "prm_aggregate": "mean"},
        {"strategy": "parm", "threshold": 0.0, "potential_threshold": 0.5},  # some pruned, some not
        {"strategy": "parm", "threshold": 0.0, "potential_threshold": 1.0},  # nothing survives: replay
    ],
    ids=["orm", "prm", "parm", "parm-replay"],
)
def test_a_run_at_n_picks_and_spends_what_the_pool_says(engine, judge, settings):
    run = lambda n: Verifier(engine, judge, tokenize, VerifyConfig(n=n, **settings)).run("two red circles", "p").rounds[0]  # noqa: E731
    pool = run(POOL)
    picks = subset_picks(settings["strategy"], pool.traces, [3, 1, POOL], engine.step_rows(), engine.grid)
    assert [p.n for p in picks] == [1, 3, POOL]
    for pick in picks:
        direct = pool if pick.n == POOL else run(pick.n)
        assert pick.chosen == direct.chosen, f"n={pick.n}"
        assert (pick.costs.image_tokens, pick.costs.judge_calls) == (direct.costs.image_tokens, direct.costs.judge_calls), f"n={pick.n}"
        assert pick.replayed == (direct.traces[direct.chosen].pruned_at is not None)
    if settings.get("potential_threshold") == 1.0:
        assert all(p.replayed for p in picks)
