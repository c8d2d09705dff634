"""Tiny random Janus generators built here (no downloads), shared by tests."""

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import JanusForConditionalGeneration, PreTrainedTokenizerFast

from cotgen.generate import PathKey
from cotgen.models.janus import SpecialTokens, configure_generation, tiny_janus_config

SPECIAL = SpecialTokens(bos=1, pad=0, boi=3)
"""The special token ids `tiny_janus` generates with (those of `tiny_janus_config`)."""


def tiny_janus(**kwargs) -> JanusForConditionalGeneration:
    """A seeded random Janus in eval mode, ready to generate; `kwargs` go to `tiny_janus_config`."""
    torch.manual_seed(0)
    model = JanusForConditionalGeneration(tiny_janus_config(**kwargs)).eval()
    configure_generation(model, SPECIAL)
    return model


def path_keys(n: int, prompt: str = "p") -> list[PathKey]:
    """`n` distinct path keys, one per prompt id `{prompt}{i}`."""
    return [PathKey(seed=7, prompt_id=f"{prompt}{i}", sample=i) for i in range(n)]


def janus_pro_tokenizer() -> PreTrainedTokenizerFast:
    """Janus-Pro's special tokens and conventions (BOS added by the tokenizer) over a few words."""
    specials = ["<｜▁pad▁｜>", "<｜begin▁of▁sentence｜>", "<unk>", "<begin_of_image>", "<|User|>", "<|Assistant|>"]
    words = [":", "a", "photo", "of", "two", "red", "circles"]
    core = Tokenizer(models.WordLevel({t: i for i, t in enumerate(specials + words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    core.post_processor = processors.TemplateProcessing(single="<｜begin▁of▁sentence｜> $A", special_tokens=[("<｜begin▁of▁sentence｜>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<｜begin▁of▁sentence｜>", pad_token="<｜▁pad▁｜>", unk_token="<unk>",
        additional_special_tokens=specials[3:],
    )  # fmt: skip
