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
