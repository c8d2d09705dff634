"""The embedded judge's model: a tiny random Qwen2-VL with the world-trained tokenizer (`tokenizer`).

The image processor keeps a 64×64 world image at 64×64: with patch 8 and merge 2 it becomes 8×8
patches, merged into 4×4 = 16 visual tokens in the language model. The chat templates here are also
what the tests' tiny judges use.
"""

from __future__ import annotations

import json

import torch
from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil, Qwen2VLProcessor

from cotgen.errors import InputError
from cotgen.judge.processing import image_processor_only
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.vlm import VLMJudge
from cotgen.models.presets import resolve
from cotgen.train.judge.config import JudgeModelConfig
from cotgen.train.judge.tokenizer import byte_level_tokenizer, judge_corpus

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


def mrope_section(head_dim: int) -> list[int]:
    """Temporal, height and width rope sections summing to head_dim / 2, in Qwen2-VL's 2:3:3 ratio."""
    half = head_dim // 2
    t = max(1, half // 4)
    h = (half - t) // 2
    return [t, h, half - t - h]


def image_processor(spec: JudgeModelConfig) -> Qwen2VLImageProcessorPil:
    """Resizes any image to about `image_size`² pixels (a world image stays as it is)."""
    pixels = spec.image_size * spec.image_size
    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": pixels, "longest_edge": pixels}, patch_size=spec.patch_size, merge_size=spec.merge_size
    )


def build_judge(spec: JudgeModelConfig | None = None, prompts: JudgePrompts | None = None, seed: int = 0) -> VLMJudge:
    """A random Qwen2-VL judge of `spec`, its tokenizer trained on `judge_corpus(prompts)`."""
    spec = spec or JudgeModelConfig()
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


UNREAD_KEY = "cotgen_unread_validation"
"""Config key: true when the judge never read a prompt naming a judge-validation combination."""


def check_unread(compositional: bool, init_from: str | None) -> None:
    """A run that leaves the judge-validation combinations out (`data.compositional`) may only continue
    a judge that never read them either (its config.json says so)."""
    if not (compositional and init_from):
        return
    config = json.loads((resolve(init_from, "judge") / "config.json").read_text())
    if not config.get(UNREAD_KEY, False):
        raise InputError(
            f"data.compositional: init_from {init_from} has read the judge-validation combinations; "
            "start from scratch or from a judge trained with data.compositional"
        )
