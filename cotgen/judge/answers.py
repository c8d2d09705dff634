"""The answer words of a yes/no judge: every single-token spelling of "yes" and "no", and P(yes)
from next-token logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from cotgen.errors import InputError


@dataclass(frozen=True)
class AnswerTokens:
    """The ids of every spelling of "yes" and of "no" that the tokenizer writes as one token."""

    yes: tuple[int, ...]
    no: tuple[int, ...]


def answer_tokens(tokenizer: PreTrainedTokenizerBase) -> AnswerTokens:
    def single_tokens(word: str) -> tuple[int, ...]:
        ids: list[int] = []
        for form in (word, word.capitalize(), word.upper()):
            for text in (form, " " + form):
                encoded = tokenizer.encode(text, add_special_tokens=False)
                if len(encoded) == 1 and encoded[0] != tokenizer.unk_token_id and encoded[0] not in ids:
                    ids.append(encoded[0])
        if not ids:
            raise InputError(f"the judge's tokenizer has no single token for {word!r}")
        return tuple(ids)

    return AnswerTokens(yes=single_tokens("yes"), no=single_tokens("no"))


def grouped_p_yes(logits: torch.Tensor, answers: AnswerTokens) -> torch.Tensor:
    """P(yes) from next-token logits (batch, vocab): softmax over the yes-group and no-group logits."""
    yes = logits[:, list(answers.yes)].float().logsumexp(-1)
    no = logits[:, list(answers.no)].float().logsumexp(-1)
    return torch.sigmoid(yes - no)  # softmax([yes, no])[0]
