"""Tiny random Qwen2-VL, Qwen2.5-VL and LLaVA-OneVision judges built here (no downloads), shared by tests."""

from transformers import (
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    LlavaOnevisionImageProcessorPil,
    LlavaOnevisionProcessor,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    Qwen2VLProcessor,
)  # fmt: skip

from cotgen.judge import VLMJudge, image_processor_only
from cotgen.train.judge.model import LLAVA_TEMPLATE, QWEN_TEMPLATE
from cotgen.train.judge.tokenizer import SPECIALS, byte_level_tokenizer  # noqa: F401 (shared by tests)

CORPUS = [
    "system You are a helpful assistant. user assistant",
    "Does this image accurately represent the prompt? Please answer yes or no without explanation.",
    "yes no Yes No YES NO. The image shows two red circles left of a blue square, not a green triangle.",
]
QWEN_PROMPT = (  # one chat as it must read before the image placeholder is expanded
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "<|vision_start|><|image_pad|><|vision_end|>{q}<|im_end|>\n<|im_start|>assistant\n"
)
EXPECTED_PROMPT = {
    "qwen2_vl": QWEN_PROMPT,
    "qwen2_5_vl": QWEN_PROMPT,
    "llava_onevision": "<|im_start|>user <image>\n{q}<|im_end|><|im_start|>assistant\n",
}


def text_config(tokenizer, **extra) -> dict:
    return dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, initializer_range=0.2, bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tokenizer.pad_token_id, **extra,
    )  # fmt: skip


def qwen_ids(tokenizer) -> dict:
    ids = tokenizer.convert_tokens_to_ids
    return {
        "image_token_id": ids("<|image_pad|>"), "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"), "vision_end_token_id": ids("<|vision_end|>"),
    }  # fmt: skip


# head_dim is 32 / 4 heads = 8: the multimodal rope sections must sum to head_dim / 2.
QWEN_ROPE = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]}


def qwen_image_processor() -> Qwen2VLImageProcessorPil:
    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": 28 * 28, "longest_edge": 112 * 112}, patch_size=14, merge_size=2
    )


def tiny_qwen2_vl(tokenizer) -> VLMJudge:
    config = Qwen2VLConfig(
        text_config=text_config(tokenizer, rope_parameters=QWEN_ROPE),
        vision_config={"depth": 1, "embed_dim": 32, "hidden_size": 32, "mlp_ratio": 2, "num_heads": 2},
        **qwen_ids(tokenizer),
    )
    processor = image_processor_only(Qwen2VLProcessor, qwen_image_processor(), tokenizer, chat_template=QWEN_TEMPLATE)
    return VLMJudge(Qwen2VLForConditionalGeneration(config), processor)


def tiny_qwen2_5_vl(tokenizer) -> VLMJudge:
    vision = {
        "depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
        "window_size": 56, "fullatt_block_indexes": [0],
    }  # fmt: skip
    config = Qwen2_5_VLConfig(
        text_config=text_config(tokenizer, rope_parameters=QWEN_ROPE), vision_config=vision, **qwen_ids(tokenizer)
    )
    processor = image_processor_only(
        Qwen2_5_VLProcessor, qwen_image_processor(), tokenizer, chat_template=QWEN_TEMPLATE
    )
    return VLMJudge(Qwen2_5_VLForConditionalGeneration(config), processor)


def tiny_llava_onevision(tokenizer) -> VLMJudge:
    pinpoints = [[32, 32], [32, 64], [64, 32], [64, 64]]
    config = LlavaOnevisionConfig(
        text_config=dict(model_type="qwen2", **text_config(tokenizer)),
        vision_config={
            "model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
        },
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full",
        initializer_range=0.2,
    )  # fmt: skip
    image_processor = LlavaOnevisionImageProcessorPil(size={"height": 32, "width": 32}, image_grid_pinpoints=pinpoints)
    processor = image_processor_only(
        LlavaOnevisionProcessor, image_processor, tokenizer, num_image_tokens=16,
        vision_feature_select_strategy="full", chat_template=LLAVA_TEMPLATE,
    )  # fmt: skip
    return VLMJudge(LlavaOnevisionForConditionalGeneration(config), processor)


BUILDERS = {"qwen2_vl": tiny_qwen2_vl, "qwen2_5_vl": tiny_qwen2_5_vl, "llava_onevision": tiny_llava_onevision}
