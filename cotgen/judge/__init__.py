"""VLM judge: P(yes) scoring, explanations, and the task prompts."""

from cotgen.judge.processing import image_processor_only, load_processor, save_processor
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.vlm import SUPPORTED, AnswerTokens, Exchange, VLMJudge, answer_tokens, load_judge, save_judge

__all__ = [
    "SUPPORTED",
    "AnswerTokens",
    "Exchange",
    "JudgePrompts",
    "VLMJudge",
    "answer_tokens",
    "image_processor_only",
    "load_judge",
    "load_processor",
    "save_judge",
    "save_processor",
]
