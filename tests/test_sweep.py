"""The sweep on real Ray: actor crashes, a killed run resumed by `ray job submit` to a head started
here, the report; and without Ray: its config's checks, a folder refusing changed models, the progress lines.

Every sweep here uses two prompts (a GenEval metadata file written by the test), baseline, orm and
parm at N ≤ 2, the embedded generator and an untrained judge of the embedded judge's architecture."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, run_cli
from PIL import Image

from cotgen.config import load_config
from cotgen.errors import InputError
from cotgen.generate.engine import PathKey
from cotgen.models.presets import EMBEDDED, weights_digest
from cotgen.prompts import write_records
from cotgen.sweep.config import ROLES, SweepConfig
from cotgen.sweep.plan import Run, Unit, sweep_records
from cotgen.sweep.progress import Progress
from cotgen.sweep.store import SweepStore, load_rows
from cotgen.world.records import evaluation_records, first_per_tag, is_held_out

UNITS = {f"{run}/{i:05d}" for run in ("baseline@1", "orm@2", "parm@2") for i in range(2)}


@pytest.fixture
def sweep_config(tmp_path, untrained_judge_dir) -> Path:
    records = tmp_path / "prompts.jsonl"
    write_records(records, first_per_tag(evaluation_records(), 1)[1:3])
    config = {
        "out": str(tmp_path / "sweep"),
        "judge": str(untrained_judge_dir),
        "records": str(records),
        "strategies": ["baseline", "orm", "parm"],
        "ns": [1, 2],
        "strip_prompts": 1,
        "flush_units": 1,
        "bootstrap": 50,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def check_rows(out: Path) -> None:
    """Every unit once, with all its rows; the same path key gives the same image in every run."""
    rows = load_rows(out).to_pandas()
    assert set(rows.unit) == UNITS
    assert not rows.duplicated(["unit", "round", "path"]).any()
    assert (rows.groupby("unit").size() == rows.groupby("unit").unit_rows.first()).all()
    assert set(rows[rows.returned].unit) == UNITS  # one answer per unit
    for i in range(2):  # baseline's one path is path 0 of the pools
        baseline = Image.open(out / "images" / "baseline@1" / f"{i:05d}" / "samples" / "0000.png")
        assert baseline.tobytes() == Image.open(out / "images" / "orm@1" / f"{i:05d}" / "samples" / "0000.png").tobytes()


def test_train_records_are_training_split_prompts_in_the_heldout_tag_mix():
    train = sweep_records(SweepConfig(records="train", per_tag=5))
    heldout = sweep_records(SweepConfig(records="heldout", per_tag=5))
    assert [r.tag for r in train] == [r.tag for r in heldout]
    assert not any(is_held_out(r) for r in train) and all(is_held_out(r) for r in heldout if r.tag != "single_object")
    assert sweep_records(SweepConfig(records="train", per_tag=5, seed=1)) != train  # drawn with the sweep's seed
    assert len(sweep_records(SweepConfig(records="train"))) == len(evaluation_records())


@pytest.mark.slow

def test_sweep_survives_a_generator_and_a_judge_crash_and_reports(sweep_config, ray_session):
    from cotgen.distributed.pipeline import run_sweep

    # two units per actor call: baseline and orm units decode in one batch, and a lost call is redone whole
    overrides = ["faults.generator_exit_at_unit=2", "faults.judge_exit_at_call=3", "cluster.units_per_call=2"]
    cfg = load_config(SweepConfig, sweep_config, overrides)
    out = Path(cfg.out)
    run_sweep(cfg, log=lambda line: None)
    assert {p.name for p in (out / ".faults").iterdir()} == {"generator", "judge"}  # both processes died
    check_rows(out)
    assert run_sweep(cfg, log=lambda line: None).done() == UNITS  # nothing left to do

    result = run_cli("report", out, "--bootstrap", "50")
    assert result.returncode == 0, result.stderr
    assert "orm@2" in result.stdout and "overall" in result.stdout
    report = (out / "report" / "report.md").read_text()
    assert "first 1 paths of orm@2" in report and "| parm@2 |" in report
    for name in ("curves.png", "pareto.png", "strips_parm_2_00000.png"):
        assert Image.open(out / "report" / name).size[0] > 300

    # PARM's thresholds replayed from the pools: the run's own threshold must give the run's picks
    bench = subprocess.run([sys.executable, "bench/parm_thresholds.py", str(out), "--thresholds", "0", "1", "--resamples", "20"],
                           check=False, cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert bench.returncode == 0, bench.stderr[-3000:]
    assert "differ from orm's: 0; picks at its own threshold 0.5 that differ from the run's: 0 of 2" in bench.stdout
    assert "| 1 | 2 |" in bench.stdout and Image.open(out / "report" / "parm_thresholds.png").size[0] > 300
    # every parm path in the table of where clarity was first declared, once
    rows = load_rows(out).to_pandas()
    parm = rows[rows["pool"] & (rows.strategy == "parm")]
    table = [cells for cells in (line.split("|") for line in bench.stdout.splitlines()) if len(cells) > 2 and (" of " in cells[1] or "never clear" in cells[1])]
    assert table and sum(int(cells[2]) for cells in table) == len(parm)


@pytest.mark.slow
def test_a_killed_sweep_resumes_under_ray_job_submit_without_redoing_or_duplicating(sweep_config, ray_head):
    # the first run on a Ray of its own, killed with its Ray processes once a unit is written; the
    # second submitted as a job to a head started here
    command = ["python", "jobs/sweep.py", "--config", str(sweep_config)]
    out = Path(yaml.safe_load(sweep_config.read_text())["out"])
    first = subprocess.Popen([sys.executable, *command[1:]], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not list((out / "rows").glob("part-*.parquet")):  # the first unit written
            assert first.poll() is None, f"the sweep ended before writing a unit (exit {first.returncode})"
            assert time.monotonic() < deadline, "no unit written in 240 s"
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the driver and the Ray processes it started
        first.wait()
    before = {p.name: pq.read_table(p).column("unit").to_pylist() for p in (out / "rows").glob("part-*.parquet")}
    done_before = {u for units in before.values() for u in units}
    assert done_before and done_before < UNITS, "the sweep was to be killed midway"

    second = ray_head.job("submit", "--working-dir", ".", "--", *command)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"{len(done_before)} already done" in second.stdout
    after = {p.name: pq.read_table(p).column("unit").to_pylist() for p in (out / "rows").glob("part-*.parquet")}
    assert {k: after[k] for k in before} == before  # the first run's parts are untouched
    redone = {u for k, units in after.items() if k not in before for u in units}
    assert redone == UNITS - done_before
    check_rows(out)
    assert "report:" in second.stdout and "parm@2" in second.stdout


def test_bad_config_and_records_are_clear_errors(sweep_config, tmp_path):
    with pytest.raises(InputError, match=r"sweep.yaml: cluster: judge_actors: must be at least 1"):
        load_config(SweepConfig, sweep_config, ["cluster.judge_actors=0"])
    with pytest.raises(InputError, match=r"sweep.yaml: .*strategies: \[.best.\]"):
        load_config(SweepConfig, sweep_config, ["strategies=[best]"])
    with pytest.raises(InputError, match=r"sweep.yaml: .*sampling.steps: parm .* at least 2 checkpoint steps, got 1"):
        load_config(SweepConfig, sweep_config, ["sampling.steps=1"])
    assert load_config(SweepConfig, sweep_config, ["sampling.steps=1", "strategies=[baseline, orm]"]).sampling.steps == 1
    with pytest.raises(InputError, match=r"sweep.yaml: cluster: judge_device: .*got 'gpu'"):
        load_config(SweepConfig, sweep_config, ["cluster.judge_device=gpu"])
    with pytest.raises(InputError, match=r"cluster: gpus_per_generator: must be above 0 .* got 1.0 with generator_device cpu"):
        load_config(SweepConfig, sweep_config, ["cluster.gpus_per_generator=1"])
    cuda = load_config(SweepConfig, sweep_config, ["cluster.generator_device=cuda", "cluster.judge_device=cuda", "cluster.gpus_per_judge=0.5"])
    assert (cuda.cluster.gpus_per_generator, cuda.cluster.gpus_per_judge) == (1.0, 0.5)  # cuda: one GPU unless said otherwise
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"tag": "counting", "include": [{"class": "circle", "count": "two"}], "prompt": "x"}) + "\n")
    result = subprocess.run(
        [sys.executable, "jobs/sweep.py", "--config", str(sweep_config), f"records={bad}"], check=False, cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 2 and "bad.jsonl:1: include[0].count" in result.stderr
    assert not (tmp_path / "sweep").exists()  # nothing written before the input was checked


def test_a_folder_refuses_a_model_whose_weights_changed(tmp_path):
    generator = tmp_path / "generator"
    shutil.copytree(EMBEDDED["generator"], generator)
    records = first_per_tag(evaluation_records(), 1)[:2]
    cfg = SweepConfig(out=str(tmp_path / "sweep"), generator=str(generator), strategies=["baseline"])

    def prepare() -> None:
        SweepStore(cfg.out).prepare(cfg, records, {role: weights_digest(getattr(cfg, role), role) for role in ROLES})

    prepare()
    prepare()  # the same model: the folder resumes
    before = weights_digest(generator, "generator")
    weights = generator / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # the same folder and name, other weights
    weights.write_bytes(bytes(data))
    after = weights_digest(generator, "generator")
    assert after != before
    with pytest.raises(InputError, match=f"generator weights {before}, and generator '{generator}' now has weights {after}"):
        prepare()


def test_progress_estimates_time_left_from_work_done_after_the_first_unit():
    # Ray and the models take 60 s to start, then each path decoded takes 1 s on the one actor; the
    # costliest units come first (orm@4 pools, 4 paths each), then the baseline units (1 path each).
    units = [Unit(Run("orm", 4, pool=True), i) for i in range(10)] + [Unit(Run("baseline", 1, pool=False), i) for i in range(10)]
    now = [60.0]
    progress = Progress(units, every_s=0, clock=lambda: now[0])
    lines = []
    for unit in units:
        now[0] += unit.run.n
        lines.append(progress.update([unit.id]))
    assert "left" not in lines[0]  # one unit that also waited for the start says nothing of the rest
    assert lines[4] == "  5/20 units, about 30 s left (orm@4 5)"  # exactly: 5 orm@4 and 10 baseline units to go
    assert lines[-1] == "  20/20 units (baseline@1 10, orm@4 10)"
    assert progress.update([]) is None


def tiny_generator_and_judge():
    """A tiny Janus engine (8×8 tokens, 4 steps), an untrained tiny Qwen2-VL judge and a prompt tokenizer."""
    import torch
    from tiny_judges import CORPUS, byte_level_tokenizer, tiny_qwen2_vl
    from tiny_models import tiny_janus

    from cotgen.generate import Sampling, StepwiseGenerator

    engine = StepwiseGenerator(tiny_janus(grid=8, patch_pixels=4), Sampling(guidance=2.0, steps=4))
    torch.manual_seed(1)
    judge = tiny_qwen2_vl(byte_level_tokenizer(CORPUS, vocab_size=400))

    def tokenize(text: str) -> list[int]:
        return [1, *(10 + ord(ch) % 50 for ch in text[:12]), 3]

    return engine, judge, tokenize


def test_units_batched_in_one_call_give_the_rows_of_units_run_alone():
    """Baseline and ORM units of one run decode in one batch (`run_units`): the same paths, tokens,
    judge scores and choices as each unit run alone; only the timing differs."""
    from cotgen.sweep.work import run_unit, run_units
    from cotgen.verify.config import VerifyConfig

    engine, judge, tokenize = tiny_generator_and_judge()
    records = first_per_tag(evaluation_records(), 1)[:3]
    fields = ("unit", "path", "sample", "key", "tokens", "selected", "returned", "run_image_tokens", "run_judge_calls", "chosen_at")
    for strategy, n in (("orm", 3), ("baseline", 1)):
        config, run = VerifyConfig(strategy=strategy, n=n), Run(strategy, n, pool=strategy == "orm")
        units = [Unit(run, i) for i in range(len(records))]
        together = run_units(engine, judge, tokenize, config, units, records, 5, [2, 3], [False] * len(units))
        alone = [row for u, rec in zip(units, records) for row in run_unit(engine, judge, tokenize, config, u, rec, 5, [2, 3])]
        assert [{f: r[f] for f in fields} for r in together] == [{f: r[f] for f in fields} for r in alone]
        scores = [r["final_score"] for r in together]
        assert scores == pytest.approx([r["final_score"] for r in alone], abs=1e-5)
        assert len(together) == len(records) * n and len({r["unit"] for r in together}) == len(records)


def test_rows_carry_each_decoded_paths_tokens_through_the_store(tmp_path):
    """orm: every path's tokens, the same as the path decoded alone; parm with every path pruned: only
    the replayed choice has tokens. The tokens come back from the Parquet part as they went in."""
    import torch

    from cotgen.layout import from_png
    from cotgen.sweep.work import evaluate_rows, run_unit
    from cotgen.verify.config import VerifyConfig

    engine, judge, tokenize = tiny_generator_and_judge()
    record = first_per_tag(evaluation_records(), 1)[0]
    orm = run_unit(engine, judge, tokenize, VerifyConfig(strategy="orm", n=3), Unit(Run("orm", 3, pool=True), 0), record, 5, [3])
    for row in orm:
        alone = engine.finish(engine.start([tokenize(record.prompt)], [PathKey(5, "0", row["sample"])]))[0][0].tolist()
        assert row["tokens"] == alone and len(alone) == 64
        decoded = engine.decode_rows(torch.tensor([row["tokens"]]))[0].astype(int)
        assert abs(decoded - np.asarray(from_png(row["image"]), int)).max() <= 1  # the row's image (decoded alone, ±1 level)
    parm_config = VerifyConfig(strategy="parm", n=3, threshold=0.0, potential_threshold=1.0)  # all clear at step 1, none hopeful
    parm = run_unit(engine, judge, tokenize, parm_config, Unit(Run("parm", 3, pool=True), 0), record, 5, [3])
    assert all(row["pruned_at"] == 1 for row in parm)
    assert [row["tokens"] is not None for row in parm] == [row["selected"] for row in parm]  # only the replayed choice

    cfg = SweepConfig(out=str(tmp_path / "sweep"), strategies=["orm", "parm"], ns=[3])
    store = SweepStore(cfg.out)
    store.add(evaluate_rows(orm + parm))
    store.flush([record])
    stored = {(r["run"], r["path"]): r["tokens"] for r in load_rows(cfg.out).to_pylist()}
    assert stored == {(r["run"], r["path"]): r["tokens"] for r in orm + parm}


def test_a_folder_of_an_older_row_format_is_not_resumed(tmp_path):
    records = first_per_tag(evaluation_records(), 1)[:2]
    cfg = SweepConfig(out=str(tmp_path / "sweep"), strategies=["baseline"])
    weights = {role: f"digest-{role}" for role in ROLES}
    SweepStore(cfg.out).prepare(cfg, records, weights)
    SweepStore(cfg.out).prepare(cfg, records, weights)  # this format: the folder resumes
    marker = tmp_path / "sweep" / "sweep.json"
    old = json.loads(marker.read_text())
    del old["row_format"]  # sweep.json as cotgen wrote it before rows carried tokens
    marker.write_text(json.dumps(old))
    with pytest.raises(InputError, match=r"holds sweep rows of format 1, and this cotgen writes format 3 \(a reading judge's P\(yes\) hedged"):
        SweepStore(cfg.out).prepare(cfg, records, weights)
    marker.write_text(json.dumps({**old, "row_format": 2}))  # scored before readings were hedged
    with pytest.raises(InputError, match="holds sweep rows of format 2, and this cotgen writes format 3"):
        SweepStore(cfg.out).prepare(cfg, records, weights)


def test_a_folder_made_before_a_setting_existed_resumes_with_its_default(tmp_path):
    records = first_per_tag(evaluation_records(), 1)[:2]
    cfg = SweepConfig(out=str(tmp_path / "sweep"), strategies=["baseline"])
    weights = {role: f"digest-{role}" for role in ROLES}
    SweepStore(cfg.out).prepare(cfg, records, weights)
    marker = tmp_path / "sweep" / "sweep.json"
    old = json.loads(marker.read_text())
    for added in ("keep", "clarity_threshold"):  # PARM's settings added on 2026-12-05
        del old["verify"][added]
    marker.write_text(json.dumps(old))
    SweepStore(cfg.out).prepare(cfg, records, weights)  # its rows were verified with the defaults
    capped = replace(cfg, verify=replace(cfg.verify, keep=8))
    with pytest.raises(InputError, match="holds a sweep made with another verify"):
        SweepStore(cfg.out).prepare(capped, records, weights)
