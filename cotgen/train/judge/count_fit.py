"""Fitting a judge's count head (`cotgen.judge.count_head`) on its frozen visual tokens.

The targets are each class's count as the exact evaluator reads the image (blobs are not objects);
only the head learns, so the judge's weights and everything it answers stay as they were. It is
fitted on the generator's images of training-split records, renders, and renders of prompt-free
count scenes (every class at every count): the readout shared by the classes learns each count from
all of them, where the generator's own images of four squares, say, are never among the fitted ones.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import torch
from PIL import Image

from cotgen.evaluate.reader import read_scene
from cotgen.judge.count_head import CountHead
from cotgen.judge.vlm import VLMJudge
from cotgen.judge.where import visual_features
from cotgen.train.judge.examples import ExampleSet
from cotgen.train.judge.losses import visual_cells_of
from cotgen.train.judge.where_head import FITTING_IMAGES, first_images
from cotgen.world.vocab import SHAPES

log = logging.getLogger(__name__)


def count_fitting_images(
    generated: ExampleSet, renders: ExampleSet, scenes: ExampleSet, n: int = FITTING_IMAGES
) -> list[Image.Image]:
    """What a count head is fitted on: the first n images each of a run's generated set, renders and count scenes."""
    return [image for examples in (generated, renders, scenes) for image in first_images(examples, n)]


@torch.no_grad()
def token_counts(
    judge: VLMJudge, images: Sequence[Image.Image], max_count: int, batch: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image's visual token features (images · tokens, hidden) and each class's count in it
    (images, classes; capped at `max_count`)."""
    features, counts = [], []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        features.append(visual_features(judge, chunk).float().cpu())
        for image in chunk:
            found = Counter(o.cls for o in read_scene(image).objects)
            counts.append([min(found[cls], max_count) for cls in SHAPES])
    return torch.cat(features), torch.tensor(counts)


def fit_count_head(
    judge: VLMJudge, images: Sequence[Image.Image], steps: int = 4000, batch: int = 256, lr: float = 3e-3, seed: int = 0
) -> tuple[CountHead, float]:
    """A count head fitted with Adam on `steps` draws of `batch` images, and its last batch's loss."""
    torch.manual_seed(seed)
    cells = visual_cells_of(judge)
    head = CountHead(judge.model.config.text_config.hidden_size, list(SHAPES), cells * cells)
    features, counts = token_counts(judge, images, head.max_count)
    features = features.view(len(counts), -1, features.shape[-1])
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(head.parameters(), lr)
    for step in range(1, steps + 1):
        rows = torch.randint(0, len(counts), (batch,), generator=generator)
        loss = torch.nn.functional.cross_entropy(
            head(features[rows].flatten(0, 1)).flatten(0, 1), counts[rows].flatten()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 500 == 0 or step == steps:
            log.info("count head: step %d of %d, loss %.4f", step, steps, loss.item())
    return head.eval(), loss.item()
