"""A word-level tokenizer for the shapes world's prompts, as a transformers fast tokenizer.

Every prompt the world can write is covered, and so is every corrective prompt
(`cotgen.generate.feedback`): the exact evaluator's reason words come after the prompt words, so the
ids of a tokenizer built before they were added stay valid. `tokenizer(prompt)` returns
[<bos>, words…, <begin_of_image>], the layout Janus's image generation expects.
"""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from cotgen.prompts import RELATIONS
from cotgen.world.vocab import COLORS, NUMBER_WORDS, SHAPES, plural

SPECIALS = ("<pad>", "<bos>", "<eos>", "<begin_of_image>", "<end_of_image>", "<image>", "<unk>")


def world_words() -> list[str]:
    words = ["a", "an", "photo", "of", "and"]
    words += [w for relation in RELATIONS for w in relation.split()]
    words += list(SHAPES) + [plural(s) for s in SHAPES] + list(COLORS) + list(NUMBER_WORDS.values())
    return list(dict.fromkeys(words))  # de-duplicated, order kept


def feedback_words() -> list[str]:
    """The pieces of `cotgen.evaluate.rules`' reason sentences and of the feedback separator that
    prompts do not use (counts are written as digits there)."""
    words = ["expected", "found", "none", "fewer", "than", "the", "is", "not", "it", "they", "are", "too", "close"]
    words += ["to", "tell", "others", "unrecognisable", "shape", "shapes", "in", "image", "feedback"]
    words += [str(n) for n in range(17)] + [".", ":", ",", ";", "(", ")"]
    return [w for w in dict.fromkeys(words) if w not in world_words()]


def build_world_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate([*SPECIALS, *world_words(), *feedback_words()])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A <begin_of_image>",
        special_tokens=[("<bos>", vocab["<bos>"]), ("<begin_of_image>", vocab["<begin_of_image>"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<begin_of_image>", "<end_of_image>", "<image>"],
    )
