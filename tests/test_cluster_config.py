"""cluster.yaml: valid for Ray's cluster launcher, and with room for what the jobs and Serve ask for."""

import copy
import importlib
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from cotgen.config import load_config
from cotgen.sweep.config import SweepConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load((REPO / "cluster.yaml").read_text())


def launcher_view(config: dict) -> dict:
    """What `ray up` does to a config before using it: defaults merged in, then Ray's schema checked."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_cluster_yaml_passes_rays_own_schema(cluster):
    prepared = launcher_view(cluster)
    assert prepared["provider"]["type"] == "aws" and prepared["head_node_type"] == "head"
    broken = copy.deepcopy(cluster)
    broken["available_node_types"]["gpu_worker"]["gpus"] = 1  # not a launcher key
    with pytest.raises(jsonschema.ValidationError, match="'gpus' was unexpected"):
        launcher_view(broken)


def test_setup_installs_this_checkout_of_cotgen(cluster):
    assert cluster["file_mounts"] == {"~/cotgen": "."}
    assert "pip install -e ~/cotgen" in cluster["setup_commands"]
    assert any(c.startswith("pip install") and "torch==" in c for c in cluster["setup_commands"])


def fits(node: dict, cpus: float, gpus: float) -> bool:
    return node["resources"].get("CPU", 0) >= cpus and node["resources"].get("GPU", 0) >= gpus


def test_worker_types_hold_what_the_sweep_dpo_and_serve_ask_for(cluster):
    nodes = cluster["available_node_types"]
    gpu_nodes = {name: n for name, n in nodes.items() if n["resources"].get("GPU", 0) > 0}
    assert gpu_nodes and nodes[cluster["head_node_type"]]["resources"]["GPU"] == 0
    max_gpus = sum(n["resources"]["GPU"] * n["max_workers"] for n in gpu_nodes.values())

    sweep = load_config(SweepConfig, REPO / "jobs" / "configs" / "sweep_heldout.yaml").cluster
    assert any(fits(n, sweep.cpus_per_generator, sweep.gpus_per_generator) for n in gpu_nodes.values())
    assert any(fits(n, sweep.cpus_per_judge, sweep.gpus_per_judge) for n in gpu_nodes.values())
    demand = sweep.generator_actors * sweep.gpus_per_generator + sweep.judge_actors * sweep.gpus_per_judge
    assert 0 < demand <= max_gpus

    # DPO with trainer.device=cuda: one GPU per Ray Train worker; eight ranks fit on one node.
    assert any(n["resources"]["GPU"] >= 8 for n in gpu_nodes.values())

    serve = yaml.safe_load((REPO / "serve" / "config.yaml").read_text())
    for deployment in serve["applications"][0]["deployments"]:
        options = deployment["ray_actor_options"]
        # the comments' GPU setting: Generator and Judge replicas take 1 GPU on a GPU node
        assert any(fits(n, options["num_cpus"], 1) for n in gpu_nodes.values()), deployment["name"]


def resolve(dotted: str):
    """A dotted name as Python finds it: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(dotted)


def test_every_module_class_and_file_serve_config_names_exists():
    text = (REPO / "serve" / "config.yaml").read_text()
    (app,) = yaml.safe_load(text)["applications"]
    module, _, builder = app["import_path"].partition(":")
    assert callable(getattr(importlib.import_module(module), builder))
    names = set(re.findall(r"\bcotgen(?:\.\w+)+", text))  # in the comments too
    files = set(re.findall(r"\bcotgen(?:/\w+)+\.py", text))
    assert len(names) >= 3 and files
    for name in names:
        resolve(name)
    for file in files:
        assert (REPO / file).is_file(), file


def test_the_readmes_cluster_commands_load_with_the_jobs_own_configs():
    from cotgen.distributed.dpo_config import DPOJobConfig

    section = (REPO / "README.md").read_text().split("## Running on a cluster")[1].split("\n## ")[0]
    lines = section.replace("\\\n", " ").splitlines()  # shell continuations joined
    jobs = [line.split("-- python ", 1)[1].split() for line in lines if line.startswith("ray job submit")]
    classes = {"jobs/sweep.py": SweepConfig, "jobs/train_dpo.py": DPOJobConfig}
    assert sorted(job[0] for job in jobs) == sorted(classes)
    for script, flag, path, *overrides in jobs:
        assert flag == "--config"
        load_config(classes[script], REPO / path, overrides)  # an unknown key or a bad value raises


def test_every_shipped_job_config_loads_with_its_jobs_class():
    from cotgen.distributed.dpo_config import DPOJobConfig
    from cotgen.train.generator.config import TrainGeneratorConfig
    from cotgen.train.judge.config import TrainJudgeConfig

    classes = {"sweep": SweepConfig, "dpo": DPOJobConfig, "generator": TrainGeneratorConfig, "judge": TrainJudgeConfig}
    configs = sorted((REPO / "jobs" / "configs").glob("*.yaml"))
    assert {"judge.yaml", "judge_census.yaml", "sweep_table1.yaml"} <= {c.name for c in configs}
    for path in configs:
        load_config(classes[re.split(r"[_.]", path.name)[0]], path)  # an unknown key or a bad value raises
