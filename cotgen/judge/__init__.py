"""VLM judge at inference: P(yes) scoring, explanations, and the task prompts.

Names load on first use, so `cotgen.judge.prompts` imports without torch."""

from cotgen.lazy import lazy_attributes

_HOMES = {
    "JudgePrompts": "prompts",
    "image_processor_only": "processing", "load_processor": "processing", "save_processor": "processing",
    "AnswerTokens": "answers", "answer_tokens": "answers", "ReadingMode": "reading",
    **{name: "vlm" for name in ("SUPPORTED", "Exchange", "VLMJudge", "load_judge", "save_judge")},
}  # fmt: skip
__getattr__ = lazy_attributes(__name__, _HOMES)
