"""The shipped embedded generator through the real command line."""

import json

from conftest import run_cli
from PIL import Image

from cotgen.prompts import load_records


def test_generate_writes_images_and_step_strips(tmp_path):
    out = tmp_path / "gen"
    result = run_cli("generate", "a photo of two red circles", "--n", "2", "--out", out, "--steps", "4")
    assert result.returncode == 0, result.stderr
    assert Image.open(out / "0001.png").size == (64, 64)
    # blank canvas + 4 steps, each frame 2x enlarged, 4 px apart
    assert Image.open(out / "0000_steps.png").size == (5 * 128 + 4 * 4, 128)
    again = tmp_path / "again"
    run_cli("generate", "a photo of two red circles", "--n", "2", "--out", again, "--steps", "4")
    assert (out / "0001.png").read_bytes() == (again / "0001.png").read_bytes()  # seeded


def test_generate_rejects_words_outside_the_vocabulary(tmp_path):
    result = run_cli("generate", "a photo of a dog", "--out", tmp_path / "x")
    assert result.returncode == 2
    assert result.stderr.strip() == "cotgen: error: prompt 'a photo of a dog': not in the model's vocabulary: dog"


def test_evaluate_can_generate_the_held_out_split(tmp_path):
    out, results = tmp_path / "heldout", tmp_path / "results.jsonl"
    result = run_cli("evaluate", out, "--generate", "embedded", "--per-tag", "2", "--samples", "2", "--results", results)
    assert result.returncode == 0, result.stderr
    for tag in ("single_object", "two_object", "counting", "colors", "position", "color_attr"):
        assert tag in result.stdout
    assert len(list(out.iterdir())) == 12
    (record,) = load_records(out / "00000" / "metadata.jsonl")
    assert record.tag == "single_object"
    scored = run_cli("evaluate", out, "--json", "--results", tmp_path / "rescored.jsonl")
    assert json.loads(scored.stdout)["images"] == 24
    # the per-image results of --generate are those of scoring its folder afterwards
    assert results.read_text() == (tmp_path / "rescored.jsonl").read_text() and len(results.read_text().splitlines()) == 24
    refused = run_cli("evaluate", out, "--generate", "embedded", "--per-tag", "1")
    assert refused.returncode == 2 and "already holds GenEval prompt folders" in refused.stderr
