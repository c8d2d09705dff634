"""Lost-node drills: a sweep, an iterative DPO round and the Serve endpoint, each on a multi-node Ray
cluster on this machine (a head and worker nodes as separate raylets), with a whole node removed
mid-run: its raylet, its actors, its object store and the Ray Train worker on it.

    python bench/chaos.py [--drills sweep dpo serve] [--out runs/chaos] [--judge embedded]

Each worker node carries a custom resource naming its role (`generators`, `judges`, `trainer_a`, …),
so work is placed on a chosen node and the drill knows what it kills; a node with the same resource
is added back after the kill, as a cluster autoscaler or a spot replacement would. Each drill prints
and writes (OUT/chaos.json) what was lost (must be 0), what was duplicated (0), and the seconds from
the kill to recovery. Ray is started here with its own temp dir; nothing of the user's changes.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from cotgen.machine import describe_machine

PROMPTS = 4  # held-out records the sweep drill runs; 3 strategies each


class Nodes:
    """A head and worker nodes, each worker with one custom resource naming its role."""

    def __init__(self, head_cpus: float = 2):
        # `head` places work on the head node; the dashboard serves the state API
        self.cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": head_cpus, "resources": {"head": 100}})
        self.workers: dict[str, object] = {}
        ray.init(address=self.cluster.address, log_to_driver=False)

    def add(self, role: str, cpus: float = 1, resources: dict | None = None) -> str:
        """Start a worker node for `role` (a resource of that name, unless `resources` says which);
        returns its Ray node id."""
        node = self.cluster.add_node(num_cpus=cpus, resources=resources or {role: 100})
        self.workers[role] = node
        self.cluster.wait_for_nodes()
        return node.node_id

    def kill(self, role: str) -> None:
        """Remove the node holding `role` at once (no graceful drain): a lost machine."""
        self.cluster.remove_node(self.workers.pop(role), allow_graceful=False)

    def shutdown(self) -> None:
        ray.shutdown()
        self.cluster.shutdown()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(every)
    return time.monotonic() - start


def in_background(work: Callable[[], object]) -> Callable[[], object]:
    """Run `work` on a thread (the main thread keeps the node changes: Ray starts nodes only from
    there); the returned call waits for its result or raises its error."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as err:  # noqa: BLE001 (handed to the main thread, raised there)
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result(timeout: float = 1800):
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"the drill's work did not end within {timeout} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")

    return result


def actor_nodes(class_name: str) -> set[str]:
    """Node ids of the live actors whose class name contains `class_name`."""
    from ray.util.state import list_actors

    return {a.node_id for a in list_actors(filters=[("state", "=", "ALIVE")], limit=10_000) if class_name in a.class_name}


# -- sweep ----------------------------------------------------------------------------------------------


def sweep_config(out: Path, placed: bool, judge: str):
    from cotgen.prompts import write_records
    from cotgen.sweep.config import ClusterConfig, SweepConfig
    from cotgen.world.records import evaluation_records, first_per_tag

    records = out / "prompts.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    write_records(records, first_per_tag(evaluation_records(), 1)[:PROMPTS])
    cluster = ClusterConfig(resources_per_generator={"generators": 1}, resources_per_judge={"judges": 1}) if placed else ClusterConfig()
    return SweepConfig(out=str(out / "sweep"), judge=judge, records=str(records), strategies=["baseline", "orm", "parm"], ns=[2],
                       strip_prompts=0, flush_units=1, bootstrap=0, cluster=cluster)  # fmt: skip


def drill_sweep(nodes: Nodes, out: Path, judge: str) -> dict:
    """Remove the node holding the generator actors once the first unit is written; the sweep must
    finish on a replacement node with every unit exactly once and the numbers of the same sweep run in
    one process."""
    from cotgen.distributed.pipeline import run_sweep
    from cotgen.sweep.store import load_rows

    generators = nodes.add("generators")
    nodes.add("judges")
    cfg = sweep_config(out / "sweep_drill", placed=True, judge=judge)
    rows_dir = Path(cfg.out) / "rows"
    start = time.monotonic()
    sweep = in_background(lambda: run_sweep(cfg, log=lambda line: None))
    wait_until(lambda: any(rows_dir.glob("part-*.parquet")), 600, "the sweep's first unit")
    placed_on = actor_nodes("GenerateUnits")
    units_before = len(set(load_rows(cfg.out).column("unit").to_pylist()))
    nodes.kill("generators")
    killed_at = time.monotonic()
    nodes.add("generators")  # the replacement
    parts = len(list(rows_dir.glob("part-*.parquet")))
    wait_until(lambda: len(list(rows_dir.glob("part-*.parquet"))) > parts, 600, "a unit written after the kill")
    recovered = time.monotonic() - killed_at
    sweep()
    table = load_rows(cfg.out)
    rows = table.to_pandas()
    expected = _expected_units(cfg)
    return {
        "drill": "sweep: lose the generators' node after the first unit",
        "placed_on_killed_node": placed_on == {generators},
        "units": len(expected),
        "lost": len(expected - set(rows.unit)),
        "duplicated": int(rows.duplicated(["unit", "round", "path"]).sum()),
        "same_as_undisturbed": _comparable(table).equals(_comparable(_undisturbed(out, judge))),
        "recovery_s": round(recovered, 1),  # from the kill to the next unit written
        "total_s": round(time.monotonic() - start, 1),
        "units_before_kill": units_before,
    }


def _expected_units(cfg) -> set[str]:
    from cotgen.sweep.plan import plan_runs, plan_units, sweep_records

    return {u.id for u in plan_units(plan_runs(cfg), len(sweep_records(cfg)))}


def _undisturbed(out: Path, judge: str):
    """The rows of the same sweep run unit by unit in this process: no Ray, no node lost."""
    from cotgen.sweep.in_process import run_in_process
    from cotgen.sweep.store import load_rows

    cfg = sweep_config(out / "sweep_reference", placed=False, judge=judge)
    run_in_process(cfg, log=lambda line: None)
    return load_rows(cfg.out)


def _comparable(rows):
    """Every row's numbers in one order, without the seconds it took."""
    return rows.drop_columns(["run_seconds"]).sort_by([("unit", "ascending"), ("round", "ascending"), ("path", "ascending")])


# -- iterative DPO ------------------------------------------------------------------------------------------


def drill_dpo(nodes: Nodes, out: Path, judge: str) -> dict:
    """A DPO round with a Ray Train worker on each of two nodes; the node of one worker is removed once
    step 2's checkpoint is written (the first worker holds there, so the kill lands mid-round). The
    round must restart from that checkpoint on a replacement node, run every step once, and save its
    policy once."""
    import importlib.util

    import yaml

    from cotgen.distributed.dpo_train import latest_checkpoint_step

    worker_nodes = {nodes.add(role, resources={"trainer": 1}) for role in ("trainer_a", "trainer_b")}
    folder = out / "dpo_drill"
    config = {
        "out": str(folder), "judge": judge, "labeller": "exact", "rounds": 1, "prompts_per_tag": 1, "samples": 8,
        "train": {"lr": 1e-3, "epochs": 2, "batch_size": 2, "micro_batch": 1, "checkpoint_every": 1},
        "trainer": {"workers": 2, "zero_stage": 2, "resources_per_worker": {"trainer": 1}, "max_failures": 2},
        "eval": {"per_tag": 1}, "faults": {"stall_at_step": 2},
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder.parent / "dpo_drill.yaml").write_text(yaml.safe_dump(config))
    spec = importlib.util.spec_from_file_location("train_dpo", Path(__file__).resolve().parents[1] / "jobs" / "train_dpo.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    start = time.monotonic()
    finished = in_background(lambda: job.main(["--config", str(folder.parent / "dpo_drill.yaml")]))
    run = folder / "ray_train" / "round-1"
    wait_until(lambda: (folder / ".faults" / "trainer").exists(), 900, "the first worker to hold after step 2", every=0.5)
    wait_until(lambda: latest_checkpoint_step(run) == 2, 120, "Ray Train to record the step-2 checkpoint", every=0.5)
    placed_on = actor_nodes("RayTrainWorker")
    nodes.kill("trainer_b")
    killed_at = time.monotonic()
    nodes.add("trainer_c", resources={"trainer": 1})
    wait_until(lambda: (latest_checkpoint_step(run) or 0) > 2, 600, "training to go on after the lost node", every=0.5)
    recovered = time.monotonic() - killed_at
    exit_code = finished()
    log = [json.loads(line) for line in (folder / "round-1" / "train_log.jsonl").read_text().splitlines()]
    steps = log[0]["steps"]
    done = [r["step"] for r in log]
    return {
        "drill": "iterative DPO: lose a Ray Train worker's node after step 2's checkpoint",
        "placed_on_both_nodes": placed_on == worker_nodes,
        "exit_code": exit_code,
        "steps": steps,
        "lost": len(set(range(1, steps + 1)) - set(done)),
        "duplicated": len(done) - len(set(done)),
        "resumed_at": [r["resumed_at"] for r in log],  # per step: the checkpoint its run started from
        "policy_saved_once": (folder / "round-1" / "model" / "model.safetensors").is_file() and not (folder / "round-1" / "model.tmp").exists(),
        "recovery_s": round(recovered, 1),
        "total_s": round(time.monotonic() - start, 1),
    }


# -- Serve ----------------------------------------------------------------------------------------------


def drill_serve(nodes: Nodes, out: Path, judge: str, clients: int = 4, before_s: float = 4, after_s: float = 25) -> dict:
    """Two Generator replicas, one per node, under `clients` looping clients (PARM, 2 candidates); one
    replica's node is removed. The ingress and the judge stay on the head node, as on a cluster whose
    model replicas run on spot nodes: a request whose ingress replica is lost gets a plain 500 or a
    dropped connection from Serve's proxy, which cotgen cannot answer for. Every request must get its
    image or an OpenAI-shaped error, none may hang, requests after the kill must be answered, and
    Serve must bring the replicas back to two."""
    import socket

    import requests
    from ray import serve

    from cotgen.distributed.serving import application, running_replicas
    from cotgen.serving.config import ServeConfig

    kept, killed = (nodes.add(role, resources={"generator_slot": 1}) for role in ("serve_a", "serve_b"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # One HTTP proxy, on the head: every node here shares 127.0.0.1, so proxies on the worker nodes would
    # share the port and take connections that die with their node (on a real cluster each node has its
    # own address, behind a load balancer).
    serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
    two = {"min_replicas": 2, "max_replicas": 2}
    options = {
        "Generator": {"autoscaling_config": two, "ray_actor_options": {"num_cpus": 0.5, "resources": {"generator_slot": 1}},
                      "health_check_period_s": 1},
        "Judge": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}, "ray_actor_options": {"num_cpus": 0.5, "resources": {"head": 1}}},
        "ImagesAPI": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}, "ray_actor_options": {"resources": {"head": 1}}},
    }  # fmt: skip
    serve.run(application(ServeConfig(judge=judge, default_candidates=2), options), name="cotgen-drill", route_prefix="/")
    placed_on = actor_nodes("ServeReplica:cotgen-drill:Generator")
    url = f"http://127.0.0.1:{port}/v1/images/generations"
    answers: list[tuple[float, float, str]] = []  # (sent, answered, outcome) per request
    stop = threading.Event()

    def client(index: int) -> None:
        seed = 1000 * index
        while not stop.is_set():
            sent = time.monotonic()
            response = None
            try:
                response = requests.post(url, json={"prompt": "a photo of two red circles", "seed": seed}, timeout=120)
                body = response.json()
                outcome = "image" if response.status_code == 200 and body["data"][0]["b64_json"] else (
                    f"error {response.status_code} {body['error']['code']}")  # fmt: skip
            except (requests.RequestException, ValueError, KeyError) as err:  # no answer, or not the API's shape
                answer = f" {response.status_code} {response.text[:120]!r}" if response is not None else ""
                outcome = f"lost: {type(err).__name__}{answer}"
            answers.append((sent, time.monotonic(), outcome))
            seed += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(before_s)
    nodes.kill("serve_b")
    killed_at = time.monotonic()
    replacement = nodes.add("serve_c", resources={"generator_slot": 1})
    try:
        # a replica on the new node, RUNNING beside the one that was not lost
        wait_until(lambda: actor_nodes("ServeReplica:cotgen-drill:Generator") == {kept, replacement}
                   and running_replicas("cotgen-drill", "Generator") == 2, 300, "Serve to bring back two Generator replicas", every=0.5)  # fmt: skip
        recovered = time.monotonic() - killed_at
        time.sleep(max(0.0, killed_at + after_s - time.monotonic()))
    finally:
        stop.set()
        for thread in threads:
            thread.join(150)
        serve.delete("cotgen-drill")
        serve.shutdown()
    outcomes = [o for _, _, o in answers]
    after = [o for sent, _, o in answers if sent > killed_at]
    in_flight = [o for sent, answered, o in answers if sent <= killed_at < answered]
    return {
        "drill": "Serve: lose a Generator replica's node under load",
        "placed_on_both_nodes": placed_on == {kept, killed},
        "requests": len(answers),
        "images": outcomes.count("image"),
        "errors": sorted({o for o in outcomes if o.startswith("error")}),
        "lost": sum(o.startswith("lost") for o in outcomes),
        "lost_as": sorted({o for o in outcomes if o.startswith("lost")}),
        "duplicated": 0,  # by construction: one HTTP answer per request (not measured)
        "in_flight_at_kill": len(in_flight),
        "in_flight_answered_with_image": in_flight.count("image"),
        "images_after_kill": after.count("image"),
        "slowest_answer_s": round(max(answered - sent for sent, answered, _ in answers), 1),
        "recovery_s": round(recovered, 1),
    }


DRILLS = {"sweep": drill_sweep, "dpo": drill_dpo, "serve": drill_serve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drills", nargs="+", choices=list(DRILLS), default=list(DRILLS))
    parser.add_argument("--out", type=Path, default=Path("runs/chaos"), help="work folder; OUT/chaos.json gets the results")
    parser.add_argument("--judge", default="embedded", help="the judge every drill verifies with (the drills test what survives a lost node, not the judge)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"machine": describe_machine(), "drills": {}}
    nodes = Nodes()
    try:
        for name in args.drills:
            results["drills"][name] = outcome = DRILLS[name](nodes, args.out, args.judge)
            print(json.dumps(outcome), flush=True)
    finally:
        nodes.shutdown()
    (args.out / "chaos.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out / 'chaos.json'}")


if __name__ == "__main__":
    main()
