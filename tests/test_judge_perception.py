"""bench/judge_perception.py: the facts a probe's tokens and a judge's reading give per class, and
the probe itself."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from cotgen.train.judge.reading import CENTRE_CLASSES
from cotgen.world.records import records_by_prompt

PATH = Path(__file__).resolve().parents[1] / "bench" / "judge_perception.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("judge_perception", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_reading_and_a_probes_tokens_give_counts_and_colours_per_class(bench):
    record = records_by_prompt()["a photo of a circle and a square"]
    assert bench.reading_facts("circle: 2, red, blue; square: none. answer: no", record) == {"circle": (2, ("blue", "red")), "square": (0, ())}
    assert bench.reading_facts("circle: 1, red", record) == {"circle": (1, ("red",)), "square": (0, ())}  # a class left out: none
    tokens = [0] * 64
    tokens[3], tokens[9], tokens[20], tokens[40] = (CENTRE_CLASSES.index(c) for c in ("red circle", "blue circle", "green cross", "blob"))
    assert bench.probe_facts(tokens, record) == {"circle": (2, ("blue", "red")), "square": (0, ())}


def test_the_probe_learns_separable_token_classes(bench):
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, len(CENTRE_CLASSES), (64, 16), generator=generator)
    centres = torch.randn(len(CENTRE_CLASSES), 32, generator=generator) * 3
    features = centres[targets] + 0.1 * torch.randn(64, 16, 32, generator=generator)
    for hidden in (0, 64):
        head = bench.train_probe(features, targets, hidden, epochs=30, seed=0)
        assert (head(features).argmax(-1) == targets).float().mean() > 0.95
