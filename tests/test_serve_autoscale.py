"""Autoscaling as behaviour: under concurrent requests over loopback HTTP, Serve adds a Generator replica,
and takes it away again once the requests stop, as its own status API reports. The application runs
under a name and route prefix of its own, with the Generator's autoscaling delays shortened to seconds;
no judge (baseline images), so the load is cheap to drive on two cores."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

pytestmark = [
    pytest.mark.slow,
    # the one knob that makes replicas and handles report load more often than every 10 s in Ray 2.60
    pytest.mark.filterwarnings("ignore:The `metrics_interval_s` field:DeprecationWarning"),
]

NAME, PREFIX = "cotgen-autoscale", "/autoscale"
CLIENTS = 4  # each keeps one request in flight: 4 ongoing against a target of 1 asks for max_replicas
AUTOSCALING = {
    "min_replicas": 1,
    "max_replicas": 2,
    "target_ongoing_requests": 1,
    "upscale_delay_s": 1,
    "downscale_delay_s": 2,
    "metrics_interval_s": 0.5,  # how often replicas and handles push their counts to the controller
    "look_back_period_s": 2,  # the window those counts are averaged over
}
OPTIONS = {
    "ImagesAPI": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}},
    # half a CPU each: two replicas fit in the session's 4 logical CPUs beside anything else
    "Generator": {"autoscaling_config": AUTOSCALING, "ray_actor_options": {"num_cpus": 0.5, "num_gpus": 0}},
}


def generators_running() -> int:
    """RUNNING Generator replicas of this module's application, from `serve.status()`."""
    from cotgen.distributed.serving import running_replicas

    return running_replicas(NAME, "Generator")


def poll_until(condition, timeout: float, what: str) -> float:
    """Seconds until `condition()` held, polled every 0.25 s; fails naming `what` after `timeout`."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"waited {timeout} s for {what}"
        time.sleep(0.25)
    return time.monotonic() - start


def test_generator_scales_up_under_load_and_back_down(ray_session):
    from ray import serve
    from ray.serve.context import _get_global_client

    from cotgen.distributed.serving import application
    from cotgen.serving.config import ServeConfig

    # Serve started here is shut down here, so a later module can start it on a port of its own;
    # one that was already running (another module's) keeps running, with its port.
    started_here = not serve.status().proxies
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    url = f"http://127.0.0.1:{_get_global_client().http_config.port}{PREFIX}/v1/images/generations"
    try:
        serve.run(application(ServeConfig(judge="none", default_strategy="baseline"), OPTIONS), name=NAME, route_prefix=PREFIX)  # fmt: skip
        assert generators_running() == 1

        statuses: list[int] = []
        stop = threading.Event()

        def client(index: int) -> None:
            seed = 1000 * index
            while not stop.is_set():
                body = {"prompt": "a photo of two red circles", "strategy": "baseline", "seed": seed}
                statuses.append(requests.post(url, json=body, timeout=120).status_code)
                seed += 1

        with ThreadPoolExecutor(CLIENTS) as pool:
            clients = [pool.submit(client, i) for i in range(CLIENTS)]
            counts = [1]

            def scaled_or_client_gone() -> bool:
                counts.append(generators_running())
                return counts[-1] == 2 or any(c.done() for c in clients)

            try:
                up = poll_until(scaled_or_client_gone, 180, "a second Generator replica under load")
                under_load = not any(c.done() for c in clients)
            finally:
                stop.set()
            for c in clients:
                c.result()  # a client's own error (a timeout, a refused connection) surfaces here
        assert counts[-1] == 2 and under_load, f"{counts[-1]} replica(s) RUNNING when a client returned early"
        assert set(counts) == {1, 2}, f"replica counts seen under load: {sorted(set(counts))}"
        assert statuses and set(statuses) == {200}, f"statuses {sorted(statuses)}"
        down = poll_until(lambda: generators_running() == 1, 90, "the Generator back to one replica after the load")
        print(f"2 replicas RUNNING {up:.1f} s into the load, 1 again {down:.1f} s after it; {len(statuses)} requests")
    finally:
        serve.delete(NAME)
        if started_here:
            serve.shutdown()
