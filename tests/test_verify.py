"""The verification strategies on a tiny random Janus and a tiny random Qwen2-VL judge.

The judge's answers are arbitrary but deterministic, so each test recomputes what the strategy should
have decided from the judge itself, on images regenerated independently from the same path keys."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_judges import CORPUS, byte_level_tokenizer, tiny_qwen2_vl
from tiny_models import tiny_janus

from cotgen.errors import InputError
from cotgen.generate import PathKey, Sampling, StepwiseGenerator
from cotgen.generate.feedback import corrective_prompt
from cotgen.judge import JudgePrompts
from cotgen.verify.config import VerifyConfig, check_steps
from cotgen.verify.pool import poolable, replayed_parm, subset_picks
from cotgen.verify.strategies import Verifier

PROMPT = "two red circles"
PROMPTS = JudgePrompts()
N = 4


def tokenize(text: str) -> list[int]:
    return [1, *(10 + ord(ch) % 50 for ch in text[:12]), 3]


@pytest.fixture(scope="module")
def engine():
    return StepwiseGenerator(tiny_janus(grid=8, patch_pixels=4), Sampling(guidance=2.0, steps=4))


@pytest.fixture(scope="module")
def judge():
    torch.manual_seed(1)
    return tiny_qwen2_vl(byte_level_tokenizer(CORPUS, vocab_size=400))


def verifier(engine, judge, **config) -> Verifier:
    return Verifier(engine, judge, tokenize, VerifyConfig(n=N, **config))


def independent(engine, keys, text=PROMPT):
    """Each path generated alone to the end: what the strategy's paths must equal."""
    return [engine.finish(engine.start([tokenize(text)], [k]))[1][0] for k in keys]


def first_step_preview(engine, key):
    state = engine.start([tokenize(PROMPT)], [key])
    engine.step(state)
    return engine.preview(state)[0]


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


def orm_scores(judge, images):
    return judge.p_yes(images, [PROMPTS.orm.format(prompt=PROMPT)] * len(images)).tolist()


def test_baseline_decodes_one_path_and_asks_nothing(engine):
    selection = Verifier(engine, None, tokenize, VerifyConfig(strategy="baseline")).run(PROMPT, "p")
    assert same(selection.image, independent(engine, [PathKey(0, "p", 0)])[0])
    assert selection.costs.image_tokens == 64 and selection.costs.judge_calls == 0


def test_orm_picks_the_highest_outcome_score(engine, judge):
    selection = verifier(engine, judge, strategy="orm").run(PROMPT, "p")
    keys = [PathKey(0, "p", i) for i in range(N)]
    expected = orm_scores(judge, independent(engine, keys))
    (round_,) = selection.rounds
    assert [t.final_score for t in round_.traces] == pytest.approx(expected, abs=1e-3)
    assert round_.chosen == int(np.argmax(expected)) and round_.traces[round_.chosen].selected
    assert selection.costs.image_tokens == N * 64 and selection.costs.judge_calls == N


@pytest.mark.parametrize("aggregate", ["min", "mean", "last"])
def test_prm_scores_every_step_and_aggregates(engine, judge, aggregate):
    (round_,) = verifier(engine, judge, strategy="prm", prm_aggregate=aggregate).run(PROMPT, "p").rounds
    assert all(len(t.step_scores) == 4 for t in round_.traces)
    last = orm_scores(judge, independent(engine, [t.key for t in round_.traces]))
    assert [t.step_scores[-1] for t in round_.traces] == pytest.approx(last, abs=1e-3)
    fold = {"min": min, "mean": np.mean, "last": lambda s: s[-1]}[aggregate]
    assert round_.chosen == int(np.argmax([fold(t.step_scores) for t in round_.traces]))


def test_prm_beam_search_keeps_the_best_and_branches(engine, judge):
    (round_,) = verifier(engine, judge, strategy="prm", beam=2).run(PROMPT, "p").rounds
    first = [t.step_scores[0] for t in round_.traces[:N]]
    kept = set(np.argsort(first)[-2:])
    assert {i for i in range(N) if round_.traces[i].pruned_at is None} <= kept
    assert all(round_.traces[i].pruned_at == 1 for i in set(range(N)) - kept)
    assert len(round_.traces) > N  # branches got traces of their own
    assert len({t.key for t in round_.traces}) == len(round_.traces)


def first_step_potentials(engine, judge) -> list[float]:
    """P(yes) of potential on each path's first preview, as PARM asks it when clarity's threshold is 0."""
    clarity = PROMPTS.clarity.format(prompt=PROMPT)
    previews = [first_step_preview(engine, PathKey(0, "p", i)) for i in range(N)]
    return judge.p_yes(previews, [PROMPTS.potential] * N, [[(clarity, "yes")]] * N).tolist()


def test_parm_prunes_paths_without_potential_for_real(engine, judge):
    keys = [PathKey(0, "p", i) for i in range(N)]
    potential = first_step_potentials(engine, judge)
    cut = float(np.median(potential))
    selection = verifier(engine, judge, strategy="parm", threshold=0.0, potential_threshold=cut).run(PROMPT, "p")
    (round_,) = selection.rounds
    assert [t.potential for t in round_.traces] == pytest.approx(potential, abs=1e-3)
    pruned = [i for i, p in enumerate(potential) if p < cut]
    assert pruned and [i for i, t in enumerate(round_.traces) if t.pruned_at == 1] == pruned
    survivors = [i for i in range(N) if i not in pruned]
    # pruned paths cost one step (2 of 8 rows); survivors run to the end
    assert selection.costs.image_tokens == N * 16 + len(survivors) * 48
    images = independent(engine, [keys[i] for i in survivors])
    scores = orm_scores(judge, images)
    assert round_.chosen == survivors[int(np.argmax(scores))]
    assert same(selection.image, images[int(np.argmax(scores))])  # pruning left the survivors untouched
    assert selection.costs.judge_calls == N + len(survivors)  # potential, outcome (clarity at 0 is not asked)


def test_parm_with_no_survivor_replays_the_lowest_p_no(engine, judge):
    selection = verifier(engine, judge, strategy="parm", threshold=0.0, potential_threshold=1.0).run(PROMPT, "p")
    (round_,) = selection.rounds
    assert all(t.pruned_at == 1 for t in round_.traces)
    best = int(np.argmax([t.potential for t in round_.traces]))
    assert round_.chosen == best
    assert same(selection.image, independent(engine, [round_.traces[best].key])[0])
    assert selection.costs.image_tokens == N * 16 + 64


def test_parm_with_a_cap_keeps_the_most_hopeful_paths(engine, judge):
    potential = first_step_potentials(engine, judge)
    selection = verifier(engine, judge, strategy="parm", threshold=0.0, potential_threshold=0.0, keep=2).run(PROMPT, "p")
    (round_,) = selection.rounds
    survivors = sorted(np.argsort(potential)[-2:].tolist())
    assert [i for i, t in enumerate(round_.traces) if t.pruned_at is None] == survivors
    for i in set(range(N)) - set(survivors):
        assert (round_.traces[i].pruned_at, round_.traces[i].reason) == (1, "not among the 2 most hopeful")
    assert selection.costs.image_tokens == N * 16 + 2 * 48  # the cap prunes for real
    scores = orm_scores(judge, independent(engine, [PathKey(0, "p", i) for i in survivors]))
    assert round_.chosen == survivors[int(np.argmax(scores))]
    # the threshold still applies first: with none hopeful, the cap has nothing left to rank
    (none_left,) = verifier(engine, judge, strategy="parm", threshold=0.0, potential_threshold=1.0, keep=2).run(PROMPT, "p").rounds
    assert {t.reason for t in none_left.traces} == {"no potential"}


def test_parm_clarity_has_its_own_threshold(engine, judge):
    # clarity at 0 asks potential of every path at step 1, whatever `threshold` says (parm++'s alignment)
    selection = verifier(engine, judge, strategy="parm", threshold=1.0, clarity_threshold=0.0, potential_threshold=0.0).run(PROMPT, "p")
    (round_,) = selection.rounds
    assert [t.clear_at for t in round_.traces] == [1] * N
    assert [t.potential for t in round_.traces] == pytest.approx(first_step_potentials(engine, judge), abs=1e-3)
    assert all(t.step_scores == [] for t in round_.traces) and selection.costs.judge_calls == N + N  # potential, outcome: clarity not asked
    (never,) = verifier(engine, judge, strategy="parm", threshold=0.0, clarity_threshold=1.0).run(PROMPT, "p").rounds
    assert {t.reason for t in never.traces} == {"never clear"}


def test_parm_counts_never_clear_paths_as_no(engine, judge):
    selection = verifier(engine, judge, strategy="parm", threshold=1.0).run(PROMPT, "p")
    (round_,) = selection.rounds
    assert all(t.clear_at is None and t.reason == "never clear" and t.potential is None for t in round_.traces)
    assert all(len(t.step_scores) == 4 for t in round_.traces)  # asked at each checkpoint and of the final image
    assert round_.chosen == 0  # all equally "no": the first finished path, no replay
    assert selection.costs.judge_calls == 4 * N and selection.costs.image_tokens == N * 64


def step_images(engine, key):
    """A path's preview after each checkpoint step, the last being its final image."""
    state, images = engine.start([tokenize(PROMPT)], [key]), []
    while not engine.done(state):
        engine.step(state)
        images.append(engine.preview(state)[0])
    return images


def test_parm_asks_a_path_unclear_until_the_end_about_its_final_image(engine, judge):
    keys = [PathKey(0, "p", i) for i in range(N)]
    clarity = PROMPTS.clarity.format(prompt=PROMPT)
    images = [step_images(engine, k) for k in keys]
    scores = [judge.p_yes(i, [clarity] * 4).tolist() for i in images]
    # the path whose final image the judge finds clearer than any of its previews, by the widest margin
    late = int(np.argmax([s[3] - max(s[:3]) for s in scores]))
    assert scores[late][3] - max(scores[late][:3]) > 2e-4
    threshold = (scores[late][3] + max(scores[late][:3])) / 2
    final = images[late][3]
    potential = judge.p_yes([final], [PROMPTS.potential], [[(clarity, "yes")]]).item()
    for potential_threshold in (0.0, 1.0):
        config = {"strategy": "parm", "threshold": threshold, "potential_threshold": potential_threshold}
        selection = verifier(engine, judge, **config).run(PROMPT, "p")
        (round_,) = selection.rounds
        trace = round_.traces[late]
        assert trace.clear_at == 4 and trace.pruned_at is None
        assert trace.step_scores == pytest.approx(scores[late], abs=1e-4)
        assert trace.potential == pytest.approx(potential, abs=1e-4)
        if potential_threshold == 0.0:  # clear, with potential: ranked with the survivors by the outcome question
            assert trace.final_score == pytest.approx(orm_scores(judge, [final])[0], abs=1e-4) and trace.reason is None
        else:  # clear without potential: "no", though decoded to the end
            assert trace.final_score is None and trace.reason == "no potential"
        decoded = {i for i, t in enumerate(round_.traces) if t.pruned_at is None}
        assert set(round_.images) == decoded | {round_.chosen}
        # the same tokens; decoded in a batch, a pixel may round one level apart
        assert np.abs(np.asarray(round_.images[late], int) - np.asarray(final, int)).max() <= 1
        asked = sum(len(t.step_scores) + (t.potential is not None) + (t.final_score is not None) for t in round_.traces)
        assert selection.costs.judge_calls == asked  # the final image's questions are counted


def test_parm_plus_plus_reflects_and_regenerates_with_feedback(engine, judge):
    selection = verifier(
        engine, judge, strategy="parm++", threshold=1.0, corrector="feedback", max_rounds=3
    ).run(PROMPT, "p")
    assert len(selection.rounds) == 3  # never aligned at threshold 1
    assert all(r.feedback for r in selection.rounds[:2]) and selection.rounds[2].feedback is None
    assert selection.rounds[1].prompt == corrective_prompt(PROMPT, selection.rounds[0].feedback) != PROMPT
    assert {t.key.sample for t in selection.rounds[1].traces} == set(range(N, 2 * N))
    assert selection.costs.judge_calls == sum(r.costs.judge_calls for r in selection.rounds)
    trace = selection.to_json()
    assert trace["strategy"] == "parm++" and len(trace["rounds"]) == 3 and "paths" in trace["rounds"][0]


def test_parm_plus_plus_returns_its_best_aligned_round(engine, judge):
    # at seed 7 the judge finds the first round's choice better aligned (0.364) than the second's (0.355)
    selection = verifier(engine, judge, strategy="parm++", threshold=1.0, max_rounds=2).run(PROMPT, "p", seed=7)
    first, second = selection.rounds
    assert first.aligned > second.aligned + 1e-3
    assert first.aligned == pytest.approx(orm_scores(judge, [first.image])[0], abs=1e-4)
    assert selection.returned == 0 and selection.image is first.image
    assert selection.to_json()["returned_round"] == 0


def test_parm_plus_plus_resample_corrector_keeps_the_bare_prompt(engine, judge):
    selection = verifier(engine, judge, strategy="parm++", threshold=1.0, corrector="resample", max_rounds=2).run(PROMPT, "p")
    assert [r.prompt for r in selection.rounds] == [PROMPT, PROMPT] and selection.rounds[0].feedback


def test_parm_plus_plus_stops_when_the_judge_accepts(engine, judge):
    selection = verifier(engine, judge, strategy="parm++", threshold=0.0).run(PROMPT, "p")
    assert len(selection.rounds) == 1 and selection.rounds[0].feedback is None


def test_step_wise_strategies_need_two_checkpoint_steps(engine, judge):
    for strategy in ("prm", "parm", "parm++"):
        with pytest.raises(InputError, match=f"steps: {re.escape(strategy)} judges the image step by step .* got 1"):
            check_steps(strategy, 1)
        check_steps(strategy, 2)
    check_steps("orm", 1)
    one_step = StepwiseGenerator(engine.model, Sampling(guidance=2.0, steps=1))
    with pytest.raises(InputError, match="steps: parm"):
        Verifier(one_step, judge, tokenize, VerifyConfig(strategy="parm"))
    assert Verifier(one_step, judge, tokenize, VerifyConfig(strategy="orm", n=1)).run(PROMPT, "p").costs.judge_calls == 1


def test_bad_configs_are_rejected():
    with pytest.raises(InputError, match="strategy"):
        VerifyConfig(strategy="bon")
    with pytest.raises(InputError, match="beam"):
        VerifyConfig(n=5, beam=2)
    with pytest.raises(InputError, match="potential_threshold"):
        VerifyConfig(potential_threshold=1.5)
    with pytest.raises(InputError, match="clarity_threshold"):
        VerifyConfig(clarity_threshold=-0.1)
    with pytest.raises(InputError, match="keep"):
        VerifyConfig(keep=-1)
    with pytest.raises(InputError, match="needs a judge"):
        Verifier(None, None, tokenize, VerifyConfig(strategy="orm"))


def test_cli_runs_a_strategy_and_writes_the_trace(judge, tmp_path):
    from conftest import run_cli

    from cotgen.judge import save_judge
    from cotgen.judge.provenance import CONFIG_KEY, record_generator

    record_generator(judge.model, "an-older-generator", "0123456789abcdef")  # not the embedded generator's weights
    try:
        save_judge(judge, tmp_path / "judge")
    finally:
        setattr(judge.model.config, CONFIG_KEY, None)
    out = tmp_path / "out"
    result = run_cli("generate", "a photo of a red circle", "--strategy", "parm++", "--n", "3", "--rounds", "2",
                     "--judge", tmp_path / "judge", "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "GeneratorMismatchWarning" in result.stderr and "learnt the images of generator an-older-generator" in result.stderr
    assert "strategy parm++" in result.stdout and "cost:" in result.stdout and "<- chosen" in result.stdout
    trace = json.loads((out / "trace.json").read_text())
    assert trace["strategy"] == "parm++" and 1 <= len(trace["rounds"]) <= 2
    assert len(trace["rounds"][0]["paths"]) == 3 and Image.open(out / "selected.png").size == (64, 64)
    missing = run_cli("generate", "a photo of a red circle", "--strategy", "orm", "--judge", tmp_path / "nowhere", "--out", out)
    assert missing.returncode == 2 and "nowhere: not a model folder" in missing.stderr


# Best-of-n read off a pool equals a run at n: same path returned, same cost (what sweeps rely on).
POOL = 4


@pytest.mark.parametrize(
    "settings",
    [
        {"strategy": "orm"},
        {"strategy": "prm", "prm_aggregate": "mean"},
        {"strategy": "parm", "threshold": 0.0, "potential_threshold": 0.5},  # some pruned, some not
        {"strategy": "parm", "threshold": 0.0, "potential_threshold": 1.0},  # nothing survives: replay
        {"strategy": "parm", "threshold": 1.0},  # never clear, the final image asked too
    ],
    ids=["orm", "prm", "parm", "parm-replay", "parm-never-clear"],
)
def test_a_run_at_n_picks_and_spends_what_the_pool_says(engine, judge, settings):
    run = lambda n: Verifier(engine, judge, tokenize, VerifyConfig(n=n, **settings)).run("two red circles", "p").rounds[0]
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


@pytest.mark.parametrize("clarity", [0.0, 0.5], ids=["all-clear-at-step-1", "clear-later"])
def test_parm_replayed_with_other_settings_is_what_a_run_with_them_does(engine, judge, clarity):
    run = lambda **s: Verifier(engine, judge, tokenize, VerifyConfig(n=POOL, threshold=clarity, **s)).run(PROMPT, "p").rounds[0]
    parm, orm = run(strategy="parm"), run(strategy="orm")
    potentials = sorted(t.potential for t in parm.traces if t.potential is not None)
    assert potentials, "no path was ever clear: nothing to replay"
    middle = potentials[len(potentials) // 2]
    for target, keep in ((0.0, 0), (middle, 0), (1.0, 0), (0.0, 1), (0.0, 2), (middle, 1)):
        replayed = replayed_parm(parm.traces, [t.final_score for t in orm.traces], target, keep, len(engine.step_rows()))
        direct = run(strategy="parm", potential_threshold=target, keep=keep)
        assert [t.pruned_at for t in replayed] == [t.pruned_at for t in direct.traces], (target, keep)
        assert [t.reason for t in replayed] == [t.reason for t in direct.traces], (target, keep)
        scored = [(a.final_score, b.final_score) for a, b in zip(replayed, direct.traces)]
        assert all((a is None) == (b is None) for a, b in scored), (target, keep)
        assert [a for a, _ in scored if a is not None] == pytest.approx([b for _, b in scored if b is not None], abs=1e-5)
        (pick,) = subset_picks("parm", replayed, [POOL], engine.step_rows(), engine.grid)
        assert pick.chosen == direct.chosen, (target, keep)
        assert (pick.costs.image_tokens, pick.costs.judge_calls) == (direct.costs.image_tokens, direct.costs.judge_calls), (target, keep)
    if clarity == 0.0:  # every path asked potential at step 1: a cap of 1 leaves one path to finish
        assert sum(t.pruned_at is None for t in replayed_parm(parm.traces, [0.0] * POOL, 0.0, 1, len(engine.step_rows()))) == 1


def test_a_capped_parm_is_not_read_off_a_pool():
    # a run at n keeps paths that a capped run at N pruned (they compete), so sweeps run it at each N
    assert poolable(VerifyConfig(strategy="parm")) and not poolable(VerifyConfig(strategy="parm", keep=4))


class Recorder:
    """A watcher that keeps every checkpoint and asks to stop after `stop_after` of them."""

    def __init__(self, stop_after: int | None = None, steps: set[int] | None = None):
        self.events, self.stop_after, self.steps = [], stop_after, steps

    def wants(self, round: int, step: int) -> bool:
        return self.steps is None or step in self.steps

    def checkpoint(self, event) -> None:
        self.events.append(event)

    def cancelled(self) -> bool:
        return self.stop_after is not None and len(self.events) >= self.stop_after


@pytest.mark.parametrize("strategy", ["baseline", "orm", "prm", "parm"])
def test_a_watcher_sees_each_checkpoint_and_changes_nothing(engine, judge, strategy):
    cut = {"threshold": 0.0, "potential_threshold": float(np.median(first_step_potentials(engine, judge)))} if strategy == "parm" else {}
    alone = verifier(engine, judge, strategy=strategy, **cut).run(PROMPT, "p")
    recorder = Recorder()
    watched = Verifier(engine, judge, tokenize, VerifyConfig(n=N, strategy=strategy, **cut), recorder).run(PROMPT, "p")
    assert watched.to_json()["rounds"][0]["paths"] == alone.to_json()["rounds"][0]["paths"]
    assert same(watched.image, alone.image)
    # the checkpoints before the final image, in order, with one preview per live path
    assert [e.step for e in recorder.events] == [1, 2, 3] and all(e.steps == 4 for e in recorder.events)
    candidates = 1 if strategy == "baseline" else N
    assert all(e.candidates == candidates and len(e.previews) == len(e.paths) == len(e.scores) for e in recorder.events)
    first = recorder.events[0]
    assert same(first.previews[0], first_step_preview(engine, PathKey(0, "p", 0)))
    traces = alone.rounds[0].traces
    if strategy in ("baseline", "orm"):
        assert all(s is None for e in recorder.events for s in e.scores)
    if strategy == "prm":  # the step scores the trace keeps
        assert [e.scores for e in recorder.events] == [[traces[t].step_scores[e.step - 1] for t in e.paths] for e in recorder.events]
    pruned = {t: e.step for e in recorder.events for t, reason in e.pruned}
    assert pruned == {t: trace.pruned_at for t, trace in enumerate(traces) if trace.pruned_at is not None}
    if strategy == "parm":
        assert pruned, "the cut should prune some path"
        # a path pruned at a step is not among the next step's live paths, nor the one previewed
        for before, after in zip(recorder.events, recorder.events[1:]):
            assert set(after.paths) == set(before.paths) - {t for t, _ in before.pruned}
        for e in recorder.events:
            leader = e.leader()
            assert e.paths[leader] not in dict(e.pruned) or len(e.pruned) == len(e.paths)
            kept = [s for t, s in zip(e.paths, e.scores) if t not in dict(e.pruned) and s is not None]
            assert e.scores[leader] == (max(kept) if kept else e.scores[leader])


def test_a_watcher_stops_the_run_between_steps(engine, judge):
    from cotgen.verify.progress import Cancelled

    recorder = Recorder(stop_after=1)
    with pytest.raises(Cancelled, match=f"after {N * 16} image tokens"):  # one step of 2 rows of 8, N paths
        Verifier(engine, judge, tokenize, VerifyConfig(n=N, strategy="parm", threshold=0.0, potential_threshold=0.0), recorder).run(PROMPT, "p")  # fmt: skip
    assert len(recorder.events) == 1


def test_parm_plus_plus_reports_each_rounds_checkpoints(engine, judge):
    recorder = Recorder()
    config = VerifyConfig(n=N, strategy="parm++", threshold=1.0, max_rounds=2)  # never aligned: two rounds
    selection = Verifier(engine, judge, tokenize, config, recorder).run(PROMPT, "p")
    assert len(selection.rounds) == 2
    assert [(e.round, e.step) for e in recorder.events] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]


def test_a_watcher_sees_only_the_checkpoints_it_wants(engine, judge):
    recorder = Recorder(steps={2})
    Verifier(engine, judge, tokenize, VerifyConfig(n=N, strategy="orm"), recorder).run(PROMPT, "p")
    assert [e.step for e in recorder.events] == [2]


class Told:
    """The judge, noting whether each outcome question was asked of finished images or of previews."""

    def __init__(self, judge):
        self.judge, self.finished = judge, []

    def p_yes(self, images, questions, history=None, finished=None):
        self.finished += [(q.startswith("This image is generated"), done) for q, done in zip(questions, finished)]
        return self.judge.p_yes(images, questions, history, finished)

    def explain(self, images, questions, history=None):
        return self.judge.explain(images, questions, history)


@pytest.mark.parametrize(("strategy", "previews", "finished"), [("orm", 0, N), ("prm", 4 * N, 0), ("parm", 0, N)])
def test_the_judge_is_told_which_images_are_finished(engine, judge, strategy, previews, finished):
    """A judge that answers finished images by rule (`rule_verdict`) must know PRM's previews (every
    step's, the last one's too: PRM scores them alike) from the images ORM and PARM rank."""
    told = Told(judge)
    verifier(engine, told, strategy=strategy, threshold=0.0, potential_threshold=0.0).run(PROMPT, "p")
    outcome = [done for is_outcome, done in told.finished if is_outcome]
    assert outcome.count(False) == previews and outcome.count(True) == finished
