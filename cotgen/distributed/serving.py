"""Ray Serve application: the verified generator behind the OpenAI Images API.

Three deployments, each autoscaled on its own:
- `Judge` scores (image, question) pairs; concurrent callers' pairs share one forward pass (`@serve.batch`).
- `Generator` runs one verification strategy per image over the step-wise engine and asks the Judge
  deployment through a handle; baseline images of concurrent requests are decoded in one batch.
- `ImagesAPI`, the FastAPI ingress, validates requests (so bad input is answered at once, even under
  load), fans the `n` images of a request out to Generator replicas and answers in the OpenAI shape.

The code lives in the package, not in `serve/`, so that `cotgen serve` and Ray's workers import it from
any install; `serve/config.yaml` points `serve run` / `serve deploy` at `build_app`.
"""


import asyncio
import base64
import hmac
import io
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ray
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException
from transformers import AutoConfig, AutoTokenizer

from cotgen.config import build_config
from cotgen.distributed.config import SamplingConfig
from cotgen.errors import InputError
from cotgen.generate.commands import build_engine, prompt_ids
from cotgen.generate.engine import PathKey, Sampling, StepwiseGenerator
from cotgen.judge.vlm import EMBEDDED_JUDGE
from cotgen.models.janus import EMBEDDED_GENERATOR
from cotgen.models.presets import resolve
from cotgen.verify.names import STRATEGIES
from cotgen.verify.strategies import Verifier, VerifyConfig
from cotgen.verify.trace import Costs, PathTrace, Round, Selection

APP_NAME = "cotgen"
MAX_SEED = 2**63 - 1
logger = logging.getLogger(__name__)


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
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
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
        g = self.sampling
        try:  # the engine's own checks, here rather than in a replica that would fail to start
            Sampling(guidance_scale=1.0 if g.guidance is None else g.guidance, temperature=g.temperature, top_k=g.top_k, steps=g.steps)  # fmt: skip
        except ValueError as err:
            raise InputError(f"sampling: {err}") from None
        if not self.model_id or not self.api_key_env:
            raise InputError("model_id, api_key_env: must not be empty")

    def check_models(self) -> None:
        """Fail before any replica starts when a model folder is missing (on the machine that builds the app)."""
        if not (model_folder(self.generator, "generator") / "config.json").is_file():
            raise InputError(f"generator: {self.generator} is not a model folder (no config.json)")
        if self.judge == "embedded" and not (EMBEDDED_JUDGE / "config.json").is_file():
            raise InputError(f"judge: the embedded judge is missing from this install ({EMBEDDED_JUDGE}); pass a judge folder or 'none'")  # fmt: skip
        if self.judge not in ("embedded", "none") and not (model_folder(self.judge, "judge") / "config.json").is_file():
            raise InputError(f"judge: {self.judge} is not a model folder (no config.json)")


def model_folder(name: str, role: str) -> Path:
    """Where a model named as the loaders accept it lives ('embedded', a folder, a preset, a hub id)."""
    if name == "embedded":
        return EMBEDDED_GENERATOR if role == "generator" else EMBEDDED_JUDGE
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


def _bad(param: str | None, message: str, code: str = "invalid_value", status: int = 400) -> ApiError:
    """A client error whose message starts with the field it is about."""
    return ApiError(status, f"{param}: {message}" if param else message, param, code)


def _error_type(status: int) -> str:
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
        raise _bad(name, f"expected {expected}, got {json.dumps(value)}", "invalid_type")
    return value


def _bounded(name: str, value: int, low: int, high: int) -> int:
    if value < low:
        raise _bad(name, f"must be at least {low}, got {value}", "integer_below_min_value")
    if value > high:
        raise _bad(name, f"must be at most {high}, got {value}", "integer_above_max_value")
    return value


def parse_request(body: Any, settings: ServeSettings, size: str) -> ImageRequest:
    """Check every field of the body against the OpenAI Images API and cotgen's extensions."""
    if not isinstance(body, dict):
        raise _bad(None, "the body must be a JSON object", "invalid_json")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _bad(unknown[0], f"unknown parameter (known: {', '.join(sorted(_FIELDS))})", "unknown_parameter")
    if body.get("prompt") is None:
        raise _bad("prompt", "missing required parameter", "missing_required_parameter")
    prompt = _typed(body, "prompt", str, None).strip()
    if not prompt:
        raise _bad("prompt", "must not be empty")
    if len(prompt) > settings.max_prompt_chars:
        message = f"{len(prompt)} characters, at most {settings.max_prompt_chars} are accepted"
        raise _bad("prompt", message, "string_above_max_length")
    model = _typed(body, "model", str, settings.model_id)
    if model != settings.model_id:
        raise _bad("model", f"{model!r} is not served here, {settings.model_id!r} is", "model_not_found", 404)
    _typed(body, "user", str, None)  # accepted for compatibility, not used
    if _typed(body, "size", str, "auto") not in ("auto", size):
        raise _bad("size", f"{body['size']!r} is not supported: {settings.model_id!r} makes {size} images ('auto' or {size!r})")  # fmt: skip
    if _typed(body, "response_format", str, "b64_json") != "b64_json":
        raise _bad("response_format", f"{body['response_format']!r} is not supported, only 'b64_json': this server stores no images, so it has no URLs to give")  # fmt: skip
    strategy = _typed(body, "strategy", str, settings.default_strategy)
    if strategy not in STRATEGIES:
        raise _bad("strategy", f"{strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy != "baseline" and settings.judge == "none":
        raise _bad("strategy", f"{strategy!r} needs a judge and this server has none; use 'baseline'")
    default_candidates = 1 if strategy == "baseline" else settings.default_candidates
    candidates = _bounded("candidates", _typed(body, "candidates", int, default_candidates), 1, settings.max_candidates)
    if strategy == "baseline" and candidates != 1:
        raise _bad("candidates", "baseline draws one sample per image; omit candidates or choose a verifying strategy")
    try:  # the server's verify settings may constrain candidates (prm's beam must divide them)
        replace(settings.verify, strategy=strategy, n=candidates)
    except InputError as err:
        raise _bad("candidates", str(err)) from None
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
        raise _bad(None, f"the request body is {declared} bytes, at most {limit} are accepted", "request_too_large", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _bad(None, f"the request body exceeds {limit} bytes", "request_too_large", 413)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _bad(None, f"the body is not valid JSON ({err})", "invalid_json") from None
    except RecursionError:  # `[[[[…` nested deeper than the parser goes
        raise _bad(None, "the body is not valid JSON (nested too deeply)", "invalid_json") from None


# -- deployments ----------------------------------------------------------------------------------------


def _device() -> str:
    # Ray hides the GPUs an actor was not given (CUDA_VISIBLE_DEVICES), so this follows num_gpus.
    return "cuda" if torch.cuda.is_available() else "cpu"


@serve.deployment(
    autoscaling_config={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 16},
    ray_actor_options={"num_cpus": 1, "num_gpus": 0},
    max_ongoing_requests=64,
    max_queued_requests=256,
)
class Judge:
    """A VLM judge answering the Verifier's questions for every Generator replica."""

    def __init__(self, path: str, batch_size: int, batch_wait_s: float):
        from cotgen.judge import load_judge

        self.judge = load_judge(path, device=_device())
        self._score.set_max_batch_size(batch_size)
        self._score.set_batch_wait_timeout_s(batch_wait_s)

    async def p_yes(self, images: list, questions: list[str], history: list | None = None) -> list[float]:
        return await self._score((images, questions, history or [()] * len(questions)))

    # One item per caller; the batch is counted in pairs so a forward pass stays bounded.
    @serve.batch(max_batch_size=64, batch_size_fn=lambda items: sum(len(item[1]) for item in items))
    async def _score(self, items: list[tuple]) -> list[list[float]]:
        images = [image for item in items for image in item[0]]
        questions = [question for item in items for question in item[1]]
        history = [exchanges for item in items for exchanges in item[2]]
        scores = (await asyncio.to_thread(self.judge.p_yes, images, questions, history)).tolist()
        out, start = [], 0
        for item in items:
            out.append(scores[start : start + len(item[1])])
            start += len(item[1])
        return out

    async def explain(self, images: list, questions: list[str], history: list | None = None) -> list[str]:
        return await asyncio.to_thread(self.judge.explain, images, questions, history)


class RemoteJudge:
    """The Verifier's judge, answered by the Judge deployment. Called from the Generator's worker
    threads, so it may block on the handle."""

    def __init__(self, handle: DeploymentHandle):
        self.handle = handle

    def p_yes(self, images, questions, history=None) -> torch.Tensor:
        return torch.tensor(self._call("p_yes", list(images), list(questions), history))

    def explain(self, images, questions, history=None) -> list[str]:
        return self._call("explain", list(images), list(questions), history)

    def _call(self, method: str, *args):
        # An answer depends on its arguments only, so a call that met a dying replica is sent again:
        # Serve routes it to the replacement, and the request in flight survives.
        try:
            return getattr(self.handle, method).remote(*args).result()
        except ray.exceptions.RayActorError:
            return getattr(self.handle, method).remote(*args).result()


@dataclass(frozen=True)
class GeneratedImage:
    """What a Generator call returns to the ingress: the chosen image, encoded, and its trace."""

    png: bytes
    trace: dict


@serve.deployment(
    autoscaling_config={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 4},
    ray_actor_options={"num_cpus": 1, "num_gpus": 0},
    max_ongoing_requests=8,
    max_queued_requests=16,
    backpressure_config={"status_code": 503, "retry_after_s": 2},
)
class Generator:
    """The step-wise engine and the verification strategies, one image per call."""

    def __init__(self, judge: DeploymentHandle | None, settings: ServeSettings):
        s = settings.sampling
        engine, self.tokenizer = build_engine(settings.generator, s.guidance, s.temperature, s.top_k, s.steps)
        self.engine = StepwiseGenerator(engine.model.to(_device()), engine.sampling)
        self.tokenize = lambda text: prompt_ids(self.tokenizer, text)
        self.judge = RemoteJudge(judge) if judge is not None else None
        self.verify = settings.verify
        self.verifications = asyncio.Semaphore(settings.concurrent_verifications)
        self._decode.set_max_batch_size(settings.generator_batch_size)
        self._decode.set_batch_wait_timeout_s(settings.generator_batch_wait_s)

    async def generate(self, prompt: str, strategy: str, candidates: int, seed: int) -> GeneratedImage:
        key = PathKey(seed, prompt, 0)
        if strategy == "baseline":
            selection = await self._baseline(prompt, key)
        else:
            config = replace(self.verify, strategy=strategy, n=candidates)
            verifier = Verifier(self.engine, self.judge, self.tokenize, config)
            async with self.verifications:
                selection = await asyncio.to_thread(verifier.run, prompt, prompt, seed)
        png = io.BytesIO()
        selection.image.save(png, format="PNG")
        return GeneratedImage(png.getvalue(), selection.to_json())

    async def _baseline(self, prompt: str, key: PathKey) -> Selection:
        # The Verifier's baseline, one path, but decoded in a batch with other requests' paths:
        # the same key gives the same image however paths are batched.
        start = time.perf_counter()
        image = await self._decode((self.tokenize(prompt), key))
        costs = Costs(image_tokens=self.engine.grid**2, seconds=time.perf_counter() - start)
        return Selection("baseline", [Round(prompt, [PathTrace(key, selected=True)], 0, image, costs, images={0: image})])

    @serve.batch(max_batch_size=8)
    async def _decode(self, paths: list[tuple[list[int], PathKey]]) -> list:
        ids, keys = zip(*paths)
        return await asyncio.to_thread(lambda: self.engine.finish(self.engine.start(list(ids), list(keys)))[1])


api = FastAPI(title="cotgen", description="The verified generator behind the OpenAI Images API")


@api.exception_handler(ApiError)
async def _api_error(request: Request, err: ApiError) -> JSONResponse:
    return err.response()


@api.exception_handler(HTTPException)
async def _http_error(request: Request, err: HTTPException) -> JSONResponse:
    return ApiError(err.status_code, str(err.detail), None, None, _error_type(err.status_code)).response()


@serve.deployment(
    autoscaling_config={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 32},
    ray_actor_options={"num_cpus": 0, "num_gpus": 0},  # I/O and validation only: fits beside the models on 2 cores
    max_ongoing_requests=64,
    max_queued_requests=128,
)
@serve.ingress(api)
class ImagesAPI:
    """`POST /v1/images/generations`, `GET /v1/models`, `GET /healthz`."""

    def __init__(self, generator: DeploymentHandle, settings: ServeSettings):
        self.generator, self.settings = generator, settings
        # The tokenizer and the model's shape, not its weights: prompts are checked here, before they queue.
        path = model_folder(settings.generator, "generator")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        config = AutoConfig.from_pretrained(path)
        side = config.vision_config.image_size
        self.size = f"{side}x{side}"
        self.max_prompt_tokens = config.text_config.max_position_embeddings - (side // config.vision_config.patch_size) ** 2  # fmt: skip
        self.api_key = os.environ.get(settings.api_key_env, "")
        self.created = int(time.time())

    def _authorize(self, request: Request) -> None:
        if not self.api_key:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            raise ApiError(401, "missing or incorrect API key: send 'Authorization: Bearer <key>'", None, "invalid_api_key", "authentication_error")  # fmt: skip

    def _check_prompt(self, prompt: str) -> None:
        try:
            ids = prompt_ids(self.tokenizer, prompt)
        except InputError as err:
            raise ApiError(400, str(err), "prompt", "invalid_value") from None  # the message names the prompt
        if len(ids) > self.max_prompt_tokens:
            raise _bad("prompt", f"{len(ids)} tokens, the model takes at most {self.max_prompt_tokens}", "string_above_max_length")  # fmt: skip

    @api.get("/healthz")
    async def healthz(self) -> dict:
        return {"status": "ok", "model": self.settings.model_id}

    @api.get("/v1/models")
    async def models(self, request: Request) -> dict:
        self._authorize(request)
        return {"object": "list", "data": [self._model()]}

    @api.get("/v1/models/{model}")
    async def model(self, model: str, request: Request) -> dict:
        self._authorize(request)
        if model != self.settings.model_id:
            raise _bad("model", f"{model!r} is not served here, {self.settings.model_id!r} is", "model_not_found", 404)
        return self._model()

    def _model(self) -> dict:
        return {"id": self.settings.model_id, "object": "model", "created": self.created, "owned_by": "cotgen"}

    async def _image(self, req: ImageRequest, seed: int) -> GeneratedImage:
        args = (req.prompt, req.strategy, req.candidates, seed)
        try:
            return await self.generator.generate.remote(*args)
        except ray.exceptions.RayActorError:  # the replica died; the image depends on the arguments only
            return await self.generator.generate.remote(*args)

    @api.post("/v1/images/generations")
    async def generations(self, request: Request) -> dict:
        self._authorize(request)
        req = parse_request(await read_json(request, self.settings.max_body_bytes), self.settings, self.size)
        self._check_prompt(req.prompt)
        # Image i is verified on its own with seed + i, so a request's images spread over replicas.
        # When one call fails its siblings are left to finish (at most max_images - 1):
        # DeploymentResponse.cancel() may block the event loop until a call is assigned.
        try:
            images = await asyncio.gather(*(self._image(req, req.seed + i) for i in range(req.n)))
        except BackPressureError as err:  # also when the Judge's queue refused the Generator
            headers = {"Retry-After": str(int(err.retry_after_s or 1))}
            raise ApiError(err.status_code, f"the server is overloaded ({err.message}); retry later", None, "server_overloaded", _error_type(err.status_code), headers) from None  # fmt: skip
        except ray.exceptions.RayActorError:
            # Two replicas died under this request; Serve replaces them, so a retry can succeed.
            raise ApiError(503, "a generator replica failed during the request; retry", None, "replica_failed", "server_error", {"Retry-After": "1"}) from None  # fmt: skip
        except ray.exceptions.RayTaskError:  # the input was checked here, so this is the server's fault
            logger.exception("generation failed")
            raise ApiError(500, "the generator failed on this request", None, None, "server_error") from None
        data = []
        for image in images:
            item = {"b64_json": base64.b64encode(image.png).decode("ascii"), "revised_prompt": None}
            if req.return_trace:
                item["trace"] = image.trace
            data.append(item)
        return {"created": int(time.time()), "data": data, "size": self.size, "output_format": "png"}


def application(settings: ServeSettings, options: Mapping[str, dict] = {}):
    """The bound application; `options` overrides a deployment's Serve options by name (tests, tuning)."""
    settings.check_models()

    def deployment(cls):
        return cls.options(**options.get(cls.name, {})) if cls.name in options else cls

    judge = None
    if settings.judge != "none":
        judge = deployment(Judge).bind(settings.judge, settings.judge_batch_size, settings.judge_batch_wait_s)
    return deployment(ImagesAPI).bind(deployment(Generator).bind(judge, settings), settings)


def build_app(args: dict[str, Any]):
    """The application builder `serve run` and `serve deploy` import (serve/config.yaml)."""
    return application(settings_from_args(args))


def run_local(settings: ServeSettings, host: str, port: int) -> None:
    """Start Ray on this machine, serve the application at http://host:port until Ctrl-C."""
    settings.check_models()  # before Ray starts: a wrong path is one line, not a failed deployment
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise InputError(f"--host {host} --port {port}: cannot listen there ({err.strerror})") from None
    ray.init(address="local", logging_level=logging.WARNING)  # a Ray of its own, never a shared cluster
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(application(settings), name=APP_NAME, route_prefix="/")
        auth = "a key from " + settings.api_key_env if os.environ.get(settings.api_key_env) else f"none (set {settings.api_key_env} to require a key)"  # fmt: skip
        print(f"serving {settings.model_id!r} at http://{host}:{port}/v1/images/generations; auth: {auth}; Ctrl-C stops", flush=True)  # fmt: skip
        while True:
            time.sleep(3600)
    finally:
        serve.shutdown()
        ray.shutdown()
