"""The embedded judge's tokenizer: Qwen2's byte-level BPE, trained here on every text the judge reads
or writes, so each word is one or a few tokens and "yes" / "no" are single tokens. Nothing is
downloaded; the tests' tiny judges build theirs the same way."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer

from cotgen.evaluate.reader import Reading
from cotgen.evaluate.rules import check
from cotgen.judge.prompts import JudgePrompts
from cotgen.prompts import TAGS
from cotgen.train.judge.examples import ANSWERS
from cotgen.train.judge.reading import reading_target
from cotgen.world.records import all_records
from cotgen.world.sampler import sample_random_scene, sample_scene
from cotgen.world.scene import Box

SPECIALS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", "<image>", "<video>"]  # fmt: skip
SYSTEM = "You are a helpful assistant."


def byte_level_tokenizer(corpus: list[str], vocab_size: int) -> Qwen2Tokenizer:
    """A Qwen2 tokenizer whose byte-level BPE is trained on `corpus` (no download). Byte-level: any
    text encodes (nothing is unknown); words of the corpus take few tokens."""
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    core.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False))  # fmt: skip
    bpe = json.loads(core.to_str())["model"]
    return Qwen2Tokenizer(
        vocab=bpe["vocab"], merges=[tuple(m) for m in bpe["merges"]], additional_special_tokens=SPECIALS
    )


def world_prompts() -> list[str]:
    """Every distinct prompt the shapes world can express, both splits, in a fixed order."""
    return sorted({r.prompt for tag in TAGS for r in all_records(tag)})


@lru_cache(maxsize=1)
def reason_sentences(seed: int = 0, scenes_per_record: int = 2) -> tuple[str, ...]:
    """The exact evaluator's reason sentences for random scenes against every record (with an
    unrecognised blob or two, so the blob sentences appear too): the reflections' vocabulary."""
    rng = np.random.default_rng(seed)
    reasons: set[str] = set()
    blobs = ((), (Box(0, 0, 9, 9),), (Box(0, 0, 9, 9), Box(20, 20, 29, 29)))
    for tag in TAGS:
        for record in all_records(tag):
            for k in range(scenes_per_record):
                scene = sample_random_scene(rng)
                reasons.update(check(scene.objects, record, blobs[int(rng.integers(len(blobs)))]).reasons)
    return tuple(sorted(reasons))


@lru_cache(maxsize=1)
def reading_sentences(seed: int = 0) -> tuple[str, ...]:
    """What a reading judge writes for a random scene against every record, and for a scene drawn
    for the record: the readings' vocabulary (`cotgen.train.judge.reading`)."""
    rng = np.random.default_rng(seed)
    texts = []
    for tag in TAGS:
        for record in all_records(tag):
            for scene in (sample_random_scene(rng), sample_scene(record, rng)):
                texts.append(reading_target(Reading(scene.objects, ()), record, "no"))
    return tuple(texts)


def judge_corpus(prompts: JudgePrompts | None = None) -> list[str]:
    """Every text the judge reads or writes: each task question for every world prompt, the answers,
    the evaluator's reasons and readings (one string per line of the corpus)."""
    prompts = prompts or JudgePrompts()
    # each answer alone too: the assistant's answer starts its turn, with no space before it
    corpus = [SYSTEM, *ANSWERS, *(a.capitalize() for a in ANSWERS), " ".join(ANSWERS), " ".join(a.capitalize() for a in ANSWERS)]
    templates = [prompts.orm, prompts.clarity, prompts.reflection]
    corpus += [t.format(prompt=p) for p in world_prompts() for t in templates]
    corpus.append(prompts.potential)
    corpus += list(reason_sentences())
    corpus += list(reading_sentences())
    return corpus
