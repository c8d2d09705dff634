import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COTGEN_SHARED", REPO.parent / "shared"))
GENEVAL_METADATA = SHARED / "geneval" / "evaluation_metadata.jsonl"


@pytest.fixture
def geneval_metadata() -> Path:
    if not GENEVAL_METADATA.is_file():
        pytest.skip(f"GenEval's metadata is not at {GENEVAL_METADATA} (../shared is absent outside the dev setup)")
    return GENEVAL_METADATA


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `cotgen` command in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "cotgen", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for every test that needs one (starting Ray costs seconds)."""
    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def untrained_judge_dir(tmp_path_factory) -> Path:
    """The embedded judge's architecture and tokenizer with random weights, saved as a model folder:
    runs every strategy end to end, its answers arbitrary but deterministic."""
    from cotgen.judge import save_judge
    from cotgen.judge.embedded import build_judge

    path = tmp_path_factory.mktemp("untrained_judge")
    save_judge(build_judge(seed=0), path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayHead:
    address: str
    """The dashboard address `ray job` commands take."""
    env: dict
    """The environment to run `ray job` commands in (it holds the cluster's auth token)."""

    def job(self, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
        """`ray job <args> --address <head>`, from the repository root (so `--working-dir .` is the repo)."""
        ray = str(Path(sys.executable).parent / "ray")
        command, *rest = args
        return subprocess.run([ray, "job", command, "--address", self.address, *rest], cwd=REPO, env=self.env,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture
def ray_head():
    """A Ray head started here for `ray job submit`: its own temp dir (so no other ray.init() finds it),
    ports and token; `python` in its jobs is this interpreter. Stopped (and its temp dir removed) after."""
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    dashboard = _free_port()
    temp = Path(f"/tmp/cotgen-{secrets.token_hex(4)}")
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={_free_port()}",
         f"--dashboard-port={dashboard}", "--num-cpus=4", f"--ray-client-server-port={_free_port()}",
         f"--dashboard-agent-listen-port={_free_port()}", f"--temp-dir={temp}", "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    cluster = RayHead(f"http://127.0.0.1:{dashboard}", env)
    try:
        deadline = time.time() + 120
        while cluster.job("list", timeout=60).returncode:
            assert time.time() < deadline and head.poll() is None, "the head did not come up"
            time.sleep(2)
        yield cluster
    finally:
        # A graceful stop takes ~30 s; nothing of a test cluster needs keeping, so kill its whole
        # process group (the head, GCS, raylet and workers share it).
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)
