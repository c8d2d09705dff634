"""Losing a whole node: `bench/chaos.py` runs its three drills on one multi-node Ray cluster on this
machine (a head and worker nodes as separate raylets, work placed by custom resources), each removing
the node that holds the work mid-run; these tests check what each drill reports.

The drills run in a process of their own (this session's Ray may be running in-process), with their
own HOME and Ray temp dir; about five minutes on two cores."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drills(untrained_judge_dir):
    own = Path(tempfile.mkdtemp(prefix="cotgen-chaos-", dir="/tmp"))  # short: Ray's socket paths live under it
    (own / "home").mkdir()
    env = {**os.environ, "HOME": str(own / "home"), "RAY_TMPDIR": str(own / "ray")}
    # the judge is not what the drills test: one that answers in one forward pass keeps them short
    command = [sys.executable, "bench/chaos.py", "--out", str(own / "out"), "--judge", str(untrained_judge_dir)]
    run = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = run.communicate(timeout=1200)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-9", "-f", str(own)], check=False)  # any raylet of its cluster still up
    try:
        assert run.returncode == 0, output[-5000:]
        yield json.loads((own / "out" / "chaos.json").read_text())["drills"]
    finally:
        shutil.rmtree(own, ignore_errors=True)


def test_a_sweep_finishes_on_a_replacement_node_with_every_unit_once(drills):
    sweep = drills["sweep"]
    assert sweep["placed_on_killed_node"], "the generator actors were to run on the node removed"
    assert 0 < sweep["units_before_kill"] < sweep["units"]
    assert sweep["lost"] == 0 and sweep["duplicated"] == 0
    assert sweep["same_as_undisturbed"], "the rows differ from those of a run that lost nothing"


def test_a_dpo_round_restarts_from_its_checkpoint_on_a_replacement_node(drills):
    dpo = drills["dpo"]
    assert dpo["placed_on_both_nodes"] and dpo["exit_code"] == 0
    assert dpo["lost"] == 0 and dpo["duplicated"] == 0
    steps = dpo["steps"]
    assert steps > 2 and dpo["resumed_at"] == [0, 0] + [2] * (steps - 2), "steps after the kill must show the restart from step 2"
    assert dpo["policy_saved_once"]


def test_serve_answers_through_a_lost_generator_node_and_replaces_it(drills):
    serve = drills["serve"]
    assert serve["placed_on_both_nodes"]
    assert serve["lost"] == 0, serve["lost_as"]  # every request got its image or an OpenAI-shaped error
    assert all(error.startswith("error 5") for error in serve["errors"]), serve["errors"]
    assert serve["in_flight_at_kill"] > 0 and serve["images_after_kill"] > 0
    assert serve["slowest_answer_s"] < 120  # none hung
    assert serve["recovery_s"] > 0
