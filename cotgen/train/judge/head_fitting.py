"""What the judge's heads are fitted with: the first images of a run's sets, the frozen visual tokens
and the evaluator's reading of each image, and Adam on random draws of rows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from PIL import Image

from cotgen.evaluate.reader import Reading, read_scene
from cotgen.judge.vlm import VLMJudge
from cotgen.judge.where import visual_features
from cotgen.train.judge.examples import ExampleSet

log = logging.getLogger(__name__)

FITTING_IMAGES = 4000
"""Images of each set a head is fitted on by default."""


def first_images(examples: ExampleSet, n: int) -> list[Image.Image]:
    """The first n distinct images of an example set, in its order (fewer where it has fewer)."""
    return [examples.image(path) for path in list(dict.fromkeys(e.image for e in examples.examples))[:n]]


@torch.no_grad()
def frozen_features(judge: VLMJudge, images: Sequence[Image.Image], batch: int = 64) -> tuple[torch.Tensor, list[Reading]]:
    """Every image's visual token features (images · tokens, hidden; float, on the CPU) and the exact
    evaluator's reading of it (the targets' source)."""
    features = [visual_features(judge, images[start : start + batch]).float().cpu() for start in range(0, len(images), batch)]
    return torch.cat(features), [read_scene(image) for image in images]


def fit_on_draws(
    head: torch.nn.Module, rows: int, loss_of: Callable[[torch.Tensor], torch.Tensor], steps: int, batch: int, lr: float, seed: int, name: str, log_every: int
) -> float:
    """Adam on `head` for `steps` draws of `batch` of `rows` row indices (seeded), `loss_of(indices)`
    the loss of a draw; the last draw's loss."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(head.parameters(), lr)
    for step in range(1, steps + 1):
        loss = loss_of(torch.randint(0, rows, (batch,), generator=generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % log_every == 0 or step == steps:
            log.info("%s: step %d of %d, loss %.4f", name, step, steps, loss.item())
    return loss.item()
