"""The embedded judge's model card (README.md in its folder)."""

from __future__ import annotations

from pathlib import Path

from cotgen.judge.vlm import VLMJudge
from cotgen.machine import describe_machine
from cotgen.prompts import TAGS
from cotgen.train.common.cards import config_section, rate, table_cell
from cotgen.train.judge.config import TrainJudgeConfig
from cotgen.train.judge.examples import ExampleSet
from cotgen.train.judge.model import count_parameters
from cotgen.world.records import JUDGE_VALIDATION_BINDINGS, JUDGE_VALIDATION_COUNTS, JUDGE_VALIDATION_PAIRS

TARGETS = {"orm": 0.92, "potential_first_clear": 0.85}
"""Issue 16's targets for the pooled balanced accuracy (its tag-mean targets: 0.88 and 0.75)."""


def accuracy_table(result: dict) -> str:
    lines = ["| tag | images | evaluator says correct | TPR (yes→yes) | TNR (no→no) | balanced accuracy |", "|---|---|---|---|---|---|"]
    for tag in [t for t in TAGS if t in result] + ["overall"]:
        r = result[tag]
        name = f"**{tag}**" if tag == "overall" else tag
        lines.append(f"| {name} | {r['n']} | {r['positives']} | {rate(r['tpr'])} | {rate(r['tnr'])} | {rate(r['balanced'])} |")
    lines.append(f"| mean over tags with both answers | | | | | {rate(result['tag_mean'])} |")
    return "\n".join(lines)


def summary_table(result: dict) -> str:
    lines = ["| task | examples | yes | balanced accuracy | mean over tags | target |", "|---|---|---|---|---|---|"]
    for task, r in result.items():
        target = f"≥ {TARGETS[task]:.2f}" if task in TARGETS else ""
        lines.append(f"| {task} | {r['overall']['n']} | {r['overall']['positives']} | {rate(r['overall']['balanced'])} | {rate(r['tag_mean'])} | {target} |")
    return "\n".join(lines)


def data_table(sets: dict[str, ExampleSet]) -> str:
    lines = ["| set | source | yes | no |", "|---|---|---|---|"]
    for name, s in sets.items():
        for source, counts in sorted(s.counts().items()):
            lines.append(f"| {name} | {source} | {counts['yes']} | {counts['no']} |")
    return "\n".join(lines)


def reflection_text(cfg: TrainJudgeConfig) -> str:
    if not cfg.reflection_share:
        return "Reflections (`explain`) are not trained (`reflection_share` 0): the judge's free text is not meaningful."
    return (
        "PARM++'s **reflection** (the reflection question, answered in free text by greedy `explain`) is trained "
        f"too, on {cfg.reflection_share:.0%} of the answer-stage steps: the judge answers \"yes\", or \"no: \" and the exact "
        "evaluator's reasons joined by \"; \" (`cotgen.train.judge.reflection.reflection_target`)"
        + (", after its reading of the image, as for the outcome question (`explain` returns what follows the reading)." if cfg.reflection_reads else ".")
        + rule_reasons_text(cfg)
    )


def rule_reasons_text(cfg: TrainJudgeConfig) -> str:
    if not cfg.rule_reasons:
        return ""
    return (
        " It **reflects by rule** (`rule_reasons`, `cotgen.judge.rule_reasons`): for a prompt of the world's records "
        "its reflection is the verdict of its reading for the outcome question and, for a \"no\", the exact evaluator's "
        "reasons for the facts it read (a position reason without where the objects stand, which a reading does not "
        "state); it writes its own reflection only for other prompts and for a \"no\" whose facts hold."
    )


def census_row(stage: dict, cfg: TrainJudgeConfig) -> str:
    """The card's row for the census steps (none for a judge trained without them)."""
    steps = stage["census_steps"]
    if not steps:
        return ""
    d = cfg.data
    pool = [f"{d.census_scenes} renders of prompt-free count scenes"] if d.census_scenes else []
    pool += [f"{d.census_counting_images} generator images of training-split counting records"] if d.census_counting_images else []
    scenes = f" ({d.census_scene_share:.0%} of them on {' and '.join(pool)})" if pool else ""
    return (
        f"\n| of which the census | {steps} | {steps * cfg.batch_size} | | teacher-forced cross-entropy of every class's count and "
        f"colours (`cotgen.train.judge.reading.census_text`) after the census question, on images drawn as the reflections'{scenes} |"
    )


def reading_text(cfg: TrainJudgeConfig) -> str:
    if not cfg.reads:
        return "It answers the outcome question directly: P(yes) from the logits of its first token."
    return (
        "It **reads before it answers** the outcome question (ORM and PRM): it writes what the exact evaluator checks "
        "for the prompt (for each class the prompt names, how many and their colours, largest first; for a position "
        "prompt, whether the relation holds), then \"answer:\" and its answer, and P(yes) is read from the logits "
        "after its own greedy reading, hedged by that reading's probability (P(reading) · (P(yes) − ½) + ½: a yes/no "
        "decision at ½ is the plain answer's, while among images read as matching the surer reading ranks first; "
        "`cotgen.judge.reading`; its config.json's `cotgen_reading`). "
        + ("Clarity and potential it answers directly; reflections by rule (below)." if cfg.rule_reasons else "Clarity, potential and reflections it answers directly.")
        + census_first_text(cfg)
        + rule_verdict_text(cfg)
        + rule_where_text(cfg)
        + rule_count_text(cfg)
    )


def rule_count_text(cfg: TrainJudgeConfig) -> str:
    if not cfg.rule_count:
        return ""
    return (
        " For a question about a finished image whose prompt asks for two or more of a class it **counts with its count "
        "head** (`rule_count`): the count in its reading is what a small head on its frozen visual tokens "
        "(`count_head.safetensors`, fitted after training; per-token features summed over the image, one readout for "
        "every class) finds, forced into its reading."
    )


def rule_where_text(cfg: TrainJudgeConfig) -> str:
    if not cfg.rule_where:
        return ""
    return (
        " For a position question about a finished image it **places the objects** (`rule_where`): whether the relation "
        "holds is GenEval's rule on the cells where its where head (a linear layer on its frozen visual tokens, "
        "`where_head.safetensors`, fitted after training) finds the two classes, forced into its reading."
    )


def rule_verdict_text(cfg: TrainJudgeConfig) -> str:
    if not cfg.rule_verdict:
        return ""
    return (
        " It **answers by rule** (`rule_verdict`): after its reading of a prompt of the world's records, P(yes) is the "
        "exact evaluator's verdict on the facts it read (1 or 0 in place of its learnt answer, which is still trained), "
        "hedged by the reading's probability as above; the judge reads, the evaluator's rules decide."
    )


def census_first_text(cfg: TrainJudgeConfig) -> str:
    if cfg.copy_census:
        return (
            " Before it reads for an outcome question it **asks itself the census** (every class's count and colours, "
            "without the prompt) and **copies** the facts of the question's classes from it into its reading "
            "(`first_facts`; the classes and relation words forced, `cotgen.judge.skeleton`): it writes only the relation "
            "and its answer, the hedge weighing census and reading by their probability."
        )
    if not cfg.census_turn:
        return ""
    return (
        " Before it reads for an outcome question it **asks itself the census** (every class's count and colours, "
        "without the prompt) and reads with its own greedy census in the chat, the hedge weighing both by their "
        f"probability; {cfg.census_turn:.0%} of its outcome examples were taught after the true census."
    )


def compositional_text(cfg: TrainJudgeConfig) -> str:
    if not cfg.data.compositional:
        return ""
    pairs = ", ".join("–".join(sorted(p)) for p in JUDGE_VALIDATION_PAIRS)
    bindings = ", ".join(f"{k} {c}" for k, c in sorted(JUDGE_VALIDATION_BINDINGS))
    counts = ", ".join(f"{n} × {c}" for c, n in sorted(JUDGE_VALIDATION_COUNTS))
    return (
        f" Trained without the prompts that name a judge-validation combination (class pairs {pairs}; bindings "
        f"{bindings}; counts {counts}; `cotgen.world.records.JUDGE_VALIDATION_*`): their examples were left out, so "
        "`bench/judge_heldout.py --validation N --compositional unread` tests it on combinations it never read."
    )


def readings_line(result: dict) -> str:
    if "readings_exact" not in result["orm"]:
        return ""
    return f"\n\nORM readings identical to what the evaluator's reading of the image says for the prompt: | {rate(result['orm']['readings_exact'])} |"


def reflections_section(reflections: dict | None, rule_reasons: bool = False) -> str:
    if reflections is None:
        return "Not measured (`reflection_eval` 0)."
    r = reflections
    how = " The judge reflects by rule (`rule_reasons`): its reading's verdict, and for a \"no\" the evaluator's reasons for the facts it read." if rule_reasons else ""  # fmt: skip
    lines = [
        (
            f"Greedy `explain` with the reflection question on {r['wrong']} held-out images the evaluator calls wrong and "
            f"{r['right']} it calls correct (spread over the tags).{how}"
        ),
        "",
        "| reason recall (evaluator's reasons found verbatim) | wrong images answered \"no…\" | correct images answered \"yes…\" |",
        "|---|---|---|",
        f"| {rate(r['reason_recall'])} | {rate(r['says_no'])} | {rate(r['says_yes'])} |",
        "",
        "| prompt | evaluator's reasons | the judge's reflection |",
        "|---|---|---|",
    ]  # fmt: skip
    lines += [f"| {s['prompt']} | {'; '.join(s['reasons'])} | {table_cell(s['reflection']) or '(empty)'} |" for s in r["samples"]]
    return "\n".join(lines)


def weighting(tag_weights: dict[str, float], prefix_subset: int = 0) -> str:
    """How a stage's batches weigh the tags and which prefixes they draw, as the card says it ("" when
    alike and all)."""
    tags = "; tags drawn " + ", ".join(f"{tag} ×{w:g}" for tag, w in tag_weights.items()) if tag_weights else ""
    return tags + (f"; prefixes of the first {prefix_subset} prefix records only" if prefix_subset else "")


def parts_rows(cfg: TrainJudgeConfig, stage: dict) -> str:
    """A row per answer stage when there were several (`continuations`)."""
    rows = ""
    for k, (part, config) in enumerate(zip(stage.get("parts", []), cfg.stages())):
        schedule = f"AdamW lr {config.lr}, warm-up {config.warmup_steps} steps, cosine over {f'{config.steps} steps' if config.steps else f'{config.minutes:g} minutes'}{weighting(config.tag_weights, config.prefix_subset)}"
        vision = part["vision"]["steps"]
        after = f", after a vision stage of {vision} steps ({part['vision']['samples_seen']} images) for that head" if k and vision else ""
        what = schedule if k == 0 else f"continued: a fresh perception head and optimiser{after}, {schedule}"
        rows += f"\n| answers, part {k + 1} | {part['steps']} | {part['samples_seen']} | {part['minutes']} | {what} |"
    return rows


def heldout_accuracy_section(result: dict, images: int, samples: int, seed: int, prefix_records: int) -> str:
    """The card's held-out accuracy: every task pooled, then ORM and potential per tag."""
    base = result["orm"]["overall"]["positives"] / max(1, result["orm"]["overall"]["n"])
    return f"""Balanced accuracy (the mean of the true-positive and true-negative rates; the judge says "yes" when
P(yes) ≥ 0.5) on the generator's images of held-out records. The pooled figure rewards knowing
which tags the generator usually gets right, which the prompt's text alone tells; the mean over
tags with both answers does not, so read it as the measure of whether the judge looks at the image.

{summary_table(result)}{readings_line(result)}

### ORM per tag
The {images} images: {samples} per record of the evaluation set (553 records), seed {seed}, each asked
the ORM question with its own prompt. Base rate (share the evaluator calls correct): **{base:.3f}**.

{accuracy_table(result["orm"])}

### Potential at the first clear step, per tag
Prefixes of {prefix_records} held-out records, at the first checkpoint step whose rollouts agree.

{accuracy_table(result["potential_first_clear"])}"""


def write_card(
    folder: Path, cfg: TrainJudgeConfig, judge: VLMJudge, stage: dict, sets: dict[str, ExampleSet], result: dict,
    reflections: dict | None, data_minutes: float,
) -> None:  # fmt: skip
    m = cfg.model
    heldout = sets["heldout"]
    grid = m.image_size // m.patch_size
    text = f"""# cotgen embedded judge

A tiny Qwen2-VL (`Qwen2VLForConditionalGeneration`) trained from scratch on the shapes world by
`jobs/train_judge.py`. Load it with `cotgen.judge.load_judge(path)` (or as any Qwen2-VL folder).
Tasks, each a yes/no question answered by P(yes) from the "yes"/"no" logits, in the wording of
`JudgePrompts`: **ORM** (the outcome question on final images), **PRM** (the outcome question on a
partial image: can this prefix still succeed?), PARM's **clarity** and **potential** (the latter as
the follow-up turn after clarity was answered "yes"). {reading_text(cfg)} {reflection_text(cfg)}

- Vision: patch {m.patch_size} px, {grid}×{grid} patches of a {m.image_size}×{m.image_size} image merged {m.merge_size}×{m.merge_size} into {(grid // m.merge_size) ** 2} tokens; ViT width {m.vision_dim}, depth {m.vision_depth}, {m.vision_heads} heads.
- Language model: Qwen2, hidden {m.hidden_size}, {m.layers} layers, {m.heads} heads ({m.kv_heads} key/value), MLP {m.intermediate_size}.
- Tokenizer: byte-level BPE, {len(judge.processor.tokenizer)} tokens, trained on every judge question for every world prompt, the answers and the evaluator's reasons.
- Parameters: {count_parameters(judge):,}.
- Learnt the images of generator `{cfg.data.generator}`, weights digest `{getattr(judge.model.config, "cotgen_generator", None) and judge.model.config.cotgen_generator["digest"]}` (config.json's `cotgen_generator`): cotgen warns when this judge verifies another generator's images.
- Trained on: {describe_machine()}.

## Training
{f"Continued from `{cfg.init_from}`." if cfg.init_from else f"Initial weights random (std {m.init_std})."} Data: {data_minutes:.1f} minutes to build or load.{compositional_text(cfg)}

| stage | steps | samples | minutes | what |
|---|---|---|---|---|
| vision | {stage['vision']['steps']} | {stage['vision']['samples_seen']} | {stage['vision']['minutes']} | vision tower + {'a head tied to the word embeddings' if cfg.centre_head == 'words' else 'linear head'}: what is centred in each visual token's cell (an object's colour and class, an unrecognised blob, or nothing) as the evaluator reads the image; {cfg.vision.generated_share:.0%} the generator's images of training records, the rest fresh renders, half broken (head kept for the next stage, then dropped) |
| answers | {stage['steps']} | {stage['samples_seen']} | {stage['minutes']} | whole model: teacher-forced cross-entropy of each answer ({"the reading, then the answer, for ORM and PRM; the answer token for clarity and potential" if cfg.reads else "the answer token"}) with each answer's yes/no token counted {1 + cfg.answer_weight:g} times, plus {cfg.centre_weight} × the vision stage's loss on the same images; batches balanced between "yes" and "no" within each task, tag and source ({cfg.data.generated_share:.0%} ORM on generated images, {cfg.data.prefix_share:.0%} prefix tasks, the rest ORM on renders{weighting(cfg.tag_weights, cfg.prefix_subset)}); AdamW lr {cfg.lr}{", then as below" if cfg.continuations else ""} |{parts_rows(cfg, stage)}
| of which reflections | {stage['reflection_steps']} | {stage['reflection_steps'] * cfg.batch_size} | | teacher-forced cross-entropy of the reflection's tokens and end of turn, each example's mean; ORM examples balanced as above ({cfg.data.generated_share:.0%} on generated images, the rest on renders) |{census_row(stage, cfg)}

Examples (every label is the exact evaluator's verdict on an image; "/swap": the image asked about
another training-split record; "/stepK": a prefix after checkpoint step K, labelled from
{cfg.data.prefix_rollouts} rollouts — PRM "yes" if any passes, clarity "yes" if all agree, potential
(clear prefixes only) "yes" if they pass):

{data_table(sets)}

## Held-out accuracy
{heldout_accuracy_section(result, len(heldout), cfg.data.heldout_samples, cfg.data.heldout_seed, cfg.data.heldout_prefix_records)}

## Held-out reflections
{reflections_section(reflections, cfg.rule_reasons)}

{config_section(cfg)}"""
    (folder / "README.md").write_text(text)
