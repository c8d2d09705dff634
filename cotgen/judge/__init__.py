"""VLM judge at inference: P(yes) scoring, explanations, and the task prompts.

Names are imported on first use (PEP 562), so `cotgen.judge.prompts` loads without torch."""

import importlib

_HOMES = {
    "JudgePrompts": "prompts",
    "image_processor_only": "processing", "load_processor": "processing", "save_processor": "processing",
    **{name: "vlm" for name in ("SUPPORTED", "AnswerTokens", "Exchange", "VLMJudge", "answer_tokens", "load_judge", "save_judge")},
}  # fmt: skip
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
