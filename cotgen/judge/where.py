"""Where the judge sees each class: a linear head on its visual tokens, and GenEval's relation from it.

A reading judge says whether a position prompt's relation holds as one learnt word ("not" or not),
and on validation images that word is right for about two images in three: the language model does
not turn the visual tokens' positions into a relation well. The tokens themselves know where objects
are centred: the vision stage trains them to tell, per token, the colour and class of the object
centred in its cell (`cotgen.train.judge.losses.centre_loss`). A linear head fitted on the frozen
tokens (`jobs/fit_where_head.py`) finds each class's most likely cell; GenEval's rule
(`cotgen.world.scene.relations`) on objects of the world's typical size centred there gives the
relation. With `ReadingMode.rule_where`, that relation is forced into the reading of a finished image
(`Skeleton.holds`), so the rules' verdict and reflection follow it; where the head finds a class in no
cell, the judge still says.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cotgen.errors import InputError
from cotgen.judge.head_files import read_head, read_names, write_head
from cotgen.world.scene import Box, relations

HEAD_FILE = "where_head.safetensors"
"""The head's file beside the judge's weights."""
OBJECT_SIDE = 5 / 16
"""The side given to an object centred in a cell, as a share of the canvas (20 px on 64), within the
world's object sides (`cotgen.world.vocab.size_range`: 18–26 px on 64); GenEval's rule shrinks centre
offsets by a tenth of the sides, so the relation depends little on it."""
FOUND = 0.5
"""A class counts as found where some cell's probability of holding it reaches this."""


def visual_features(judge, images) -> torch.Tensor:
    """The merged visual tokens a Qwen2-VL judge's language model sees, (images · tokens, hidden),
    row-major per image."""
    pixels = judge.processor.image_processor(images, return_tensors="pt").to(judge.model.device)
    return judge.model.model.visual(pixels["pixel_values"].to(judge.model.dtype), grid_thw=pixels["image_grid_thw"]).pooler_output


class WhereHead:
    """Visual token features → what is centred in each token's cell (`classes`, "none" first)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, classes: list[str], cells: int, size: int):
        if weight.ndim != 2 or weight.shape[0] != len(classes) or bias.shape != (len(classes),):
            raise InputError(f"where head: {weight.shape[0]} rows and {bias.shape[0]} biases for {len(classes)} classes")
        self.weight, self.bias, self.classes, self.cells, self.size = weight, bias, classes, cells, size

    def cell_probs(self, features: torch.Tensor) -> torch.Tensor:
        """(images, cells², classes) probabilities from (images · cells², hidden) features."""
        if features.shape[0] % (self.cells * self.cells):
            raise InputError(f"where head: {features.shape[0]} visual tokens are not whole images of {self.cells}×{self.cells} cells")
        weight, bias = (t.to(features.device, torch.float32) for t in (self.weight, self.bias))  # the judge may sit on a GPU
        logits = features.float() @ weight.T + bias
        return logits.softmax(-1).view(-1, self.cells * self.cells, len(self.classes))

    def holds(self, probs: torch.Tensor, subject: str, relation: str, reference: str) -> bool | None:
        """Whether `relation` holds between the subject and the reference as one image's cell
        probabilities place them (their most likely cells, the reference's other than the subject's),
        or None where either class is in no cell."""
        a = self._class_probs(probs, subject)
        b = self._class_probs(probs, reference)
        cell_a = int(a.argmax())
        b = b.clone()
        b[cell_a] = -1.0
        cell_b = int(b.argmax())
        if a[cell_a] < FOUND or b[cell_b] < FOUND:
            return None
        return relation in relations(self._box(cell_a), self._box(cell_b))

    def _class_probs(self, probs: torch.Tensor, cls: str) -> torch.Tensor:
        columns = [i for i, name in enumerate(self.classes) if name.rsplit(" ", 1)[-1] == cls]
        return probs[:, columns].sum(-1)

    def _box(self, cell: int) -> Box:
        side = self.size / self.cells
        x, y = (cell % self.cells + 0.5) * side, (cell // self.cells + 0.5) * side
        half = OBJECT_SIDE * self.size / 2
        return Box(x - half, y - half, x + half, y + half)

    def save(self, folder: str | Path) -> None:
        meta = {"classes": json.dumps(self.classes), "cells": str(self.cells), "size": str(self.size)}
        write_head(Path(folder) / HEAD_FILE, {"weight": self.weight, "bias": self.bias}, meta)


def load_where_head(folder: str | Path) -> WhereHead | None:
    """The head saved beside a judge's weights, or None where there is none."""
    path = Path(folder) / HEAD_FILE
    if not path.is_file():
        return None
    what = "a where head"
    tensors, meta = read_head(path, what, ("weight", "bias"), ("classes", "cells", "size"))
    try:
        cells, size = int(meta["cells"]), int(meta["size"])
    except ValueError as err:
        raise InputError(f"{path}: not {what}: {err}") from err
    classes = read_names(path, meta["classes"])
    return WhereHead(tensors["weight"], tensors["bias"], classes, cells, size)
