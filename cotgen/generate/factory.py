"""The one way to get an engine for a model name: load the checkpoint, wrap it in the engine."""

from __future__ import annotations

from cotgen.errors import InputError
from cotgen.generate.engine import StepwiseGenerator
from cotgen.generate.sampling import Sampling
from cotgen.models.janus import generation_prompt_ids, load_generator


def load_engine(model: str, sampling: Sampling = Sampling(), device: str = "cpu"):
    """The engine over a generator ("embedded", a preset, a folder or a hub id) on `device`, and its
    tokenizer; guidance None means the checkpoint's own."""
    generator, tokenizer = load_generator(model)
    return StepwiseGenerator(generator.to(device), sampling), tokenizer


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids of a prompt; words the model's vocabulary lacks are an error, not <unk>."""
    ids = generation_prompt_ids(tokenizer, prompt)
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids:
        unknown = [w for w in prompt.split() if tokenizer.unk_token_id in tokenizer(w, add_special_tokens=False).input_ids]
        raise InputError(f"prompt {prompt!r}: not in the model's vocabulary: {', '.join(unknown)}")
    return ids
