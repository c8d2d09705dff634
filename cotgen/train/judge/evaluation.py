"""The judge on its held-out sets: balanced accuracy per task, and its reflections' reasons."""

from __future__ import annotations

from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.vlm import VLMJudge
from cotgen.train.judge.config import TrainJudgeConfig
from cotgen.train.judge.examples import ANSWERS, Example, ExampleSet, spread
from cotgen.train.judge.metrics import rates
from cotgen.train.judge.reading import holds_facts, reading_text
from cotgen.train.judge.reflection import reflection_scores
from cotgen.train.judge.rollouts import PREFIX_TASKS, first_clear_step
from cotgen.world.records import records_by_prompt

EXPLAIN_TOKENS = 192
"""Greedy tokens per held-out reflection: well past the longest target (a reason is at most ~16 tokens,
a reading before it, with `reflection_reads`, at most ~30)."""
REFLECTION_SAMPLES = 4
"""Held-out reflections on wrong images shown in the card."""
REFLECTION_RATES = ("reason_recall", "says_no", "says_yes")


def judge_read(judge: VLMJudge, examples: ExampleSet, batch: int, finished: bool = True) -> tuple[list[float], list[str]]:
    """P(yes) of every example and what the judge read before answering (`VLMJudge.read`); `finished`:
    the images are finished ones (False: previews, as a prefix set's)."""
    judge.model.eval()
    p_yes, readings = [], []
    for start in range(0, len(examples), batch):
        chunk = examples.examples[start : start + batch]
        images, questions, history = [examples.image(e.image) for e in chunk], [e.question for e in chunk], [e.history for e in chunk]
        p, read = judge.read(images, questions, history, [finished] * len(chunk))
        p_yes += p.tolist()
        readings += read
    return p_yes, readings


def judge_p_yes(judge: VLMJudge, examples: ExampleSet, batch: int, finished: bool = True) -> list[float]:
    return judge_read(judge, examples, batch, finished)[0]


def readings_exact(examples: ExampleSet, readings: list[str]) -> float:
    """The share of the judge's readings that state every fact the evaluator's reading of the image
    says for the example's prompt (`reading_text`; a census reading states the other classes too)."""
    expected = [reading_text(examples.reading(e.image), records_by_prompt()[e.prompt]) for e in examples.examples]
    return sum(holds_facts(r, x) for r, x in zip(readings, expected)) / max(1, len(expected))


def evaluate(judge: VLMJudge, heldout: ExampleSet, heldout_prefixes: ExampleSet, batch: int) -> dict:
    """Held-out accuracy per task: ORM on final images; PRM, clarity and potential on prefixes, and
    potential at each path's first clear step (where PARM asks it). A reading judge's ORM result also
    has `readings_exact`."""
    p_yes, readings = judge_read(judge, heldout, batch)
    result = {"orm": rates(list(zip(p_yes, heldout.examples)))}
    if judge.reading is not None:
        result["orm"]["readings_exact"] = readings_exact(heldout, readings)
    pairs = list(zip(judge_p_yes(judge, heldout_prefixes, batch, finished=False), heldout_prefixes.examples))
    for task in PREFIX_TASKS:
        result[task] = rates([(p, e) for p, e in pairs if e.task == task])
    first = first_clear_step(heldout_prefixes.examples)
    result["potential_first_clear"] = rates([pairs[i] for i in sorted(first)])
    return result


def explain_each(
    judge: VLMJudge, images: ExampleSet, examples: list[Example], questions: list[str], batch: int, max_new_tokens: int = EXPLAIN_TOKENS
) -> list[str]:
    """The judge's greedy free-text answer to each question about its example's image, in batches."""
    judge.model.eval()
    texts = []
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        texts += judge.explain([images.image(e.image) for e in chunk], questions[start : start + batch], max_new_tokens=max_new_tokens)
    return texts


def reflect(judge: VLMJudge, images: ExampleSet, examples: list[Example], batch: int, prompts: JudgePrompts) -> list[str]:
    """The judge's greedy reflection on each example's image, asked about its prompt."""
    return explain_each(judge, images, examples, [prompts.reflection.format(prompt=e.prompt) for e in examples], batch)


def evaluate_reflections(judge: VLMJudge, heldout: ExampleSet, n: int, batch: int, prompts: JudgePrompts) -> dict:
    """`reflection_scores` of the greedy reflections on up to n held-out images the evaluator calls
    wrong and n it calls correct, spread over the set (tags in order); and a few of the former."""
    examples = [e for a in ANSWERS for e in spread([e for e in heldout.examples if e.answer == a], n)]
    texts = reflect(judge, heldout, examples, batch, prompts)
    scores = reflection_scores(texts, [e.answer for e in examples], [e.reasons for e in examples])
    wrong = [(e, t) for e, t in zip(examples, texts) if e.answer == "no"]
    scores["samples"] = [{"prompt": e.prompt, "reasons": list(e.reasons), "reflection": t} for e, t in spread(wrong, REFLECTION_SAMPLES)]
    return scores


def evaluate_all(cfg: TrainJudgeConfig, judge: VLMJudge, heldout: ExampleSet, heldout_prefixes: ExampleSet) -> tuple[dict, dict | None]:
    """`evaluate`'s accuracies, and `evaluate_reflections` unless reflection_eval is 0."""
    result = evaluate(judge, heldout, heldout_prefixes, cfg.eval_batch)
    if not cfg.reflection_eval:
        return result, None
    return result, evaluate_reflections(judge, heldout, cfg.reflection_eval, cfg.eval_batch, cfg.prompts)


def headline(result: dict, reflections: dict | None = None) -> dict:
    """Each task's pooled and tag-mean balanced accuracy, and the reflections' rates, for the log."""
    accuracies = {f"{task}{suffix}": r["overall"]["balanced"] if suffix == "" else r["tag_mean"] for task, r in result.items() for suffix in ("", "_tag_mean")}
    accuracies |= {"orm_readings_exact": result["orm"]["readings_exact"]} if "readings_exact" in result["orm"] else {}
    return accuracies | ({f"reflection_{k}": reflections[k] for k in REFLECTION_RATES} if reflections else {})
