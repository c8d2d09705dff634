import os
import subprocess
import sys
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
