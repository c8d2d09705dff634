"""The embedded judge's model: a tiny random Qwen2-VL with a tokenizer trained on the shapes world.

Nothing is downloaded. The tokenizer is Qwen2's byte-level BPE, trained here on every question the
judge is asked (the task prompts formatted with every prompt the world can express), the answers and
the exact evaluator's reason sentences, so each word is one or a few tokens and "yes" / "no" are
single tokens. The image processor keeps a 64×64 world image at 64×64: with patch 8 and merge 2 it
becomes 8×8 patches, merged into 4×4 = 16 visual tokens in the language model.

The chat template and tokenizer builder here are also what the tests' tiny judges use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    Qwen2Tokenizer,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    Qwen2VLProcessor,
)

from cotgen.errors import InputError
from cotgen.evaluate.rules import check
from cotgen.judge.processing import image_processor_only
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.vlm import VLMJudge
from cotgen.prompts import TAGS
from cotgen.world.records import all_records
from cotgen.world.sampler import sample_random_scene
from cotgen.world.scene import Box

SPECIALS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", "<image>", "<video>"]  # fmt: skip
SYSTEM = "You are a helpful assistant."
ANSWERS = ("yes", "no")

# Shortened forms of the checkpoints' own templates: the image goes where the user turn says.
QWEN_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAVA_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + ' ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + content['text'] }}"
    "{% endfor %}{{ '<|im_end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


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


def judge_corpus(prompts: JudgePrompts | None = None) -> list[str]:
    """Every text the judge reads or writes: each task question for every world prompt, the answers
    and the evaluator's reasons (one string per line of the corpus)."""
    prompts = prompts or JudgePrompts()
    # each answer alone too: the assistant's answer starts its turn, with no space before it
    corpus = [SYSTEM, *ANSWERS, *(a.capitalize() for a in ANSWERS), " ".join(ANSWERS), " ".join(a.capitalize() for a in ANSWERS)]
    templates = [prompts.orm, prompts.clarity, prompts.reflection]
    corpus += [t.format(prompt=p) for p in world_prompts() for t in templates]
    corpus.append(prompts.potential)
    corpus += list(reason_sentences())
    return corpus


@dataclass
class JudgeModel:
    """The embedded judge's architecture (a Qwen2-VL)."""

    vocab_size: int = 1024
    """Largest tokenizer vocabulary (byte alphabet + merges); BPE stops earlier when the corpus runs out."""
    image_size: int = 64
    """Side of the images the processor produces (the world's canvas)."""
    patch_size: int = 8
    """Vision patch side in pixels (image processor and vision tower)."""
    merge_size: int = 2
    """Patches merged per side into one language-model token."""
    vision_dim: int = 128
    vision_depth: int = 3
    vision_heads: int = 4
    vision_mlp_ratio: int = 2
    hidden_size: int = 128
    """Language model width (also the merger's output)."""
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 384
    rope_theta: float = 10000.0
    init_std: float = 0.08
    """Standard deviation of the random initial weights (transformers' `initializer_range`). At
    transformers' usual 0.02 the visual tokens barely differ between images and a model this small
    does not start learning from them within a CPU budget; about 1/sqrt(width) does."""

    def __post_init__(self) -> None:
        if self.image_size % (self.patch_size * self.merge_size):
            raise InputError(f"image_size: {self.image_size} is not a multiple of patch_size × merge_size")
        for dim, heads, name in ((self.hidden_size, self.heads, "heads"), (self.vision_dim, self.vision_heads, "vision_heads")):
            if dim % heads:
                raise InputError(f"{name}: {heads} does not divide the width {dim}")
        if (self.hidden_size // self.heads) % 4 or self.heads % self.kv_heads:
            raise InputError(f"heads: head_dim must be a multiple of 4 and kv_heads ({self.kv_heads}) divide heads")


def mrope_section(head_dim: int) -> list[int]:
    """Temporal, height and width rope sections summing to head_dim / 2, in Qwen2-VL's 2:3:3 ratio."""
    half = head_dim // 2
    t = max(1, half // 4)
    h = (half - t) // 2
    return [t, h, half - t - h]


def image_processor(spec: JudgeModel) -> Qwen2VLImageProcessorPil:
    """Resizes any image to about `image_size`² pixels (a world image stays as it is)."""
    pixels = spec.image_size * spec.image_size
    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": pixels, "longest_edge": pixels}, patch_size=spec.patch_size, merge_size=spec.merge_size
    )


def build_judge(spec: JudgeModel | None = None, prompts: JudgePrompts | None = None, seed: int = 0) -> VLMJudge:
    """A random Qwen2-VL judge of `spec`, its tokenizer trained on `judge_corpus(prompts)`."""
    spec = spec or JudgeModel()
    tokenizer = byte_level_tokenizer(judge_corpus(prompts), spec.vocab_size)
    ids = tokenizer.convert_tokens_to_ids
    rope = {"rope_type": "default", "rope_theta": spec.rope_theta, "mrope_section": mrope_section(spec.hidden_size // spec.heads)}
    text = {
        "vocab_size": len(tokenizer), "hidden_size": spec.hidden_size, "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.layers, "num_attention_heads": spec.heads, "num_key_value_heads": spec.kv_heads,
        "max_position_embeddings": 1024, "bos_token_id": None, "eos_token_id": ids("<|im_end|>"),
        "pad_token_id": tokenizer.pad_token_id, "rope_parameters": rope, "initializer_range": spec.init_std,
    }  # fmt: skip
    vision = {
        "depth": spec.vision_depth, "embed_dim": spec.vision_dim, "hidden_size": spec.hidden_size,
        "mlp_ratio": spec.vision_mlp_ratio, "num_heads": spec.vision_heads, "patch_size": spec.patch_size,
        "spatial_merge_size": spec.merge_size, "initializer_range": spec.init_std,
    }  # fmt: skip
    config = Qwen2VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        initializer_range=spec.init_std,
    )  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen2VLForConditionalGeneration(config)
    processor = image_processor_only(Qwen2VLProcessor, image_processor(spec), tokenizer, chat_template=QWEN_TEMPLATE)
    return VLMJudge(model, processor)


def count_parameters(judge: VLMJudge) -> int:
    return sum(p.numel() for p in judge.model.parameters())
