"""Fitting a judge's where head (`cotgen.judge.where`) on its frozen visual tokens.

The targets are the vision stage's (`centre_targets`: the colour and class of the largest object
centred in each token's cell, an unrecognised blob, or nothing, as the exact evaluator reads the
image); only the head learns, so the judge's weights and everything it answers stay as they were.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from PIL import Image

from cotgen.evaluate.reader import read_scene
from cotgen.judge.vlm import VLMJudge
from cotgen.judge.where import WhereHead, visual_features
from cotgen.train.judge.examples import ExampleSet
from cotgen.train.judge.losses import centre_cross_entropy, centre_target_ids, visual_cells_of
from cotgen.train.judge.reading import CENTRE_CLASSES

log = logging.getLogger(__name__)

FITTING_IMAGES = 4000
"""Images of each kind (the generator's, renders) a head is fitted on by default."""


def first_images(examples: ExampleSet, n: int) -> list[Image.Image]:
    """The first n distinct images of an example set, in its order (fewer where it has fewer)."""
    return [examples.image(path) for path in list(dict.fromkeys(e.image for e in examples.examples))[:n]]


def fitting_images(generated: ExampleSet, renders: ExampleSet, n_generated: int = FITTING_IMAGES, n_renders: int = FITTING_IMAGES) -> list[Image.Image]:
    """What a where head is fitted on: the first images of a run's generated set (the generator's
    images of training-split records) and of its renders."""
    return first_images(generated, n_generated) + first_images(renders, n_renders)


@torch.no_grad()
def token_targets(judge: VLMJudge, images: Sequence[Image.Image], batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image's visual token features (images · cells², hidden) and their centre targets (same rows)."""
    features, targets = [], []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        features.append(visual_features(judge, chunk).float().cpu())
        targets.append(centre_target_ids(judge, [read_scene(image) for image in chunk]).flatten())
    return torch.cat(features), torch.cat(targets)


def fit_where_head(
    judge: VLMJudge, images: Sequence[Image.Image], steps: int = 1500, batch: int = 8192, lr: float = 3e-3, seed: int = 0
) -> tuple[WhereHead, float]:
    """A linear head fitted with Adam on `steps` draws of `batch` visual tokens of `images` (centred
    tokens weighted as in the vision stage), and its last batch's loss."""
    features, targets = token_targets(judge, images)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = torch.nn.Linear(features.shape[1], len(CENTRE_CLASSES))
    optimizer = torch.optim.Adam(head.parameters(), lr)
    for step in range(1, steps + 1):
        rows = torch.randint(0, len(features), (batch,), generator=generator)
        loss = centre_cross_entropy(head(features[rows]), targets[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 250 == 0 or step == steps:
            log.info("where head: step %d of %d, loss %.4f", step, steps, loss.item())
    p = judge.processor.image_processor
    cells = visual_cells_of(judge)
    where = WhereHead(head.weight.detach().clone(), head.bias.detach().clone(), list(CENTRE_CLASSES), cells, p.patch_size * p.merge_size * cells)
    return where, loss.item()
