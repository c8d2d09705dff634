"""How many of each class the judge sees: a count head on its visual tokens.

A census-copying judge copies each class's count from its greedy census, and on counting images that
count is its weakest fact: the census writes a count word per class from what its language model makes
of the tokens, and where the generator crowds four objects, or a count-class pair is one the judge's
training prompts never paired, it is often one off (bench/RESULTS.md, "A count head"). A count head
reads the counts off the frozen visual tokens instead: each token gives every class a few non-negative
features, summed over the image, and one readout shared by all classes turns a class's sum into its
count. Sharing the readout is what lets "four" learnt on circles count four squares. With
`ReadingMode.rule_count`, the counts it finds are forced into the reading of a finished image
(`cotgen.judge.skeleton.with_counts`), so the rules' verdict and the reflection follow them; previews
are left to the judge.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cotgen.errors import InputError
from cotgen.judge.head_files import read_head, read_names, write_head

HEAD_FILE = "count_head.safetensors"
"""The head's file beside the judge's weights."""


class CountHead(torch.nn.Module):
    """Visual token features → each class's count, 0 to `max_count` (a sum over tokens, one readout for all)."""

    def __init__(self, hidden: int, classes: list[str], tokens: int, width: int = 32, max_count: int = 6):
        super().__init__()
        if not classes or width < 1 or tokens < 1 or max_count < 1:
            raise InputError(
                f"count head: {len(classes)} classes, width {width}, {tokens} tokens, max count {max_count}"
            )
        self.classes, self.tokens, self.width, self.max_count = list(classes), tokens, width, max_count
        self.per_token = torch.nn.Linear(hidden, len(classes) * width)
        self.readout = torch.nn.Linear(width, max_count + 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(images, classes, max_count + 1) logits from (images · tokens, hidden) features."""
        if features.shape[0] % self.tokens:
            raise InputError(
                f"count head: {features.shape[0]} visual tokens are not whole images of {self.tokens} tokens"
            )
        features = features.to(self.per_token.weight.device, self.per_token.weight.dtype)  # the judge may sit on a GPU
        amounts = torch.relu(self.per_token(features)).view(-1, self.tokens, len(self.classes), self.width).sum(1)
        return self.readout(amounts)

    @torch.no_grad()
    def counts(self, features: torch.Tensor) -> list[dict[str, int]]:
        """Each image's most likely count of every class."""
        return [dict(zip(self.classes, row)) for row in self(features).argmax(-1).tolist()]

    def save(self, folder: str | Path) -> None:
        meta = {"classes": json.dumps(self.classes), "tokens": str(self.tokens), "max_count": str(self.max_count)}
        write_head(Path(folder) / HEAD_FILE, dict(self.state_dict()), meta)


def load_count_head(folder: str | Path) -> CountHead | None:
    """The count head saved beside a judge's weights, or None where there is none."""
    path = Path(folder) / HEAD_FILE
    if not path.is_file():
        return None
    what = "a count head"
    names = ("per_token.weight", "per_token.bias", "readout.weight", "readout.bias")
    tensors, meta = read_head(path, what, names, ("classes", "tokens", "max_count"))
    try:
        tokens, max_count = int(meta["tokens"]), int(meta["max_count"])
    except ValueError as err:
        raise InputError(f"{path}: not {what}: {err}") from err
    classes = read_names(path, meta["classes"])
    width, hidden = tensors["readout.weight"].shape[1], tensors["per_token.weight"].shape[1]
    if (
        tensors["per_token.weight"].shape[0] != len(classes) * width
        or tensors["readout.weight"].shape[0] != max_count + 1
    ):
        raise InputError(
            f"{path}: tensor shapes do not match {len(classes)} classes, width {width} and max count {max_count}"
        )
    head = CountHead(hidden, classes, tokens, width, max_count)
    head.load_state_dict(tensors)
    return head.eval()
