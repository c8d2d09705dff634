import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COTGEN_SHARED", REPO.parent / "shared"))
GENEVAL_METADATA = SHARED / "geneval" / "evaluation_metadata.jsonl"
USER_HOME = Path.home()
"""The home of whoever runs the tests; the session gets its own (`pytest_configure`)."""
_OWN_ENV = ("HOME", "RAY_TMPDIR")
_saved_env: dict[str, str | None] = {}


def pytest_configure(config):
    """Give the session, before anything starts Ray, a HOME and a Ray temp dir of its own: a new local
    Ray cluster (a ray.init here, or in a command a test runs) turns token auth on and saves its token
    in ~/.ray/auth_token, after which the user's own plain `ray start --head` would demand it; and
    Ray's default temp dir /tmp/ray is where the user's clusters live."""
    own = Path(tempfile.mkdtemp(prefix="cotgen-tests-"))  # short: Ray's socket paths live under it
    (own / "home").mkdir()
    _saved_env.update({name: os.environ.get(name) for name in _OWN_ENV})
    os.environ.update(HOME=str(own / "home"), RAY_TMPDIR=str(own))


def pytest_unconfigure(config):
    own = os.environ["RAY_TMPDIR"]
    for name, value in _saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(own, ignore_errors=True)


@pytest.fixture
def geneval_metadata() -> Path:
    if not GENEVAL_METADATA.is_file():
        pytest.skip(f"GenEval's metadata is not at {GENEVAL_METADATA} (../shared is absent outside the dev setup)")
    return GENEVAL_METADATA


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `cotgen` command in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "cotgen", *map(str, args)], check=False, capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for every test that needs one (starting Ray costs seconds), under the
    session's own HOME and Ray temp dir."""
    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def untrained_judge_dir(tmp_path_factory) -> Path:
    """The embedded judge's architecture and tokenizer with random weights, saved as a model folder:
    runs every strategy end to end, its answers arbitrary but deterministic."""
    from cotgen.judge import save_judge
    from cotgen.train.judge.config import JudgeModelConfig
    from cotgen.train.judge.model import build_judge

    path = tmp_path_factory.mktemp("untrained_judge")
    save_judge(build_judge(JudgeModelConfig(merge_size=2), seed=0), path)  # the shipped judge's 16 visual tokens
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
                              check=False, capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture
def ray_head():
    """A Ray head started here for `ray job submit`, with its own HOME and temp dir (so it leaves
    nothing of the user's changed and no other ray.init() finds it), ports and token; `python` in its
    jobs is this interpreter. Killed, and its folder removed, after."""
    temp = Path(f"/tmp/cotgen-{secrets.token_hex(4)}")  # short: Ray's socket paths live under it
    (temp / "home").mkdir(parents=True)
    env = {**os.environ, "HOME": str(temp / "home"), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    dashboard = _free_port()
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={_free_port()}",
         f"--dashboard-port={dashboard}", "--num-cpus=4", f"--ray-client-server-port={_free_port()}",
         f"--dashboard-agent-listen-port={_free_port()}", f"--temp-dir={temp}", "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    cluster = RayHead(f"http://127.0.0.1:{dashboard}", env)
    # A head not up in 120 s is killed, which ends its output and so the wait below.
    watchdog = threading.Timer(120, os.killpg, (head.pid, signal.SIGKILL))
    watchdog.start()
    try:
        output = []
        for line in head.stdout:  # `ray start --block` says this once every process of the head is up
            output.append(line)
            if "will now block forever" in line:
                break
        watchdog.cancel()
        assert head.poll() is None, "the head did not come up:\n" + "".join(output[-20:])
        # the dashboard's HTTP server may come up a little after `ray start` returns on a busy machine
        deadline = time.monotonic() + 90
        while (listed := cluster.job("list", timeout=60)).returncode and time.monotonic() < deadline:
            time.sleep(3)
        assert listed.returncode == 0, f"the head's job API does not answer: {listed.stderr}"
        yield cluster
    finally:
        watchdog.cancel()
        # A graceful stop takes ~30 s; nothing of a test cluster needs keeping, so kill its whole
        # process group (the head, GCS, raylet and workers share it).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=60)
        head.stdout.close()
        shutil.rmtree(temp, ignore_errors=True)
