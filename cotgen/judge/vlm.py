"""A transformers vision-language model as a yes/no judge.

Each (image, question) pair becomes one chat: a user turn with the image and the question, then the
assistant's generation prompt. Earlier (question, answer) exchanges can come first; the image then
sits in the first user turn, as when PARM asks "potential" after "clarity" was answered "yes".
P(yes) is read from the next-token logits of one left-padded batched forward pass: the softmax over
two groups, each the logsumexp of the logits of every single-token spelling of "yes" (or "no").
Nothing is sampled, unlike the paper's code, which sampled an answer and read its first token. A
judge whose config marks it as one that reads first (the embedded one) answers after its own greedy
reading instead, hedged by that reading's probability (`cotgen.judge.reading`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image
from transformers import (
    AutoModelForImageTextToText,
    BatchFeature,
    LlavaOnevisionProcessor,
    PreTrainedModel,
    ProcessorMixin,
    Qwen2_5_VLProcessor,
    Qwen2VLProcessor,
)

from cotgen.errors import InputError
from cotgen.judge.answers import answer_tokens, grouped_p_yes
from cotgen.judge.census_views import voted_facts, with_views
from cotgen.judge.count_head import HEAD_FILE as COUNT_FILE
from cotgen.judge.count_head import CountHead, load_count_head
from cotgen.judge.processing import load_processor, save_processor
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.reading import CONFIG_KEY, UNANSWERED, after_reading, answer_greedily, read_then_answer, reading_mode
from cotgen.judge.rule_reasons import numbered_classes, prompt_record, rule_reasons
from cotgen.judge.skeleton import Skeleton, census_facts, skeleton, with_counts, with_facts
from cotgen.judge.where import HEAD_FILE as WHERE_FILE
from cotgen.judge.where import WhereHead, load_where_head, visual_features
from cotgen.models.presets import resolve
from cotgen.prompts import Record

SUPPORTED: dict[str, type[ProcessorMixin]] = {
    "qwen2_vl": Qwen2VLProcessor,
    "qwen2_5_vl": Qwen2_5_VLProcessor,
    "llava_onevision": LlavaOnevisionProcessor,  # the paper's PARM is LLaVA-OneVision-Qwen2-7B
}

Exchange = tuple[str, str]
"""An earlier turn of the conversation: (question, answer)."""


def _check_supported(model_type: str | None, where: str = "judge model") -> None:
    if model_type not in SUPPORTED:
        raise InputError(f"{where}: model_type {model_type!r} is not supported (supported: {', '.join(SUPPORTED)})")


def _conversation(question: str, history: Sequence[Exchange]) -> list[dict]:
    messages = []
    for i, (asked, answer) in enumerate([*history, (question, None)]):
        content = [{"type": "text", "text": asked}]
        if i == 0:
            content.insert(0, {"type": "image"})
        messages.append({"role": "user", "content": content})
        if answer is not None:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


class VLMJudge:
    """Answers yes/no questions about images with a Qwen2-VL, Qwen2.5-VL or LLaVA-OneVision model."""

    def __init__(
        self,
        model: PreTrainedModel,
        processor: ProcessorMixin,
        where: WhereHead | None = None,
        count: CountHead | None = None,
    ):
        _check_supported(getattr(model.config, "model_type", None))
        self.model = model.eval()
        self.processor = processor
        self.answers = answer_tokens(processor.tokenizer)
        self.reading = reading_mode(model)
        """None, or how this judge writes its reading before answering (`cotgen.judge.reading`)."""
        self.where = where
        """The head that finds where each class is, for a reading mode with `rule_where`."""
        self.count = count
        """The head that counts each class, for a reading mode with `rule_count`."""
        self.check_heads()

    def check_heads(self) -> None:
        """Refuse a reading mode with `rule_where` or `rule_count` in a judge that lacks the head."""
        if self.reading is None:
            return
        if self.reading.rule_where and self.where is None:
            raise InputError(f"{CONFIG_KEY}.rule_where: the judge has no where head ({WHERE_FILE} beside its weights)")
        if self.reading.rule_count and self.count is None:
            raise InputError(f"{CONFIG_KEY}.rule_count: the judge has no count head ({COUNT_FILE} beside its weights)")

    def encode(
        self,
        images: Sequence[Image.Image],
        questions: Sequence[str],
        history: Sequence[Sequence[Exchange]] | None = None,
    ) -> BatchFeature:
        """The model inputs for one chat per pair, left-padded, on the model's device (pixels in its dtype).
        `history[i]` lists the exchanges that precede question i."""
        history = [()] * len(questions) if history is None else history
        if not len(images) == len(questions) == len(history):
            raise InputError(
                f"{len(images)} images, {len(questions)} questions, {len(history)} histories: expected one each"
            )
        chats = [_conversation(q, h) for q, h in zip(questions, history)]
        texts = self.processor.apply_chat_template(chats, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(images=list(images), text=texts, padding=True, padding_side="left", return_tensors="pt")
        return inputs.to(self.model.device, dtype=self.model.dtype)

    @torch.no_grad()
    def p_yes(
        self,
        images: Sequence[Image.Image],
        questions: Sequence[str],
        history: Sequence[Sequence[Exchange]] | None = None,
        finished: Sequence[bool] | None = None,
    ) -> torch.Tensor:
        """P(yes) for each (image, question) pair, as a float tensor on the CPU. `finished[i]`: image
        i is a finished image, not a preview of one (None: all are); see `read`."""
        return self.read(images, questions, history, finished)[0]

    @torch.no_grad()
    def read(
        self,
        images: Sequence[Image.Image],
        questions: Sequence[str],
        history: Sequence[Sequence[Exchange]] | None = None,
        finished: Sequence[bool] | None = None,
    ) -> tuple[torch.Tensor, list[str]]:
        """P(yes) for each pair and what the judge read before answering: for a judge that reads
        first (`self.reading`), after its own greedy reading (hedged by its probability); otherwise from
        one forward pass, with empty readings. A judge whose reading mode has a `first` question
        answers in one forward pass what it answers directly, and reads for the rest after it has
        answered that question about the image alone (`_read_after_first`). A judge whose mode has
        `rule_verdict` answers after its reading of a finished image (`finished`, None: all are) by
        the evaluator's verdict on the facts it read: a preview's facts lack what is yet to be drawn."""
        if not questions:
            return torch.empty(0), []
        finished = [True] * len(questions) if finished is None else list(finished)
        if len(finished) != len(questions):
            raise InputError(f"{len(questions)} questions, {len(finished)} finished flags: expected one each")
        inputs = self.encode(images, questions, history)
        if self.reading is not None and not self.reading.first:
            skeletons = self._placed(self._skeletons(questions), questions, images, finished)
            return read_then_answer(self.model, self.processor.tokenizer, inputs, self.reading, self.answers, skeletons=skeletons, records=self._records(questions, finished))
        logits = self.model(**inputs, logits_to_keep=1).logits[:, -1]
        p_yes, readings = grouped_p_yes(logits, self.answers).cpu(), [""] * len(questions)
        if self.reading is not None:  # the chats it does not answer directly: asked its first question first
            direct = torch.tensor([*self.answers.yes, *self.answers.no], device=logits.device)
            rows = (~torch.isin(logits.argmax(-1), direct)).nonzero()[:, 0].tolist()
            if rows:
                history = [()] * len(questions) if history is None else history
                picked = ([items[i] for i in rows] for items in (images, questions, history, finished))
                p_yes[rows], read = self._read_after_first(*picked)
                for i, text in zip(rows, read):
                    readings[i] = text
        return p_yes, readings

    def _read_after_first(
        self, images: Sequence[Image.Image], questions: Sequence[str], history: Sequence[Sequence[Exchange]], finished: Sequence[bool]
    ) -> tuple[torch.Tensor, list[str]]:
        """P(yes) and reading of each pair, read in the chat after the judge's greedy answer to its
        first question about the image alone, hedged by the probability of both."""
        mode, tokenizer = self.reading, self.processor.tokenizer
        seen, where = with_views(images, finished, mode.census_views)
        told, p_told = answer_greedily(self.model, tokenizer, self.encode(seen, [mode.first] * len(seen)), mode.first_tokens)
        skeletons = self._skeletons(questions)
        if mode.first_facts:  # the facts copied from the first answer, which stays out of the chat
            facts = [voted_facts([census_facts(told[j], mode.subjects) for j in views]) for views in where]
            skeletons = [with_facts(sk, f) for sk, f in zip(skeletons, facts)]
            p_told = torch.stack([p_told[views].mean() for views in where])  # the census's, on average over its views
            inputs = self.encode(images, questions, history)
        else:
            inputs = self.encode(images, questions, [((mode.first, answer), *earlier) for answer, earlier in zip(told, history)])
        skeletons = self._placed(skeletons, questions, images, finished)
        return read_then_answer(self.model, tokenizer, inputs, mode, self.answers, p_told, skeletons, self._records(questions, finished))

    def _records(self, questions: Sequence[str], finished: Sequence[bool]) -> list[Record | None] | None:
        """The world's record each question about a finished image quotes, where this judge answers
        by the evaluator's verdict on its reading."""
        if not self.reading.rule_verdict:
            return None
        return [prompt_record(q) if done else None for q, done in zip(questions, finished)]

    def _placed(
        self, skeletons: list[Skeleton | None] | None, questions: Sequence[str], images: Sequence[Image.Image], finished: Sequence[bool]
    ) -> list[Skeleton | None] | None:
        """The skeletons of finished images with the counts a question asks for (two or more of a
        class) as the count head finds them (`rule_count`), and a position question's relation as the
        where head places the classes (`rule_where`); previews, other facts and the classes the where
        head does not find are left to the judge."""
        mode = self.reading
        if not (skeletons and (mode.rule_where or mode.rule_count)):
            return skeletons
        self.check_heads()  # the mode may have been switched on after loading
        numbered = [numbered_classes(q) if mode.rule_count else set() for q in questions]
        rows = [
            i for i, sk in enumerate(skeletons)
            if sk is not None and finished[i] and (numbered[i] or (mode.rule_where and sk.relation is not None))
        ]  # fmt: skip
        if not rows:
            return skeletons
        features = visual_features(self, [images[i] for i in rows])
        placed = list(skeletons)
        if mode.rule_count:
            for i, counts in zip(rows, self.count.counts(features)):
                if numbered[i]:
                    placed[i] = with_counts(placed[i], {cls: n for cls, n in counts.items() if cls in numbered[i]})
        if mode.rule_where:
            for i, probs in zip(rows, self.where.cell_probs(features)):
                if placed[i].relation is not None:
                    placed[i] = replace(placed[i], holds=self.where.holds(probs, *placed[i].relation))
        return placed

    def _skeletons(self, questions: Sequence[str]) -> list[Skeleton | None] | None:
        """The words each question fixes in this judge's reading, forced as it writes (None: it writes freely)."""
        if not self.reading.subjects:
            return None
        return [skeleton(q, self.reading) for q in questions]

    @torch.no_grad()
    def explain(
        self,
        images: Sequence[Image.Image],
        questions: Sequence[str],
        history: Sequence[Sequence[Exchange]] | None = None,
        max_new_tokens: int = 256,
    ) -> list[str]:
        """The greedy answer to each question, without special tokens. A judge that reads first may
        write its reading before the answer ("circle: 1, red. answer: no: expected 2 circles, found 1"):
        the answer is what follows its marker. A judge whose reading mode has `rule_reasons` answers
        by its reading where it can (`_explain_by_rule`)."""
        history = [()] * len(questions) if history is None else history
        texts: list[str | None] = [None] * len(questions)
        if self.reading is not None and self.reading.rule_reasons:
            texts = self._explain_by_rule(images, questions, history)
        rows = [i for i, text in enumerate(texts) if text is None]
        if rows:
            written = self._written([images[i] for i in rows], [questions[i] for i in rows], [history[i] for i in rows], max_new_tokens)
            for i, text in zip(rows, written):
                texts[i] = text
        return texts

    def _written(
        self, images: Sequence[Image.Image], questions: Sequence[str], history: Sequence[Sequence[Exchange]], max_new_tokens: int
    ) -> list[str]:
        """The answers the judge writes itself, greedily (after its reading's marker, for a reading judge)."""
        inputs = self.encode(images, questions, history)
        tokens = self.model.generate(
            **inputs, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=self.processor.tokenizer.pad_token_id
        )
        answers = self.processor.batch_decode(tokens[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        if self.reading is not None:
            answers = [after_reading(a, self.reading) for a in answers]
        return [answer.strip() for answer in answers]

    def _explain_by_rule(
        self, images: Sequence[Image.Image], questions: Sequence[str], history: Sequence[Sequence[Exchange]]
    ) -> list[str | None]:
        """For each question that quotes a prompt of the world's records: "yes" where the judge's
        reading for the outcome question about it answers yes, else "no: " and the evaluator's reasons
        for the facts it read; None where there is no such prompt or its facts give no reason."""
        records = [prompt_record(q) for q in questions]
        rows = [i for i, record in enumerate(records) if record is not None]
        texts: list[str | None] = [None] * len(questions)
        if not rows:
            return texts
        outcome = [JudgePrompts().orm.format(prompt=records[i].prompt) for i in rows]
        p_yes, readings = self.read([images[i] for i in rows], outcome, [history[i] for i in rows])
        for i, p, reading in zip(rows, p_yes.tolist(), readings):
            if p >= UNANSWERED:
                texts[i] = "yes"
            elif reasons := rule_reasons(reading, records[i]):
                texts[i] = "no: " + "; ".join(reasons)
        return texts


def load_judge(path: str | Path = "embedded", dtype: str | torch.dtype = "auto", device: str | torch.device = "cpu") -> VLMJudge:
    """A judge from a local `save_pretrained` folder (model and processor), a preset name
    (`cotgen.models.presets`), a hub id, or "embedded" for the one cotgen ships; never runs remote code."""
    path = resolve(path, "judge")
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a model folder (no config.json)")
    # read the type before loading so an unsupported folder fails fast, whatever its model_type
    model_type = json.loads((path / "config.json").read_text()).get("model_type")
    _check_supported(model_type, str(path))
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).to(device)
    return VLMJudge(model, load_processor(SUPPORTED[model_type], path), load_where_head(path), load_count_head(path))


def save_judge(judge: VLMJudge, path: str | Path) -> None:
    """Write the judge's model and processor (and its heads) to `path`, loadable with `load_judge`."""
    judge.model.save_pretrained(path)
    save_processor(judge.processor, path)
    for head in (judge.where, judge.count):
        if head is not None:
            head.save(path)
