"""cotgen's OpenAI Images API contract, without Ray: the server's settings, request parsing and
errors in the OpenAI shape. `cotgen.distributed.serving` puts it behind Ray Serve deployments.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from cotgen.config import build_config
from cotgen.errors import InputError
from cotgen.generate.sampling import Sampling
from cotgen.models.presets import resolve
from cotgen.verify.config import STRATEGIES
from cotgen.verify.config import VerifyConfig

APP_NAME = "cotgen"
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class ServeSettings:
    """The application's arguments (`args:` in serve/config.yaml); deployment resources and
    autoscaling are Serve's own options (`deployments:` there)."""

    generator: str = "embedded"
    """'embedded', a Janus checkpoint folder, a preset name (janus-pro-1b, …) or a hub id."""
    judge: str = "embedded"
    """'embedded', a judge folder (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision), a preset name or hub id, or
    'none' to serve baseline only."""
    model_id: str = "cotgen"
    """The model name clients send as `model` and `GET /v1/models` lists."""
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
        if self.default_strategy not in STRATEGIES:
            raise InputError(f"default_strategy: {self.default_strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.judge == "none" and self.default_strategy != "baseline":
            raise InputError(f"default_strategy: {self.default_strategy!r} needs a judge, and judge is 'none'")
        for name in ("max_candidates", "max_images", "max_prompt_chars", "max_body_bytes",
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

    def check_models(self) -> None:
        """Fail before any replica starts when a model folder is missing (on the machine that builds the app)."""
        if not (model_folder(self.generator, "generator") / "config.json").is_file():
            raise InputError(f"generator: {self.generator} is not a model folder (no config.json)")
        if self.judge != "none" and not (model_folder(self.judge, "judge") / "config.json").is_file():
            raise InputError(f"judge: {self.judge} is not a model folder (no config.json)")


def model_folder(name: str, role: str) -> Path:
    """Where a model named as the loaders accept it lives ('embedded', a folder, a preset, a hub id)."""
    try:
        return resolve(name, role)
    except InputError as err:
        raise InputError(f"{role}: {err}") from None


def settings_from_args(args: Mapping[str, Any]) -> ServeSettings:
    """`args:` of a Serve config into settings; unknown keys and wrong types name the field."""
    try:
        return build_config(ServeSettings, dict(args))
    except InputError as err:
        raise InputError(f"application args: {err}") from None


# -- errors in the OpenAI shape ----------------------------------------------------------------------


class ApiError(Exception):
    """An error answered as `{"error": {"message", "type", "param", "code"}}` with an HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", headers: dict[str, str] | None = None):  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind, self.headers = status, message, param, code, kind, headers  # fmt: skip

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def bad_request(param: str | None, message: str, code: str = "invalid_value", status: int = 400) -> ApiError:
    """A client error whose message starts with the field it is about."""
    return ApiError(status, f"{param}: {message}" if param else message, param, code)


def error_type(status: int) -> str:
    return {401: "authentication_error", 429: "rate_limit_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )


# -- the request ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRequest:
    """A validated `POST /v1/images/generations` body."""

    prompt: str
    n: int
    strategy: str
    candidates: int
    seed: int
    return_trace: bool


_FIELDS = {"prompt", "model", "n", "size", "response_format", "user", "strategy", "candidates", "seed", "return_trace"}


def _typed(body: dict, name: str, kind: type, default: Any) -> Any:
    value = body.get(name)
    if value is None:
        return default
    # bool is an int in Python but not in JSON: `"n": true` is a type error
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = {str: "a string", int: "an integer", bool: "a boolean"}[kind]
        raise bad_request(name, f"expected {expected}, got {json.dumps(value)}", "invalid_type")
    return value


def _bounded(name: str, value: int, low: int, high: int) -> int:
    if value < low:
        raise bad_request(name, f"must be at least {low}, got {value}", "integer_below_min_value")
    if value > high:
        raise bad_request(name, f"must be at most {high}, got {value}", "integer_above_max_value")
    return value


def parse_request(body: Any, settings: ServeSettings, size: str) -> ImageRequest:
    """Check every field of the body against the OpenAI Images API and cotgen's extensions."""
    if not isinstance(body, dict):
        raise bad_request(None, "the body must be a JSON object", "invalid_json")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise bad_request(unknown[0], f"unknown parameter (known: {', '.join(sorted(_FIELDS))})", "unknown_parameter")
    if body.get("prompt") is None:
        raise bad_request("prompt", "missing required parameter", "missing_required_parameter")
    prompt = _typed(body, "prompt", str, None).strip()
    if not prompt:
        raise bad_request("prompt", "must not be empty")
    if len(prompt) > settings.max_prompt_chars:
        message = f"{len(prompt)} characters, at most {settings.max_prompt_chars} are accepted"
        raise bad_request("prompt", message, "string_above_max_length")
    model = _typed(body, "model", str, settings.model_id)
    if model != settings.model_id:
        raise bad_request("model", f"{model!r} is not served here, {settings.model_id!r} is", "model_not_found", 404)
    _typed(body, "user", str, None)  # accepted for compatibility, not used
    if _typed(body, "size", str, "auto") not in ("auto", size):
        raise bad_request("size", f"{body['size']!r} is not supported: {settings.model_id!r} makes {size} images ('auto' or {size!r})")  # fmt: skip
    if _typed(body, "response_format", str, "b64_json") != "b64_json":
        raise bad_request("response_format", f"{body['response_format']!r} is not supported, only 'b64_json': this server stores no images, so it has no URLs to give")  # fmt: skip
    strategy = _typed(body, "strategy", str, settings.default_strategy)
    if strategy not in STRATEGIES:
        raise bad_request("strategy", f"{strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy != "baseline" and settings.judge == "none":
        raise bad_request("strategy", f"{strategy!r} needs a judge and this server has none; use 'baseline'")
    default_candidates = 1 if strategy == "baseline" else settings.default_candidates
    candidates = _bounded("candidates", _typed(body, "candidates", int, default_candidates), 1, settings.max_candidates)
    if strategy == "baseline" and candidates != 1:
        raise bad_request("candidates", "baseline draws one sample per image; omit candidates or choose a verifying strategy")
    try:  # the server's verify settings may constrain candidates (prm's beam must divide them)
        replace(settings.verify, strategy=strategy, n=candidates)
    except InputError as err:
        raise bad_request("candidates", str(err)) from None
    return ImageRequest(
        prompt=prompt,
        n=_bounded("n", _typed(body, "n", int, 1), 1, settings.max_images),
        strategy=strategy,
        candidates=candidates,
        seed=_bounded("seed", _typed(body, "seed", int, secrets.randbelow(2**31)), 0, MAX_SEED),
        return_trace=_typed(body, "return_trace", bool, False),
    )


async def read_json(request: Request, limit: int) -> Any:
    """The body parsed as JSON, read no further than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise bad_request(None, f"the request body is {declared} bytes, at most {limit} are accepted", "request_too_large", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise bad_request(None, f"the request body exceeds {limit} bytes", "request_too_large", 413)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise bad_request(None, f"the body is not valid JSON ({err})", "invalid_json") from None
    except RecursionError:  # `[[[[…` nested deeper than the parser goes
        raise bad_request(None, "the body is not valid JSON (nested too deeply)", "invalid_json") from None
