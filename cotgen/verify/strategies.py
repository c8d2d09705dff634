"""Test-time verification: which paths live, which die early, which image is returned.

- baseline: one sample, no judge.
- orm: N paths decoded to the end; the one with the highest outcome P(yes) wins.
- prm: the prompt question asked on every checkpoint preview; best-of-N by the step scores'
  min, mean or last; or, with `beam`, step-level beam search (keep the best `beam` paths at each
  step and branch each into N/beam continuations).
- parm: clarity asked at each checkpoint step until the judge says "yes" (`clarity_threshold`);
  potential asked once, at the first clear step, as a follow-up turn; "no" prunes the path for real
  (its rows leave the KV cache), and so, with `keep`, does being outside the `keep` most hopeful
  paths asked so far (`cotgen.verify.pruning`). A path still unclear at the end is asked both on its
  final image, as the paper's code does: never clear, or clear without potential, counts as "no". The rest are ranked by the outcome
  P(yes) (best-of-N′). If nothing survives, the path with the lowest P(no) is returned; a pruned one
  is replayed from its key, which reproduces it exactly, rather than kept alive at full cost.
- parm++: parm, then reflection on the chosen image: if the judge says it does not match the prompt,
  it explains why and the corrector regenerates (parm again, new samples) — at most `max_rounds`.
  The image returned is that of the round whose choice the judge found best aligned.
  The `feedback` corrector gives the generator the prompt and the judge's reasons
  (`cotgen.generate.feedback`); `resample` gives it the bare prompt again.

A `Watcher` sees every round's checkpoint steps as they happen (previews, scores, pruned paths) and
can stop the run between two decoding steps (`cotgen.verify.progress`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Container, Iterable, Sequence
from typing import Protocol

import torch
from PIL import Image

from cotgen.errors import InputError
from cotgen.generate.engine import PathKey, State, StepwiseGenerator
from cotgen.generate.feedback import corrective_prompt, feedback_from_explanation, readable
from cotgen.verify.config import PRM_AGGREGATES, VerifyConfig, check_steps
from cotgen.verify.progress import Cancelled, Checkpoint, Watcher
from cotgen.verify.pruning import parm_finalists, parm_pruned
from cotgen.verify.trace import Costs, PathTrace, Round, Selection

AGGREGATES = {"min": min, "mean": statistics.fmean, "last": lambda scores: scores[-1]}
assert tuple(AGGREGATES) == PRM_AGGREGATES


class Judge(Protocol):
    def p_yes(self, images: Sequence[Image.Image], questions: Sequence[str], history=None, finished=None) -> torch.Tensor: ...

    def explain(self, images: Sequence[Image.Image], questions: Sequence[str], history=None) -> list[str]: ...


def choose(traces: Sequence[PathTrace], paths: Iterable[int], finished: Container[int]) -> int:
    """The path a best-of-N strategy returns among `paths` (trace indices, in order): the first with
    the highest final score among the finished ones; if none has one (PARM with no survivor), the
    lowest P(no), preferring a finished path to a replay on ties. Each path's record depends only on
    its own key, so this also picks what a run over any subset of the paths would have picked."""
    paths = list(paths)
    scored = [t for t in paths if t in finished and traces[t].final_score is not None]
    if scored:
        return max(scored, key=lambda t: traces[t].final_score)
    return min(paths, key=lambda t: (traces[t].p_no(), t not in finished))


class Verifier:
    """Runs one strategy for one prompt at a time over a step-wise generator and a judge."""

    def __init__(self, engine: StepwiseGenerator, judge: Judge | None, tokenize: Callable[[str], list[int]], config: VerifyConfig,
                 watcher: Watcher | None = None):  # fmt: skip
        if judge is None and config.strategy != "baseline":
            raise InputError(f"strategy {config.strategy!r} needs a judge")
        check_steps(config.strategy, len(engine.step_rows()))
        self.engine, self.judge, self.tokenize, self.config = engine, judge, tokenize, config
        self.watcher = watcher
        self._round = 0  # the PARM++ round being run, for the watcher

    def run(self, prompt: str, prompt_id: str, seed: int = 0) -> Selection:
        c = self.config
        if c.strategy == "parm++":
            rounds = self._reflect(prompt, prompt_id, seed)
            # Each round's choice was asked the same outcome question: return the best answered
            # (the earliest on ties), not merely the last.
            return Selection(c.strategy, rounds, returned=max(range(len(rounds)), key=lambda r: rounds[r].aligned))
        if c.strategy == "baseline":
            return self.baselines([prompt], [PathKey(seed, prompt_id, 0)])[0]
        keys = self._keys(prompt_id, seed)
        rounds = [{"orm": self._orm, "prm": self._prm, "parm": self._parm}[c.strategy](prompt, prompt, keys)]
        return Selection(c.strategy, rounds)

    def run_many(self, prompts: Sequence[str], prompt_ids: Sequence[str], seed: int = 0) -> list[Selection]:
        """`run` for several prompts. Baseline and ORM decode every prompt's paths in one batch (and
        ORM asks the judge about all their images at once): a path's image depends only on its key,
        so each selection is the one `run` returns alone, at a fraction of the time on small batches.
        The step-wise strategies run one prompt after the other."""
        c = self.config
        if c.strategy == "baseline":
            return self.baselines(prompts, [PathKey(seed, pid, 0) for pid in prompt_ids])
        if c.strategy == "orm":
            rounds = self._orms(prompts, prompts, [self._keys(pid, seed) for pid in prompt_ids])
            return [Selection(c.strategy, [round_]) for round_ in rounds]
        return [self.run(prompt, pid, seed) for prompt, pid in zip(prompts, prompt_ids)]

    def _keys(self, prompt_id: str, seed: int) -> list[PathKey]:
        return [PathKey(seed, prompt_id, i) for i in range(self.config.n)]

    def baselines(self, prompts: Sequence[str], keys: Sequence[PathKey]) -> list[Selection]:
        """The baseline of several prompts (one path each, `keys[i]` for `prompts[i]`) decoded in one
        batch: a path's image depends only on its key, so it is the one `run` would return alone.
        Each selection's seconds are the batch's."""
        start, costs = time.perf_counter(), Costs()
        tokens, images = self._finish(self.engine.start([self.tokenize(p) for p in prompts], list(keys)), costs, watch=True)
        seconds = time.perf_counter() - start
        return [
            Selection("baseline", [Round(prompt, [PathTrace(key, selected=True)], 0, image,
                                         Costs(image_tokens=costs.image_tokens // len(prompts), seconds=seconds),
                                         images={0: image}, tokens={0: path_tokens})])
            for prompt, key, image, path_tokens in zip(prompts, keys, images, tokens)
        ]  # fmt: skip

    # -- the judge, counted ---------------------------------------------------------------------
    def _ask(
        self, costs: Costs, images: list[Image.Image], question: str | Sequence[str], history=None, finished: bool = False
    ) -> list[float]:
        """P(yes) of each image to `question` (one for all, or one per image); `finished`: the images
        are finished ones, not previews."""
        if not images:
            return []
        costs.judge_calls += len(images)
        questions = [question] * len(images) if isinstance(question, str) else list(question)
        return self.judge.p_yes(images, questions, history, [finished] * len(images)).tolist()

    def _outcome(self, costs: Costs, prompt: str | Sequence[str], images: list[Image.Image], finished: bool = True) -> list[float]:
        """The outcome question about `prompt` (one for all images, or one per image), of finished
        images (PRM asks it of previews)."""
        orm = self.config.prompts.orm
        questions = orm.format(prompt=prompt) if isinstance(prompt, str) else [orm.format(prompt=p) for p in prompt]
        return self._ask(costs, images, questions, finished=finished)

    def _step(self, state: State, costs: Costs) -> None:
        if self.watcher is not None and self.watcher.cancelled():
            raise Cancelled(f"stopped after {costs.image_tokens} image tokens")
        before = state.tokens.shape[1]
        self.engine.step(state)
        costs.image_tokens += (state.tokens.shape[1] - before) * state.num_paths

    def _finish(self, state: State, costs: Costs, watch: bool = False) -> tuple[list[list[int]], list[Image.Image]]:
        """Each path's image tokens and image; with `watch`, the watcher sees every checkpoint (the
        paths are the state's rows, none scored)."""
        while not self.engine.done(state):
            self._step(state, costs)
            if watch and not self.engine.done(state):
                self._report(state, list(range(state.num_paths)), state.num_paths)
        tokens, images = self.engine.finish(state)
        return tokens.tolist(), images

    def _report(self, state: State, paths: list[int], candidates: int, previews: list[Image.Image] | None = None,
                scores: Sequence[float | None] | None = None, pruned: Sequence[tuple[int, str]] = ()) -> None:  # fmt: skip
        """Show the watcher a checkpoint before the final image, if it wants that one (previews are
        decoded only then, unless the strategy decoded them anyway)."""
        step = sum(rows <= self.engine.rows_done(state) for rows in self.engine.step_rows())
        if self.watcher is None or not self.watcher.wants(self._round, step):
            return
        self.watcher.checkpoint(Checkpoint(
            round=self._round, step=step, steps=len(self.engine.step_rows()), candidates=candidates, paths=list(paths), previews=previews or self.engine.preview(state),
            scores=list(scores) if scores is not None else [None] * len(paths), pruned=list(pruned),
        ))  # fmt: skip

    # -- strategies -----------------------------------------------------------------------------
    def _orm(self, prompt: str, generation_prompt: str, keys: list[PathKey]) -> Round:
        return self._orms([prompt], [generation_prompt], [keys])[0]

    def _orms(self, prompts: Sequence[str], generation_prompts: Sequence[str], keys: Sequence[list[PathKey]]) -> list[Round]:
        """ORM for several prompts in one batch: each prompt's paths decoded to the end, every image
        asked the outcome question once, the highest P(yes) of each prompt chosen. Each round's costs
        are its own share; its seconds are the batch's."""
        start, costs = time.perf_counter(), Costs()
        ids = [self.tokenize(g) for g, ks in zip(generation_prompts, keys) for _ in ks]
        tokens, images = self._finish(self.engine.start(ids, [k for ks in keys for k in ks]), costs, watch=True)
        scores = self._outcome(costs, [p for p, ks in zip(prompts, keys) for _ in ks], images)
        rounds, offset = [], 0
        for generation_prompt, ks in zip(generation_prompts, keys):
            own = slice(offset, offset + len(ks))
            offset += len(ks)
            traces = [PathTrace(k, final_score=score) for k, score in zip(ks, scores[own])]
            share = Costs(image_tokens=costs.image_tokens * len(ks) // len(ids), judge_calls=len(ks))
            chosen = choose(traces, range(len(traces)), range(len(traces)))
            rounds.append(self._chosen(generation_prompt, traces, chosen, dict(enumerate(images[own])),
                                       dict(enumerate(tokens[own])), share, start))  # fmt: skip
        return rounds

    def _prm(self, prompt: str, generation_prompt: str, keys: list[PathKey]) -> Round:
        c = self.config
        start, costs = time.perf_counter(), Costs()
        state = self.engine.start([self.tokenize(generation_prompt)] * len(keys), keys)
        traces = [PathTrace(k) for k in keys]
        live = list(range(len(keys)))  # trace index of each row of the state
        for step in range(1, len(self.engine.step_rows()) + 1):
            self._step(state, costs)
            previews = self.engine.preview(state)
            scores = self._outcome(costs, prompt, previews, finished=False)
            for row, score in enumerate(scores):
                traces[live[row]].step_scores.append(score)
            if self.engine.done(state):
                break
            best = range(len(live))
            if c.beam:
                best = sorted(range(len(live)), key=lambda r: -scores[r])[: c.beam]
                for r in set(range(len(live))) - set(best):
                    traces[live[r]].pruned_at, traces[live[r]].reason = step, "not in the beam"
            self._report(state, live, len(keys), previews, scores, [(live[r], "not in the beam") for r in range(len(live)) if r not in best])
            if c.beam:
                index = [r for r in best for _ in range(c.n // c.beam)]
                self.engine.select(state, index)
                live = self._branch(traces, live, index, state)
        tokens, images = self._finish(state, costs)
        aggregate = AGGREGATES[c.prm_aggregate]
        for row in range(len(live)):
            traces[live[row]].final_score = aggregate(traces[live[row]].step_scores)
        chosen = choose(traces, live, live)
        return self._chosen(generation_prompt, traces, chosen, dict(zip(live, images)), dict(zip(live, tokens)), costs, start)

    @staticmethod
    def _branch(traces: list[PathTrace], live: list[int], index: list[int], state: State) -> list[int]:
        """Trace rows after `select(index)`: a path's first copy keeps its trace, the others get new ones
        that inherit the scores so far."""
        rows, seen = [], set()
        for row, old in enumerate(index):
            if old in seen:
                parent = traces[live[old]]
                traces.append(PathTrace(state.keys[row], step_scores=list(parent.step_scores)))
                rows.append(len(traces) - 1)
            else:
                seen.add(old)
                rows.append(live[old])
        return rows

    def _parm(self, prompt: str, generation_prompt: str, keys: list[PathKey]) -> Round:
        start, costs = time.perf_counter(), Costs()
        ids = self.tokenize(generation_prompt)
        state: State | None = self.engine.start([ids] * len(keys), keys)
        traces = [PathTrace(k) for k in keys]
        live = list(range(len(keys)))
        for step in range(1, len(self.engine.step_rows())):  # checkpoints before the final image
            self._step(state, costs)
            previews, asked = self.engine.preview(state), [len(traces[t].step_scores) for t in live]
            self._clarity_and_potential(costs, prompt, traces, live, previews, step)
            pruned = parm_pruned(traces, live, step, self.config.potential_threshold, self.config.keep)
            for t, reason in pruned.items():
                traces[t].pruned_at, traces[t].reason = step, reason
            keep = [r for r, t in enumerate(live) if t not in pruned]
            # what PARM knows of each path's promise now: its potential once clear, else this step's clarity
            scores = [traces[t].potential if traces[t].potential is not None
                      else traces[t].step_scores[-1] if len(traces[t].step_scores) > n else None for t, n in zip(live, asked)]  # fmt: skip
            self._report(state, live, len(keys), previews, scores, sorted(pruned.items()))
            if not keep:
                state = None
                break
            if len(keep) < len(live):
                self.engine.select(state, keep)
                live = [live[r] for r in keep]
        tokens, images = ([], []) if state is None else self._finish(state, costs)
        finished, finished_tokens = dict(zip(live, images)), dict(zip(live, tokens))
        # The paper's code asks a path still unclear at the end about its final image too.
        final = len(self.engine.step_rows())
        self._clarity_and_potential(costs, prompt, traces, list(finished), list(finished.values()), final)
        survivors = parm_finalists(traces, list(finished), self.config.potential_threshold)
        for t, score in zip(survivors, self._outcome(costs, prompt, [finished[t] for t in survivors])):
            traces[t].final_score = score
        chosen = choose(traces, range(len(traces)), finished)
        if chosen not in finished:
            (finished_tokens[chosen],), (finished[chosen],) = self._finish(self.engine.start([ids], [traces[chosen].key]), costs)
        return self._chosen(generation_prompt, traces, chosen, finished, finished_tokens, costs, start)

    def _clarity_and_potential(
        self, costs: Costs, prompt: str, traces: list[PathTrace], paths: list[int], images: list[Image.Image], step: int
    ) -> None:
        """PARM at one checkpoint: clarity asked of the paths (trace indices, one per image) not yet
        clear, and potential, once, of those it finds clear now. At a clarity threshold of 0 every
        answer would be "clear", so clarity is not asked."""
        c, q = self.config, self.config.prompts
        clarity = q.clarity.format(prompt=prompt)
        unclear = [i for i, t in enumerate(paths) if traces[t].clear_at is None]
        answers = self._ask(costs, [images[i] for i in unclear], clarity) if c.clear_at > 0 else [None] * len(unclear)
        for i, p in zip(unclear, answers):
            if p is not None:
                traces[paths[i]].step_scores.append(p)
            if p is None or p >= c.clear_at:
                traces[paths[i]].clear_at = step
        newly = [i for i in unclear if traces[paths[i]].clear_at == step]
        history = [[(clarity, "yes")]] * len(newly)
        for i, p in zip(newly, self._ask(costs, [images[i] for i in newly], q.potential, history)):
            traces[paths[i]].potential = p

    def _reflect(self, prompt: str, prompt_id: str, seed: int) -> list[Round]:
        c, q = self.config, self.config.prompts
        rounds: list[Round] = []
        generation_prompt = prompt
        for r in range(c.max_rounds):
            self._round = r
            keys = [PathKey(seed, prompt_id, r * c.n + i) for i in range(c.n)]
            round_ = self._parm(prompt, generation_prompt, keys)
            start = time.perf_counter()
            chosen = round_.traces[round_.chosen]
            # PARM already asked the outcome question of its choice, unless nothing survived
            round_.aligned = chosen.final_score if chosen.final_score is not None else self._outcome(round_.costs, prompt, [round_.image])[0]
            rounds.append(round_)
            if round_.aligned >= c.threshold or r == c.max_rounds - 1:
                round_.costs.seconds += time.perf_counter() - start
                break
            round_.costs.judge_calls += 1
            explanation = self.judge.explain([round_.image], [q.reflection.format(prompt=prompt)])[0]
            round_.feedback = feedback_from_explanation(explanation)
            round_.costs.seconds += time.perf_counter() - start
            if c.corrector == "feedback":
                generation_prompt = corrective_prompt(prompt, readable(round_.feedback, self._can_read))
        return rounds

    def _can_read(self, word: str) -> bool:
        try:
            self.tokenize(word)
        except InputError:  # a word-level generator's tokenizer refuses unknown words
            return False
        return True

    @staticmethod
    def _chosen(
        generation_prompt: str, traces: list[PathTrace], chosen: int, images: dict[int, Image.Image], tokens: dict[int, list[int]],
        costs: Costs, start: float,
    ) -> Round:
        traces[chosen].selected = True
        costs.seconds = time.perf_counter() - start
        return Round(generation_prompt, traces, chosen, images[chosen], costs, images=images, tokens=tokens)
