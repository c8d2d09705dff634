"""A bounded load test of the Serve application over loopback HTTP.

    python bench/serve_load.py [--judge embedded|PATH|untrained] [--requests 16] [--concurrency 1 2 4 8]
        [--strategies baseline orm parm] [--candidates 4] [--overload 48] [--url URL]

Starts Ray and the application on this machine (or, with --url, loads a server already running, e.g.
`cotgen serve`; COTGEN_API_KEY is sent when set), then for each strategy and concurrency sends a fixed
number of requests (one image each, seeds 0..requests-1) from that many client threads, after one
warm-up request. Prints throughput, p50/p95/p99 latency of the successful requests and the error
count; then the overload case: a burst of simultaneous requests beyond what the Generator accepts,
each of which must come back as its image or as 503 with Retry-After. Writes the figures as JSON and
a plot of throughput and latency against concurrency (bench/figures/serve_load.{json,png}).
`--judge untrained` is the embedded judge's architecture with random weights: the same cost per
question as the trained one, arbitrary answers (so parm prunes arbitrarily).
"""

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

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


def _headers() -> dict:
    key = os.environ.get("COTGEN_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def _post(url: str, body: dict) -> tuple[int, float, requests.Response]:
    start = time.perf_counter()
    response = requests.post(f"{url}/v1/images/generations", json=body, headers=_headers(), timeout=600)
    return response.status_code, time.perf_counter() - start, response


def _quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))] if sorted_values else float("nan")


def load(url: str, body: dict, requests_total: int, concurrency: int) -> dict:
    """Send `requests_total` requests from `concurrency` threads; latencies of the 200s, other statuses counted."""
    _post(url, {**body, "seed": requests_total})  # warm-up, not counted
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda seed: _post(url, {**body, "seed": seed})[:2], range(requests_total)))
    wall = time.perf_counter() - start
    latencies = sorted(t for status, t in results if status == 200)
    return {
        "throughput": len(latencies) / wall,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": _quantile(latencies, 0.95),
        "p99": _quantile(latencies, 0.99),
        "errors": sum(status != 200 for status, _ in results),
    }


def streamed(url: str, body: dict, requests_total: int) -> dict:
    """One client streaming `requests_total` requests with 3 partial images: seconds to the first
    preview and to the image (medians of the requests that completed; the others are counted)."""
    first, whole = [], []
    for seed in range(requests_total):
        start = time.perf_counter()
        stream = {**body, "seed": seed, "stream": True, "partial_images": 3}
        preview = None
        with requests.post(f"{url}/v1/images/generations", json=stream, headers=_headers(), stream=True, timeout=600) as response:
            for line in response.iter_lines() if response.status_code == 200 else ():
                if line == b"event: image_generation.partial_image" and preview is None:
                    preview = time.perf_counter() - start
                if line == b"event: image_generation.completed" and preview is not None:
                    first.append(preview)
                    whole.append(time.perf_counter() - start)
    nan = float("nan")
    return {"first_preview_p50": statistics.median(first) if first else nan, "image_p50": statistics.median(whole) if whole else nan,
            "requests": requests_total, "failed": requests_total - len(whole)}  # fmt: skip


def overload(url: str, burst: int) -> dict:
    """`burst` baseline requests at once, more than the Generator accepts (ongoing + queue): each must
    be answered, a refusal with 503 and Retry-After, and an accepted one with its image."""
    with ThreadPoolExecutor(burst) as pool:
        results = list(pool.map(lambda seed: _post(url, {"prompt": PROMPT, "strategy": "baseline", "seed": seed}), range(burst)))
    refused = [(t, r) for status, t, r in results if status == 503]
    served = [(t, r) for status, t, r in results if status == 200]
    return {
        "burst": burst,
        "served": len(served),
        "served_with_an_image": sum(len(r.json().get("data", [])) == 1 for _, r in served),
        "refused": len(refused),
        "refused_with_retry_after": sum("Retry-After" in r.headers for _, r in refused),
        "slowest_refusal_s": max((t for t, _ in refused), default=float("nan")),
        "other": burst - len(served) - len(refused),
    }


def plot_load(rows: list[dict], out: Path) -> None:
    from cotgen.report.plot import PALETTE, Series, plot

    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    throughput, latency = [], []
    for color, strategy in zip(PALETTE, strategies):
        mine = [r for r in rows if r["strategy"] == strategy]
        xs = [r["concurrency"] for r in mine]
        throughput.append(Series(strategy, xs, [r["throughput"] for r in mine], color))
        latency.append(Series(f"{strategy} p50", xs, [r["p50"] for r in mine], color))
        latency.append(Series(f"{strategy} p95", xs, [r["p95"] for r in mine], color, dashed=True))
    left = plot(throughput, "Throughput against concurrency", "concurrent clients", "images / s", size=(560, 420))
    right = plot(latency, "Latency against concurrency", "concurrent clients", "seconds (p50 solid, p95 dashed)", size=(560, 420))
    both = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    both.paste(left, (0, 0))
    both.paste(right, (left.width, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    both.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", default="embedded", help="'embedded', a judge folder, or 'untrained' (see above)")
    parser.add_argument("--url", help="load this running server instead of starting one")
    parser.add_argument("--requests", type=int, default=16, help="timed requests per strategy and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8], help="client threads")
    parser.add_argument("--strategies", nargs="+", default=["baseline", "orm", "parm"])
    parser.add_argument("--candidates", type=int, default=4, help="candidate paths per image (verifying strategies)")
    parser.add_argument("--stream-requests", type=int, default=8, help="streamed requests per verifying strategy, one client (0: skip)")
    parser.add_argument("--overload", type=int, default=48, help="burst of simultaneous requests for the overload case (0: skip)")
    parser.add_argument("--out", type=Path, default=Path("bench/figures/serve_load"), help="writes OUT.json and OUT.png")
    args = parser.parse_args()
    url = args.url or start_server(args.judge)
    machine = describe_machine()
    print(f"machine: {machine}; server {url}, judge {args.judge}, prompt {PROMPT!r}, {args.requests} requests of n=1")
    print("| strategy | candidates | concurrency | throughput (img/s) | p50 (s) | p95 (s) | p99 (s) | errors |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for strategy in args.strategies:
        body = {"prompt": PROMPT, "strategy": strategy}
        if strategy != "baseline":
            body["candidates"] = args.candidates
        for concurrency in args.concurrency:
            r = load(url, body, args.requests, concurrency) | {"strategy": strategy, "candidates": body.get("candidates", 1), "concurrency": concurrency}
            rows.append(r)
            print(f"| {strategy} | {r['candidates']} | {concurrency} | {r['throughput']:.2f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | {r['errors']} |", flush=True)  # fmt: skip
    result = {"machine": machine, "judge": args.judge, "requests": args.requests, "rows": rows, "streamed": {}}
    for strategy in [s for s in args.strategies if s != "baseline"] if args.stream_requests else []:
        body = {"prompt": PROMPT, "strategy": strategy, "candidates": args.candidates}
        result["streamed"][strategy] = r = streamed(url, body, args.stream_requests)
        print(f"streamed {strategy}: first preview after {r['first_preview_p50']:.2f} s, the image after {r['image_p50']:.2f} s (medians of {r['requests']}, one client)", flush=True)  # fmt: skip
    if args.overload:
        result["overload"] = o = overload(url, args.overload)
        print(f"overload: {o['burst']} at once: {o['served']} served ({o['served_with_an_image']} with their image), "
              f"{o['refused']} refused with 503 ({o['refused_with_retry_after']} with Retry-After, the slowest in "
              f"{o['slowest_refusal_s']:.2f} s), {o['other']} other answers")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    plot_load(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
