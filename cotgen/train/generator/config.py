"""The embedded generator's training config: the VQ stage, the language-model (AR) stage, the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cotgen.config import check_device
from cotgen.errors import InputError

PRECISIONS = ("fp32", "bf16")


@dataclass
class VQConfig:
    """The VQ tokenizer stage (the `vq` section)."""

    codebook: int = 1024
    """Number of codes."""
    grid: int = 16
    """Image tokens per side (64 px / 16 = 4 px per token)."""
    base_channels: int = 32
    """Channels of the first conv level (a multiple of 32: GroupNorm uses 32 groups)."""
    channel_multiplier: list[int] = field(default_factory=lambda: [1, 1, 2])
    """Per-level channel multipliers; len − 1 downsamplings."""
    latent_channels: int = 64
    """Encoder output channels before the projection to the code dimension."""
    batch_size: int = 16
    """Rendered scenes per step."""
    lr: float = 1e-3
    """Adam learning rate (constant)."""
    minutes: float = 25.0
    """Wall-clock budget of the stage."""
    object_weight: float = 5.0
    """Loss weight of object pixels relative to background."""
    random_scene_rate: float = 0.2
    """Share of prompt-free random scenes in the training images."""
    eval_every: int = 250
    """Steps between ceiling measurements (and checkpoints)."""
    eval_scenes: int = 111
    """Held-out scenes used to measure the ceiling during training."""
    init_from: str | None = None
    """Continue training this VQ folder (a run's vq/) instead of a fresh VQ; its steps and minutes
    count in the card."""


@dataclass
class ARConfig:
    """The language-model stage (the `ar` section)."""

    hidden_size: int = 192
    """Llama width."""
    layers: int = 4
    """Llama blocks."""
    heads: int = 4
    """Attention heads."""
    intermediate_size: int = 512
    """MLP width."""
    dataset_scenes: int = 20000
    """Training scenes tokenised once and sampled with replacement."""
    workers: int = 1
    """Processes that render the training scenes (and check their broken renders)."""
    batch_size: int = 32
    """Sequences per step."""
    lr: float = 2e-3
    """Peak AdamW learning rate."""
    warmup_steps: int = 100
    """Steps of linear warm-up."""
    minutes: float = 40.0
    """Wall-clock budget of the stage (the learning rate decays to 10 % over it)."""
    cfg_dropout: float = 0.1
    """Share of prompts trained without their words (for classifier-free guidance)."""
    guidance: float = 3.0
    """Classifier-free guidance of the evaluations, written to the model as its default (`Sampling.guidance`)."""
    init_from: str | None = None
    """Continue training this generator folder instead of starting a fresh language model."""
    eval_every: int = 300
    """Steps between held-out evaluations (and checkpoints)."""
    eval_records: int = 96
    """Held-out records generated and scored at each evaluation during training."""
    feedback_share: float = 0.0
    """Share of training prompts given as corrective prompts (`cotgen.generate.feedback`): the prompt
    plus the exact evaluator's reasons for a broken render of it, with a right render as the target.
    This teaches the generator to be PARM++'s corrector."""
    precision: str = "fp32"
    """fp32; bf16: forward and backward under autocast, the weights stay float32 (about 1.7× faster on
    CPUs with AVX-512 BF16, several times slower on CPUs without); auto: bf16 where it is fast (CUDA,
    or a CPU with AVX-512 BF16 or AMX), else fp32."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.feedback_share < 1.0:
            raise InputError(f"ar.feedback_share: must be within [0, 1), got {self.feedback_share}")
        if self.workers < 1:
            raise InputError(f"ar.workers: must be at least 1, got {self.workers}")
        if self.precision not in [*PRECISIONS, "auto"]:
            raise InputError(f"ar.precision: {self.precision!r} is not one of {', '.join(PRECISIONS)}, auto")
        if self.guidance < 1.0:
            raise InputError(f"ar.guidance: must be at least 1.0, got {self.guidance}")


@dataclass
class TrainGeneratorConfig:
    out: str = "runs/generator"
    """Output folder: vq/, ar_dataset/ (cached tokenised scenes), generator/ (the final model), config.yaml, log.jsonl."""
    seed: int = 0
    """Seeds the scenes, the batches and the evaluations' paths."""
    threads: int = 2
    """torch CPU threads."""
    image_size: int = 64
    """Side of the world's images in pixels."""
    final_per_tag: int = 0
    """Held-out records per tag in the final evaluation and ceiling (0: all 553, the figure to quote)."""
    device: str = "cpu"
    """cpu or cuda[:N]: where both stages train and the evaluations run."""
    vq: VQConfig = field(default_factory=VQConfig)
    """The VQ tokenizer stage (skipped when <out>/vq is complete)."""
    ar: ARConfig = field(default_factory=ARConfig)
    """The language-model stage (skipped when <out>/generator is complete)."""

    def __post_init__(self) -> None:
        check_device(self.device)


def resolve_precision(precision: str, device: str) -> str:
    """`auto` as fp32 or bf16: bf16 autocast only pays off on hardware with bf16 arithmetic."""
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "bf16"
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.exists() else set()
    return "bf16" if flags & {"avx512_bf16", "amx_bf16"} else "fp32"
