"""The Generator's autoscaling over time: idle, a ramp of concurrent clients over loopback HTTP, idle.

    python bench/serve_autoscale.py [--clients 4] [--idle 5] [--ramp 6] [--hold 45] [--tail 20]
        [--target 1] [--upscale-delay 1] [--downscale-delay 2] [--interval 0.5]
        [--out bench/figures/serve_autoscale]    # writes serve_autoscale.json and serve_autoscale.png

Starts Ray and the application here with no judge (baseline images, so the load is cheap) and one
ImagesAPI replica; the Generator autoscales between 1 and 2 replicas of half a CPU each, with its
delays shortened to seconds and its load reported every 0.5 s over a 2 s window (Serve's defaults:
10 s over 30 s). After --idle s, client threads are added one by one over --ramp s up to --clients,
each keeping one request in flight (new seeds, prompt as in serve_load.py); they run --hold s more
and stop; sampling goes on for at least --tail s and until the Generator is back to one replica.

Every --interval s it samples the Generator's RUNNING replicas (`serve.status()`), its target replica
count and the autoscaler's own averaged request count (the controller's, private API), and the
clients running and requests in flight as the clients see them; every request's start, end and
status is kept. Prints the time from load start to the second replica RUNNING, from load end back to
one, and p50/p95 latency of requests finished before the scale-up against those started after it.
"""

import argparse
import json
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import requests
from serve_load import PROMPT

from cotgen.machine import describe_machine

APP, PREFIX = "cotgen-autoscale", "/autoscale"
OUT = Path(__file__).parent / "figures" / "serve_autoscale"


@dataclass
class Request:
    client: int
    start: float
    end: float
    status: int
    """HTTP status; 0 when the client got no answer (a timeout, a refused connection)."""


@dataclass
class Sample:
    t: float
    running: int
    """Generator replicas RUNNING, from serve.status()."""
    target: int
    """The Generator's target replica count (the autoscaler's decision)."""
    serve_requests: float
    """The autoscaler's averaged count of the Generator's queued and running requests."""
    clients: int
    in_flight: int
    """Requests sent and not yet answered, as the clients see them."""


class Load:
    """Client threads, each keeping one baseline request in flight until told to stop."""

    def __init__(self, url: str, t0: float):
        self.url, self.t0 = url, t0
        self.done: list[Request] = []
        self.in_flight = 0
        self.lock = threading.Lock()
        self.stops: list[threading.Event] = []
        self.threads: list[threading.Thread] = []

    def add_client(self) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=self._client, args=(len(self.threads), stop), daemon=True)
        self.stops.append(stop)
        self.threads.append(thread)
        thread.start()

    def stop(self) -> None:
        for stop in self.stops:
            stop.set()
        for thread in self.threads:
            thread.join(timeout=300)

    @property
    def clients(self) -> int:
        return sum(not stop.is_set() for stop in self.stops)

    def _client(self, index: int, stop: threading.Event) -> None:
        seed = 1000 * index
        while not stop.is_set():
            body = {"prompt": PROMPT, "strategy": "baseline", "seed": seed}
            with self.lock:
                self.in_flight += 1
            start = time.monotonic() - self.t0
            try:
                status = requests.post(self.url, json=body, timeout=120).status_code
            except requests.RequestException:
                status = 0
            with self.lock:
                self.in_flight -= 1
                self.done.append(Request(index, start, time.monotonic() - self.t0, status))
            seed += 1


def start_app(args) -> str:
    import ray
    from ray import serve

    from cotgen.distributed.serving import application
    from cotgen.serving.config import ServeConfig

    autoscaling = {
        "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": args.target,
        "upscale_delay_s": args.upscale_delay, "downscale_delay_s": args.downscale_delay,
        "metrics_interval_s": 0.5, "look_back_period_s": 2,  # Serve's defaults: 10 s and 30 s
    }  # fmt: skip
    options = {
        "ImagesAPI": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}},
        "Generator": {"autoscaling_config": autoscaling, "ray_actor_options": {"num_cpus": 0.5, "num_gpus": 0}},
    }
    port = args.port
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    ray.init(include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    app = application(ServeConfig(judge="none", default_strategy="baseline"), options)
    serve.run(app, name=APP, route_prefix=PREFIX)
    return f"http://127.0.0.1:{port}{PREFIX}/v1/images/generations"


def sample(t: float, load: Load) -> Sample:
    import ray
    from ray.serve._private.common import DeploymentID
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeInstanceDetails

    from cotgen.distributed.serving import running_replicas

    running = running_replicas(APP, "Generator")
    # Neither the target nor the autoscaler's request count is in serve.status(): the controller's own.
    client = _get_global_client()
    target = ServeInstanceDetails(**client.get_serve_details()).applications[APP].deployments["Generator"].target_num_replicas  # fmt: skip
    deployment = DeploymentID(name="Generator", app_name=APP)
    serve_requests = ray.get(client._controller._get_total_num_requests_for_deployment_for_testing.remote(deployment))
    with load.lock:
        in_flight = load.in_flight
    return Sample(t, running, target, float(serve_requests), load.clients, in_flight)


def run(args, url: str) -> dict:
    t0 = time.monotonic()
    load = Load(url, t0)
    samples: list[Sample] = []
    ramp_every = args.ramp / max(args.clients - 1, 1)  # 0: all clients at once
    load_start, load_end = args.idle, args.idle + args.ramp + args.hold
    stopped_at = None
    while True:
        t = time.monotonic() - t0
        if load_start <= t < load_end:
            due = 1 + int((t - load_start) / ramp_every) if ramp_every else args.clients
            while len(load.threads) < min(args.clients, due):
                load.add_client()
        elif t >= load_end and stopped_at is None:
            # stop asking; the requests in flight finish while sampling goes on
            threading.Thread(target=load.stop, daemon=True).start()
            stopped_at = t
        samples.append(sample(t, load))
        settled = samples[-1].running == 1 and not samples[-1].in_flight
        if stopped_at is not None and t >= load_end + args.tail and (settled or t >= load_end + args.max_tail):
            break
        time.sleep(max(0.0, args.interval - (time.monotonic() - t0 - t)))
    load.stop()
    return {"load_start": load_start, "load_end": load_end, "samples": samples, "requests": load.done}


def window(done: list[Request], start: float, end: float) -> dict:
    """Latency of the 200s sent at or after `start` and answered by `end`, and their rate over the window."""
    latencies = [r.end - r.start for r in done if r.status == 200 and r.start >= start and r.end <= end]
    p50, p95 = (round(float(p), 2) for p in np.percentile(latencies, [50, 95])) if latencies else (None, None)
    rate = round(len(latencies) / (end - start), 3) if end > start else None
    return {"from": round(start, 2), "to": round(end, 2), "n": len(latencies), "p50": p50, "p95": p95, "img_per_s": rate}


def summarize(timeline: dict) -> dict:
    """Times from load start to the scale-up decision and to the 2nd replica RUNNING, from load end back
    to one; latency of the requests answered under load before the 2nd replica ran, and of those sent after."""
    samples, done = timeline["samples"], timeline["requests"]
    load_start, load_end = timeline["load_start"], timeline["load_end"]

    def first(pred, origin: float) -> float | None:
        """Seconds from `origin` to the first sample after it where `pred` holds."""
        return next((round(s.t - origin, 2) for s in samples if s.t >= origin and pred(s)), None)

    up = first(lambda s: s.running == 2, load_start)
    return {
        "scale_up_decided_s": first(lambda s: s.target == 2, load_start),
        "second_replica_running_s": up,
        "back_to_one_s": first(lambda s: s.running == 1, load_end),
        "requests": len(done),
        "errors": sum(r.status != 200 for r in done),
        "before_scale_up": window(done, load_start, load_end if up is None else load_start + up),
        "after_scale_up": window(done, load_start + up, load_end) if up is not None else None,
    }


def plot(timeline: dict, summary: dict, path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    samples, done = timeline["samples"], timeline["requests"]
    figure = Figure(figsize=(9, 6.5), dpi=100, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    ts = [s.t for s in samples]
    top.step(ts, [s.clients for s in samples], where="post", color="#7f7f7f", label="clients running")
    top.plot(ts, [s.in_flight for s in samples], color="#1f77b4", linewidth=1, label="requests in flight (client)")
    top.plot(ts, [s.serve_requests for s in samples], color="#9467bd", linewidth=1, linestyle=":", label="autoscaler's request count")  # fmt: skip
    top.step(ts, [s.target for s in samples], where="post", color="#ff7f0e", linestyle="--", label="Generator target replicas")  # fmt: skip
    top.step(ts, [s.running for s in samples], where="post", color="#d62728", linewidth=2.5, label="Generator replicas RUNNING")  # fmt: skip
    top.set_ylabel("count")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    for status, color, label in ((200, "#2ca02c", "200"), (None, "#d62728", "not 200")):
        points = [r for r in done if (r.status == 200) == (status == 200)]
        if points:
            bottom.plot([r.end for r in points], [r.end - r.start for r in points], "o", markersize=3, color=color, label=label)  # fmt: skip
    bottom.set_ylabel("latency (s), at finish")
    bottom.set_xlabel("time (s)")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    marks = [(timeline[origin] + summary[key], label) for key, origin, label in (
        ("second_replica_running_s", "load_start", "2nd replica RUNNING"), ("back_to_one_s", "load_end", "back to 1"),
    ) if summary[key] is not None]  # fmt: skip
    for ax in (top, bottom):
        ax.axvspan(timeline["load_start"], timeline["load_end"], color="#f0f0f0", zorder=0)
        for x, _ in marks:
            ax.axvline(x, color="#d62728", linewidth=0.8, linestyle="--")
        ax.grid(axis="y", color="#e6e6e6")
        ax.set_axisbelow(True)
    for x, label in marks:
        top.annotate(label, (x, 0), xytext=(3, 3), textcoords="offset points", color="#d62728", fontsize=8)
    top.set_ylim(bottom=0)
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    top.set_title(title, fontsize=10)
    canvas.draw()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4, help="client threads at the top of the ramp")
    parser.add_argument("--idle", type=float, default=5, help="seconds sampled before the load")
    parser.add_argument("--ramp", type=float, default=6, help="seconds over which clients are added, one by one")
    parser.add_argument("--hold", type=float, default=45, help="seconds all clients run after the ramp")
    parser.add_argument("--tail", type=float, default=20, help="seconds sampled after the load at least")
    parser.add_argument("--max-tail", type=float, default=120, help="and at most, waiting for one replica again")
    parser.add_argument("--target", type=float, default=1, help="the Generator's target_ongoing_requests")
    parser.add_argument("--upscale-delay", type=float, default=1, help="upscale_delay_s (Serve's default 30)")
    parser.add_argument("--downscale-delay", type=float, default=2, help="downscale_delay_s (Serve's default 600)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--port", type=int, default=0, help="the HTTP port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--out", type=Path, default=OUT, help="writes OUT.json (the timeline) and OUT.png")
    args = parser.parse_args()
    import ray
    from ray import serve

    url = start_app(args)
    machine = describe_machine()
    try:
        timeline = run(args, url)
    finally:
        serve.shutdown()
        ray.shutdown()
    summary = summarize(timeline)
    title = f"Generator autoscaling, 1–2 replicas, target {args.target:g} ongoing/replica, up/down delay {args.upscale_delay:g}/{args.downscale_delay:g} s"  # fmt: skip
    record = {
        "machine": machine, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "summary": summary, "load_start": timeline["load_start"], "load_end": timeline["load_end"],
        "samples": [asdict(s) for s in timeline["samples"]], "requests": [asdict(r) for r in timeline["requests"]],
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    plot(timeline, summary, args.out.with_suffix(".png"), title)
    print(f"machine: {machine}; {args.clients} clients ramped over {args.ramp:g} s, held {args.hold:g} s; baseline images, no judge")  # fmt: skip
    print(f"load from t={timeline['load_start']:g} s to t={timeline['load_end']:g} s; {summary['requests']} requests, {summary['errors']} not 200")  # fmt: skip
    print(f"target 2 replicas: {summary['scale_up_decided_s']} s after load start; 2nd replica RUNNING: {summary['second_replica_running_s']} s")  # fmt: skip
    print(f"back to 1 replica RUNNING: {summary['back_to_one_s']} s after load end")
    for when in ("before", "after"):
        w = summary[f"{when}_scale_up"]
        if w is not None:
            print(f"{when} the scale-up (sent and answered within t={w['from']:g}–{w['to']:g} s): latency p50 {w['p50']} s, p95 {w['p95']} s, n={w['n']}, {w['img_per_s']} img/s")  # fmt: skip
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
