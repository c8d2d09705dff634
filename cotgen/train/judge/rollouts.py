"""Step-level labels from the generator's own rollouts: the data of PRM and PARM's clarity and potential.

A *prefix* is a path stopped at a checkpoint step before the last. From each prefix, `rollouts`
continuations are decoded to the end (the path's own continuation first, then branches with fresh
randomness) and the exact evaluator judges each final image. The prefix's preview is then labelled:
- `prm` (Math-Shepherd's hard estimate): "yes" if any rollout satisfies the prompt. Asked with the
  outcome question, as the PRM strategy asks it of previews.
- `clarity`: "yes" if the rollouts agree (all pass or all fail): the outcome is already decided.
- `potential`, only where clarity is "yes" and as its follow-up turn (as PARM asks it): "yes" if
  the rollouts pass.
With a handful of rollouts these are estimates; the card says how many were used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from cotgen.evaluate.exact import evaluate_image
from cotgen.generate.engine import PathKey
from cotgen.generate.factory import load_engine
from cotgen.judge.prompts import JudgePrompts
from cotgen.models.janus import generation_prompt_ids
from cotgen.prompts import Record
from cotgen.train.judge.examples import Example, ExampleSet
from cotgen.world.records import sample_training_record

PREFIX_TASKS = ("prm", "clarity", "potential")


@dataclass(frozen=True)
class Prefix:
    record: int
    """Index of the record in the list given."""
    step: int
    """Checkpoint step (1-based) after which the path was stopped."""
    preview: Image.Image
    passes: tuple[bool, ...]
    """The evaluator's verdict on each rollout's final image."""
    tokens: torch.Tensor
    """The prefix's image tokens (its finished rows, row-major)."""

    @property
    def clear(self) -> bool:
        return self.clear_by(len(self.passes))

    def clear_by(self, k: int) -> bool:
        """Whether the first k rollouts agree: clear as a k-rollout label would call it."""
        return len(set(self.passes[:k])) == 1


@torch.no_grad()
def prefix_rollouts(
    records: Sequence[Record], rollouts: int, seed: int, generator: str, batch: int, progress: bool = False,
    until_clear: int = 0, last_step: int = 0,
) -> Iterator[Prefix]:  # fmt: skip
    """Every checkpoint-step prefix of one path per record, with its rollouts' verdicts. The prefix is
    decoded afresh for each step (a few rows) rather than copied, as the engine keeps no snapshots.
    With `until_clear` k, a path stops at its first step whose first k rollouts agree (its first
    clear step by k rollouts; the rest are then fresh draws from the same prefix). With `last_step`,
    no path goes past that step."""
    engine, tokenizer = load_engine(generator)
    steps = len(engine.step_rows()) - 1
    if last_step:
        steps = min(steps, last_step)
    per_batch = max(1, batch // rollouts)
    bar = tqdm(total=len(records) * steps, desc="prefix rollouts", unit="prefix", disable=None if progress else True)
    for first in range(0, len(records), per_batch):
        chunk = range(first, min(first + per_batch, len(records)))
        ids = [generation_prompt_ids(tokenizer, records[i].prompt) for i in chunk]
        keys = [PathKey(seed, f"prefix/{i}", 0) for i in chunk]
        pending = list(chunk)
        for step in range(1, steps + 1):
            if not pending:
                break
            state = engine.start([ids[i - first] for i in pending], [keys[i - first] for i in pending])
            for _ in range(step):
                engine.step(state)
            previews, tokens = engine.preview(state), state.tokens.clone()
            engine.select(state, [row for row in range(len(pending)) for _ in range(rollouts)])
            _, images = engine.finish(state)
            prefixes = [
                Prefix(i, step, previews[row], tuple(evaluate_image(im, records[i]).correct for im in images[row * rollouts : (row + 1) * rollouts]), tokens[row])
                for row, i in enumerate(pending)
            ]  # fmt: skip
            yield from prefixes
            bar.update(len(pending))
            if until_clear:
                pending = [p.record for p in prefixes if not p.clear_by(until_clear)]
                bar.total -= (len(prefixes) - len(pending)) * (steps - step)  # the steps a stopped path skips
    bar.close()


def prefix_examples(prefix: Prefix, record: Record, image_path: str, source: str, prompts: JudgePrompts) -> list[Example]:
    def example(task: str, question: str, yes: bool, history=()) -> Example:
        return Example(
            image=image_path, question=question, answer="yes" if yes else "no", tag=record.tag,
            prompt=record.prompt, task=task, source=f"{source}/step{prefix.step}", history=history,
        )  # fmt: skip

    clarity = prompts.clarity.format(prompt=record.prompt)
    examples = [
        example("prm", prompts.orm.format(prompt=record.prompt), any(prefix.passes)),
        example("clarity", clarity, prefix.clear),
    ]
    if prefix.clear:
        examples.append(example("potential", prompts.potential, prefix.passes[0], history=((clarity, "yes"),)))
    return examples


def build_prefixes(
    folder: Path, records: Sequence[Record], rollouts: int, seed: int, generator: str, batch: int, source: str,
    prompts: JudgePrompts, progress: bool,
) -> Iterator[Example]:  # fmt: skip
    """PRM, clarity and potential examples on the previews of `records`' prefixes."""
    for prefix in prefix_rollouts(records, rollouts, seed, generator, batch, progress):
        path = f"images/{prefix.record:05d}_s{prefix.step}.png"
        prefix.preview.save(folder / path)
        yield from prefix_examples(prefix, records[prefix.record], path, source, prompts)


def first_clear_step(examples: Sequence[Example]) -> set[int]:
    """Indices of the potential examples asked at their path's first clear step (the one PARM asks).
    A path's prefixes are built in step order, so its first potential example is that one."""
    seen, first = set(), set()
    for index, e in enumerate(examples):
        path = e.image.rsplit("_s", 1)[0]
        if e.task == "potential" and path not in seen:
            seen.add(path)
            first.add(index)
    return first


def prefix_record(example: Example) -> int:
    """The index of the record whose path an example's preview is (its image is named by it)."""
    return int(Path(example.image).name.split("_s", 1)[0])


def first_records(prefixes: ExampleSet, n: int) -> ExampleSet:
    """The examples of the first n records' prefixes (0: all), in their order. The records and their
    paths are drawn in order, so these are the examples a set of n records holds."""
    return ExampleSet(prefixes.folder, [e for e in prefixes.examples if prefix_record(e) < n]) if n else prefixes


def training_prefix_records(n: int, seed: int) -> list[Record]:
    rng = np.random.default_rng([seed, 5])
    return [sample_training_record(rng) for _ in range(n)]
