"""The Ray Serve application over real HTTP on loopback: the OpenAI Images API, the openai client,
streamed partial images and a client that leaves mid-stream, two models behind one endpoint, bad
input, overload, a replica's death, auth and `cotgen serve` losing its cluster. One application
serves the whole module (starting it costs half a minute on two cores); the judge is the embedded
architecture with random weights, the second model the embedded generator with perturbed weights."""

import base64
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests
import yaml
from conftest import REPO, run_cli
from PIL import Image

from cotgen.errors import InputError
from cotgen.generate.sampling import Sampling

pytestmark = pytest.mark.slow

API_KEY = secrets.token_hex(16)
PROMPT = "a photo of two red circles"
GENERATOR_QUEUE = 4  # the Generator's max_queued_requests here, small so that overload is cheap to reach
OTHER_MODEL = "cotgen-perturbed"
SAME_AS_OTHER = "cotgen-perturbed-copy"  # the same folder under a second name: one more model for the LRU


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def other_generator(tmp_path_factory) -> Path:
    """The embedded generator with its image head perturbed: the same tokenizer, other images."""
    import torch

    from cotgen.models.janus import load_generator
    from cotgen.train.generator.ar_stage import save_generator

    model, tokenizer = load_generator("embedded")
    torch.manual_seed(0)
    with torch.no_grad():
        for weight in model.model.generation_head.parameters():
            weight.add_(torch.randn_like(weight) * weight.std())
    out = tmp_path_factory.mktemp("other_generator")
    save_generator(model, tokenizer, model.generation_config.guidance_scale, out)
    return out


@pytest.fixture(scope="module")
def server(ray_session, untrained_judge_dir, other_generator):
    from ray import serve

    from cotgen.distributed.serving import application
    from cotgen.serving.config import APP_NAME, ServeConfig

    port = _free_port()
    config = ServeConfig(judge=str(untrained_judge_dir), default_candidates=2, max_candidates=8,
                         models={OTHER_MODEL: str(other_generator), SAME_AS_OTHER: str(other_generator)},
                         max_models_per_replica=1)  # fmt: skip
    one_replica = {"min_replicas": 1, "max_replicas": 1}
    options = {
        # the key reaches the ingress through its environment, as it would on a node
        "ImagesAPI": {"ray_actor_options": {"num_cpus": 0, "runtime_env": {"env_vars": {"COTGEN_API_KEY": API_KEY}}}},
        "Generator": {"max_queued_requests": GENERATOR_QUEUE, "autoscaling_config": one_replica, "health_check_period_s": 1},
        "Judge": {"autoscaling_config": one_replica},
    }
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(application(config, options), name=APP_NAME, route_prefix="/")
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.05)


def post(url: str, body, key: str | None = API_KEY) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    payload = {"json": body} if isinstance(body, dict) else {"data": body}  # data: raw bytes or a stream
    return requests.post(f"{url}/v1/images/generations", headers=headers, timeout=120, **payload)


def decode(item: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))


def assert_error(response: requests.Response, status: int, param: str | None, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["message"]
    if code:
        assert error["code"] == code
    return error


def test_health_and_models(server):
    assert requests.get(f"{server}/healthz", timeout=10).json()["status"] == "ok"  # no key needed
    models = requests.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10).json()
    assert [m["id"] for m in models["data"]] == ["cotgen", OTHER_MODEL, SAME_AS_OTHER]


def local_baseline(generator: str, seed: int) -> Image.Image:
    """The baseline image of PROMPT with `seed`, made here by the engine alone."""
    from cotgen.generate import load_engine, prompt_ids
    from cotgen.verify.config import VerifyConfig
    from cotgen.verify.strategies import Verifier

    engine, tokenizer = load_engine(generator)
    return Verifier(engine, None, lambda t: prompt_ids(tokenizer, t), VerifyConfig(strategy="baseline")).run(PROMPT, PROMPT, seed).image


def assert_same_image(served: Image.Image, local: Image.Image) -> None:
    # the same tokens; decoding on another thread count may move a pixel value by a step or two
    assert np.abs(np.asarray(served.convert("RGB"), dtype=int) - np.asarray(local, dtype=int)).max() <= 3


def test_baseline_images_are_the_engines_and_reproducible(server):
    one = post(server, {"prompt": PROMPT, "strategy": "baseline", "seed": 7})
    two = post(server, {"prompt": PROMPT, "strategy": "baseline", "seed": 7, "n": 2, "return_trace": True})
    assert one.status_code == two.status_code == 200, (one.text, two.text)
    first, second = two.json()["data"]
    # image i uses seed + i, whether it was decoded alone or in a batch
    assert first["b64_json"] == one.json()["data"][0]["b64_json"] != second["b64_json"]
    assert "trace" not in one.json()["data"][0]
    assert first["trace"]["strategy"] == "baseline" and first["trace"]["costs"]["image_tokens"] == 16 * 16
    assert_same_image(decode(first), local_baseline("embedded", 7))


def test_parm_through_the_judge_deployment(server):
    response = post(server, {"prompt": PROMPT, "strategy": "parm", "candidates": 3, "seed": 1, "return_trace": True})
    assert response.status_code == 200, response.text
    trace = response.json()["data"][0]["trace"]
    assert trace["strategy"] == "parm"
    paths = trace["rounds"][0]["paths"]
    assert len(paths) == 3 and sum(p["selected"] for p in paths) == 1
    assert trace["costs"]["judge_calls"] >= 3  # at least one clarity question per path at step 1
    assert all(p["step_scores"] and 0 <= p["step_scores"][0] <= 1 for p in paths)


def test_openai_client(server):
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0)
    assert [m.id for m in client.models.list()] == ["cotgen", OTHER_MODEL, SAME_AS_OTHER] and client.models.retrieve("cotgen").id == "cotgen"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("dall-e-3")
    assert missing.value.body["code"] == "model_not_found" and OTHER_MODEL in missing.value.body["message"]
    result = client.images.generate(
        model="cotgen", prompt="a photo of a blue square", n=1, size="64x64", response_format="b64_json",
        extra_body={"strategy": "orm", "candidates": 2, "seed": 3, "return_trace": True},
    )  # fmt: skip
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert image.size == (64, 64) and image.format == "PNG"
    assert result.data[0].model_extra["trace"]["strategy"] == "orm"
    with pytest.raises(openai.BadRequestError) as bad:
        client.images.generate(model="cotgen", prompt="a photo of a dog")
    assert bad.value.body["param"] == "prompt" and "dog" in bad.value.body["message"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0).models.list()


STREAMED = {"baseline": {}, "orm": {"candidates": 2}, "prm": {"candidates": 2}, "parm": {"candidates": 3}, "parm++": {"candidates": 2}}


@pytest.mark.parametrize("strategy", STREAMED)
def test_streamed_partial_images_with_the_openai_client(server, strategy):
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0)
    extra = {"strategy": strategy, "seed": 11, **STREAMED[strategy]}
    *partials, completed = client.images.generate(model="cotgen", prompt=PROMPT, stream=True, partial_images=2, extra_body=extra)
    assert [e.type for e in partials] == ["image_generation.partial_image"] * 2 and completed.type == "image_generation.completed"
    assert [e.partial_image_index for e in partials] == [0, 1]
    # 4 checkpoint steps: previews after steps 1-3, two of them asked for: spread, ending with the latest
    assert [e.model_extra["cotgen"]["step"] for e in partials] == [2, 3]
    for event in partials:
        extras = event.model_extra["cotgen"]
        assert extras["round"] == 0 and extras["steps"] == 4 and extras["candidates"] == extra.get("candidates", 1)
        assert 1 <= extras["candidates_alive"] <= extras["candidates"] and extras["path"] in [s["path"] for s in extras["scores"]]
        if strategy in ("baseline", "orm"):  # nothing asked of the judge before the end
            assert extras["step_score"] is None and all(s["score"] is None for s in extras["scores"])
        if strategy == "prm":  # every live path scored at every step
            assert extras["step_score"] is not None and all(s["score"] is not None for s in extras["scores"])
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(event.b64_json))).convert("RGB"))
        undecoded = 64 * (4 - extras["step"]) // 4
        assert pixels.shape == (64, 64, 3) and (pixels[64 - undecoded :] == 255).all()  # rows not decoded yet are blank
    # the streamed image is the one a plain request with the same seed gets
    plain = post(server, {"prompt": PROMPT, **extra, "return_trace": True})
    assert plain.status_code == 200, plain.text
    assert_same_image(Image.open(io.BytesIO(base64.b64decode(completed.b64_json))), decode(plain.json()["data"][0]))
    trace = completed.model_extra["cotgen"]["trace"]
    assert trace["rounds"][0]["paths"] == plain.json()["data"][0]["trace"]["rounds"][0]["paths"]
    assert completed.usage.output_tokens == trace["costs"]["image_tokens"] > 0


def test_streaming_with_curl(server):
    body = json.dumps({"prompt": PROMPT, "strategy": "parm", "candidates": 2, "seed": 3, "stream": True, "partial_images": 1})
    command = ["curl", "-sS", "-N", f"{server}/v1/images/generations", "-H", f"Authorization: Bearer {API_KEY}",
               "-H", "Content-Type: application/json", "-d", body]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    events = [block.splitlines() for block in out.split("\n\n") if block.strip()]
    assert [lines[0] for lines in events] == ["event: image_generation.partial_image", "event: image_generation.completed"]
    for name, data in events:
        assert json.loads(data.removeprefix("data: "))["type"] == name.removeprefix("event: ")


def _generator_stats() -> dict:
    from ray import serve

    from cotgen.serving.config import APP_NAME

    return serve.get_deployment_handle("Generator", APP_NAME).stats.remote().result()


def test_a_client_leaving_mid_stream_stops_the_decoding(server):
    body = {"prompt": PROMPT, "strategy": "prm", "candidates": 8, "seed": 21}
    whole = post(server, {**body, "return_trace": True})
    assert whole.status_code == 200, whole.text
    cost = whole.json()["data"][0]["trace"]["costs"]["image_tokens"]  # 8 paths of 256 tokens
    before = _generator_stats()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    stream = {**body, "stream": True, "partial_images": 3}
    with requests.post(f"{server}/v1/images/generations", json=stream, headers=headers, stream=True, timeout=120) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        assert next(response.iter_lines()) == b"event: image_generation.partial_image"
    # the connection is closed: the replica stops the run at its next decoding step
    wait_for(lambda: _generator_stats()["cancelled"] == before["cancelled"] + 1, 60, "the replica to stop the run")
    spent = _generator_stats()["image_tokens"]["cotgen"] - before["image_tokens"]["cotgen"]
    assert 0 < spent < cost
    time.sleep(1)
    assert _generator_stats()["image_tokens"]["cotgen"] - before["image_tokens"]["cotgen"] == spent  # nothing decoded since


def test_two_models_behind_one_endpoint(server, other_generator):
    body = {"prompt": PROMPT, "strategy": "baseline"}
    # concurrent baseline requests of both models: batched per model, each answered by its own
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: post(server, {**body, "seed": 5, **({"model": OTHER_MODEL} if i % 2 else {})}), range(4)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    default, other = decode(answers[0].json()["data"][0]), decode(answers[1].json()["data"][0])
    assert_same_image(default, local_baseline("embedded", 5))
    assert_same_image(other, local_baseline(str(other_generator), 5))
    assert not np.array_equal(np.asarray(default), np.asarray(other))
    assert answers[2].json()["data"] == answers[0].json()["data"] and answers[3].json()["data"] == answers[1].json()["data"]
    verified = post(server, {**body, "model": OTHER_MODEL, "strategy": "orm", "candidates": 2, "seed": 5})
    assert verified.status_code == 200, verified.text
    assert set(_generator_stats()["image_tokens"]) == {"cotgen", OTHER_MODEL}  # the replica holds both
    # one other model per replica here: asking for a third drops the least recently used
    again = post(server, {**body, "model": SAME_AS_OTHER, "seed": 5})
    assert again.status_code == 200 and again.json()["data"] == answers[1].json()["data"]
    assert set(_generator_stats()["image_tokens"]) == {"cotgen", SAME_AS_OTHER}


BAD_REQUESTS = [
    (b"{not json", 400, None, "invalid_json"),
    (b"[1, 2]", 400, None, "invalid_json"),
    (b"[" * 50_000, 400, None, "invalid_json"),  # nested deeper than the parser recurses
    ({"n": 1}, 400, "prompt", "missing_required_parameter"),
    ({"prompt": "   "}, 400, "prompt", "invalid_value"),
    ({"prompt": "red " * 300}, 400, "prompt", "string_above_max_length"),
    ({"prompt": "red " * 80}, 400, "prompt", "string_above_max_length"),  # few characters, too many tokens
    ({"prompt": "a photo of a dog"}, 400, "prompt", "invalid_value"),
    ({"prompt": 42}, 400, "prompt", "invalid_type"),
    ({"prompt": PROMPT, "n": 0}, 400, "n", "integer_below_min_value"),
    ({"prompt": PROMPT, "n": 5}, 400, "n", "integer_above_max_value"),
    ({"prompt": PROMPT, "n": 10**30}, 400, "n", "integer_above_max_value"),
    ({"prompt": PROMPT, "n": "2"}, 400, "n", "invalid_type"),
    ({"prompt": PROMPT, "n": True}, 400, "n", "invalid_type"),
    ({"prompt": PROMPT, "n": 1.5}, 400, "n", "invalid_type"),
    ({"prompt": PROMPT, "candidates": 0}, 400, "candidates", "integer_below_min_value"),
    ({"prompt": PROMPT, "candidates": 9}, 400, "candidates", "integer_above_max_value"),
    ({"prompt": PROMPT, "strategy": "baseline", "candidates": 4}, 400, "candidates", "invalid_value"),
    ({"prompt": PROMPT, "strategy": "beam"}, 400, "strategy", "invalid_value"),
    ({"prompt": PROMPT, "strategy": ["parm"]}, 400, "strategy", "invalid_type"),
    ({"prompt": PROMPT, "model": "dall-e-3"}, 404, "model", "model_not_found"),
    ({"prompt": PROMPT, "size": "1024x1024"}, 400, "size", "invalid_value"),
    ({"prompt": PROMPT, "response_format": "url"}, 400, "response_format", "invalid_value"),
    ({"prompt": PROMPT, "seed": -1}, 400, "seed", "integer_below_min_value"),
    ({"prompt": PROMPT, "return_trace": "yes"}, 400, "return_trace", "invalid_type"),
    ({"prompt": PROMPT, "quality": "hd"}, 400, "quality", "unknown_parameter"),
    ({"prompt": PROMPT, "stream": "yes"}, 400, "stream", "invalid_type"),
    ({"prompt": PROMPT, "stream": True, "n": 2}, 400, "n", "invalid_value"),
    ({"prompt": PROMPT, "stream": True, "partial_images": 4}, 400, "partial_images", "integer_above_max_value"),
    ({"prompt": PROMPT, "partial_images": 2}, 400, "partial_images", "invalid_value"),  # without stream
    ({"prompt": PROMPT, "stream": True, "model": "dall-e-3"}, 404, "model", "model_not_found"),
]


@pytest.mark.parametrize("body, status, param, code", BAD_REQUESTS, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD_REQUESTS)])
def test_bad_requests_get_4xx_naming_the_field(server, body, status, param, code):
    error = assert_error(post(server, body), status, param, code)
    if param:
        assert error["message"].startswith(param) or param in error["message"]


def test_url_format_says_it_is_unsupported(server):
    error = assert_error(post(server, {"prompt": PROMPT, "response_format": "url"}), 400, "response_format")
    assert "not supported" in error["message"] and "b64_json" in error["message"]


def test_body_size_is_bounded(server):
    assert_error(post(server, json.dumps({"prompt": PROMPT, "user": "x" * 200_000})), 413, None, "request_too_large")

    def chunks():  # no Content-Length: the limit holds while reading
        yield b'{"prompt": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    assert_error(post(server, chunks()), 413, None, "request_too_large")


def test_auth(server):
    for key in (None, "wrong"):
        assert_error(post(server, {"prompt": PROMPT}, key=key), 401, None, "invalid_api_key")
    response = requests.get(f"{server}/v1/models", timeout=10)
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


def test_unknown_route_answers_in_the_openai_shape(server):
    assert_error(requests.get(f"{server}/v1/nothing", timeout=10), 404, None)
    assert_error(requests.get(f"{server}/v1/images/generations", timeout=10), 405, None)


def test_overload_is_refused_fast(server):
    # 8 ongoing at the Generator replica + GENERATOR_QUEUE queued; the rest must be refused at once.
    # Twice that capacity, released together: a first batch finishing early on a slow machine
    # must not drain the queue before the last requests arrive.
    body = {"prompt": PROMPT, "strategy": "baseline"}
    clients = 2 * (8 + GENERATOR_QUEUE)
    start_together = threading.Barrier(clients)

    def timed(seed: int):
        start_together.wait()
        start = time.perf_counter()
        response = post(server, {**body, "seed": seed})
        return response, time.perf_counter() - start

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(timed, range(clients)))
    refused = [(r, t) for r, t in results if r.status_code == 503]
    served = [(r, t) for r, t in results if r.status_code == 200]
    assert len(refused) + len(served) == clients, [r.status_code for r, _ in results]
    assert refused and served
    for response, seconds in refused:
        assert_error(response, 503, None, "server_overloaded")
        assert response.headers["Retry-After"] == "2"
        assert seconds < min(t for _, t in served)  # refused before any image was finished


def _replicas(deployment: str) -> set[str]:
    import ray

    return {
        a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith("SERVE_REPLICA::") and f"#{deployment}#" in a["name"]
    }  # fmt: skip


def test_dead_replicas_are_replaced(server):
    import ray

    body = {"prompt": PROMPT, "strategy": "parm", "candidates": 4, "seed": 1}
    old = {name: _replicas(name) for name in ("Generator", "Judge")}
    generator = ray.get_actor(next(iter(old["Generator"])), namespace="serve")
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(post, server, body)
        # the replica's own count of the requests it is working on: ours has reached it
        wait_for(lambda: ray.get(generator.get_num_ongoing_requests.remote()) > 0, 60, "the request at the Generator")
        for replicas in old.values():
            ray.kill(ray.get_actor(next(iter(replicas)), namespace="serve"), no_restart=True)
        assert not in_flight.done(), "the request finished before its replicas were killed"
        # its Generator and Judge calls are sent again to the replacements (images depend on their keys)
        assert in_flight.result().status_code == 200, in_flight.result().text
    assert post(server, {**body, "seed": 2}).status_code == 200
    for name, replicas in old.items():
        new = _replicas(name)
        assert len(new) == 1 and not new & replicas, (name, new, replicas)


# -- configuration, without a server -------------------------------------------------------------------


def test_serve_config_file_is_valid():
    from ray.serve.schema import ServeDeploySchema

    from cotgen.serving.config import ServeConfig, config_from_args

    config = yaml.safe_load((REPO / "serve" / "config.yaml").read_text())
    schema = ServeDeploySchema.model_validate(config)
    (app,) = schema.applications
    assert app.import_path == "cotgen.distributed.serving:build_app"
    assert config_from_args(app.args) == ServeConfig()  # the file documents the defaults
    assert {d.name for d in app.deployments} == {"ImagesAPI", "Generator", "Judge"}
    assert all(d.autoscaling_config and d.max_queued_requests > 0 for d in app.deployments)
    from cotgen.distributed.serving import OPTIONS

    # `cotgen serve` deploys what the file documents
    for d in app.deployments:
        assert d.model_dump(exclude_unset=True, exclude={"name"}) == OPTIONS[d.name], d.name


def test_config_names_the_bad_field():
    from cotgen.serving.config import ServeConfig, config_from_args

    with pytest.raises(InputError, match="max_candidate: unknown field"):
        config_from_args({"max_candidate": 4})
    with pytest.raises(InputError, match="max_images: expected int"):
        config_from_args({"max_images": "4"})
    with pytest.raises(InputError, match="default_strategy: 'parm' needs a judge"):
        ServeConfig(judge="none")
    with pytest.raises(InputError, match="judge_batch_size"):
        ServeConfig(max_candidates=32, judge_batch_size=16)
    with pytest.raises(InputError, match="judge: janus-pro-1b is a generator preset"):
        ServeConfig(judge="janus-pro-1b").check_models()  # names resolve as the loaders resolve them
    with pytest.raises(InputError, match="generator_device: .*got 'gpu'"):
        config_from_args({"generator_device": "gpu"})
    with pytest.raises(InputError, match=r"judge_device: expected cpu or cuda \(Ray chooses the GPU\)"):
        ServeConfig(judge_device="cuda:1")
    with pytest.raises(InputError, match="sampling.steps: parm .* at least 2"):
        config_from_args({"sampling": {"steps": 1}})
    with pytest.raises(InputError, match="models.dpo: expected str"):
        config_from_args({"models": {"dpo": 3}})
    with pytest.raises(InputError, match="models: expected a mapping"):
        config_from_args({"models": ["runs/dpo/round-2/policy"]})
    with pytest.raises(InputError, match="models: the names must be non-empty and differ from model_id"):
        ServeConfig(models={"cotgen": "embedded"})
    with pytest.raises(InputError, match="models.dpo: /nowhere is not a model folder"):
        ServeConfig(models={"dpo": "/nowhere"}).check_models()
    with pytest.raises(InputError, match="max_models_per_replica: must be at least 1"):
        ServeConfig(max_models_per_replica=0)


def test_a_step_wise_strategy_is_refused_when_sampling_has_one_step():
    from cotgen.serving.config import ServeConfig
    from cotgen.serving.errors import ApiError
    from cotgen.serving.request import parse_request

    config = ServeConfig(default_strategy="orm", sampling=Sampling(steps=1))
    assert parse_request({"prompt": PROMPT}, config, {"cotgen": "64x64"}).strategy == "orm"  # orm judges only the final image
    with pytest.raises(ApiError) as refused:
        parse_request({"prompt": PROMPT, "strategy": "parm"}, config, {"cotgen": "64x64"})
    assert refused.value.status == 400 and refused.value.param == "strategy" and "at least 2" in refused.value.message


def test_a_replica_holds_a_gpu_exactly_when_its_device_is_cuda(ray_session):
    import ray

    from cotgen.distributed.serving import _check_gpus

    check = ray.remote(num_gpus=0)(_check_gpus)
    ray.get(check.remote("Generator", "cpu"))
    with pytest.raises(ray.exceptions.RayTaskError, match="generator_device: cuda, but the Generator replica was given 0 GPUs"):
        ray.get(check.remote("Generator", "cuda"))


def test_cotgen_serve_fails_fast_on_bad_input(tmp_path: Path):
    from cotgen.distributed.serving import run_local
    from cotgen.serving.config import ServeConfig

    result = run_cli("serve", "--judge", str(tmp_path))
    assert result.returncode == 2 and f"judge: {tmp_path} is not a model folder" in result.stderr
    result = run_cli("serve", "--also", "dpo-r2")
    assert result.returncode == 2 and "--also: expected NAME=GENERATOR" in result.stderr
    result = run_cli("serve", "--also", f"dpo-r2={tmp_path}")
    assert result.returncode == 2 and f"models.dpo-r2: {tmp_path} is not a model folder" in result.stderr
    with socket.socket() as busy:  # checked before Ray starts, so in-process is safe
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(InputError, match="cannot listen there"):
            run_local(ServeConfig(judge="none", default_strategy="baseline"), "127.0.0.1", busy.getsockname()[1])


def test_cotgen_serve_exits_when_its_ray_cluster_dies():
    port = _free_port()
    command = [sys.executable, "-m", "cotgen", "serve", "--judge", "none", "--port", str(port)]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert "serving 'cotgen'" in server.stdout.readline()  # printed once the application is up
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        for process in psutil.Process(server.pid).children(recursive=True):  # Ray's processes, as `ray stop` ends them
            process.kill()
        _, stderr = server.communicate(timeout=120)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    assert server.returncode == 1
    assert f"cotgen: error: the Ray cluster serving at http://127.0.0.1:{port} stopped answering" in stderr
