"""Ray Serve application: the verified generator behind the OpenAI Images API.

Three deployments, each autoscaled on its own:
- `Judge` scores (image, question) pairs; concurrent callers' pairs share one forward pass (`@serve.batch`).
- `Generator` runs one verification strategy per image over the step-wise engine and asks the Judge
  deployment through a handle; baseline images of concurrent requests of one model are decoded in one
  batch. Several generators share it through Serve's model multiplexing (`model` in the request,
  LRU per replica). A streamed request gets its checkpoint previews as they are made, and a verified
  or streamed request whose caller went away stops decoding at the next step.
- `ImagesAPI`, the FastAPI ingress, validates requests (so bad input is answered at once, even under
  load), fans the `n` images of a request out to Generator replicas and answers in the OpenAI shape,
  as JSON or as server-sent events (`stream: true`).

The config, request checks and the OpenAI-shaped errors are Ray-free, in `cotgen.serving`.
The code lives in the package, not in `serve/`, so that `cotgen serve` and Ray's workers import it from
any install; `serve/config.yaml` points `serve run` / `serve deploy` at `build_app`.
"""


import asyncio
import base64
import contextlib
import gc
import hmac
import logging
import os
import socket
import time
import urllib.request
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import ray
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException
from transformers import AutoConfig, AutoTokenizer

from cotgen.errors import InputError
from cotgen.generate import PathKey, StepwiseGenerator, load_engine, prompt_ids
from cotgen.judge.provenance import warn_if_mismatched
from cotgen.layout import png
from cotgen.serving.config import APP_NAME, ServeConfig, config_from_args, model_folder
from cotgen.serving.errors import ApiError, bad_request, error_type
from cotgen.serving.request import ImageRequest, check_model, parse_request, read_json
from cotgen.serving.stream import RequestWatcher, completed_event, error_sse, partial_image_event, partial_steps, sse
from cotgen.verify.progress import Cancelled
from cotgen.verify.strategies import Verifier
from cotgen.verify.trace import Selection

logger = logging.getLogger(__name__)

# -- deployments ----------------------------------------------------------------------------------------


def _check_gpus(deployment: str, device: str) -> None:
    """A replica holds GPUs (ray_actor_options.num_gpus) exactly when its model runs on cuda."""
    gpus = ray.get_gpu_ids()
    if (device == "cuda") != bool(gpus):
        raise InputError(
            f"{deployment.lower()}_device: {device}, but the {deployment} replica was given {len(gpus)} GPUs; "
            f"set its ray_actor_options.num_gpus {'above 0' if device == 'cuda' else 'to 0'}"
        )


# Each deployment's Serve options: `cotgen serve` deploys these, serve/config.yaml repeats them (a test
# checks), and `application(options=...)` merges its overrides into them.
OPTIONS = {
    "Judge": {
        "autoscaling_config": {
            "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 16, "upscale_delay_s": 10, "downscale_delay_s": 300,
        },
        "ray_actor_options": {"num_cpus": 1, "num_gpus": 0},
        "max_ongoing_requests": 64,
        "max_queued_requests": 256,
    },
    "Generator": {
        "autoscaling_config": {
            "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 4, "upscale_delay_s": 10, "downscale_delay_s": 300,
        },
        "ray_actor_options": {"num_cpus": 1, "num_gpus": 0},
        "max_ongoing_requests": 8,
        "max_queued_requests": 16,
        "backpressure_config": {"status_code": 503, "retry_after_s": 2},
    },
    "ImagesAPI": {
        "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 32},
        "ray_actor_options": {"num_cpus": 0, "num_gpus": 0},  # I/O and validation only: fits beside the models on 2 cores
        "max_ongoing_requests": 64,
        "max_queued_requests": 128,
    },
}


@serve.deployment(**OPTIONS["Judge"])
class Judge:
    """A VLM judge answering the Verifier's questions for every Generator replica."""

    def __init__(self, path: str, device: str, batch_size: int, batch_wait_s: float):
        from cotgen.judge import load_judge

        _check_gpus("Judge", device)
        self.judge = load_judge(path, device=device)
        self._score.set_max_batch_size(batch_size)
        self._score.set_batch_wait_timeout_s(batch_wait_s)

    async def p_yes(self, images: list, questions: list[str], history: list | None = None, finished: list | None = None) -> list[float]:
        return await self._score((images, questions, history or [()] * len(questions), finished or [True] * len(questions)))

    # One item per caller; the batch is counted in pairs so a forward pass stays bounded.
    @serve.batch(max_batch_size=64, batch_size_fn=lambda items: sum(len(item[1]) for item in items))
    async def _score(self, items: list[tuple]) -> list[list[float]]:
        images = [image for item in items for image in item[0]]
        questions = [question for item in items for question in item[1]]
        history = [exchanges for item in items for exchanges in item[2]]
        finished = [done for item in items for done in item[3]]
        scores = (await asyncio.to_thread(self.judge.p_yes, images, questions, history, finished)).tolist()
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

    def p_yes(self, images, questions, history=None, finished=None) -> torch.Tensor:
        return torch.tensor(self._call("p_yes", list(images), list(questions), history, finished))

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


@dataclass(frozen=True)
class LoadedModel:
    """One generator on a replica: its engine and how its prompts are tokenized."""

    engine: StepwiseGenerator
    tokenize: Callable[[str], list[int]]


@serve.deployment(**OPTIONS["Generator"])
class Generator:
    """The step-wise engine and the verification strategies, one image per call, for the model the
    call names (its multiplexed model id; the default model when it names none)."""

    def __init__(self, judge: DeploymentHandle | None, config: ServeConfig):
        _check_gpus("Generator", config.generator_device)
        self.config = config
        self.judge = RemoteJudge(judge) if judge is not None else None
        self.verifications = asyncio.Semaphore(config.concurrent_verifications)
        self.cancelled = 0
        self.default = self._load(config.model_id)  # every replica holds the default model from its start
        self._others: weakref.WeakValueDictionary[str, LoadedModel] = weakref.WeakValueDictionary()  # for stats

        async def load(model_id: str) -> LoadedModel:
            model = self._others[model_id] = await asyncio.to_thread(self._load, model_id)
            return model

        # The other models, loaded on demand and dropped least recently used first. Wired here, not
        # as a decorated method, so that the LRU's size comes from the config.
        self._model = serve.multiplexed(max_num_models_per_replica=config.max_models_per_replica)(load)
        self._baseline.set_max_batch_size(config.generator_batch_size)
        self._baseline.set_batch_wait_timeout_s(config.generator_batch_wait_s)

    def _load(self, model_id: str) -> LoadedModel:
        engine, tokenizer = load_engine(self.config.generators[model_id], self.config.sampling, self.config.generator_device)
        return LoadedModel(engine, lambda text: prompt_ids(tokenizer, text))

    async def _current(self) -> LoadedModel:
        """The model this call names (its multiplexed model id; none: the default model)."""
        model_id = serve.get_multiplexed_model_id()
        if not model_id or model_id == self.config.model_id:
            return self.default
        check_model(model_id, self.config.generators)
        return await self._model(model_id)

    def stats(self) -> dict:
        """This replica's counters: image tokens decoded by each loaded model's engine, and runs
        stopped because their caller went away."""
        gc.collect()  # a model the LRU dropped leaves `_others` once collected
        loaded = {self.config.model_id: self.default, **self._others}
        return {"image_tokens": {name: m.engine.image_tokens for name, m in loaded.items()}, "cancelled": self.cancelled}

    async def generate(self, prompt: str, strategy: str, candidates: int, seed: int) -> GeneratedImage:
        model = await self._current()  # loads the model before a baseline joins a batch, too
        if strategy == "baseline":  # batched with others, so it runs to the end even if its caller leaves
            selection = await self._baseline((prompt, PathKey(seed, prompt, 0)))
        else:
            selection = await self._verify(model, prompt, strategy, candidates, seed, RequestWatcher(asyncio.get_running_loop()))
        return GeneratedImage(png(selection.image), selection.to_json())

    async def stream(self, prompt: str, strategy: str, candidates: int, seed: int, partial_images: int) -> AsyncIterator[dict]:
        """Partial images ({"png", "cotgen"}) as the run reaches its checkpoints, then the image
        ({"png", "trace"}). If the caller goes away, the run stops at its next decoding step."""
        model = await self._current()
        watcher = RequestWatcher(asyncio.get_running_loop(), partial_steps(len(model.engine.step_rows()), partial_images))
        run = asyncio.ensure_future(self._verify(model, prompt, strategy, candidates, seed, watcher))
        partial = None
        try:
            while not run.done():
                partial = asyncio.ensure_future(watcher.queue.get())
                await asyncio.wait({partial, run}, return_when=asyncio.FIRST_COMPLETED)
                if partial.done():
                    yield partial.result()
                else:
                    partial.cancel()
            while not watcher.queue.empty():  # the thread queued these before it returned
                yield watcher.queue.get_nowait()
            selection = run.result()
            yield {"png": png(selection.image), "trace": selection.to_json()}
        finally:  # the caller went away (or the run ended): stop the run and leave no task behind
            if partial is not None:
                partial.cancel()
            run.cancel()
            run.add_done_callback(lambda task: task.cancelled() or task.exception())  # a stopped run's end is expected

    async def _verify(self, model: LoadedModel, prompt: str, strategy: str, candidates: int, seed: int,
                      watcher: RequestWatcher) -> Selection:  # fmt: skip
        """One image by `strategy` on a worker thread; a cancelled call stops that thread's run too."""
        judge = self.judge if strategy != "baseline" else None
        verifier = Verifier(model.engine, judge, model.tokenize, replace(self.config.verify, strategy=strategy, n=candidates), watcher)

        def run() -> Selection:
            try:
                return verifier.run(prompt, prompt, seed)
            except Cancelled:
                self.cancelled += 1
                raise

        async with self.verifications:
            thread = asyncio.ensure_future(asyncio.to_thread(run))
            try:
                return await asyncio.shield(thread)
            except asyncio.CancelledError:
                # stop the run, and hold the slot until its thread has (the next decoding step)
                watcher.stop()
                await asyncio.wait({thread})
                raise

    # Baseline images of concurrent requests for one model are decoded in one batch (Serve splits
    # batches by multiplexed model id).
    @serve.batch(max_batch_size=8)
    async def _baseline(self, paths: list[tuple[str, PathKey]]) -> list[Selection]:
        model = await self._current()
        baseline = Verifier(model.engine, None, model.tokenize, replace(self.config.verify, strategy="baseline"))
        prompts, keys = zip(*paths)
        return await asyncio.to_thread(baseline.baselines, list(prompts), list(keys))


@dataclass(frozen=True)
class ModelShape:
    """What the ingress knows of a generator: its tokenizer, image size and longest prompt."""

    tokenizer: Any
    size: str
    max_prompt_tokens: int

    @classmethod
    def of(cls, generator: str) -> "ModelShape":
        path = model_folder(generator, "generator")
        shape = AutoConfig.from_pretrained(path)
        side = shape.vision_config.image_size
        image_tokens = (side // shape.vision_config.patch_size) ** 2
        return cls(AutoTokenizer.from_pretrained(path), f"{side}x{side}", shape.text_config.max_position_embeddings - image_tokens)

    def ids(self, prompt: str) -> list[int]:
        try:
            return prompt_ids(self.tokenizer, prompt)
        except InputError as err:
            raise ApiError(400, str(err), "prompt", "invalid_value") from None  # the message names the prompt

    def check_prompt(self, prompt: str) -> None:
        if len(ids := self.ids(prompt)) > self.max_prompt_tokens:
            raise bad_request("prompt", f"{len(ids)} tokens, the model takes at most {self.max_prompt_tokens}", "string_above_max_length")  # fmt: skip


@contextlib.contextmanager
def _answered_as_api_errors():
    """Failures of Generator calls as OpenAI-shaped errors."""
    try:
        yield
    except BackPressureError as err:  # also when the Judge's queue refused the Generator
        headers = {"Retry-After": str(int(err.retry_after_s or 1))}
        raise ApiError(err.status_code, f"the server is overloaded ({err.message}); retry later", None, "server_overloaded", error_type(err.status_code), headers) from None  # fmt: skip
    except ray.exceptions.RayActorError:
        # A replica died under this request (a second one, where the call was sent again); Serve
        # replaces them, so a retry can succeed.
        raise ApiError(503, "a generator replica failed during the request; retry", None, "replica_failed", "server_error", {"Retry-After": "1"}) from None  # fmt: skip
    except ray.exceptions.RayTaskError:  # the input was checked here, so this is the server's fault
        logger.exception("generation failed")
        raise ApiError(500, "the generator failed on this request", None, None, "server_error") from None


api = FastAPI(title="cotgen", description="The verified generator behind the OpenAI Images API")


@api.exception_handler(ApiError)
async def _api_error(request: Request, err: ApiError) -> JSONResponse:
    return err.response()


@api.exception_handler(HTTPException)
async def _http_error(request: Request, err: HTTPException) -> JSONResponse:
    return ApiError(err.status_code, str(err.detail), None, None, error_type(err.status_code)).response()


@serve.deployment(**OPTIONS["ImagesAPI"])
@serve.ingress(api)
class ImagesAPI:
    """`POST /v1/images/generations` (JSON or server-sent events), `GET /v1/models`, `GET /healthz`."""

    def __init__(self, generator: DeploymentHandle, config: ServeConfig):
        self.generator, self.config = generator, config
        # Each model's tokenizer and shape, not its weights: prompts are checked here, before they queue.
        self.shapes = {name: ModelShape.of(generator) for name, generator in config.generators.items()}
        self.sizes = {name: shape.size for name, shape in self.shapes.items()}
        self.api_key = os.environ.get(config.api_key_env, "")
        self.created = int(time.time())

    def _authorize(self, request: Request) -> None:
        if not self.api_key:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            raise ApiError(401, "missing or incorrect API key: send 'Authorization: Bearer <key>'", None, "invalid_api_key", "authentication_error")  # fmt: skip

    @api.get("/healthz")
    async def healthz(self) -> dict:
        return {"status": "ok", "model": self.config.model_id}

    @api.get("/v1/models")
    async def models(self, request: Request) -> dict:
        self._authorize(request)
        return {"object": "list", "data": [self._model(name) for name in self.shapes]}

    @api.get("/v1/models/{model}")
    async def model(self, model: str, request: Request) -> dict:
        self._authorize(request)
        check_model(model, self.shapes)
        return self._model(model)

    def _model(self, name: str) -> dict:
        return {"id": name, "object": "model", "created": self.created, "owned_by": "cotgen"}

    def _generator(self, req: ImageRequest, **options) -> DeploymentHandle:
        """The Generator handle for the request's model (the default model is on every replica)."""
        return self.generator.options(multiplexed_model_id="" if req.model == self.config.model_id else req.model, **options)

    async def _image(self, req: ImageRequest, seed: int) -> GeneratedImage:
        args = (req.prompt, req.strategy, req.candidates, seed)
        try:
            return await self._generator(req).generate.remote(*args)
        except ray.exceptions.RayActorError:  # the replica died; the image depends on the arguments only
            return await self._generator(req).generate.remote(*args)

    @api.post("/v1/images/generations")
    async def generations(self, request: Request):
        self._authorize(request)
        req = parse_request(await read_json(request, self.config.max_body_bytes), self.config, self.sizes)
        self.shapes[req.model].check_prompt(req.prompt)
        if req.stream:
            return await self._stream(req)
        # Image i is verified on its own with seed + i, so a request's images spread over replicas.
        # When one call fails its siblings are left to finish (at most max_images - 1):
        # DeploymentResponse.cancel() may block the event loop until a call is assigned.
        with _answered_as_api_errors():
            images = await asyncio.gather(*(self._image(req, req.seed + i) for i in range(req.n)))
        data = []
        for image in images:
            item = {"b64_json": base64.b64encode(image.png).decode("ascii"), "revised_prompt": None}
            if req.return_trace:
                item["trace"] = image.trace
            data.append(item)
        return {"created": int(time.time()), "data": data, "size": self.sizes[req.model], "output_format": "png"}

    async def _stream(self, req: ImageRequest) -> StreamingResponse:
        """Server-sent events: the partial images, then the image. The first event is awaited before
        the answer starts, so overload and failures before it are still plain HTTP errors; a client
        that disconnects cancels the Generator call, which stops decoding."""
        def start():
            return self._generator(req, stream=True).stream.remote(req.prompt, req.strategy, req.candidates, req.seed, req.partial_images)

        events = start()
        with _answered_as_api_errors():
            try:
                first = await events.__anext__()
            except ray.exceptions.RayActorError:  # the replica died before its first event: start again elsewhere
                events = start()
                first = await events.__anext__()
        size, prompt_tokens = self.sizes[req.model], len(self.shapes[req.model].ids(req.prompt))

        async def body() -> AsyncIterator[bytes]:
            index, event = 0, first
            try:
                while True:
                    if "trace" in event:
                        yield sse(completed_event(event["png"], size, prompt_tokens, event["trace"]))
                        return
                    yield sse(partial_image_event(event, index, size))
                    index += 1
                    with _answered_as_api_errors():
                        event = await events.__anext__()
            except ApiError as err:
                yield error_sse(err)
            except Exception:  # the status line is sent: the error goes in the stream, in the API's shape
                logger.exception("streamed generation failed")
                yield error_sse(ApiError(500, "the generator failed during the stream", None, None, "server_error"))
            finally:
                events.cancel()

        return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def application(config: ServeConfig, options: Mapping[str, dict] = {}):
    """The bound application; `options` overrides a deployment's Serve options by name (tests, tuning),
    a mapping option (autoscaling_config, ray_actor_options, …) key by key. A model deployment reserves
    one GPU when its device is cuda, unless `options` says otherwise."""
    config.check_models()

    def deployment(cls, device: str | None = None):
        merged = {name: dict(value) if isinstance(value, dict) else value for name, value in OPTIONS[cls.name].items()}
        if device:
            merged["ray_actor_options"]["num_gpus"] = int(device == "cuda")
        for name, value in options.get(cls.name, {}).items():
            merged[name] = {**merged[name], **value} if isinstance(value, dict) and isinstance(merged.get(name), dict) else value
        return cls.options(**merged)

    judge = None
    if config.judge != "none":
        for generator in config.generators.values():
            warn_if_mismatched(config.judge, generator)
        judge = deployment(Judge, config.judge_device).bind(config.judge, config.judge_device, config.judge_batch_size, config.judge_batch_wait_s)  # fmt: skip
    return deployment(ImagesAPI).bind(deployment(Generator, config.generator_device).bind(judge, config), config)


def build_app(args: dict[str, Any]):
    """The application builder `serve run` and `serve deploy` import (serve/config.yaml)."""
    return application(config_from_args(args))


def running_replicas(app: str, deployment: str) -> int:
    """RUNNING replicas of a deployment, from Serve's own status (0 while the app does not exist)."""
    status = serve.status().applications.get(app)
    return status.deployments[deployment].replica_states.get("RUNNING", 0) if status else 0


class ClusterLost(RuntimeError):
    """The Ray cluster under `cotgen serve` died: nothing answers requests any more."""


def run_local(config: ServeConfig, host: str, port: int) -> None:
    """`cotgen serve`: start Ray here, serve until Ctrl-C; raises ClusterLost when Ray dies under it."""
    config.check_models()  # before Ray starts: a wrong path is one line, not a failed deployment
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise InputError(f"--host {host} --port {port}: cannot listen there ({err.strerror})") from None
    ray.init(address="local", logging_level=logging.WARNING)  # a Ray of its own, never a shared cluster
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(application(config), name=APP_NAME, route_prefix="/")
        auth = "a key from " + config.api_key_env if os.environ.get(config.api_key_env) else f"none (set {config.api_key_env} to require a key)"  # fmt: skip
        print(f"serving {config.model_id!r} at http://{host}:{port}/v1/images/generations; auth: {auth}; Ctrl-C stops", flush=True)  # fmt: skip
        _wait_while_answering(f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}/-/healthz")
    except BaseException:
        serve.shutdown()
        ray.shutdown()
        raise
    # Shutting Serve down would wait on the dead cluster's controller.
    raise ClusterLost(f"the Ray cluster serving at http://{host}:{port} stopped answering (its processes died or hang); restart `cotgen serve`")  # fmt: skip


def _wait_while_answering(url: str, every_s: float = 5.0, misses: int = 3) -> None:
    """Return once Serve's HTTP proxy has failed its own health check `misses` times in a row."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no HTTP proxy
    missed = 0
    while missed < misses:
        time.sleep(every_s)
        try:
            with direct.open(url, timeout=every_s):
                missed = 0
        except OSError:  # refused, timed out, or an error status (HTTPError)
            missed += 1
