"""Train the embedded judge: a tiny Qwen2-VL that answers the ORM, PRM and PARM questions about
shapes-world images.

    python jobs/train_judge.py --config jobs/configs/judge.yaml [key=value ...]

1. Data (`cotgen.judge.data`, `cotgen.judge.rollouts`; cached under <out>/data so a rerun reuses it):
   rendered training scenes, half broken; the embedded generator's images of training records; the
   previews of its path prefixes at every checkpoint step, labelled from rollouts (PRM, clarity,
   potential); and, as test sets, the same for held-out records. Every label is the exact
   evaluator's verdict on an image.
2. Model (`cotgen.judge.embedded.build_judge`): a random Qwen2-VL with a tokenizer trained on the
   judge's questions; or `init_from` a judge folder to continue training.
3. Vision stage: the vision tower alone learns, from rendered scenes whose objects are known, the
   colour and shape of the object in each of its merged visual tokens (a linear head, dropped after).
   Trained end to end from the yes/no answer alone, a model this small hardly starts to look at
   the image within a CPU budget.
4. Answer stage: AdamW on the cross-entropy of the answer token ("yes" or "no") at the assistant's
   answer position, the chats built by `VLMJudge.encode` exactly as at inference (potential as the
   follow-up turn after clarity); batches balanced between "yes" and "no" within each task, tag and
   data source; a wall-clock budget. A share `reflection_share` of the steps trains PARM++'s
   reflection instead (`cotgen.judge.reflection`): ORM examples of the renders and generated images
   asked the reflection question, the answer "yes" or "no: " + the evaluator's reasons, by
   teacher-forced token cross-entropy.
5. Held-out balanced accuracy per task (P(yes) ≥ 0.5 from `VLMJudge.p_yes`), and the greedy
   reflections' reason recall on `reflection_eval` wrong and correct held-out images, every
   `eval_every` steps and at the end; the judge is saved to <out>/judge with a model card (README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import transformers

from cotgen.config import check_device, load_config, save_config
from cotgen.errors import InputError
from cotgen.judge import VLMJudge, load_judge, save_judge
from cotgen.judge.data import (
    ANSWERS,
    CELL_COLORS,
    CELL_SHAPES,
    BalancedSampler,
    Example,
    ExampleSet,
    JudgeData,
    balanced_accuracy,
    build_dataset,
    cell_batch,
    spread,
)  # fmt: skip
from cotgen.judge.embedded import JudgeModel, build_judge, count_parameters
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.reflection import reflection_loss, reflection_scores, reflection_target
from cotgen.judge.rollouts import PREFIX_TASKS, first_clear_step
from cotgen.prompts import TAGS
from cotgen.machine import describe_machine


@dataclass
class VisionStage:
    minutes: float = 4.0
    """Wall-clock budget of the vision stage (0 skips it)."""
    batch_size: int = 32
    lr: float = 1e-3
    random_scene_rate: float = 0.3
    """Share of prompt-free random scenes among the rendered training scenes."""
    degrade_rate: float = 0.3
    """Share of rendered scenes passed through a random degradation."""


@dataclass
class TrainJudgeConfig:
    out: str = "runs/judge"
    """Output folder: data/ (cached examples), judge/ (the model and its card), config.yaml, log.jsonl."""
    seed: int = 0
    threads: int = 1
    """torch CPU threads (on a shared machine a second thread can make a step ten times slower)."""
    device: str = "cpu"
    """Where the judge trains: cpu or cuda (the data, generator images included, are made on the CPU)."""
    model: JudgeModel = field(default_factory=JudgeModel)
    data: JudgeData = field(default_factory=JudgeData)
    vision: VisionStage = field(default_factory=VisionStage)
    prompts: JudgePrompts = field(default_factory=JudgePrompts)
    """The questions the judge is trained (and will be asked) with."""
    init_from: str | None = None
    """Continue training this judge folder instead of building a fresh model."""
    batch_size: int = 32
    """Answer-stage batch size."""
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    minutes: float = 30.0
    """Wall-clock budget of the answer stage (the learning rate decays to 10 % over it); data and the
    vision stage are extra."""
    log_every: int = 25
    """Steps between progress lines."""
    eval_every: int = 500
    """Steps between held-out evaluations (and checkpoints)."""
    eval_batch: int = 64
    reflection_share: float = 0.15
    """Share of the answer-stage steps whose batch trains reflections instead of yes/no answers: ORM
    examples from the renders and generated images (in the ratio of data.generated_share), balanced
    as the answer batches are, asked the reflection question (0: reflections are not trained)."""
    reflection_eval: int = 100
    """Held-out images the evaluator calls wrong, and as many it calls correct, whose greedy
    reflections are scored at each evaluation (0: none)."""

    def __post_init__(self) -> None:
        check_device(self.device)
        for name in ("threads", "batch_size", "warmup_steps", "log_every", "eval_every", "eval_batch"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.minutes <= 0 or self.lr <= 0:
            raise InputError("minutes and lr: must be positive")
        if not 0.0 <= self.reflection_share <= 1.0:
            raise InputError(f"reflection_share: must be within [0, 1], got {self.reflection_share}")
        if self.reflection_eval < 0:
            raise InputError(f"reflection_eval: must be at least 0, got {self.reflection_eval}")


def log(out: Path, **record) -> None:
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()), flush=True)
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def answer_id(judge: VLMJudge, word: str) -> int:
    ids = judge.processor.tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise InputError(f"the judge's tokenizer writes {word!r} as {len(ids)} tokens, expected one")
    return ids[0]


def answer_logits(judge: VLMJudge, batch: list) -> torch.Tensor:
    """Next-token logits after the assistant's generation prompt, one row per (set, example)."""
    images = [s.image(e.image) for s, e in batch]
    inputs = judge.encode(images, [e.question for _, e in batch], [e.history for _, e in batch])
    return judge.model(**inputs, logits_to_keep=1).logits[:, -1]


def answer_loss(judge: VLMJudge, batch: list, targets: dict[str, int]) -> tuple[torch.Tensor, float]:
    """Cross-entropy of the answer token, and the share of the batch whose "yes" logit is on the right
    side of its "no" logit."""
    target = torch.tensor([targets[e.answer] for _, e in batch], device=judge.model.device)
    logits = answer_logits(judge, batch)
    hits = (logits[:, targets["yes"]] >= logits[:, targets["no"]]).eq(target == targets["yes"]).float().mean().item()
    return F.cross_entropy(logits.float(), target), hits


def batch_reflection_loss(judge: VLMJudge, batch: list, prompts: JudgePrompts) -> torch.Tensor:
    """`reflection_loss` of ORM examples asked the reflection question about their own prompt."""
    images = [s.image(e.image) for s, e in batch]
    questions = [prompts.reflection.format(prompt=e.prompt) for _, e in batch]
    return reflection_loss(judge, images, questions, [reflection_target(e.answer, e.reasons) for _, e in batch])


def judge_p_yes(judge: VLMJudge, examples: ExampleSet, batch: int) -> list[float]:
    judge.model.eval()
    p_yes = []
    for start in range(0, len(examples), batch):
        chunk = examples.examples[start : start + batch]
        p_yes += judge.p_yes([examples.image(e.image) for e in chunk], [e.question for e in chunk], [e.history for e in chunk]).tolist()
    return p_yes


def rates(pairs: list[tuple[float, Example]]) -> dict:
    """Balanced accuracy (P(yes) ≥ 0.5) overall, per tag and averaged over tags."""
    result = {"overall": balanced_accuracy([p for p, _ in pairs], [e.answer for _, e in pairs])}
    by_tag = defaultdict(list)
    for p, e in pairs:
        by_tag[e.tag].append((p, e.answer))
    for tag in TAGS:
        if by_tag[tag]:
            result[tag] = balanced_accuracy(*zip(*by_tag[tag]))
    result["tag_mean"] = tag_mean(result)
    return result


def evaluate(judge: VLMJudge, heldout: ExampleSet, heldout_prefixes: ExampleSet, batch: int) -> dict:
    """Held-out accuracy per task: ORM on final images; PRM, clarity and potential on prefixes, and
    potential at each path's first clear step (where PARM asks it)."""
    result = {"orm": rates(list(zip(judge_p_yes(judge, heldout, batch), heldout.examples)))}
    pairs = list(zip(judge_p_yes(judge, heldout_prefixes, batch), heldout_prefixes.examples))
    for task in PREFIX_TASKS:
        result[task] = rates([(p, e) for p, e in pairs if e.task == task])
    first = first_clear_step(heldout_prefixes.examples)
    result["potential_first_clear"] = rates([pairs[i] for i in sorted(first)])
    return result


EXPLAIN_TOKENS = 128
"""Greedy tokens per held-out reflection: well past the longest target (a reason is at most ~16 tokens)."""
REFLECTION_SAMPLES = 4
"""Held-out reflections on wrong images shown in the card."""


def evaluate_reflections(judge: VLMJudge, heldout: ExampleSet, n: int, batch: int, prompts: JudgePrompts) -> dict:
    """`reflection_scores` of the greedy reflections on up to n held-out images the evaluator calls
    wrong and n it calls correct, spread over the set (tags in order); and a few of the former."""
    examples = [e for a in ANSWERS for e in spread([e for e in heldout.examples if e.answer == a], n)]
    judge.model.eval()
    texts = []
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        questions = [prompts.reflection.format(prompt=e.prompt) for e in chunk]
        texts += judge.explain([heldout.image(e.image) for e in chunk], questions, max_new_tokens=EXPLAIN_TOKENS)
    scores = reflection_scores(texts, [e.answer for e in examples], [e.reasons for e in examples])
    wrong = [(e, t) for e, t in zip(examples, texts) if e.answer == "no"]
    scores["samples"] = [{"prompt": e.prompt, "reasons": list(e.reasons), "reflection": t} for e, t in spread(wrong, REFLECTION_SAMPLES)]
    return scores


def evaluate_all(cfg: TrainJudgeConfig, judge: VLMJudge, heldout: list[ExampleSet]) -> tuple[dict, dict | None]:
    """`evaluate`'s accuracies, and `evaluate_reflections` unless reflection_eval is 0."""
    result = evaluate(judge, *heldout, cfg.eval_batch)
    if not cfg.reflection_eval:
        return result, None
    return result, evaluate_reflections(judge, heldout[0], cfg.reflection_eval, cfg.eval_batch, cfg.prompts)


def tag_mean(result: dict) -> float | None:
    """Mean balanced accuracy of the tags that have both answers. Unlike the pooled figure it gains
    nothing from knowing which tags the generator usually gets right (the prompt's text alone)."""
    rates = [result[t]["balanced"] for t in TAGS if t in result and result[t]["tpr"] is not None and result[t]["tnr"] is not None]
    return float(np.mean(rates)) if rates else None


def pretrain_vision(cfg: TrainJudgeConfig, judge: VLMJudge, out: Path) -> dict:
    """The vision tower and a throwaway linear head learn each merged visual token's object colour
    and shape (cross-entropy on both) from freshly rendered training scenes."""
    s = cfg.vision
    visual = judge.model.model.visual
    cells = cfg.model.image_size // (cfg.model.patch_size * cfg.model.merge_size)
    head = torch.nn.Linear(judge.model.config.text_config.hidden_size, len(CELL_COLORS) + len(CELL_SHAPES)).to(judge.model.device)
    params = [*visual.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=s.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng([cfg.seed, 11])
    step, start, hits = 0, time.time(), []
    visual.train()
    finished = False
    while not finished:
        images, colors, shapes = cell_batch(s.batch_size, cells, rng, s.random_scene_rate, s.degrade_rate)
        pixels = judge.processor.image_processor(images, return_tensors="pt").to(judge.model.device)
        colors, shapes = colors.to(judge.model.device), shapes.to(judge.model.device)
        logits = head(visual(pixels["pixel_values"].to(judge.model.dtype), grid_thw=pixels["image_grid_thw"]).pooler_output)
        color_logits, shape_logits = logits[:, : len(CELL_COLORS)], logits[:, len(CELL_COLORS) :]
        loss = F.cross_entropy(color_logits.float(), colors) + F.cross_entropy(shape_logits.float(), shapes)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        occupied = colors > 0
        hits.append(((color_logits.argmax(-1) == colors) & (shape_logits.argmax(-1) == shapes))[occupied].float().mean().item())
        finished = time.time() - start >= s.minutes * 60
        if step % cfg.log_every == 0 or finished:  # the last step too, however few there were
            log(out, stage="vision", step=step, seconds=round(time.time() - start), loss=loss.item(), cell_acc=float(np.mean(hits)))
            hits = []
    judge.model.eval()
    return {"steps": step, "minutes": round((time.time() - start) / 60, 1), "samples_seen": step * s.batch_size}


def train(cfg: TrainJudgeConfig, judge: VLMJudge, train_sets: list[ExampleSet], heldout: list[ExampleSet], out: Path) -> dict:
    rng = np.random.default_rng([cfg.seed, 7])
    d = cfg.data
    renders, generated, prefixes = train_sets
    sampler = BalancedSampler([(renders, 1 - d.generated_share - d.prefix_share), (generated, d.generated_share), (prefixes, d.prefix_share)], rng)
    # its own generator: with reflections off, the answer batches are those of a run without them
    reflect_rng = np.random.default_rng([cfg.seed, 8])
    reflections = BalancedSampler([(renders, 1 - d.generated_share), (generated, d.generated_share)], reflect_rng) if cfg.reflection_share > 0 else None
    targets = {a: answer_id(judge, a) for a in ANSWERS}
    model = judge.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, reflection_steps, start, best = 0, 0, time.time(), None
    window = {"loss": [], "train_acc": [], "reflection_loss": []}
    while (elapsed := time.time() - start) < cfg.minutes * 60:
        progress = elapsed / (cfg.minutes * 60)
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress)))
        model.train()
        if reflections is not None and reflect_rng.random() < cfg.reflection_share:
            loss = batch_reflection_loss(judge, reflections.draw(cfg.batch_size), cfg.prompts)
            window["reflection_loss"].append(loss.item())
            reflection_steps += 1
        else:
            loss, hits = answer_loss(judge, sampler.draw(cfg.batch_size), targets)
            window["loss"].append(loss.item())
            window["train_acc"].append(hits)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % cfg.log_every == 0 or time.time() - start >= cfg.minutes * 60:  # and the last step
            means = {k: float(np.mean(v)) for k, v in window.items() if v}
            log(out, stage="answers", step=step, seconds=round(time.time() - start), **means, lr=optimizer.param_groups[0]["lr"])
            window = {k: [] for k in window}
        if step % cfg.eval_every == 0:
            result, reflected = evaluate_all(cfg, judge, heldout)
            log(out, stage="answers", step=step, seconds=round(time.time() - start), **headline(result, reflected))
            save_judge(judge, out / "judge")  # a checkpoint to look at or continue from
            best = max(best or 0.0, result["orm"]["overall"]["balanced"] or 0.0)
    model.eval()
    minutes = round((time.time() - start) / 60, 1)
    return {"steps": step, "reflection_steps": reflection_steps, "minutes": minutes, "samples_seen": step * cfg.batch_size, "best_periodic": best}


REFLECTION_RATES = ("reason_recall", "says_no", "says_yes")


def headline(result: dict, reflections: dict | None = None) -> dict:
    """Each task's pooled and tag-mean balanced accuracy, and the reflections' rates, for the log."""
    accuracies = {f"{task}{suffix}": r["overall"]["balanced"] if suffix == "" else r["tag_mean"] for task, r in result.items() for suffix in ("", "_tag_mean")}
    return accuracies | ({f"reflection_{k}": reflections[k] for k in REFLECTION_RATES} if reflections else {})


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def accuracy_table(result: dict) -> str:
    lines = ["| tag | images | evaluator says correct | TPR (yes→yes) | TNR (no→no) | balanced accuracy |", "|---|---|---|---|---|---|"]
    for tag in [t for t in TAGS if t in result] + ["overall"]:
        r = result[tag]
        name = f"**{tag}**" if tag == "overall" else tag
        lines.append(f"| {name} | {r['n']} | {r['positives']} | {_rate(r['tpr'])} | {_rate(r['tnr'])} | {_rate(r['balanced'])} |")
    lines.append(f"| mean over tags with both answers | | | | | {_rate(result['tag_mean'])} |")
    return "\n".join(lines)


TARGETS = {"orm": 0.90, "potential_first_clear": 0.80}


def summary_table(result: dict) -> str:
    lines = ["| task | examples | yes | balanced accuracy | mean over tags | target |", "|---|---|---|---|---|---|"]
    for task, r in result.items():
        target = f"≥ {TARGETS[task]:.2f}" if task in TARGETS else ""
        lines.append(f"| {task} | {r['overall']['n']} | {r['overall']['positives']} | {_rate(r['overall']['balanced'])} | {_rate(r['tag_mean'])} | {target} |")
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
        "evaluator's reasons joined by \"; \" (`cotgen.judge.reflection.reflection_target`)."
    )


def reflections_section(reflections: dict | None) -> str:
    if reflections is None:
        return "Not measured (`reflection_eval` 0)."
    r = reflections
    lines = [
        f"Greedy `explain` with the reflection question on {r['wrong']} held-out images the evaluator calls wrong and "
        f"{r['right']} it calls correct (spread over the tags).",
        "",
        "| reason recall (evaluator's reasons found verbatim) | wrong images answered \"no…\" | correct images answered \"yes…\" |",
        "|---|---|---|",
        f"| {_rate(r['reason_recall'])} | {_rate(r['says_no'])} | {_rate(r['says_yes'])} |",
        "",
        "| prompt | evaluator's reasons | the judge's reflection |",
        "|---|---|---|",
    ]  # fmt: skip
    lines += [f"| {s['prompt']} | {'; '.join(s['reasons'])} | {_cell(s['reflection']) or '(empty)'} |" for s in r["samples"]]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Generated text as one markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def write_card(folder: Path, cfg: TrainJudgeConfig, judge: VLMJudge, stage: dict, sets: dict[str, ExampleSet], result: dict, reflections: dict | None, data_minutes: float) -> None:
    m = cfg.model
    heldout = sets["heldout"]
    base = result["orm"]["overall"]["positives"] / max(1, result["orm"]["overall"]["n"])
    grid = m.image_size // m.patch_size
    text = f"""# cotgen embedded judge

A tiny Qwen2-VL (`Qwen2VLForConditionalGeneration`) trained from scratch on the shapes world by
`jobs/train_judge.py`. Load it with `cotgen.judge.load_judge(path)` (or as any Qwen2-VL folder).
Tasks, each a yes/no question answered by P(yes) from the "yes"/"no" logits, in the wording of
`JudgePrompts`: **ORM** (the outcome question on final images), **PRM** (the outcome question on a
partial image: can this prefix still succeed?), PARM's **clarity** and **potential** (the latter as
the follow-up turn after clarity was answered "yes"). {reflection_text(cfg)}

- Vision: patch {m.patch_size} px, {grid}×{grid} patches of a {m.image_size}×{m.image_size} image merged {m.merge_size}×{m.merge_size} into {(grid // m.merge_size) ** 2} tokens; ViT width {m.vision_dim}, depth {m.vision_depth}, {m.vision_heads} heads.
- Language model: Qwen2, hidden {m.hidden_size}, {m.layers} layers, {m.heads} heads ({m.kv_heads} key/value), MLP {m.intermediate_size}.
- Tokenizer: byte-level BPE, {len(judge.processor.tokenizer)} tokens, trained on every judge question for every world prompt, the answers and the evaluator's reasons.
- Parameters: {count_parameters(judge):,}.
- Trained on: {describe_machine()}.

## Training
{f"Continued from `{cfg.init_from}`." if cfg.init_from else f"Initial weights random (std {m.init_std})."} Data: {data_minutes:.1f} minutes to build or load.

| stage | steps | samples | minutes | what |
|---|---|---|---|---|
| vision | {stage['vision']['steps']} | {stage['vision']['samples_seen']} | {stage['vision']['minutes']} | vision tower + linear head: colour and shape of the object in each merged visual token, on rendered scenes (head dropped) |
| answers | {stage['steps']} | {stage['samples_seen']} | {stage['minutes']} | whole model: cross-entropy of the answer token; batches balanced between "yes" and "no" within each task, tag and source ({cfg.data.generated_share:.0%} ORM on generated images, {cfg.data.prefix_share:.0%} prefix tasks, the rest ORM on renders); AdamW lr {cfg.lr} |
| of which reflections | {stage['reflection_steps']} | {stage['reflection_steps'] * cfg.batch_size} | | teacher-forced cross-entropy of the reflection's tokens and end of turn, each example's mean; ORM examples balanced as above ({cfg.data.generated_share:.0%} on generated images, the rest on renders) |

Examples (every label is the exact evaluator's verdict on an image; "/swap": the image asked about
another training-split record; "/stepK": a prefix after checkpoint step K, labelled from
{cfg.data.prefix_rollouts} rollouts — PRM "yes" if any passes, clarity "yes" if all agree, potential
(clear prefixes only) "yes" if they pass):

{data_table(sets)}

## Held-out accuracy
Balanced accuracy (the mean of the true-positive and true-negative rates; the judge says "yes" when
P(yes) ≥ 0.5) on the generator's images of held-out records. The pooled figure rewards knowing
which tags the generator usually gets right, which the prompt's text alone tells; the mean over
tags with both answers does not, so read it as the measure of whether the judge looks at the image.

{summary_table(result)}

### ORM per tag
The {len(heldout)} images: {cfg.data.heldout_samples} per record of the evaluation set (553 records), seed {cfg.seed}, each asked
the ORM question with its own prompt. Base rate (share the evaluator calls correct): **{base:.3f}**.

{accuracy_table(result["orm"])}

### Potential at the first clear step, per tag
Prefixes of {cfg.data.heldout_prefix_records} held-out records, at the first checkpoint step whose rollouts agree.

{accuracy_table(result["potential_first_clear"])}

## Held-out reflections
{reflections_section(reflections)}

## Config
```yaml
{json.dumps(asdict(cfg), indent=2)}
```
"""
    (folder / "README.md").write_text(text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML config (defaults apply where it is silent)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. minutes=5 data.generated_images=500")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(TrainJudgeConfig, args.config, args.overrides)
    except InputError as err:
        print(f"train_judge: error: {err}", file=sys.stderr)
        return 2
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    transformers.utils.logging.disable_progress_bar()  # the checkpoints' "Writing model shards" bars

    start = time.time()
    log(out, stage="data", status="building or loading", folder=str(out / "data"))
    dataset = build_dataset(out / "data", cfg.data, cfg.seed, cfg.prompts, progress=True)
    train_sets = [dataset.renders, dataset.generated, dataset.prefixes]
    heldout = [dataset.heldout, dataset.heldout_prefixes]
    data_minutes = (time.time() - start) / 60
    sets = {"renders": dataset.renders, "generated": dataset.generated, "prefixes": dataset.prefixes, "heldout": dataset.heldout, "heldout_prefixes": dataset.heldout_prefixes}
    log(out, stage="data", minutes=round(data_minutes, 1), **{f"{n}_{a}": sum(c[a] for c in s.counts().values()) for n, s in sets.items() for a in ("yes", "no")})
    base = sum(e.answer == "yes" for e in dataset.heldout.examples) / max(1, len(dataset.heldout))
    print(f"held-out base rate: the evaluator calls {base:.3f} of {len(dataset.heldout)} generated held-out images correct", flush=True)

    judge = load_judge(cfg.init_from) if cfg.init_from else build_judge(cfg.model, cfg.prompts, cfg.seed)
    judge.model.to(cfg.device)
    log(out, stage="model", parameters=count_parameters(judge), vocab=len(judge.processor.tokenizer))
    vision = pretrain_vision(cfg, judge, out) if cfg.vision.minutes > 0 else {"steps": 0, "minutes": 0.0, "samples_seen": 0}
    stage = train(cfg, judge, train_sets, heldout, out)
    stage["vision"] = vision
    result, reflections = evaluate_all(cfg, judge, heldout)
    log(out, stage="final", **stage, **headline(result, reflections))
    folder = out / "judge"
    judge.model.to("cpu")
    save_judge(judge, folder)
    (folder / "stage.json").write_text(json.dumps({**stage, "heldout": result, "heldout_reflections": reflections}))
    write_card(folder, cfg, judge, stage, sets, result, reflections, data_minutes)
    print(summary_table(result))
    print(f"held-out base rate {base:.3f}; judge and card in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
