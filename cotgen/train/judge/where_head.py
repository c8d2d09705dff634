"""Fitting a judge's where head (`cotgen.judge.where`) on its frozen visual tokens.

The targets are the vision stage's (`centre_targets`: the colour and class of the largest object
centred in each token's cell, an unrecognised blob, or nothing, as the exact evaluator reads the
image); only the head learns, so the judge's weights and everything it answers stay as they were.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from cotgen.judge.vlm import VLMJudge
from cotgen.judge.where import WhereHead
from cotgen.train.judge.examples import ExampleSet
from cotgen.train.judge.head_fitting import FITTING_IMAGES, first_images, fit_on_draws, frozen_features
from cotgen.train.judge.losses import centre_cross_entropy, centre_target_ids, visual_cells_of
from cotgen.train.judge.reading import CENTRE_CLASSES


def fitting_images(generated: ExampleSet, renders: ExampleSet, n_generated: int = FITTING_IMAGES, n_renders: int = FITTING_IMAGES) -> list[Image.Image]:
    """What a where head is fitted on: the first images of a run's generated set (the generator's
    images of training-split records) and of its renders."""
    return first_images(generated, n_generated) + first_images(renders, n_renders)


def fit_where_head(
    judge: VLMJudge, images: Sequence[Image.Image], steps: int = 1500, batch: int = 8192, lr: float = 3e-3, seed: int = 0
) -> tuple[WhereHead, float]:
    """A linear head fitted with Adam on `steps` draws of `batch` visual tokens of `images` (centred
    tokens weighted as in the vision stage), and its last batch's loss."""
    features, readings = frozen_features(judge, images)
    targets = centre_target_ids(judge, readings).flatten()
    torch.manual_seed(seed)
    head = torch.nn.Linear(features.shape[1], len(CENTRE_CLASSES))
    loss = fit_on_draws(
        head, len(features), lambda rows: centre_cross_entropy(head(features[rows]), targets[rows]), steps, batch, lr, seed, "where head", 250
    )  # fmt: skip
    p = judge.processor.image_processor
    cells = visual_cells_of(judge)
    where = WhereHead(head.weight.detach().clone(), head.bias.detach().clone(), list(CENTRE_CLASSES), cells, p.patch_size * p.merge_size * cells)
    return where, loss
