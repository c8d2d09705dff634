"""The embedded judge's training config: the data to make, the model to build, the two stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cotgen.config import check_device, load_config
from cotgen.errors import InputError
from cotgen.judge.prompts import JudgePrompts
from cotgen.prompts import TAGS
from cotgen.train.common.schedule import Budget

READINGS = ("prompt", "census")
CENTRE_HEADS = ("linear", "words")


@dataclass
class JudgeDataConfig:
    """How many examples of each kind to make (the `data` section)."""

    render_images: int = 6000
    """Rendered training-split scenes; half of them broken."""
    degrade_rate: float = 0.3
    """Share of rendered images passed through a random degradation (blur, JPEG, jitter, shift)."""
    generated_images: int = 2000
    """Generator images of training-split records."""
    swaps: int = 2
    """Extra questions per training image naming other training-split records."""
    heldout_samples: int = 2
    """Generator images per held-out evaluation record (553 records)."""
    heldout_records: int = 0
    """Use only the first N held-out records, spread over the tags (0: all 553)."""
    generator: str = "embedded"
    """Generator ("embedded", a preset or a folder) whose images the judge learns and is tested on."""
    generator_batch: int = 64
    """Paths decoded together by the generator."""
    generated_share: float = 0.5
    """Share of each training batch drawn from generated-image examples."""
    prefix_records: int = 300
    """Training-split records whose path prefixes (one path, every checkpoint step) get PRM,
    clarity and potential labels from rollouts (`cotgen.train.judge.rollouts`)."""
    prefix_rollouts: int = 4
    """Rollouts decoded from each prefix to label it."""
    prefix_share: float = 0.3
    """Share of each training batch drawn from prefix examples (the rest of the batch, after the
    generated share, from renders)."""
    heldout_prefix_records: int = 120
    """Held-out records (spread over the tags) whose prefixes test PRM, clarity and potential."""
    census_scenes: int = 0
    """Renders of prompt-free count scenes (`cotgen.train.judge.census_scenes`) that the census steps
    draw from besides the training images (needs `census_share`)."""
    census_scene_share: float = 0.5
    """Share of the census steps' images drawn from the count scenes (when there are any)."""
    census_scene_spoils: float = 0.0
    """Share of the count scenes with one object spoilt as the generator spoils them (cut by the
    frame, two-coloured, or run into another: `cotgen.train.judge.census_scenes.spoilt`) into a blob
    the evaluator does not count, the census's blind spot (bench/RESULTS.md, "A census read on several views")."""
    census_counting_images: int = 0
    """Generator images of the training-split counting records added to the count scenes' pool
    (census examples only, `cotgen.train.judge.census_scenes.counting_images`): the generator's own
    blobs where the census learns to count."""
    seed: int | None = None
    """Seed of the training sets (renders, generated images, prefixes) where it is not the run's:
    a continuation on fresh images."""
    compositional: bool = False
    """Train without the training-split prompts that name a judge-validation combination
    (`cotgen.world.records.JUDGE_VALIDATION_*`; their examples are left out as the sets load, the
    sets themselves unchanged), so that `bench/judge_heldout.py --validation N --compositional unread` tests
    combinations the judge never read, as the held-out split does."""
    heldout_seed: int = 0
    """Seed of the held-out sets and of the validation sets' records (their images take it + 1): not
    the run's, so runs of any seed and training data share one data folder's test images."""

    def __post_init__(self) -> None:
        for name in ("degrade_rate", "generated_share", "prefix_share", "census_scene_share", "census_scene_spoils"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name}: must be within [0, 1], got {getattr(self, name)}")
        if self.generated_share + self.prefix_share > 1.0:
            raise InputError(f"generated_share + prefix_share: must be at most 1, got {self.generated_share + self.prefix_share}")
        if self.prefix_rollouts < 2:
            raise InputError(f"prefix_rollouts: must be at least 2 (clarity is whether rollouts agree), got {self.prefix_rollouts}")
        for name in ("render_images", "generated_images", "swaps", "heldout_records", "prefix_records", "heldout_prefix_records", "census_scenes", "census_counting_images"):
            if getattr(self, name) < 0:
                raise InputError(f"{name}: must be at least 0, got {getattr(self, name)}")
        if self.heldout_samples < 1 or self.generator_batch < 1:
            raise InputError("heldout_samples and generator_batch: must be at least 1")


@dataclass
class JudgeModelConfig:
    """The embedded judge's architecture (a Qwen2-VL; the `model` section)."""

    vocab_size: int = 1024
    """Largest tokenizer vocabulary (byte alphabet + merges); BPE stops earlier when the corpus runs out."""
    image_size: int = 64
    """Side of the images the processor produces (the world's canvas)."""
    patch_size: int = 8
    """Vision patch side in pixels (image processor and vision tower)."""
    merge_size: int = 1
    """Patches merged per side into one language-model token (1: each 8-px patch is a token, 64 in
    all, fine enough to tell four 18-px objects apart; 2 merges them into 16)."""
    vision_dim: int = 128
    """Vision tower width."""
    vision_depth: int = 3
    """Vision tower blocks."""
    vision_heads: int = 4
    """Vision tower attention heads."""
    vision_mlp_ratio: int = 2
    """Vision tower MLP width over its model width."""
    hidden_size: int = 128
    """Language model width (also the merger's output)."""
    layers: int = 4
    """Language model blocks."""
    heads: int = 4
    """Language model attention heads."""
    kv_heads: int = 2
    """Language model key/value heads (grouped-query attention)."""
    intermediate_size: int = 384
    """Language model MLP width."""
    rope_theta: float = 10000.0
    """Rotary embedding base."""
    init_std: float = 0.08
    """Standard deviation of the random initial weights (transformers' `initializer_range`). At
    transformers' usual 0.02 the visual tokens barely differ between images and a model this small
    does not start learning from them within a CPU budget; about 1/sqrt(width) does."""

    def __post_init__(self) -> None:
        if self.image_size % (self.patch_size * self.merge_size):
            raise InputError(f"image_size: {self.image_size} is not a multiple of patch_size × merge_size")
        for dim, heads, name in ((self.hidden_size, self.heads, "heads"), (self.vision_dim, self.vision_heads, "vision_heads")):
            if dim % heads:
                raise InputError(f"{name}: {heads} does not divide the width {dim}")
        if (self.hidden_size // self.heads) % 4 or self.heads % self.kv_heads:
            raise InputError(f"heads: head_dim must be a multiple of 4 and kv_heads ({self.kv_heads}) divide heads")


@dataclass
class VisionConfig:
    """The vision stage: the vision tower alone learns what is centred in each visual token's cell
    (the `vision` section)."""

    minutes: float = 8.0
    """Wall-clock budget of the vision stage (0 skips it)."""
    steps: int = 0
    """At most this many steps (0: no limit); whichever of `minutes` and `steps` ends first ends the stage."""
    batch_size: int = 32
    """Images per step."""
    lr: float = 1e-3
    """AdamW learning rate (constant)."""
    generated_share: float = 0.5
    """Share of the generator's images of training records (the `generated` set) among the images;
    the rest are fresh renders of training records, half broken."""
    degrade_rate: float = 0.3
    """Share of rendered scenes passed through a random degradation."""

    def __post_init__(self) -> None:
        if self.minutes < 0 or self.steps < 0:
            raise InputError(f"vision.minutes and vision.steps: must be at least 0, got {self.minutes} and {self.steps}")
        for name in ("generated_share", "degrade_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"vision.{name}: must be within [0, 1], got {getattr(self, name)}")


@dataclass
class AnswerStageConfig:
    """A later answer stage (an item of `continuations`), run as `jobs/train_judge.py
    init_from=<the judge so far>` would run it, with `vision_minutes` as its vision stage: the same
    data, a fresh perception head, optimiser, batch stream and learning-rate schedule."""

    minutes: float = 30.0
    """Wall-clock budget (the learning rate decays to 10 % over it)."""
    steps: int = 0
    """At most this many steps (0: no limit); whichever of `minutes` and `steps` ends first ends the stage."""
    lr: float = 5e-4
    """Peak AdamW learning rate."""
    warmup_steps: int = 50
    """Steps of linear warm-up."""
    vision_minutes: float = 0.0
    """A vision stage before this one, training the fresh head (0 skips it); the `vision` section's
    other settings apply."""
    vision_steps: int = 0
    """At most this many steps of that vision stage (0: no limit)."""
    tag_weights: dict[str, float] = field(default_factory=dict)
    """This stage's `TrainJudgeConfig.tag_weights` (none: every tag alike)."""
    prefix_subset: int = 0
    """This stage's `TrainJudgeConfig.prefix_subset` (0: every prefix record)."""

    def __post_init__(self) -> None:
        check_answer_stage(self.minutes, self.steps, self.lr, self.warmup_steps)
        check_tag_weights(self.tag_weights)
        check_prefix_subset(self.prefix_subset)
        if self.vision_minutes < 0 or self.vision_steps < 0:
            raise InputError(f"vision_minutes and vision_steps: must be at least 0, got {self.vision_minutes} and {self.vision_steps}")

    def budget(self) -> Budget:
        return Budget(self.minutes, self.steps)


def check_tag_weights(tag_weights: dict[str, float]) -> None:
    for tag, weight in tag_weights.items():
        if tag not in TAGS:
            raise InputError(f"tag_weights: unknown tag {tag!r} (expected one of {', '.join(TAGS)})")
        if not weight > 0:
            raise InputError(f"tag_weights.{tag}: must be above 0, got {weight}")


def check_prefix_subset(n: int) -> None:
    if n < 0:
        raise InputError(f"prefix_subset: must be at least 0 (0: every prefix record), got {n}")


def check_answer_stage(minutes: float, steps: int, lr: float, warmup_steps: int) -> None:
    if minutes <= 0 or lr <= 0:
        raise InputError(f"minutes and lr: must be positive, got {minutes} and {lr}")
    if steps < 0 or warmup_steps < 1:
        raise InputError(f"steps: must be at least 0 and warmup_steps at least 1, got {steps} and {warmup_steps}")


@dataclass
class TrainJudgeConfig:
    out: str = "runs/judge"
    """Output folder: data/ (cached examples), judge/ (the model and its card), config.yaml, log.jsonl."""
    data_from: str | None = None
    """Data folder to use instead of <out>/data: a later link of a recipe shares its earlier link's
    cached sets (a set it asks for with other settings is built there beside them)."""
    seed: int = 0
    """Seeds the data, the fresh model's weights and the batches."""
    threads: int = 1
    """torch CPU threads (on a shared machine a second thread can make a step ten times slower)."""
    device: str = "cpu"
    """Where the judge trains: cpu or cuda[:N] (the data, generator images included, are made on the CPU)."""
    model: JudgeModelConfig = field(default_factory=JudgeModelConfig)
    """The architecture of a fresh judge (ignored with init_from)."""
    data: JudgeDataConfig = field(default_factory=JudgeDataConfig)
    """The labelled examples, cached in <out>/data."""
    vision: VisionConfig = field(default_factory=VisionConfig)
    """The vision stage, before the answer stage."""
    prompts: JudgePrompts = field(default_factory=JudgePrompts)
    """The questions the judge is trained (and will be asked) with."""
    init_from: str | None = None
    """Continue training this judge folder instead of building a fresh model."""
    reads: bool = True
    """The judge writes its reading of the image (`cotgen.train.judge.reading`) before it answers the
    outcome question (ORM and PRM), and P(yes) is read after it; False: it answers "yes" or "no" at once."""
    answer_weight: float = 1.0
    """Extra weight of each answer's last token (its "yes" or "no") in the teacher-forced loss, so that a
    reading's verdict is not outweighed by the reading's many tokens (0: every token alike)."""
    centre_weight: float = 0.5
    """Weight, beside the answer stage's loss, of the vision stage's loss on the same images, which
    keeps each visual token telling what is centred in its cell (0: off)."""
    centre_head: str = "linear"
    """The perception head of the vision stage's loss: "linear" (a throwaway linear layer) or "words"
    (tied to the language model's embeddings of the words a reading writes, `WordTiedHead`)."""
    batch_size: int = 32
    """Answer-stage batch size."""
    lr: float = 1e-3
    """Answer-stage peak AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay (both stages)."""
    warmup_steps: int = 100
    """Answer-stage steps of linear warm-up."""
    minutes: float = 30.0
    """Wall-clock budget of the answer stage (the learning rate decays to 10 % over it); data and the
    vision stage are extra."""
    steps: int = 0
    """At most this many answer-stage steps (0: no limit); whichever of `minutes` and `steps` ends
    first ends the stage, and the learning rate decays over it."""
    continuations: list[AnswerStageConfig] = field(default_factory=list)
    """Answer stages after the first, each with its own budget and schedule (as reruns with
    init_from would train), so that one command makes a judge that took several runs."""
    then: str | None = None
    """A config file trained after this run in the same command, with `init_from` this run's judge
    (<out>/judge): a run whose data or settings differ from this one's (`recipe_chain`). Command-line
    overrides apply to the first run only; `then=null` trains this run alone."""
    log_every: int = 25
    """Steps between progress lines."""
    eval_every: int = 500
    """Steps between held-out evaluations (and checkpoints)."""
    eval_batch: int = 64
    """Examples per forward pass in the evaluations."""
    reflection_share: float = 0.15
    """Share of the answer-stage steps whose batch trains reflections instead of yes/no answers: ORM
    examples from the renders and generated images (in the ratio of data.generated_share), balanced
    as the answer batches are, asked the reflection question (0: reflections are not trained)."""
    reading: str = "prompt"
    """What a reading judge writes before its answer: the counts of the classes the prompt names
    ("prompt"), or of every class, then the prompt's relation ("census"), a reading the prompt cannot
    suggest (`cotgen.train.judge.reading.reading_text`)."""
    reflection_reads: bool = False
    """A reading judge writes its reading before its reflection too ("circle: 1, red. answer: no:
    expected 2 circles, found 1"), so the reasons follow from what it read, as its outcome answer does;
    `VLMJudge.explain` returns what follows the reading."""
    census_share: float = 0.0
    """Share of the answer-stage steps whose batch trains the census instead (a reading judge only):
    images drawn as the reflections' are, asked `cotgen.train.judge.reading.CENSUS_QUESTION`, taught every class's count and
    colours (`census_text`), so each image teaches all its objects' counts, not only the prompt's.
    Drawn apart from reflections: with `reflection_share`, at most 1 in all."""
    census_turn: float = 0.0
    """Share of the outcome examples (a reading judge's ORM and PRM questions) taught as the second
    turn of a chat whose first asked the census and holds its true answer (`census_text`), so the
    reading can copy the counts from it; the rest are taught alone. With it, the judge is saved to
    ask itself the census before it reads for an outcome question (`ReadingMode.first`): the census
    is asked without the prompt, which the judge's reading otherwise leans towards."""
    skeleton: bool = False
    """A prompt-reading judge is saved to have its reading's skeleton forced as it writes (the
    question's classes and relation, `cotgen.judge.skeleton`), so it writes the facts alone. Off in
    the shipped recipe: its verification figures were measured with free readings."""
    copy_census: bool = False
    """A census-trained judge (`census_share`) is saved to ask itself the census and copy the
    question's classes' facts from it into its reading (`cotgen.train.judge.reading.copying_census`),
    writing only the relation and its answer; its evaluations read that way too."""
    rule_reasons: bool = False
    """A reading judge is saved to reflect by rule (`cotgen.judge.rule_reasons`): its reflection is its
    reading's verdict for the outcome question and, for a "no", the evaluator's reasons for the facts it
    read; its evaluations reflect that way too. The reflection it writes itself is still trained
    (`reflection_share`): it answers prompts outside the world's records."""
    rule_verdict: bool = False
    """A reading judge is saved to answer after its reading of a world prompt by the evaluator's
    verdict on the facts it read (`cotgen.judge.reading.ReadingMode.rule_verdict`) instead of its
    learnt answer; its evaluations answer that way too. Training is unchanged (the answer is still taught)."""
    rule_where: bool = False
    """After training, a where head is fitted on the judge's frozen visual tokens (the first images of
    the generated and renders sets, `cotgen.train.judge.where_head`) and the judge saved to state a
    position question's relation where the head finds the classes (`cotgen.judge.where`); its final
    evaluation reads that way too. Needs copy_census or skeleton (the relation is forced into a skeleton)."""
    rule_count: bool = False
    """After training, a count head is fitted on the judge's frozen visual tokens (the first images of
    the generated, renders and census_scenes sets, `cotgen.train.judge.count_fit`) and the judge saved
    to state the counts a prompt asks for as the head finds them (`cotgen.judge.count_head`); its final
    evaluation reads that way too. Needs copy_census or skeleton, and data.census_scenes."""
    reflection_eval: int = 100
    """Held-out images the evaluator calls wrong, and as many it calls correct, whose greedy
    reflections are scored at each evaluation (0: none)."""
    tag_weights: dict[str, float] = field(default_factory=dict)
    """How much more often the (first) answer stage draws a tag's examples than the others' (GenEval
    tag → weight; a tag not named weighs 1): more samples for the tags the judge reads worst."""
    prefix_subset: int = 0
    """The (first) answer stage trains on the prefixes of the first this many of `data.prefix_records`
    only (0: all): when the prefix data grows, a recipe's earlier stages keep the prefixes they had
    (the first records' rollouts are the same in a larger set)."""

    @property
    def every_class(self) -> bool:
        """Whether the reading states every class (`reading: census`), not only the prompt's."""
        return self.reading == "census"

    @property
    def training_seed(self) -> int:
        """The seed of the training sets: `data.seed` where set, else the run's."""
        return self.seed if self.data.seed is None else self.data.seed

    def stages(self) -> list[AnswerStageConfig]:
        """Every answer stage in order: this config's own, then the continuations."""
        first = AnswerStageConfig(self.minutes, self.steps, self.lr, self.warmup_steps, tag_weights=self.tag_weights, prefix_subset=self.prefix_subset)
        return [first, *self.continuations]

    def __post_init__(self) -> None:
        check_device(self.device)
        for name in ("threads", "batch_size", "log_every", "eval_every", "eval_batch"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}: must be at least 1, got {getattr(self, name)}")
        check_answer_stage(self.minutes, self.steps, self.lr, self.warmup_steps)
        for name in ("answer_weight", "centre_weight"):
            if getattr(self, name) < 0:
                raise InputError(f"{name}: must be at least 0, got {getattr(self, name)}")
        if self.centre_head not in CENTRE_HEADS:
            raise InputError(f"centre_head: must be one of {', '.join(CENTRE_HEADS)}, got {self.centre_head!r}")
        if not 0.0 <= self.reflection_share <= 1.0:
            raise InputError(f"reflection_share: must be within [0, 1], got {self.reflection_share}")
        if not 0.0 <= self.census_share <= 1.0 - self.reflection_share:
            raise InputError(f"census_share: must be within [0, 1 - reflection_share = {1 - self.reflection_share:g}], got {self.census_share}")
        if self.reading not in READINGS:
            raise InputError(f"reading: must be one of {', '.join(READINGS)}, got {self.reading!r}")
        if self.reading != "prompt" and not self.reads:
            raise InputError(f"reading: {self.reading!r} is a reading; it needs reads: true")
        if self.reflection_reads and not self.reads:
            raise InputError("reflection_reads: a reflection after a reading needs reads: true")
        if self.census_share and not self.reads:
            raise InputError("census_share: the census is a reading; it needs reads: true")
        if (self.data.census_scenes or self.data.census_counting_images) and not self.census_share:
            raise InputError("data.census_scenes, data.census_counting_images: they train the census; they need census_share above 0")
        if not 0.0 <= self.census_turn <= 1.0:
            raise InputError(f"census_turn: must be within [0, 1], got {self.census_turn}")
        if self.census_turn and not self.reads:
            raise InputError("census_turn: the census is a reading; it needs reads: true")
        if self.skeleton and (not self.reads or self.every_class):
            raise InputError("skeleton: forces the question's classes into a reading of them; it needs reads: true and reading: prompt")
        if self.copy_census and (not self.census_share or self.every_class or self.census_turn):
            raise InputError("copy_census: copies the census into a reading of the prompt's classes; it needs census_share above 0, reading: prompt and no census_turn")
        for name in ("rule_reasons", "rule_verdict"):
            if getattr(self, name) and not self.reads:
                raise InputError(f"{name}: works on the facts of a reading; it needs reads: true")
        if self.rule_where and not (self.copy_census or self.skeleton):
            raise InputError("rule_where: forces a relation into the reading's skeleton; it needs copy_census or skeleton")
        if self.rule_count and not ((self.copy_census or self.skeleton) and self.data.census_scenes):
            raise InputError("rule_count: forces counts into the reading's skeleton and is fitted on count scenes; it needs copy_census or skeleton, and data.census_scenes")
        if self.reflection_eval < 0:
            raise InputError(f"reflection_eval: must be at least 0, got {self.reflection_eval}")
        check_tag_weights(self.tag_weights)
        check_prefix_subset(self.prefix_subset)
        if self.training_seed == self.data.heldout_seed + 1:
            where = "data.seed" if self.data.seed is not None else "seed"
            raise InputError(f"{where}: {self.training_seed} is data.heldout_seed + 1, the seed of the validation images (bench/judge_heldout.py --validation); choose another")  # fmt: skip
        for k, stage in enumerate(self.stages()):
            if stage.prefix_subset > self.data.prefix_records:
                raise InputError(f"answer stage {k + 1}: prefix_subset {stage.prefix_subset} exceeds data.prefix_records ({self.data.prefix_records})")


def recipe_chain(cfg: TrainJudgeConfig) -> list[TrainJudgeConfig]:
    """The run and every run its `then` chain names, each continuing the judge of the one before;
    all loaded and validated before the first trains, so a bad file fails in seconds, not hours."""
    chain, files = [cfg], []
    while chain[-1].then:
        path = Path(chain[-1].then).resolve()
        if path in files:
            raise InputError(f"then: {chain[-1].then} is already in the chain; a recipe must end")
        files.append(path)
        try:
            chain.append(load_config(TrainJudgeConfig, path, [f"init_from={Path(chain[-1].out) / 'judge'}"]))
        except InputError as err:
            raise InputError(f"then: {err}") from None
    outs = [Path(c.out).resolve() for c in chain]
    if len(set(outs)) < len(outs):
        raise InputError(f"then: the runs of a chain need their own out folders, got {[c.out for c in chain]}")
    return chain
