"""The judge's five example sets under one folder, each built once and cached (`examples.cached`).

Training: `renders` (world renders, half broken), `generated` (the generator's images of training
records), `prefixes` (previews of path prefixes labelled from rollouts: PRM, clarity, potential).
`census_scenes` (renders of prompt-free count scenes, census examples only; `data.census_scenes`) and
`census_counting` (the generator's images of counting records, the same; `data.census_counting_images`).
Test: `heldout` (the generator's images of the held-out records) and `heldout_prefixes`.
`validation` and `validation_prefixes` (`build_validation`, `build_validation_prefixes`, made on
demand) are where settings are chosen: ORM on new images, and prefixes of new paths, of training-split
records, so the held-out sets stay for reporting. `validation_compositional` holds images of the
training-split records a judge trained with `data.compositional` never read: where settings that
change how a judge generalises to unseen combinations are chosen.

Adding a task means a builder that yields `Example`s with its own `task`, `question` (and `history`
for follow-up turns, as potential follows clarity) into its own cached folder; `ExampleSet` and the
trainer take them as they are. Reflections need none: they ask the ORM examples' images the
reflection question, answered from their `reasons` (`cotgen.train.judge.reflection`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from cotgen.judge.prompts import JudgePrompts
from cotgen.models.presets import weights_digest
from cotgen.train.judge.census_scenes import build_census_scenes, counting_images
from cotgen.train.judge.config import JudgeDataConfig
from cotgen.train.judge.examples import ExampleSet, cached
from cotgen.train.judge.generated import (
    build_generated,
    build_heldout,
    compositional_validation_records,
    heldout_records,
    validation_records,
)  # fmt: skip
from cotgen.train.judge.renders import build_renders
from cotgen.train.judge.rollouts import build_prefixes, training_prefix_records
from cotgen.world.records import is_judge_validation, records_by_prompt


@dataclass
class JudgeDataset:
    renders: ExampleSet
    generated: ExampleSet
    prefixes: ExampleSet
    heldout: ExampleSet
    """ORM on the generator's images of held-out records: the judge's main test set."""
    heldout_prefixes: ExampleSet
    """PRM, clarity and potential on prefixes of held-out records."""
    census_scenes: ExampleSet | None = None
    """Census examples on count scenes (`data.census_scenes`; not yes/no, so not among `sets`)."""
    census_counting: ExampleSet | None = None
    """Census examples on the generator's images of counting records (`data.census_counting_images`)."""

    def census_pools(self) -> list[ExampleSet]:
        """The sets census steps draw from besides the training images, in a fixed order."""
        return [s for s in (self.census_scenes, self.census_counting) if s is not None]

    def sets(self) -> dict[str, ExampleSet]:
        """Every set by name, training sets first."""
        return {name: getattr(self, name) for name in ("renders", "generated", "prefixes", "heldout", "heldout_prefixes")}


def generator_settings(data: JudgeDataConfig) -> dict[str, str]:
    """The generator in a cached set's settings: the weights' digest, not only the name, so cached
    images follow a retrained generator."""
    return {"generator": str(data.generator), "generator_digest": weights_digest(data.generator, "generator")}


def build_dataset(
    root: Path, data: JudgeDataConfig, train_seed: int, prompts: JudgePrompts | None = None, progress: bool = False
) -> JudgeDataset:
    """The training sets (renders, generated, prefixes; seeded by `train_seed`, a run's
    `training_seed`) and the held-out sets (seeded by `data.heldout_seed`) under `root`, each cached."""
    prompts = prompts or JudgePrompts()
    seed = data.heldout_seed
    common = {"seed": seed, "prompts": asdict(prompts)}
    training = {**common, "seed": train_seed}
    renders = cached(
        root / "renders",
        {**training, "n": data.render_images, "degrade_rate": data.degrade_rate, "swaps": data.swaps},
        lambda folder: build_renders(folder, data.render_images, train_seed, data.degrade_rate, data.swaps, prompts),
    )  # fmt: skip
    gen = generator_settings(data)
    train_generated = cached(
        root / "generated",
        {**training, **gen, "n": data.generated_images, "swaps": data.swaps},
        lambda folder: build_generated(folder, data.generated_images, train_seed, data.swaps, data.generator, data.generator_batch, prompts, progress),
    )  # fmt: skip
    heldout = build_heldout_set(root, data, prompts, progress)
    rollouts = {**common, **gen, "rollouts": data.prefix_rollouts}
    prefix_records = training_prefix_records(data.prefix_records, train_seed)
    prefixes = cached(
        root / "prefixes",
        {**rollouts, "seed": train_seed, "records": data.prefix_records},
        lambda folder: build_prefixes(folder, prefix_records, data.prefix_rollouts, train_seed, data.generator, data.generator_batch, "prefix", prompts, progress),
    )  # fmt: skip
    heldout_prefix_records = heldout_records(data.heldout_prefix_records)
    heldout_prefixes = cached(
        root / "heldout_prefixes",
        {**rollouts, "records": len(heldout_prefix_records)},
        lambda folder: build_prefixes(folder, heldout_prefix_records, data.prefix_rollouts, seed, data.generator, data.generator_batch, "heldout", prompts, progress),
    )  # fmt: skip
    if data.compositional:
        renders, train_generated, prefixes = (without_judge_validation(s) for s in (renders, train_generated, prefixes))
    scenes = None
    if data.census_scenes:  # prompt-free: nothing for data.compositional to leave out
        scenes = cached(
            root / "census_scenes",
            {"seed": train_seed, "n": data.census_scenes, "degrade_rate": data.degrade_rate} | ({"spoils": data.census_scene_spoils} if data.census_scene_spoils else {}),
            lambda folder: build_census_scenes(folder, data.census_scenes, train_seed, data.degrade_rate, data.census_scene_spoils),
        )  # fmt: skip
    counting = None
    if data.census_counting_images:  # of prompts: data.compositional leaves its records out as they are made
        counting = cached(
            root / "census_counting",
            {"seed": train_seed, **gen, "n": data.census_counting_images} | ({"compositional": True} if data.compositional else {}),
            lambda folder: counting_images(
                folder, data.census_counting_images, train_seed, data.generator, data.generator_batch, progress, data.compositional
            ),
        )  # fmt: skip
    return JudgeDataset(renders, train_generated, prefixes, heldout, heldout_prefixes, scenes, counting)


def build_heldout_set(root: Path, data: JudgeDataConfig, prompts: JudgePrompts | None = None, progress: bool = False) -> ExampleSet:
    """ORM on the generator's images of the held-out records (seeded by `data.heldout_seed`), under
    root/heldout: the judge's main test set, also made alone for judges compared without training."""
    prompts = prompts or JudgePrompts()
    seed, records = data.heldout_seed, heldout_records(data.heldout_records)
    return cached(
        root / "heldout",
        {"seed": seed, "prompts": asdict(prompts), **generator_settings(data), "records": len(records), "samples": data.heldout_samples},
        lambda folder: build_heldout(folder, records, data.heldout_samples, seed, data.generator, data.generator_batch, prompts, progress),
    )  # fmt: skip


def without_judge_validation(examples: ExampleSet) -> ExampleSet:
    """The examples whose prompt names no judge-validation combination (`data.compositional`)."""
    records = records_by_prompt()
    return ExampleSet(examples.folder, [e for e in examples.examples if not is_judge_validation(records[e.prompt])])


def validation_settings(data: JudgeDataConfig, seed: int, prompts: JudgePrompts, n: int) -> dict:
    return {"seed": seed, "prompts": asdict(prompts), **generator_settings(data), "records": n}


def build_validation(
    root: Path, data: JudgeDataConfig, seed: int, n: int, prompts: JudgePrompts | None = None, progress: bool = False,
    compositional: bool = False,
) -> ExampleSet:  # fmt: skip
    """ORM on one generator image of each of n training-split records (their own prompt only), under
    root/validation: images no training set holds (another seed), of prompts from the training split.
    `compositional`: of records naming a judge-validation combination, under
    root/validation_compositional (for a judge trained with `data.compositional`)."""
    prompts = prompts or JudgePrompts()
    records = compositional_validation_records(n, seed) if compositional else validation_records(n, seed)
    return cached(
        root / ("validation_compositional" if compositional else "validation"),
        validation_settings(data, seed, prompts, n),
        lambda folder: build_heldout(folder, records, 1, seed + 1, data.generator, data.generator_batch, prompts, progress, "validation"),
    )  # fmt: skip


def build_validation_prefixes(
    root: Path, data: JudgeDataConfig, seed: int, n: int, prompts: JudgePrompts | None = None, progress: bool = False
) -> ExampleSet:
    """PRM, clarity and potential on the prefixes of the validation set's n records (paths of another
    seed than the training prefixes'), under root/validation_prefixes: where potential is chosen on."""
    prompts = prompts or JudgePrompts()
    records = validation_records(n, seed)
    return cached(
        root / "validation_prefixes",
        {**validation_settings(data, seed, prompts, n), "rollouts": data.prefix_rollouts},
        lambda folder: build_prefixes(folder, records, data.prefix_rollouts, seed + 1, data.generator, data.generator_batch, "validation", prompts, progress),
    )  # fmt: skip
