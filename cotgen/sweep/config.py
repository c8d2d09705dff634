"""The sweep's config: which prompts, which strategies at which N, on what cluster."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from cotgen.config import check_ray_device, check_resources
from cotgen.errors import InputError
from cotgen.generate.sampling import Sampling
from cotgen.verify.config import STRATEGIES, VerifyConfig, check_steps

ROLES = ("generator", "judge")


@dataclass
class ClusterConfig:
    address: str | None = None
    """Ray cluster to join; None joins RAY_ADDRESS when set (as under `ray job submit`), else starts Ray locally."""
    generator_actors: int = 1
    """Generator actors in the Ray Data actor pool."""
    judge_actors: int = 1
    """Judge actors, a separate pool that the generator actors call at checkpoint steps."""
    generator_device: str = "cpu"
    """Where each generator actor runs its model: cpu or cuda (the GPU Ray reserved for the actor)."""
    judge_device: str = "cpu"
    """Where each judge actor runs its model: cpu or cuda."""
    gpus_per_generator: float | None = None
    """GPUs reserved per generator actor. None: 1 on cuda, 0 on cpu; a number must be above 0 exactly when
    generator_device is cuda (a fraction shares a GPU)."""
    gpus_per_judge: float | None = None
    """GPUs reserved per judge actor. None: 1 on cuda, 0 on cpu; a number must be above 0 exactly when
    judge_device is cuda."""
    cpus_per_generator: float = 1.0
    """CPUs reserved per generator actor."""
    cpus_per_judge: float = 1.0
    """CPUs reserved per judge actor."""
    resources_per_generator: dict[str, float] = field(default_factory=dict)
    """Custom Ray resources per generator actor, to place the actors on chosen nodes (e.g. {gpu_node: 0.01}
    with `ray start --resources '{"gpu_node": 1}'` on those nodes)."""
    resources_per_judge: dict[str, float] = field(default_factory=dict)
    """Custom Ray resources per judge actor."""
    threads: int = 1
    """torch threads per actor (generator and judge take turns on a path, so one each suits small CPUs)."""
    units_per_call: int = 1
    """Units a generator actor takes at once. Baseline and ORM units of one run decode all their paths
    in one batch (8 prompts × 8 paths: 2.4× the images per second of 8 paths on a 2-core CPU, `bench/batched_units.py`);
    a unit is written when its call ends, so a lost actor loses up to this many units' work."""

    def __post_init__(self) -> None:
        for name in ("generator_actors", "judge_actors", "threads", "units_per_call"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("cpus_per_generator", "cpus_per_judge"):
            if getattr(self, name) < 0:
                raise InputError(f"{name}: must not be negative, got {getattr(self, name)}")
        for role in ROLES:
            check_resources(getattr(self, f"resources_per_{role}"), f"resources_per_{role}")
            device, gpus = getattr(self, f"{role}_device"), getattr(self, f"gpus_per_{role}")
            check_ray_device(device, f"{role}_device")
            if gpus is None:
                setattr(self, f"gpus_per_{role}", 1.0 if device == "cuda" else 0.0)
            elif gpus < 0 or (device == "cuda") != (gpus > 0):
                raise InputError(
                    f"gpus_per_{role}: must be above 0 (1, or a fraction to share a GPU) exactly when "
                    f"{role}_device is cuda, got {gpus} with {role}_device {device}"
                )


@dataclass
class FaultConfig:
    generator_exit_at_unit: int = 0
    """Testing: a generator actor kills its process when it starts its k-th unit, once per sweep folder (0: never)."""
    judge_exit_at_call: int = 0
    """Testing: a judge actor kills its process at its k-th call, once per sweep folder (0: never)."""


@dataclass
class SweepConfig:
    out: str = "runs/sweep"
    """Sweep folder: rows/ (Parquet), images/ (GenEval layout per strategy@N), strips/, report/, config.yaml."""
    generator: str = "embedded"
    """'embedded', a preset (janus-pro-1b, …), a Janus checkpoint folder or a hub id."""
    judge: str = "embedded"
    """'embedded', a preset (parm, qwen2.5-vl-7b), a judge model folder (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision) or a hub id."""
    records: str = "heldout"
    """'heldout' (the shapes world's 553 evaluation records, for reporting), 'train' (as many
    training-split records in the same tag mix, drawn with `seed`: for choosing settings) or a
    GenEval metadata JSONL file."""
    per_tag: int | None = None
    """Only the first k records of each tag (None: all)."""
    seed: int = 0
    """Seeds every path: path i of prompt p has the key (seed, p, i) whatever the strategy or batch."""
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    """Strategies to sweep: baseline | orm | prm | parm | parm++."""
    ns: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    """N values of the curves. orm, parm and prm best-of-N run once at the largest and read the others off subsets."""
    direct_ns: list[int] | None = None
    """N values at which strategies that cannot reuse a pool (parm++, prm beam) run, once each (None: ns)."""
    sampling: Sampling = field(default_factory=Sampling)
    """How the generator samples (guidance, temperature, top_k, checkpoint steps: at least 2 for prm, parm, parm++)."""
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    """Strategy settings (thresholds, prm_aggregate, beam, max_rounds, corrector, prompts); `strategy` and `n` are ignored."""
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    """The actors, their resources and devices, and the Ray cluster to join."""
    faults: FaultConfig = field(default_factory=FaultConfig)
    """Fault injection, for the tests."""
    strip_prompts: int = 3
    """Prompts whose paths are also saved step by step, for the report's strips (from the parm run, else the first pool run)."""
    flush_units: int = 16
    """Finished units buffered before they are written (a kill loses at most this much work, never a row twice)."""
    bootstrap: int = 1000
    """Bootstrap resamples (of prompts) for the confidence intervals."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise InputError(f"strategies: {unknown or 'empty'} (expected some of {', '.join(STRATEGIES)})")
        for strategy in self.strategies:
            try:
                check_steps(strategy, self.sampling.steps)
            except InputError as err:
                raise InputError(f"sampling.{err}") from None
        for name in ("ns", "direct_ns"):
            values = getattr(self, name)
            if values is not None and (not values or min(values) < 1):
                raise InputError(f"{name}: expected a non-empty list of positive integers, got {values}")
        if self.per_tag is not None and self.per_tag < 1:
            raise InputError(f"per_tag: must be at least 1, got {self.per_tag}")
        for name in ("strip_prompts", "bootstrap"):
            if getattr(self, name) < 0:
                raise InputError(f"{name}: must not be negative, got {getattr(self, name)}")
        if self.flush_units < 1:
            raise InputError(f"flush_units: must be at least 1, got {self.flush_units}")

    def identity(self) -> dict:
        """What the rows depend on besides the models' weights: a sweep folder can be resumed (or
        extended) only with the same."""
        return {k: v for k, v in asdict(self).items() if k in ("generator", "judge", "records", "per_tag", "seed", "sampling", "verify")}
