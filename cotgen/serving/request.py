"""A `POST /v1/images/generations` body checked against the OpenAI Images API and cotgen's extensions."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from fastapi import Request

from cotgen.errors import InputError
from cotgen.serving.config import ServeConfig
from cotgen.serving.errors import bad_request
from cotgen.verify.config import STRATEGIES, check_steps

MAX_SEED = 2**63 - 1
MAX_PARTIAL_IMAGES = 3  # the OpenAI Images API's bound


@dataclass(frozen=True)
class ImageRequest:
    """A validated `POST /v1/images/generations` body."""

    prompt: str
    model: str
    n: int
    strategy: str
    candidates: int
    seed: int
    return_trace: bool
    stream: bool
    partial_images: int
    """Checkpoint previews streamed before the image (stream only)."""


_FIELDS = {"prompt", "model", "n", "size", "response_format", "user", "stream", "partial_images",
           "strategy", "candidates", "seed", "return_trace"}  # fmt: skip


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


def parse_request(body: Any, config: ServeConfig, sizes: Mapping[str, str]) -> ImageRequest:
    """Check every field of the body against the OpenAI Images API and cotgen's extensions; `sizes`
    holds the image size of each model served."""
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
    if len(prompt) > config.max_prompt_chars:
        message = f"{len(prompt)} characters, at most {config.max_prompt_chars} are accepted"
        raise bad_request("prompt", message, "string_above_max_length")
    model = _typed(body, "model", str, config.model_id)
    check_model(model, sizes)
    size = sizes[model]
    _typed(body, "user", str, None)  # accepted for compatibility, not used
    if _typed(body, "size", str, "auto") not in ("auto", size):
        raise bad_request("size", f"{body['size']!r} is not supported: {model!r} makes {size} images ('auto' or {size!r})")  # fmt: skip
    if _typed(body, "response_format", str, "b64_json") != "b64_json":
        raise bad_request("response_format", f"{body['response_format']!r} is not supported, only 'b64_json': this server stores no images, so it has no URLs to give")  # fmt: skip
    strategy = _typed(body, "strategy", str, config.default_strategy)
    if strategy not in STRATEGIES:
        raise bad_request("strategy", f"{strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy != "baseline" and config.judge == "none":
        raise bad_request("strategy", f"{strategy!r} needs a judge and this server has none; use 'baseline'")
    try:
        check_steps(strategy, config.sampling.steps)
    except InputError as err:
        raise bad_request("strategy", f"{strategy!r} is not served here ({err})") from None
    default_candidates = 1 if strategy == "baseline" else config.default_candidates
    candidates = _bounded("candidates", _typed(body, "candidates", int, default_candidates), 1, config.max_candidates)
    if strategy == "baseline" and candidates != 1:
        raise bad_request("candidates", "baseline draws one sample per image; omit candidates or choose a verifying strategy")
    try:  # the server's verify settings may constrain candidates (prm's beam must divide them)
        replace(config.verify, strategy=strategy, n=candidates)
    except InputError as err:
        raise bad_request("candidates", str(err)) from None
    n = _bounded("n", _typed(body, "n", int, 1), 1, config.max_images)
    stream = _typed(body, "stream", bool, False)
    partial_images = _bounded("partial_images", _typed(body, "partial_images", int, 0), 0, MAX_PARTIAL_IMAGES)
    if stream and n != 1:
        raise bad_request("n", "a stream carries one image: send n=1, or stream: false for several")
    if partial_images and not stream:
        raise bad_request("partial_images", "partial images are streamed: send stream: true with them")
    return ImageRequest(
        prompt=prompt,
        model=model,
        n=n,
        strategy=strategy,
        candidates=candidates,
        seed=_bounded("seed", _typed(body, "seed", int, secrets.randbelow(2**31)), 0, MAX_SEED),
        return_trace=_typed(body, "return_trace", bool, False),
        stream=stream,
        partial_images=partial_images,
    )


def check_model(model: str, served: Mapping[str, Any]) -> None:
    """A 404 in OpenAI's shape for a model this server does not serve."""
    if model not in served:
        raise bad_request("model", f"{model!r} is not served here; models: {', '.join(served)}", "model_not_found", 404)


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
