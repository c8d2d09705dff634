"""The iterative DPO run's config, Ray-free: the starting policy, how rounds sample and label, the
training hyperparameters (the paper's by default), the Ray Train workers and the held-out scoring.
`cotgen.distributed.dpo_config.DPOJobConfig` adds the sampling sweep's cluster."""

from __future__ import annotations

from dataclasses import dataclass, field

from cotgen.config import check_ray_device, check_resources
from cotgen.errors import InputError
from cotgen.generate.sampling import Sampling

LABELLERS = ("judge", "exact")
"""What labels a sample: the judge's P(yes), or the exact evaluator (an oracle, for ablations)."""
EVAL_SPLITS = ("heldout", "train")
"""What each round is scored on: the held-out records (for reporting) or training-split ones (for choosing settings)."""


@dataclass
class DPOTrainConfig:
    """One round's training hyperparameters, defaults from the paper (the `train` section)."""

    beta: float = 0.1
    """DPO temperature β: how far the policy may move from the reference (the paper: 0.1)."""
    lr: float = 1e-5
    """AdamW learning rate, constant (the paper: 1e-5)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    epochs: int = 1
    """Passes over a round's pairs (the paper: 1)."""
    batch_size: int = 8
    """Pairs per optimizer step, over all workers (micro_batch × workers × accumulation)."""
    micro_batch: int = 4
    """Pairs per forward pass on one worker."""
    max_grad_norm: float = 1.0
    """Gradient clipping (0: none)."""
    checkpoint_every: int = 0
    """Optimizer steps between resumable checkpoints within a round (0: only at the round's end)."""
    seed: int = 0
    """Shuffles the pairs (each epoch, each round)."""

    def __post_init__(self) -> None:
        if self.beta <= 0 or self.lr <= 0:
            raise InputError(f"beta and lr: must be positive, got beta={self.beta}, lr={self.lr}")
        for name in ("epochs", "batch_size", "micro_batch"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.batch_size % self.micro_batch:
            raise InputError(f"batch_size: must be a multiple of micro_batch={self.micro_batch}, got {self.batch_size}")
        for name in ("weight_decay", "max_grad_norm", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise InputError(f"{name}: must not be negative, got {getattr(self, name)}")

    def accumulation(self, workers: int) -> int:
        """Micro-batches each worker accumulates per optimizer step."""
        if self.batch_size % (self.micro_batch * workers):
            raise InputError(f"batch_size: {self.batch_size} pairs do not split into micro_batch={self.micro_batch} on {workers} workers")
        return self.batch_size // (self.micro_batch * workers)


@dataclass
class DPOTrainerConfig:
    """The Ray Train workers of a round (the `trainer` section)."""

    workers: int = 2
    """Ray Train workers (data-parallel DeepSpeed ranks)."""
    device: str = "cpu"
    """cpu: CPU workers with gloo and fp32; cuda: one GPU per worker (Ray chooses it), NCCL and bf16.
    The pairs and the held-out scoring run there too."""
    cpus_per_worker: float = 1.0
    """CPUs reserved per worker."""
    resources_per_worker: dict[str, float] = field(default_factory=dict)
    """Custom Ray resources per worker, to place the workers on chosen nodes (e.g. {trainer: 1} with one
    `trainer` on each of those nodes puts one worker on each)."""
    threads: int = 1
    """torch threads per worker."""
    zero_stage: int = 2
    """DeepSpeed ZeRO stage: 2 (optimizer state and gradients sharded) or 3 (parameters too)."""
    storage: str | None = None
    """Ray Train storage for resumable checkpoints (None: <out>/ray_train); on a cluster, a path every node shares."""
    max_failures: int = 2
    """Worker failures (a lost node) Ray Train recovers from per round, restarting from the latest checkpoint."""

    @property
    def gpus(self) -> int:
        """GPUs per worker (and per pairing or scoring task)."""
        return int(self.device == "cuda")


@dataclass
class DPOEvalConfig:
    """The held-out scoring after each round (the `eval` section)."""

    split: str = "heldout"
    """heldout: GenEval's 553 held-out records (for reporting); train: as many training-split records of
    each tag, drawn with `seed` (for choosing settings without looking at the held-out split)."""
    per_tag: int | None = 8
    """Records per tag scored after each round (None: all 553)."""
    samples: int = 1
    """Images per held-out record."""
    seed: int = 1000
    """Seed of the held-out images (the same for every round, so rounds differ only by their policy)."""


@dataclass
class DPOFaultsConfig:
    """Fault injection, for the tests (the `faults` section)."""

    stall_at_step: int = 0
    """The first worker stalls after the checkpoint of this step of round 1, once per run folder (0: never)."""


@dataclass
class DPOConfig:
    out: str = "runs/dpo"
    """Run folder: models.json, round-0 (the starting policy's evaluation), round-R/{prompts.jsonl, samples/, pairs.parquet, model/, train_log.jsonl, eval.json}."""
    generator: str = "embedded"
    """The starting policy: 'embedded', a preset or a Janus checkpoint folder."""
    judge: str = "embedded"
    """The judge the sampling sweep scores every image with (ORM P(yes)): 'embedded', a preset or a judge folder."""
    labeller: str = "judge"
    """Which verdict labels a sample: judge (P(yes) ≥ label_threshold) or exact (the evaluator, an oracle for ablations)."""
    label_threshold: float = 0.5
    """Judge P(yes) at or above which a sample is labelled "yes"."""
    rounds: int = 2
    """DPO rounds; round r samples with round r−1's policy (round 1: the starting policy)."""
    prompts_per_tag: int = 10
    """Training-split prompts per tag sampled in each round (different ones each round)."""
    samples: int = 8
    """Images per prompt (K) from which "yes" and "no" images are paired."""
    pairs_per_prompt: int = 1
    """Distinct ("yes", "no") couples paired per prompt, at most (the paper: 1). More reach thousands of
    pairs from fewer sampled images; the first min(yes, no) couples share no image."""
    seed: int = 0
    """Seeds the prompts and paths of every round (round r uses seed + r)."""
    sampling: Sampling = field(default_factory=Sampling)
    """How the policy samples (the replay check replays with the same settings)."""
    replay_check: int = 16
    """Pairs whose two paths are replayed from their keys and compared with the stored tokens the pairs
    train on (0: none); paths that replay differently are counted in round-R/replay.json."""
    train: DPOTrainConfig = field(default_factory=DPOTrainConfig)
    """Training hyperparameters of each round."""
    trainer: DPOTrainerConfig = field(default_factory=DPOTrainerConfig)
    """The Ray Train workers and where they run."""
    eval: DPOEvalConfig = field(default_factory=DPOEvalConfig)
    """The held-out scoring of every round's policy."""
    faults: DPOFaultsConfig = field(default_factory=DPOFaultsConfig)
    """Fault injection, for the tests."""

    def __post_init__(self) -> None:
        if self.labeller not in LABELLERS:
            raise InputError(f"labeller: {self.labeller!r} is not one of {', '.join(LABELLERS)}")
        if not 0.0 <= self.label_threshold <= 1.0:
            raise InputError(f"label_threshold: must be within [0, 1], got {self.label_threshold}")
        for name in ("rounds", "prompts_per_tag", "pairs_per_prompt"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.replay_check < 0:
            raise InputError(f"replay_check: must not be negative, got {self.replay_check}")
        if self.samples < 2:
            raise InputError(f"samples: a pair needs at least 2 images per prompt, got {self.samples}")
        t = self.trainer
        if t.workers < 1 or t.threads < 1 or t.cpus_per_worker < 0 or t.max_failures < 0:
            raise InputError("trainer.workers and trainer.threads: must be at least 1; cpus_per_worker and max_failures not negative")
        check_resources(t.resources_per_worker, "trainer.resources_per_worker")
        if t.zero_stage not in (2, 3):
            raise InputError(f"trainer.zero_stage: expected 2 or 3, got {t.zero_stage}")
        check_ray_device(t.device, "trainer.device")
        try:
            self.train.accumulation(t.workers)
        except InputError as err:
            raise InputError(f"train.{err} (trainer.workers={t.workers})") from None
        if self.eval.split not in EVAL_SPLITS:
            raise InputError(f"eval.split: {self.eval.split!r} is not one of {', '.join(EVAL_SPLITS)}")
        if self.eval.per_tag is not None and self.eval.per_tag < 1 or self.eval.samples < 1:
            raise InputError("eval.per_tag and eval.samples: must be at least 1")
