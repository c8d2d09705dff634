"""A bounded load test of the Serve application over loopback HTTP.

    python bench/serve_load.py --judge PATH|embedded|untrained [--requests 16] [--concurrency 1 4]
        [--strategies baseline parm] [--candidates 4] [--url URL]

Starts Ray and the application on this machine (or, with --url, loads a server already running, e.g.
`cotgen serve`; COTGEN_API_KEY is sent when set), then for each strategy and concurrency sends a fixed
number of requests (one image each, seeds 0..requests-1) from that many client threads, after one
warm-up request. Prints throughput, p50/p95 latency of the successful requests and the error count.
`--judge untrained` is the embedded judge's architecture with random weights: the same cost per
question as the trained one, arbitrary answers (so parm prunes arbitrarily).
"""

import argparse
import os
import socket
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from cotgen.machine import describe_machine

PROMPT = "a photo of two red circles"


def start_server(judge: str) -> str:
    import ray
    from ray import serve

    from cotgen.distributed.serving import application
    from cotgen.serving.config import APP_NAME, ServeConfig

    if judge == "untrained":
        from cotgen.judge import save_judge
        from cotgen.train.judge.model import build_judge

        judge = tempfile.mkdtemp(prefix="untrained_judge_")
        save_judge(build_judge(seed=0), judge)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(application(ServeConfig(judge=judge)), name=APP_NAME, route_prefix="/")
    return f"http://127.0.0.1:{port}"


def load(url: str, body: dict, requests_total: int, concurrency: int) -> dict:
    """Send `requests_total` requests from `concurrency` threads; latencies of the 200s, other statuses counted."""
    key = os.environ.get("COTGEN_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    def one(seed: int) -> tuple[int, float]:
        start = time.perf_counter()
        response = requests.post(f"{url}/v1/images/generations", json={**body, "seed": seed}, headers=headers, timeout=600)
        return response.status_code, time.perf_counter() - start

    one(requests_total)  # warm-up, not counted
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(requests_total)))
    wall = time.perf_counter() - start
    latencies = sorted(t for status, t in results if status == 200)
    return {
        "throughput": len(latencies) / wall,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))] if latencies else float("nan"),
        "errors": sum(status != 200 for status, _ in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", default="embedded", help="'embedded', a judge folder, or 'untrained' (see above)")
    parser.add_argument("--url", help="load this running server instead of starting one")
    parser.add_argument("--requests", type=int, default=16, help="timed requests per strategy and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="client threads")
    parser.add_argument("--strategies", nargs="+", default=["baseline", "parm"])
    parser.add_argument("--candidates", type=int, default=4, help="candidate paths per image (verifying strategies)")
    args = parser.parse_args()
    url = args.url or start_server(args.judge)
    print(f"machine: {describe_machine()}; server {url}, judge {args.judge}, prompt {PROMPT!r}, {args.requests} requests of n=1")
    print("| strategy | candidates | concurrency | throughput (img/s) | p50 latency (s) | p95 latency (s) | errors |")
    print("|---|---|---|---|---|---|---|")
    for strategy in args.strategies:
        body = {"prompt": PROMPT, "strategy": strategy}
        if strategy != "baseline":
            body["candidates"] = args.candidates
        for concurrency in args.concurrency:
            r = load(url, body, args.requests, concurrency)
            candidates = body.get("candidates", 1)
            print(f"| {strategy} | {candidates} | {concurrency} | {r['throughput']:.2f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['errors']} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
