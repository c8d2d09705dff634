"""How a generator is asked to correct an image: the prompt, then what was wrong with the last one.

PARM++'s judge answers the reflection question with "no: " and its reasons ("no: expected 2 circles,
found 1"). The corrector is given `corrective_prompt(prompt, feedback)`:
"a photo of two circles. feedback: expected 2 circles, found 1". The embedded generator is trained on
exactly this layout (its tokenizer knows the evaluator's reason words); a real checkpoint reads it
as plain text. Long feedback is cut to its first reasons within `MAX_FEEDBACK_PIECES` words and
punctuation marks, so that prompt and image still fit the embedded generator's positions.
"""

from __future__ import annotations

import re
from collections.abc import Callable

SEPARATOR = ". feedback:"
MAX_FEEDBACK_PIECES = 40
_PIECE = re.compile(r"\w+|[^\w\s]")  # the world tokenizer's pieces: words and single punctuation marks
_YES = re.compile(r"^\s*yes\b", re.IGNORECASE)
_VERDICT = re.compile(r"^\s*no\b\s*[:,.;-]?\s*", re.IGNORECASE)


def feedback_from_explanation(explanation: str) -> str:
    """The reasons of a reflection: the explanation without its leading "no:" verdict; nothing when
    the explanation says "yes" after all."""
    if _YES.match(explanation):
        return ""
    return _VERDICT.sub("", explanation, count=1).strip()


def corrective_prompt(prompt: str, feedback: str) -> str:
    """The prompt followed by the feedback, cut after `MAX_FEEDBACK_PIECES` pieces; the bare prompt
    when there is no feedback."""
    pieces = list(_PIECE.finditer(feedback))
    if not pieces:
        return prompt
    kept = feedback[: pieces[min(len(pieces), MAX_FEEDBACK_PIECES) - 1].end()]
    if len(pieces) > MAX_FEEDBACK_PIECES and ";" in kept:  # end on a whole reason
        kept = kept[: kept.rindex(";")]
    return f"{prompt}{SEPARATOR} {kept.strip()}"


def readable(feedback: str, can_read: Callable[[str], bool]) -> str:
    """The feedback without the words and marks a generator cannot read (a word-level tokenizer
    rejects what the judge made up); unchanged when it can read all of it."""
    pieces = [m.group() for m in _PIECE.finditer(feedback)]
    kept = [p for p in pieces if can_read(p)]
    return feedback if len(kept) == len(pieces) else " ".join(kept)
