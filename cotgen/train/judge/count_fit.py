"""Fitting a judge's count head (`cotgen.judge.count_head`) on its frozen visual tokens.

The targets are each class's count as the exact evaluator reads the image (blobs are not objects);
only the head learns, so the judge's weights and everything it answers stay as they were. It is
fitted on the generator's images of training-split records, renders, and renders of prompt-free
count scenes (every class at every count): the readout shared by the classes learns each count from
all of them, where the generator's own images of four squares, say, are never among the fitted ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
from PIL import Image

from cotgen.judge.count_head import CountHead
from cotgen.judge.vlm import VLMJudge
from cotgen.train.judge.examples import ExampleSet
from cotgen.train.judge.head_fitting import FITTING_IMAGES, first_images, fit_on_draws, frozen_features
from cotgen.train.judge.losses import visual_cells_of
from cotgen.world.vocab import SHAPES


def count_fitting_images(
    generated: ExampleSet, renders: ExampleSet, scenes: ExampleSet, n: int = FITTING_IMAGES
) -> list[Image.Image]:
    """What a count head is fitted on: the first n images each of a run's generated set, renders and count scenes."""
    return [image for examples in (generated, renders, scenes) for image in first_images(examples, n)]


def fit_count_head(
    judge: VLMJudge, images: Sequence[Image.Image], steps: int = 4000, batch: int = 256, lr: float = 3e-3, seed: int = 0
) -> tuple[CountHead, float]:
    """A count head fitted with Adam on `steps` draws of `batch` images (each class's count capped at
    the head's `max_count`), and its last batch's loss."""
    torch.manual_seed(seed)
    cells = visual_cells_of(judge)
    head = CountHead(judge.model.config.text_config.hidden_size, list(SHAPES), cells * cells)
    features, readings = frozen_features(judge, images)
    features = features.view(len(images), -1, features.shape[-1])
    found = [Counter(o.cls for o in reading.objects) for reading in readings]
    counts = torch.tensor([[min(f[cls], head.max_count) for cls in SHAPES] for f in found])

    def loss_of(rows: torch.Tensor) -> torch.Tensor:
        logits = head(features[rows].flatten(0, 1))
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), counts[rows].flatten())

    loss = fit_on_draws(head, len(images), loss_of, steps, batch, lr, seed, "count head", 500)
    return head.eval(), loss
