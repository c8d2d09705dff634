"""The Ray Serve application over real HTTP on loopback: the OpenAI Images API, the openai client,
bad input, overload, a replica's death, auth and `cotgen serve` losing its cluster. One application
serves the whole module (starting it costs half a minute on two cores); the judge is the embedded
architecture with random weights."""

import base64
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
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
GENERATOR_QUEUE = 2  # the Generator's max_queued_requests here, small so that overload is cheap to reach


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ray_session, untrained_judge_dir):
    from ray import serve

    from cotgen.distributed.serving import application
    from cotgen.serving.config import APP_NAME, ServeConfig

    port = _free_port()
    config = ServeConfig(judge=str(untrained_judge_dir), default_candidates=2, max_candidates=8)
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
    assert [m["id"] for m in models["data"]] == ["cotgen"]


def test_baseline_images_are_the_engines_and_reproducible(server):
    from cotgen.generate import load_engine, prompt_ids
    from cotgen.verify.config import VerifyConfig
    from cotgen.verify.strategies import Verifier

    one = post(server, {"prompt": PROMPT, "strategy": "baseline", "seed": 7})
    two = post(server, {"prompt": PROMPT, "strategy": "baseline", "seed": 7, "n": 2, "return_trace": True})
    assert one.status_code == two.status_code == 200, (one.text, two.text)
    first, second = two.json()["data"]
    # image i uses seed + i, whether it was decoded alone or in a batch
    assert first["b64_json"] == one.json()["data"][0]["b64_json"] != second["b64_json"]
    assert "trace" not in one.json()["data"][0]
    assert first["trace"]["strategy"] == "baseline" and first["trace"]["costs"]["image_tokens"] == 16 * 16
    engine, tokenizer = load_engine("embedded")
    local = Verifier(engine, None, lambda t: prompt_ids(tokenizer, t), VerifyConfig(strategy="baseline")).run(PROMPT, PROMPT, 7)
    # the same tokens; decoding on another thread count may move a pixel value by a step or two
    served = np.asarray(decode(first).convert("RGB"), dtype=int)
    assert np.abs(served - np.asarray(local.image, dtype=int)).max() <= 3


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
    assert [m.id for m in client.models.list()] == ["cotgen"] and client.models.retrieve("cotgen").id == "cotgen"
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
    body = {"prompt": PROMPT, "strategy": "baseline"}

    def timed(seed: int):
        start = time.perf_counter()
        response = post(server, {**body, "seed": seed})
        return response, time.perf_counter() - start

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(timed, range(16)))
    refused = [(r, t) for r, t in results if r.status_code == 503]
    served = [(r, t) for r, t in results if r.status_code == 200]
    assert len(refused) + len(served) == 16, [r.status_code for r, _ in results]
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


def test_a_step_wise_strategy_is_refused_when_sampling_has_one_step():
    from cotgen.serving.config import ServeConfig
    from cotgen.serving.errors import ApiError
    from cotgen.serving.request import parse_request

    config = ServeConfig(default_strategy="orm", sampling=Sampling(steps=1))
    assert parse_request({"prompt": PROMPT}, config, "64x64").strategy == "orm"  # orm judges only the final image
    with pytest.raises(ApiError) as refused:
        parse_request({"prompt": PROMPT, "strategy": "parm"}, config, "64x64")
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
