import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from cotgen.prompts import load_records


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "counting"
    result = run_cli("world", "sample", "--tag", "counting", "--n", "8", "--out", out, "--samples", "2")
    assert result.returncode == 0, result.stderr
    return out


def test_world_sample_writes_genevals_layout(sampled):
    folders = sorted(p.name for p in sampled.iterdir())
    assert folders == [f"{i:05d}" for i in range(8)]
    for folder in sampled.iterdir():
        (record,) = load_records(folder / "metadata.jsonl")
        assert record.tag == "counting" and record.prompt.startswith("a photo of ")
        assert sorted(p.name for p in (folder / "samples").iterdir()) == ["0000.png", "0001.png"]


def test_evaluate_prints_the_table_and_json(sampled, tmp_path):
    table = run_cli("evaluate", sampled, "--results", tmp_path / "results.jsonl")
    assert table.returncode == 0, table.stderr
    assert "counting" in table.stdout and "1.000 (16/16)" in table.stdout
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and all(row["correct"] and row["tag"] == "counting" for row in rows)
    summary = json.loads(run_cli("evaluate", sampled, "--json").stdout)
    assert summary == {"overall": 1.0, "tags": {"counting": {"score": 1.0, "correct": 16, "total": 16}}, "images": 16}


def test_world_sample_refuses_to_overwrite(sampled):
    result = run_cli("world", "sample", "--tag", "colors", "--n", "2", "--out", sampled)
    assert result.returncode == 2
    assert "already holds GenEval prompt folders" in result.stderr
    assert load_records(sampled / "00000" / "metadata.jsonl")[0].tag == "counting"  # untouched


def test_folders_written_by_genevals_own_script_are_accepted(sampled, tmp_path):
    # GenEval's generation script: json.dump without a newline, 5-digit sample names, a grid.png.
    root = tmp_path / "geneval"
    for i, folder in enumerate(sorted(sampled.iterdir())[:3]):
        target = root / f"{i:0>5}"
        (target / "samples").mkdir(parents=True)
        (target / "metadata.jsonl").write_text(json.dumps(load_records(folder / "metadata.jsonl")[0].to_json()))
        for j, png in enumerate(sorted((folder / "samples").iterdir())):
            shutil.copy(png, target / "samples" / f"{j:05}.png")
        shutil.copy(folder / "samples" / "0000.png", target / "grid.png")
    (root / "notes").mkdir()  # non-digit folders are ignored, as GenEval does
    result = run_cli("evaluate", root, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["images"] == 6


def _broken_copy(sampled, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(sampled, root)
    return root


@pytest.mark.parametrize(
    "breakage, expected",
    [
        ("missing_folder", "no such folder"),
        ("empty_folder", "no GenEval prompt folders"),
        ("unreadable_png", "00003/samples/0001.png: cannot read image"),
        ("malformed_jsonl", "00002/metadata.jsonl:1: invalid JSON"),
        ("unknown_tag", "00004/metadata.jsonl:1: tag: unknown tag \"shapes\""),
        ("unknown_class", "00001/metadata.jsonl: include[0].class: 'dog' is not a shapes-world class"),
        ("no_metadata", "00005/metadata.jsonl: missing"),
        ("no_samples", "00006/samples: no images"),
    ],
)
def test_bad_input_gives_a_one_line_error(sampled, tmp_path, breakage, expected):
    root = _broken_copy(sampled, tmp_path)
    if breakage == "missing_folder":
        root = tmp_path / "absent"
    elif breakage == "empty_folder":
        root = tmp_path / "empty"
        root.mkdir()
    elif breakage == "unreadable_png":
        (root / "00003" / "samples" / "0001.png").write_bytes(b"not a png")
    elif breakage == "malformed_jsonl":
        (root / "00002" / "metadata.jsonl").write_text('{"tag": "counting", "include": [')
    elif breakage == "unknown_tag":
        record = json.loads((root / "00004" / "metadata.jsonl").read_text())
        (root / "00004" / "metadata.jsonl").write_text(json.dumps({**record, "tag": "shapes"}))
    elif breakage == "unknown_class":
        (root / "00001" / "metadata.jsonl").write_text(
            json.dumps({"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"})
        )
    elif breakage == "no_metadata":
        (root / "00005" / "metadata.jsonl").unlink()
    elif breakage == "no_samples":
        shutil.rmtree(root / "00006" / "samples")
    result = run_cli("evaluate", root)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cotgen: error: ")
    assert expected in lines[0]
    assert str(root) in lines[0]


def test_world_prompts_writes_the_evaluation_split(tmp_path):
    result = run_cli("world", "prompts", "--split", "eval", "--out", tmp_path / "eval.jsonl")
    assert result.returncode == 0, result.stderr
    assert len(load_records(tmp_path / "eval.jsonl")) == 553


def test_demo_scores_oracle_generator_and_prompt_blind_images(tmp_path):
    result = run_cli("demo", "--out", tmp_path / "demo", "--per-tag", "3", "--samples", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[0].split()[1:]
    overall = dict(zip(header, map(float, next(line for line in lines if line.startswith("overall")).split()[1:])))
    assert set(overall) == {"oracle", "vq-like", "prompt-blind", "generator"}
    assert overall["oracle"] == 1.0 and overall["vq-like"] >= 0.95 and overall["prompt-blind"] < 0.5
    assert overall["generator"] > overall["prompt-blind"]
    assert (tmp_path / "demo" / "oracle" / "00017" / "samples" / "0001.png").is_file()
    assert (tmp_path / "demo" / "generator" / "00017" / "samples" / "0001.png").is_file()


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("cotgen")
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable} (package not pip-installed)")
    result = run_cli("--help")
    assert result.returncode == 0 and "evaluate" in result.stdout
