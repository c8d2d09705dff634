"""Labelled yes/no examples for training and evaluating the embedded judge.

Every label is the exact evaluator's verdict on the image itself, never an assumption about how the
image was made: a perturbed scene that still satisfies its prompt is labelled "yes".

An *example* is one question about one image: (image, question, answer, tag), plus where it came
from. Images are stored once as PNG under a dataset folder and shared by the examples that ask about
them; `examples.jsonl` lists the examples. A folder is built once per fingerprint (the settings that
made it) and reused by a rerun.

Task `orm` asks the outcome question ("does this image represent the prompt?") of:
- `render`: clean renders of training-split records, half of them broken (`perturb.near_miss` or
  `perturb.break_scene`), some degraded like a generator's output;
- `generated`: the embedded generator's images for training-split records;
- `heldout`: the generator's images for the held-out evaluation records (`evaluation_records()`),
  one question each: the judge's test set.
Besides its own prompt, a training image is asked about `swaps` other training-split records, half
chosen among those it satisfies (when there are any) and half among the nearest it does not (most
prompt words in common, same tag). That gives generated images "yes" answers too, and forces the
judge to read the prompt rather than to tell clean renders from generated images.

Held-out combinations never reach a training question: every question names a training-split record.

`cell_targets` and `cell_batch` serve the vision stage of the judge's training: for freshly rendered
scenes, the colour and shape of the object in each cell of the grid of merged visual tokens.

Adding a task (as PRM, PARM clarity and potential from prefix rollouts) means a builder that yields
`Example`s with its own `task`, `question` (and `history` for follow-up turns, as potential follows
clarity) into its own cached folder; `ExampleSet` and the trainer take them as they are. Reflections
need none: they ask the ORM examples' images the reflection question, answered from their `reasons`
(`cotgen.judge.reflection`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from cotgen.evaluate.reader import Reading, read_scene
from cotgen.evaluate.rules import check
from cotgen.judge.prompts import JudgePrompts
from cotgen.models.presets import weights_digest
from cotgen.prompts import TAGS, Record
from cotgen.world.degrade import DEGRADATIONS
from cotgen.world.perturb import broken_image
from cotgen.world.records import evaluation_records, sample_training_record, split_records
from cotgen.world.render import render, shape_mask
from cotgen.world.sampler import sample_random_scene, sample_scene
from cotgen.world.scene import Scene
from cotgen.world.vocab import COLORS, SHAPES

ANSWERS = ("yes", "no")
T = TypeVar("T")


@dataclass(frozen=True)
class Example:
    """One yes/no question about one image."""

    image: str
    """PNG path relative to the dataset folder."""
    question: str
    answer: str
    """"yes" or "no"."""
    tag: str
    """GenEval tag of the record the question names."""
    prompt: str
    """The generation prompt the question names."""
    task: str = "orm"
    source: str = ""
    """What made the image and chose the question: render, broken, generated, heldout (+ "/swap")."""
    history: tuple[tuple[str, str], ...] = ()
    """Earlier (question, answer) turns of the chat, for follow-up questions."""
    reasons: tuple[str, ...] = ()
    """The evaluator's reasons (empty when the answer is "yes")."""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Example:
        data = dict(data)
        data["history"] = tuple(tuple(turn) for turn in data.get("history", ()))
        data["reasons"] = tuple(data.get("reasons", ()))
        return cls(**data)


@dataclass
class JudgeData:
    """How many examples of each kind to make (the `data` section of the judge's training config)."""

    render_images: int = 6000
    """Rendered training-split scenes; half of them broken."""
    degrade_rate: float = 0.3
    """Share of rendered images passed through a random degradation (blur, JPEG, jitter, shift)."""
    generated_images: int = 2000
    """Embedded-generator images of training-split records."""
    swaps: int = 2
    """Extra questions per training image naming other training-split records."""
    heldout_samples: int = 2
    """Generator images per held-out evaluation record (553 records)."""
    heldout_records: int = 0
    """Use only the first N held-out records, spread over the tags (0: all 553)."""
    generator: str = "embedded"
    """Generator folder (or "embedded") whose images the judge learns and is tested on."""
    generator_batch: int = 64
    """Paths decoded together by the generator."""
    generated_share: float = 0.5
    """Share of each training batch drawn from generated-image examples."""
    prefix_records: int = 300
    """Training-split records whose path prefixes (one path, every checkpoint step) get PRM,
    clarity and potential labels from rollouts (`cotgen.judge.rollouts`)."""
    prefix_rollouts: int = 4
    """Rollouts decoded from each prefix to label it."""
    prefix_share: float = 0.3
    """Share of each training batch drawn from prefix examples (the rest of the batch, after the
    generated share, from renders)."""
    heldout_prefix_records: int = 120
    """Held-out records (spread over the tags) whose prefixes test PRM, clarity and potential."""

    def __post_init__(self) -> None:
        from cotgen.errors import InputError

        for name in ("degrade_rate", "generated_share", "prefix_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name}: must be within [0, 1], got {getattr(self, name)}")
        if self.generated_share + self.prefix_share > 1.0:
            raise InputError(f"generated_share + prefix_share: must be at most 1, got {self.generated_share + self.prefix_share}")
        if self.prefix_rollouts < 2:
            raise InputError(f"prefix_rollouts: must be at least 2 (clarity is whether rollouts agree), got {self.prefix_rollouts}")
        for name in ("render_images", "generated_images", "swaps", "heldout_records", "prefix_records", "heldout_prefix_records"):
            if getattr(self, name) < 0:
                raise InputError(f"{name}: must be at least 0, got {getattr(self, name)}")
        if self.heldout_samples < 1 or self.generator_batch < 1:
            raise InputError("heldout_samples and generator_batch: must be at least 1")


# ---------------------------------------------------------------------------------------------
# Labelling


class Labeller:
    """The exact evaluator's verdict on (image, record): `evaluate_image` with the image read once,
    so that one image can be asked about many records."""

    def __init__(self, image: Image.Image):
        self.image = image
        self.reading: Reading = read_scene(image)
        self.classes = {o.cls for o in self.reading.objects}

    def verdict(self, record: Record):
        return check(self.reading.objects, record, self.reading.blobs)

    def could_satisfy(self, record: Record) -> bool:
        """False when a class the record asks for is absent (then it certainly fails)."""
        return all(c.cls in self.classes for c in record.include)


def orm_example(
    labeller: Labeller, record: Record, image_path: str, source: str, prompts: JudgePrompts
) -> Example:
    verdict = labeller.verdict(record)
    return Example(
        image=image_path, question=prompts.orm.format(prompt=record.prompt), answer="yes" if verdict.correct else "no",
        tag=record.tag, prompt=record.prompt, task="orm", source=source, reasons=verdict.reasons,
    )  # fmt: skip


@lru_cache(maxsize=1)
def training_records() -> tuple[Record, ...]:
    """Every distinct training-split record, tags in order."""
    return tuple(r for tag in TAGS for r in split_records(tag, "train"))


def _overlap(a: str, b: str) -> int:
    return sum((Counter(a.split()) & Counter(b.split())).values())


def swap_examples(
    labeller: Labeller, own: Record, k: int, rng: np.random.Generator, image_path: str, source: str, prompts: JudgePrompts
) -> list[Example]:
    """k questions about the image naming other training records: alternately one it satisfies
    (of the same tag when there is one) and one of the nearest it does not (same tag, most prompt
    words in common, give or take one)."""
    others = [r for r in training_records() if r.prompt != own.prompt]
    satisfied = [r for r in others if labeller.could_satisfy(r) and labeller.verdict(r).correct]
    satisfied_prompts = {r.prompt for r in satisfied}
    satisfied = [r for r in satisfied if r.tag == own.tag] or satisfied  # same tag first: own-tag "yes" too
    failed = [r for r in others if r.tag == own.tag and r.prompt not in satisfied_prompts] or [
        r for r in others if r.prompt not in satisfied_prompts
    ]
    examples = []
    for i in range(k):
        pool = satisfied if i % 2 == 0 and satisfied else failed
        if pool is failed and failed:
            best = max(_overlap(own.prompt, r.prompt) for r in failed)
            pool = [r for r in failed if _overlap(own.prompt, r.prompt) >= best - 1]
        if not pool:
            continue
        record = pool[int(rng.integers(len(pool)))]
        examples.append(orm_example(labeller, record, image_path, source + "/swap", prompts))
    return examples


# ---------------------------------------------------------------------------------------------
# Images


def degrade(image: Image.Image, rate: float, rng: np.random.Generator) -> Image.Image:
    """With probability `rate`, the image through a random `cotgen.world.degrade` degradation."""
    if rng.random() < rate:
        names = sorted(DEGRADATIONS)
        image = DEGRADATIONS[names[int(rng.integers(len(names)))]](image, rng)
    return image


def render_image(record: Record, broken: bool, degrade_rate: float, rng: np.random.Generator) -> Image.Image:
    return degrade(broken_image(record, rng) if broken else render(sample_scene(record, rng)), degrade_rate, rng)


# ---------------------------------------------------------------------------------------------
# Object-centric targets for the vision tower (the world knows every scene)

CELL_COLORS = ("none", *COLORS)
CELL_SHAPES = ("none", *SHAPES)


def cell_targets(scene: Scene, cells: int, min_cover: float = 0.08) -> tuple[list[int], list[int]]:
    """For each cell of a `cells`×`cells` grid (row-major, as the judge's merged visual tokens are
    ordered): the index in CELL_COLORS and CELL_SHAPES of the object owning most of the cell's
    object pixels, or "none" (0) when objects cover less than `min_cover` of the cell."""
    owner = np.full((scene.size, scene.size), -1)
    for k, obj in enumerate(scene.objects):
        b = obj.box
        owner[b.y0 : b.y1, b.x0 : b.x1][shape_mask(obj.cls, b.width, b.height)] = k
    side = scene.size // cells
    colors, shapes = [], []
    for cy in range(cells):
        for cx in range(cells):
            block = owner[cy * side : (cy + 1) * side, cx * side : (cx + 1) * side]
            covered = block[block >= 0]
            if len(covered) < min_cover * side * side:
                colors.append(0)
                shapes.append(0)
                continue
            obj = scene.objects[int(np.bincount(covered).argmax())]
            colors.append(CELL_COLORS.index(obj.color))
            shapes.append(CELL_SHAPES.index(obj.cls))
    return colors, shapes


def cell_batch(n: int, cells: int, rng: np.random.Generator, random_rate: float = 0.3, degrade_rate: float = 0.3):
    """n rendered scenes (training-split records, or prompt-free random scenes at `random_rate`;
    degraded at `degrade_rate`) with their per-cell colour and shape targets, (n·cells²,) each."""
    images, colors, shapes = [], [], []
    for _ in range(n):
        scene = sample_random_scene(rng) if rng.random() < random_rate else sample_scene(sample_training_record(rng), rng)
        c, k = cell_targets(scene, cells)
        images.append(degrade(render(scene), degrade_rate, rng))
        colors += c
        shapes += k
    return images, torch.tensor(colors), torch.tensor(shapes)


def load_generator_engine(name: str):
    """The generator's engine with its own default sampling, and its tokenizer."""
    from cotgen.generate.factory import load_engine

    return load_engine(name)


def generated(
    records: Sequence[Record], samples: int, seed: int, generator: str, batch: int, progress: bool = False
) -> Iterator[tuple[int, int, Image.Image]]:
    """(record index, sample index, image) from the generator, reproducible from `seed`."""
    from cotgen.generate.pipeline import generate_images

    engine, tokenizer = load_generator_engine(generator)
    with torch.no_grad():
        yield from generate_images(engine, tokenizer, records, samples, seed, batch_size=batch, progress=progress)


def spread(items: Sequence[T], n: int) -> list[T]:
    """`n` of the items, evenly spread over them in order (all of them when n is 0 or more than there are)."""
    if not n or n >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n).round()]


def heldout_records(n: int = 0) -> list[Record]:
    """The held-out evaluation records, or `n` of them spread evenly over the 553 (tags in order)."""
    return spread(evaluation_records(), n)


# ---------------------------------------------------------------------------------------------
# Cached folders


class ExampleSet:
    """Examples and their images (loaded into memory) from one dataset folder."""

    def __init__(self, folder: Path, examples: list[Example]):
        self.folder = folder
        self.examples = examples
        self._images: dict[str, Image.Image] = {}

    def __len__(self) -> int:
        return len(self.examples)

    def image(self, path: str) -> Image.Image:
        if path not in self._images:
            with Image.open(self.folder / path) as image:
                self._images[path] = image.convert("RGB")
        return self._images[path]

    def counts(self) -> dict[str, dict[str, int]]:
        """{source: {"yes": n, "no": n}}."""
        table: dict[str, dict[str, int]] = defaultdict(lambda: {"yes": 0, "no": 0})
        for e in self.examples:
            table[e.source][e.answer] += 1
        return dict(table)

    @classmethod
    def load(cls, folder: Path) -> ExampleSet:
        lines = (folder / "examples.jsonl").read_text().splitlines()
        return cls(folder, [Example.from_json(json.loads(line)) for line in lines if line])


def fingerprint(**settings) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(folder: Path, settings: dict, build: Callable[[Path], Iterable[Example]]) -> ExampleSet:
    """The examples in `folder` if it was completed with the same settings, else `build(folder)`'s,
    written there (images are saved by `build`; examples.jsonl is written as they come)."""
    done = folder / "done.json"
    key = fingerprint(**settings)
    if done.exists() and json.loads(done.read_text()).get("fingerprint") == key:
        return ExampleSet.load(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    done.unlink(missing_ok=True)
    examples = []
    with open(folder / "examples.jsonl", "w") as f:
        for example in build(folder):
            examples.append(example)
            f.write(json.dumps(example.to_json()) + "\n")
    done.write_text(json.dumps({"fingerprint": key, "settings": settings, "examples": len(examples)}))
    return ExampleSet.load(folder)


def build_renders(folder: Path, n: int, seed: int, degrade_rate: float, swaps: int, prompts: JudgePrompts) -> Iterator[Example]:
    """ORM examples on n rendered training-split scenes; odd-numbered ones broken."""
    for i in range(n):
        rng = np.random.default_rng([seed, 1, i])
        record = sample_training_record(rng)
        broken = i % 2 == 1
        image = render_image(record, broken, degrade_rate, rng)
        path = f"images/{i:06d}.png"
        image.save(folder / path)
        labeller = Labeller(image)
        source = "broken" if broken else "render"
        yield orm_example(labeller, record, path, source, prompts)
        yield from swap_examples(labeller, record, swaps, rng, path, source, prompts)


def build_generated(
    folder: Path, n: int, seed: int, swaps: int, generator: str, batch: int, prompts: JudgePrompts, progress: bool
) -> Iterator[Example]:
    """ORM examples on the generator's images of n training-split records."""
    rng = np.random.default_rng([seed, 2])
    records = [sample_training_record(rng) for _ in range(n)]
    for i, _, image in generated(records, 1, seed, generator, batch, progress):
        path = f"images/{i:06d}.png"
        image.save(folder / path)
        labeller = Labeller(image)
        yield orm_example(labeller, records[i], path, "generated", prompts)
        yield from swap_examples(labeller, records[i], swaps, np.random.default_rng([seed, 3, i]), path, "generated", prompts)


def build_heldout(
    folder: Path, records: Sequence[Record], samples: int, seed: int, generator: str, batch: int, prompts: JudgePrompts, progress: bool
) -> Iterator[Example]:
    """One ORM example per generated image of each held-out record (its own prompt only)."""
    for i, j, image in generated(records, samples, seed, generator, batch, progress):
        path = f"images/{i:04d}_{j:02d}.png"
        image.save(folder / path)
        yield orm_example(Labeller(image), records[i], path, "heldout", prompts)


@dataclass
class JudgeDataset:
    renders: ExampleSet
    generated: ExampleSet
    prefixes: ExampleSet
    heldout: ExampleSet
    """ORM on the generator's images of held-out records: the judge's main test set."""
    heldout_prefixes: ExampleSet
    """PRM, clarity and potential on prefixes of held-out records."""


def build_dataset(
    root: Path, data: JudgeData, seed: int, prompts: JudgePrompts | None = None, progress: bool = False
) -> JudgeDataset:
    """The training sets (renders, generated, prefixes) and the held-out sets under `root`, each cached."""
    from cotgen.judge.rollouts import build_prefixes, training_prefix_records

    prompts = prompts or JudgePrompts()
    common = {"seed": seed, "prompts": asdict(prompts)}
    renders = cached(
        root / "renders",
        {**common, "n": data.render_images, "degrade_rate": data.degrade_rate, "swaps": data.swaps},
        lambda folder: build_renders(folder, data.render_images, seed, data.degrade_rate, data.swaps, prompts),
    )  # fmt: skip
    # the weights' digest, not the name: cached images follow a retrained generator
    gen = {"generator": str(data.generator), "generator_digest": weights_digest(data.generator, "generator")}
    train_generated = cached(
        root / "generated",
        {**common, **gen, "n": data.generated_images, "swaps": data.swaps},
        lambda folder: build_generated(folder, data.generated_images, seed, data.swaps, data.generator, data.generator_batch, prompts, progress),
    )  # fmt: skip
    records = heldout_records(data.heldout_records)
    heldout = cached(
        root / "heldout",
        {**common, **gen, "records": len(records), "samples": data.heldout_samples},
        lambda folder: build_heldout(folder, records, data.heldout_samples, seed, data.generator, data.generator_batch, prompts, progress),
    )  # fmt: skip
    rollouts = {**common, **gen, "rollouts": data.prefix_rollouts}
    prefix_records = training_prefix_records(data.prefix_records, seed)
    prefixes = cached(
        root / "prefixes",
        {**rollouts, "records": data.prefix_records},
        lambda folder: build_prefixes(folder, prefix_records, data.prefix_rollouts, seed, data.generator, data.generator_batch, "prefix", prompts, progress),
    )  # fmt: skip
    heldout_prefix_records = heldout_records(data.heldout_prefix_records)
    heldout_prefixes = cached(
        root / "heldout_prefixes",
        {**rollouts, "records": len(heldout_prefix_records)},
        lambda folder: build_prefixes(folder, heldout_prefix_records, data.prefix_rollouts, seed, data.generator, data.generator_batch, "heldout", prompts, progress),
    )  # fmt: skip
    return JudgeDataset(renders, train_generated, prefixes, heldout, heldout_prefixes)


# ---------------------------------------------------------------------------------------------
# Sampling batches


class BalancedSampler:
    """Draws (set, example) pairs so that the question's text alone predicts nothing: a set by
    weight, then a (task, tag) stratum uniformly, then "yes" or "no" with equal chance, then an
    example of that stratum and answer uniformly. (Left to the data's own mix, the judge first
    learns that single-object prompts are usually drawn right and position prompts wrong, and
    stays there.) A stratum with one answer only draws from what it has."""

    def __init__(self, groups: Sequence[tuple[ExampleSet, float]], rng: np.random.Generator):
        self.groups = [(s, w) for s, w in groups if len(s) and w > 0]
        if not self.groups:
            raise ValueError("no examples to sample from")
        weights = np.array([w for _, w in self.groups], dtype=float)
        self.weights = weights / weights.sum()
        self.strata: list[list[list[list[int]]]] = []  # group -> (task, tag) -> answer -> example indices
        for s, _ in self.groups:
            by_key: dict[tuple[str, str, str], list[int]] = defaultdict(list)
            for i, e in enumerate(s.examples):
                by_key[(e.task, e.tag, e.answer)].append(i)
            strata = sorted({(task, tag) for task, tag, _ in by_key})
            self.strata.append([[by_key[(*k, a)] for a in ANSWERS if by_key[(*k, a)]] for k in strata])
        self.rng = rng

    def draw(self, n: int) -> list[tuple[ExampleSet, Example]]:
        out = []
        for g in self.rng.choice(len(self.groups), size=n, p=self.weights):
            strata = self.strata[g]
            pools = strata[int(self.rng.integers(len(strata)))]
            pool = pools[int(self.rng.integers(len(pools)))]
            out.append((self.groups[g][0], self.groups[g][0].examples[pool[int(self.rng.integers(len(pool)))]]))
        return out


def balanced_accuracy(p_yes: Sequence[float], answers: Sequence[str], threshold: float = 0.5) -> dict:
    """n, positives, true-positive and true-negative rates and their mean (None where undefined)."""
    said = np.asarray(p_yes) >= threshold
    truth = np.asarray([a == "yes" for a in answers])
    tpr = float(said[truth].mean()) if truth.any() else None
    tnr = float((~said[~truth]).mean()) if (~truth).any() else None
    rates = [r for r in (tpr, tnr) if r is not None]
    return {
        "n": len(truth), "positives": int(truth.sum()), "tpr": tpr, "tnr": tnr,
        "balanced": float(np.mean(rates)) if rates else None, "accuracy": float((said == truth).mean()) if len(truth) else None,
    }  # fmt: skip
