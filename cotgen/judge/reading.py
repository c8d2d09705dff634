"""Judges that read the image before they answer: a chain of thought that P(yes) is read after.

A judge whose model config carries `cotgen_reading` may answer a question either directly ("yes" /
"no" as its first token) or by first writing what it sees, then the marker and its answer:
"circle: 2, red, blue. answer: no". P(yes) is then read from the logits right after its
own greedy reading's marker, in the same generate call, so a direct answer costs one forward pass
as before and a reading costs one pass per token. A real judge (no `cotgen_reading` in its config)
keeps the plain one-forward P(yes): cotgen never makes a 7B judge write first.

The answer after a reading is weighed by how sure the judge was of that reading (`hedged`): read
after the greedy reading alone, P(yes) saturates (every image read as matching gets 0.9995), and
best-of-N among such images is a coin toss that more candidates only make worse.

A reading mode may name a `first` question about the image alone (the census: every class's count):
such a judge answers it first, greedily (`answer_greedily`), and writes its reading with that answer
in the chat, the hedge weighing the probability of both.

A mode may list the `subjects` (and `relations`) its readings name: the words the question fixes are
then forced as the judge writes (`cotgen.judge.skeleton`), and with `first_facts` the facts too are
copied from its first answer (the census), so the judge writes only the relation and its answer.

The embedded judge learns the reading it writes from the exact evaluator (`cotgen.train.judge.reading`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import BatchFeature, PreTrainedModel, PreTrainedTokenizerBase, StoppingCriteria

from cotgen.errors import InputError
from cotgen.judge.answers import AnswerTokens, grouped_p_yes
from cotgen.judge.census_views import VIEWS
from cotgen.judge.rule_reasons import rule_holds
from cotgen.judge.skeleton import Skeleton, SkeletonForcing
from cotgen.prompts import Record

CONFIG_KEY = "cotgen_reading"
"""The model config attribute (saved in config.json) that marks a judge that reads first."""
UNANSWERED = 0.5
"""P(yes) of a reading that never reached its marker within the token budget: no answer either way."""


READING_FLOOR = 1e-3
"""The least weight `hedged` gives a reading: a reading of P 1e-26 would leave ½ ± 1e-26, which
float32 rounds to ½ (a "no" turned "yes" at a threshold of ½)."""


def hedged(p_yes: torch.Tensor, p_reading: torch.Tensor) -> torch.Tensor:
    """P(yes) after a reading the judge wrote with probability `p_reading`, the readings it did not
    write counted as no answer either way: p_reading · p_yes + (1 − p_reading) · ½. Every answer
    stays on its side of ½ (a yes/no decision at ½ is the plain answer's), but among images read as
    matching, the one read with more confidence ranks first."""
    return p_reading.clamp(min=READING_FLOOR) * (p_yes - UNANSWERED) + UNANSWERED


FLAGS = ("first_facts", "rule_reasons", "rule_verdict", "rule_where", "rule_count")
"""The reading mode's switches, saved in config.json only when on."""


@dataclass(frozen=True)
class ReadingMode:
    """How a reading judge writes: the text that ends its reading, and its longest reading in tokens."""

    marker: str = "answer:"
    max_tokens: int = 64
    first: str = ""
    """A question about the image alone that the judge answers before it reads for a question (empty:
    none): its greedy answer stands in the chat as the first turn, so the reading can copy from it."""
    first_tokens: int = 0
    """The first answer's longest length in tokens."""
    subjects: tuple[str, ...] = ()
    """The class words a reading names, each as the question names it (empty: the judge writes its
    reading freely): with them, the words a question fixes are forced (`cotgen.judge.skeleton`)."""
    relations: tuple[str, ...] = ()
    """The relations a reading may state between two subjects ("left of", ...)."""
    first_facts: bool = False
    """The first answer (a census: "circle: 2, red, blue; square: none; …") is not put in the chat:
    each subject's facts are copied from it into the reading, so the judge writes only the relation
    and its answer. What the question names then never sways what the judge reads."""
    rule_reasons: bool = False
    """Its reflection (`VLMJudge.explain`) is the verdict of its reading for the outcome question about
    the prompt the question quotes, and a "no"'s reasons are those the evaluator's rules give for the
    facts it read (`cotgen.judge.rule_reasons`). Prompts outside the world's records, and a "no" whose
    facts hold, get the answer it writes itself."""
    census_views: int = 1
    """With `first_facts`: on how many views of a finished image it answers its census, copying per
    class the facts most views count (`cotgen.judge.census_views`; 1: the image as it is)."""
    rule_verdict: bool = False
    """Its answer after a reading of a finished image (not a preview: `VLMJudge.read`'s `finished`),
    asked about a prompt of the world's records, is the evaluator's verdict on the facts it read
    (`cotgen.judge.rule_reasons.rule_holds`), 1 or 0 in place of its learnt P(yes), hedged as that is;
    previews, direct answers and other questions keep the learnt one."""
    rule_where: bool = False
    """In its reading of a finished image for a position question, whether the relation holds is
    where its where head (`cotgen.judge.where`, a file beside its weights) finds the two classes, by
    GenEval's rule, forced; where the head finds either in no cell, or on previews, the judge says."""
    rule_count: bool = False
    """In its reading of a finished image, each class's count is what its count head
    (`cotgen.judge.count_head`, a file beside its weights) finds, forced; previews are left to the judge."""

    def __post_init__(self) -> None:
        if not self.marker.strip():
            raise InputError(f"{CONFIG_KEY}.marker: must not be blank")
        if self.max_tokens < 1:
            raise InputError(f"{CONFIG_KEY}.max_tokens: must be at least 1, got {self.max_tokens}")
        if self.first and self.first_tokens < 1:
            raise InputError(f"{CONFIG_KEY}.first_tokens: must be at least 1 with a first question, got {self.first_tokens}")
        for field in ("subjects", "relations"):
            words = getattr(self, field)
            if any(not isinstance(w, str) or not w.strip() for w in words) or len(set(words)) < len(words):
                raise InputError(f"{CONFIG_KEY}.{field}: expected distinct non-blank words, got {list(words)!r}")
        if self.relations and not self.subjects:
            raise InputError(f"{CONFIG_KEY}.relations: relate subjects, so subjects must be given too")
        for field in FLAGS:
            if not isinstance(getattr(self, field), bool):
                raise InputError(f"{CONFIG_KEY}.{field}: expected true or false, got {getattr(self, field)!r}")
        if self.first_facts and not (self.first and self.subjects):
            raise InputError(f"{CONFIG_KEY}.first_facts: copies a first answer's facts by subject, so first and subjects must be given too")
        if self.rule_count and not self.subjects:
            raise InputError(f"{CONFIG_KEY}.rule_count: forces the counts a skeleton states, so subjects must be given too")
        if self.rule_where and not self.relations:
            raise InputError(f"{CONFIG_KEY}.rule_where: forces the relation a skeleton states, so subjects and relations must be given too")
        if type(self.census_views) is not int or not 1 <= self.census_views <= len(VIEWS):
            raise InputError(f"{CONFIG_KEY}.census_views: expected a whole number from 1 to {len(VIEWS)}, got {self.census_views!r}")
        if self.census_views > 1 and not self.first_facts:
            raise InputError(f"{CONFIG_KEY}.census_views: votes on the census facts a reading copies, so first_facts must be on too")


def reading_mode(model: PreTrainedModel) -> ReadingMode | None:
    """The model's reading mode, or None for a judge that answers in one forward pass."""
    raw = getattr(model.config, CONFIG_KEY, None)
    if raw is None:
        return None
    keys = {"marker", "max_tokens", "first", "first_tokens", "subjects", "relations", "census_views", *FLAGS}
    if not isinstance(raw, dict) or set(raw) - keys:
        raise InputError(f"{CONFIG_KEY}: expected {{marker, max_tokens[, first, first_tokens, subjects, relations, census_views, {', '.join(FLAGS)}]}}, got {raw!r}")
    for key in ("subjects", "relations"):
        if not isinstance(raw.get(key, []), list):
            raise InputError(f"{CONFIG_KEY}.{key}: expected a list of words, got {raw[key]!r}")
    return ReadingMode(**(raw | {k: tuple(raw[k]) for k in ("subjects", "relations") if k in raw}))


def set_reading_mode(model: PreTrainedModel, mode: ReadingMode | None) -> None:
    """Mark the model (and the config.json it saves) as a judge that reads first, or not."""
    if mode is None:
        setattr(model.config, CONFIG_KEY, None)
        return
    raw = {"marker": mode.marker, "max_tokens": mode.max_tokens}
    if mode.first:
        raw |= {"first": mode.first, "first_tokens": mode.first_tokens}
    if mode.subjects:
        raw |= {"subjects": list(mode.subjects), "relations": list(mode.relations)}
    raw |= {flag: True for flag in FLAGS if getattr(mode, flag)}
    if mode.census_views > 1:
        raw["census_views"] = mode.census_views
    setattr(model.config, CONFIG_KEY, raw)


def after_reading(text: str, mode: ReadingMode) -> str:
    """What follows the reading in a free-text answer ("circle: 1, red. answer: no: ..." → "no: ..."),
    or the whole text when it holds no reading."""
    return text.split(mode.marker, 1)[-1].strip()


class _Answered(StoppingCriteria):
    """A row is done once it answered directly or wrote its marker and one token after it."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, marker: str, start: int, direct: set[int]):
        self.tokenizer, self.marker, self.start, self.direct = tokenizer, marker, start, direct

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        written = input_ids[:, self.start :].tolist()
        done = [row[0] in self.direct or self.marker in self.tokenizer.decode(row[:-1]) for row in written]
        return torch.tensor(done, device=input_ids.device)


def answer_step(
    tokenizer: PreTrainedTokenizerBase, written: Sequence[int], marker: str, direct: set[int]
) -> int | None:
    """Which generated step's logits hold the answer: 0 for a direct answer, the step after the
    marker for a reading, None when the reading never reached its marker."""
    if written and written[0] in direct:
        return 0
    for i in range(len(written) - 1):
        if marker in tokenizer.decode(written[: i + 1]):
            return i + 1
    return None


@dataclass(frozen=True)
class Written:
    """One reading the judge wrote: its tokens up to the answer, its text, its probability and the
    P(yes) read after it (`answered` False: it never reached its marker, and P(yes) is ½)."""

    tokens: tuple[int, ...]
    text: str
    p_reading: float
    p_yes: float
    answered: bool


@torch.no_grad()
def write_readings(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    inputs: BatchFeature,
    mode: ReadingMode,
    answers: AnswerTokens,
    sample: bool = False,
    skeletons: Sequence[Skeleton | None] | None = None,
) -> list[Written]:
    """Each chat's reading and the answer after it, greedy (or drawn from the judge's own
    distribution with `sample`, under the caller's torch seed); a direct answer is a reading of no
    tokens and probability 1. `skeletons` (one per chat, or None) are forced as the judge writes
    (`cotgen.judge.skeleton`): the reading's probability is then that of what the judge chose."""
    direct = {*answers.yes, *answers.no}
    start = inputs["input_ids"].shape[1]
    how = {"do_sample": True, "top_k": 0, "top_p": 1.0, "temperature": 1.0} if sample else {"do_sample": False}
    forcing = [] if skeletons is None else [SkeletonForcing(tokenizer, mode, skeletons, start, direct)]
    out = model.generate(
        **inputs, **how, max_new_tokens=mode.max_tokens + 2, pad_token_id=tokenizer.pad_token_id,
        stopping_criteria=[_Answered(tokenizer, mode.marker, start, direct)], logits_processor=forcing,
        return_dict_in_generate=True, output_logits=True, output_scores=True,
    )  # fmt: skip
    logits = torch.stack(out.logits, 1)  # the judge's own: P(yes) is read from these
    sequences = out.sequences[:, start:]
    # log P of each written token under the forcing (a forced token has P 1): the reading's
    # probability is the product up to its answer
    chosen = torch.stack(out.scores, 1).float().log_softmax(-1)
    logp = chosen.gather(-1, sequences[:, : logits.shape[1], None])[..., 0]
    readings = []
    for row, written in enumerate(sequences.tolist()):
        step = answer_step(tokenizer, written, mode.marker, direct)
        if step is None:
            text = tokenizer.decode(written, skip_special_tokens=True).strip()
            readings.append(Written(tuple(written), text, 0.0, UNANSWERED, False))
            continue
        answer = grouped_p_yes(logits[row, step][None], answers)[0].item()
        text = tokenizer.decode(written[:step], skip_special_tokens=True) if step else ""
        text = text.split(mode.marker)[0].strip().rstrip(".").strip()
        readings.append(Written(tuple(written[:step]), text, logp[row, :step].sum().exp().item(), answer, True))
    return readings


def read_then_answer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    inputs: BatchFeature,
    mode: ReadingMode,
    answers: AnswerTokens,
    p_before: torch.Tensor | None = None,
    skeletons: Sequence[Skeleton | None] | None = None,
    records: Sequence[Record | None] | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """P(yes) of each chat in `inputs` after the judge's own greedy reading (with its `skeletons`
    forced), `hedged` by that reading's probability (times `p_before`, that of what the judge wrote
    earlier in the chat), or its direct answer; and each reading (empty for a direct answer). A chat
    with a record (`records`, one per chat or None) answers after its reading by the evaluator's
    verdict on the facts read (`ReadingMode.rule_verdict`)."""
    readings = write_readings(model, tokenizer, inputs, mode, answers, skeletons=skeletons)
    records = records or [None] * len(readings)
    answered = [float(rule_holds(r.text, record)) if record is not None and r.tokens else r.p_yes for r, record in zip(readings, records)]
    p_reading = torch.tensor([r.p_reading for r in readings])
    p_yes = hedged(torch.tensor(answered), p_reading if p_before is None else p_reading * p_before)
    return torch.where(torch.tensor([r.answered for r in readings]), p_yes, UNANSWERED), [r.text for r in readings]


@torch.no_grad()
def answer_greedily(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, inputs: BatchFeature, max_tokens: int
) -> tuple[list[str], torch.Tensor]:
    """Each chat's greedy answer, to its end of turn or `max_tokens`, and the answer's probability."""
    start = inputs["input_ids"].shape[1]
    out = model.generate(
        **inputs, do_sample=False, max_new_tokens=max_tokens, pad_token_id=tokenizer.pad_token_id,
        return_dict_in_generate=True, output_logits=True,
    )  # fmt: skip
    sequences = out.sequences[:, start:]
    logp = torch.stack(out.logits, 1).float().log_softmax(-1).gather(-1, sequences[..., None])[..., 0]
    ends = model.generation_config.eos_token_id
    ends = {ends} if isinstance(ends, int) else set(ends or ())
    texts, p = [], []
    for row, written in enumerate(sequences.tolist()):
        # a finished row is padded after its end of turn; the end itself counts
        length = next((i + 1 for i, token in enumerate(written) if token in ends), len(written))
        texts.append(tokenizer.decode(written[:length], skip_special_tokens=True).strip())
        p.append(logp[row, :length].sum().exp().item())
    return texts, torch.tensor(p)
