"""The server's config: models, devices, defaults and limits of requests, sampling and strategy
settings, batching, auth (`args:` in serve/config.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotgen.config import build_config, check_ray_device
from cotgen.errors import InputError
from cotgen.generate.sampling import Sampling
from cotgen.models.presets import resolve
from cotgen.verify.config import STRATEGIES, VerifyConfig, check_steps

APP_NAME = "cotgen"


@dataclass(frozen=True)
class ServeConfig:
    """The application's arguments (`args:` in serve/config.yaml); deployment resources and
    autoscaling are Serve's own options (`deployments:` there)."""

    generator: str = "embedded"
    """'embedded', a Janus checkpoint folder, a preset name (janus-pro-1b, …) or a hub id."""
    judge: str = "embedded"
    """'embedded', a judge folder (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision), a preset name or hub id, or
    'none' to serve baseline only."""
    generator_device: str = "cpu"
    """Where Generator replicas run the model: cpu or cuda; a cuda replica needs a GPU (num_gpus > 0) and a cpu one none."""
    judge_device: str = "cpu"
    """Where Judge replicas run the model: cpu or cuda, with a GPU reserved exactly when cuda."""
    model_id: str = "cotgen"
    """The name clients send as `model` for `generator` (the default model); `GET /v1/models` lists it."""
    models: dict[str, str] = field(default_factory=dict)
    """More generators behind the same endpoint, by the name clients send as `model` (e.g. DPO
    rounds' policies): {name: 'embedded', a folder, a preset or hub id}. They share the judge."""
    max_models_per_replica: int = 2
    """Of `models`, how many one Generator replica keeps loaded besides the default one; the least
    recently used is dropped for another (Serve's model multiplexing routes a model's requests to
    replicas that hold it)."""
    default_strategy: str = "parm"
    """Strategy of requests that name none: baseline | orm | prm | parm | parm++."""
    default_candidates: int = 4
    """Candidate paths per image when a request names no `candidates`."""
    max_candidates: int = 16
    """Most `candidates` a request may ask for."""
    max_images: int = 4
    """Most images (`n`) per request."""
    max_prompt_chars: int = 1000
    """Longest prompt accepted, in characters (the model's context bounds it in tokens too)."""
    max_body_bytes: int = 65536
    """Largest request body read; larger ones get 413 before they are parsed."""
    sampling: Sampling = field(default_factory=Sampling)
    """How the generator samples (guidance, temperature, top_k, checkpoint steps), as in a sweep."""
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    """Strategy settings (thresholds, prm_aggregate, beam, max_rounds, corrector, judge prompts);
    `strategy` and `n` are ignored: each request's `strategy` and `candidates` take their place."""
    generator_batch_size: int = 8
    """Most baseline images decoded together in one engine batch, gathered across requests."""
    generator_batch_wait_s: float = 0.05
    """How long a baseline image waits for others to join its batch."""
    concurrent_verifications: int = 2
    """Verified images (orm, prm, parm, parm++) one Generator replica works on at once; the rest wait there."""
    judge_batch_size: int = 64
    """Most (image, question) pairs the Judge scores in one forward pass, gathered across callers."""
    judge_batch_wait_s: float = 0.01
    """How long a judge call waits for others to join its batch."""
    api_key_env: str = "COTGEN_API_KEY"
    """Environment variable holding the bearer token clients must send; unset or empty: no auth."""

    def __post_init__(self) -> None:
        for name in ("generator_device", "judge_device"):
            check_ray_device(getattr(self, name), name)
        if self.default_strategy not in STRATEGIES:
            raise InputError(f"default_strategy: {self.default_strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.judge == "none" and self.default_strategy != "baseline":
            raise InputError(f"default_strategy: {self.default_strategy!r} needs a judge, and judge is 'none'")
        try:
            check_steps(self.default_strategy, self.sampling.steps)
        except InputError as err:
            raise InputError(f"sampling.{err}") from None
        for name in ("max_candidates", "max_images", "max_models_per_replica", "max_prompt_chars", "max_body_bytes",
                     "generator_batch_size", "concurrent_verifications", "judge_batch_size"):  # fmt: skip
            if getattr(self, name) < 1:
                raise InputError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if not 1 <= self.default_candidates <= self.max_candidates:
            raise InputError(f"default_candidates: must be within [1, max_candidates={self.max_candidates}], got {self.default_candidates}")  # fmt: skip
        if self.judge_batch_size < self.max_candidates:
            raise InputError(f"judge_batch_size: must hold one request's candidates (max_candidates={self.max_candidates}), got {self.judge_batch_size}")  # fmt: skip
        if self.generator_batch_wait_s < 0 or self.judge_batch_wait_s < 0:
            raise InputError("generator_batch_wait_s, judge_batch_wait_s: must not be negative")
        if not self.model_id or not self.api_key_env:
            raise InputError("model_id, api_key_env: must not be empty")
        if self.model_id in self.models or "" in self.models:
            raise InputError(f"models: the names must be non-empty and differ from model_id ({self.model_id!r})")

    @property
    def generators(self) -> dict[str, str]:
        """Every served generator by the name clients send as `model`, the default first."""
        return {self.model_id: self.generator, **self.models}

    def check_models(self) -> None:
        """Fail before any replica starts when a model folder is missing (on the machine that builds the app)."""
        for name, generator in self.generators.items():
            if not (model_folder(generator, "generator") / "config.json").is_file():
                field_name = "generator" if name == self.model_id else f"models.{name}"
                raise InputError(f"{field_name}: {generator} is not a model folder (no config.json)")
        if self.judge != "none" and not (model_folder(self.judge, "judge") / "config.json").is_file():
            raise InputError(f"judge: {self.judge} is not a model folder (no config.json)")


def model_folder(name: str, role: str) -> Path:
    """Where a model named as the loaders accept it lives ('embedded', a folder, a preset, a hub id)."""
    try:
        return resolve(name, role)
    except InputError as err:
        raise InputError(f"{role}: {err}") from None


def config_from_args(args: Mapping[str, Any]) -> ServeConfig:
    """`args:` of a Serve config into a ServeConfig; unknown keys and wrong types name the field."""
    try:
        return build_config(ServeConfig, dict(args))
    except InputError as err:
        raise InputError(f"application args: {err}") from None
