"""The iterative DPO job's config: the starting policy, how rounds sample and label, training, cluster."""

from __future__ import annotations

from dataclasses import dataclass, field

from cotgen.distributed.config import ClusterConfig
from cotgen.generate.sampling import Sampling
from cotgen.dpo.config import TrainConfig
from cotgen.dpo.pairs import LABELLERS
from cotgen.errors import InputError


@dataclass
class TrainerConfig:
    workers: int = 2
    """Ray Train workers (data-parallel DeepSpeed ranks)."""
    use_gpu: bool = False
    """One GPU per worker, NCCL and bf16; otherwise CPU workers with gloo and fp32."""
    cpus_per_worker: float = 1.0
    """CPUs reserved per worker."""
    threads: int = 1
    """torch threads per worker."""
    zero_stage: int = 2
    """DeepSpeed ZeRO stage: 2 (optimizer state and gradients sharded) or 3 (parameters too)."""
    storage: str | None = None
    """Ray Train storage for resumable checkpoints (None: <out>/ray_train); on a cluster, a path every node shares."""
    max_failures: int = 2
    """Worker failures (a lost node) Ray Train recovers from per round, restarting from the latest checkpoint."""


@dataclass
class EvalConfig:
    per_tag: int | None = 8
    """Held-out records per tag scored after each round (None: all 553)."""
    samples: int = 1
    """Images per held-out record."""
    seed: int = 1000
    """Seed of the held-out images (the same for every round, so rounds differ only by their policy)."""


@dataclass
class DPOFaults:
    stall_at_step: int = 0
    """Testing: the first worker stalls after the checkpoint of this step of round 1, once per run folder (0: never)."""


@dataclass
class DPOJobConfig:
    out: str = "runs/dpo"
    """Run folder: round-0 (the starting policy's evaluation), round-R/{prompts.jsonl, samples/, pairs.parquet, model/, train_log.jsonl, eval.json}."""
    generator: str = "embedded"
    """The starting policy: 'embedded' or a Janus checkpoint folder."""
    judge: str = "embedded"
    """The judge the sampling sweep scores every image with (ORM P(yes)): 'embedded' or a judge folder."""
    labeller: str = "judge"
    """Which verdict labels a sample: judge (P(yes) ≥ label_threshold) or exact (the evaluator, an oracle for ablations)."""
    label_threshold: float = 0.5
    """Judge P(yes) at or above which a sample is labelled "yes"."""
    rounds: int = 2
    """DPO rounds; round r samples with round r−1's policy (round 1: the starting policy)."""
    prompts_per_tag: int = 10
    """Training-split prompts per tag sampled in each round (different ones each round)."""
    samples: int = 8
    """Images per prompt (K) from which one "yes" and one "no" are paired."""
    seed: int = 0
    """Seeds the prompts and paths of every round (round r uses seed + r)."""
    sampling: Sampling = field(default_factory=Sampling)
    """How the policy samples (the pairs' tokens are replayed with the same settings)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    """The sampling sweep's actors (and the Ray address to join)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    faults: DPOFaults = field(default_factory=DPOFaults)

    def __post_init__(self) -> None:
        if self.labeller not in LABELLERS:
            raise InputError(f"labeller: {self.labeller!r} is not one of {', '.join(LABELLERS)}")
        if not 0.0 <= self.label_threshold <= 1.0:
            raise InputError(f"label_threshold: must be within [0, 1], got {self.label_threshold}")
        for name in ("rounds", "prompts_per_tag"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.samples < 2:
            raise InputError(f"samples: a pair needs at least 2 images per prompt, got {self.samples}")
        t = self.trainer
        if t.workers < 1 or t.threads < 1 or t.cpus_per_worker < 0 or t.max_failures < 0:
            raise InputError("trainer.workers and trainer.threads: must be at least 1; cpus_per_worker and max_failures not negative")
        if t.zero_stage not in (2, 3):
            raise InputError(f"trainer.zero_stage: expected 2 or 3, got {t.zero_stage}")
        try:
            self.train.accumulation(t.workers)
        except InputError as err:
            raise InputError(f"train.{err} (trainer.workers={t.workers})") from None
        if self.eval.per_tag is not None and self.eval.per_tag < 1 or self.eval.samples < 1:
            raise InputError("eval.per_tag and eval.samples: must be at least 1")
