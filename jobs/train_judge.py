"""Train the embedded judge: a tiny Qwen2-VL that answers the ORM, PRM and PARM questions about
shapes-world images, and writes PARM++'s reflections.

    python jobs/train_judge.py --config jobs/configs/judge.yaml [key=value ...]

1. Config: load and validate (`cotgen.train.judge.config`); the resolved copy is saved as
   <out>/config.yaml.
2. Data (`cotgen.train.judge.dataset`; cached under <out>/data so a rerun reuses it): rendered
   training scenes, half broken; the generator's images of training records; the previews of its
   path prefixes at every checkpoint step, labelled from rollouts (PRM, clarity, potential); and, as
   test sets, the same for held-out records. Every label is the exact evaluator's verdict on an image.
3. Model (`cotgen.train.judge.model.build_judge`): a random Qwen2-VL with a tokenizer trained on the
   judge's questions; or `init_from` a judge folder to continue training.
4. Vision stage: the vision tower alone learns, from rendered scenes whose objects are known, the
   colour and shape of the object in each of its merged visual tokens (a linear head, dropped after).
   Trained end to end from the yes/no answer alone, a model this small hardly starts to look at
   the image within a CPU budget.
5. Answer stage: AdamW on the cross-entropy of the answer token ("yes" or "no") at the assistant's
   answer position, the chats built by `VLMJudge.encode` exactly as at inference (potential as the
   follow-up turn after clarity); batches balanced between "yes" and "no" within each task, tag and
   data source; a wall-clock budget, and at most `steps` steps. `continuations` are later answer
   stages, each trained as a rerun with init_from would train it (a fresh head, optimiser, batch
   stream and schedule), so that one command makes a judge that took several runs. A share
   `reflection_share` of the steps trains PARM++'s reflection instead (`cotgen.train.judge.reflection`): ORM examples of the renders and generated
   images asked the reflection question, the answer "yes" or "no: " + the evaluator's reasons, by
   teacher-forced token cross-entropy. A share `census_share` trains the census: the same images asked
   for every class's count and colours (`cotgen.train.judge.reading.census_text`), a share
   `data.census_scene_share` of them renders of prompt-free count scenes (`data.census_scenes`) or the
   generator's images of counting records (`data.census_counting_images`). With `census_turn`,
   a share of the outcome examples is taught after the true census in the chat, and the judge is saved
   to ask itself the census before it reads (`cotgen.judge.reading.ReadingMode.first`).
   After the stages, `rule_where` and `rule_count` fit small heads on the frozen visual tokens (where
   each class is, `cotgen.train.judge.where_head`; how many, `cotgen.train.judge.count_fit`), saved
   beside the weights, and the judge is saved to read positions and asked-for counts from them.
6. Report: held-out balanced accuracy per task (P(yes) ≥ 0.5 from `VLMJudge.p_yes`), and the greedy
   reflections' reason recall on `reflection_eval` wrong and correct held-out images, every
   `eval_every` steps and at the end; the judge is saved to <out>/judge with a model card (README.md).
7. Then: a run named by `then` (a config file) continues the judge in the same command
   (`recipe_chain`), for a recipe whose later runs need other data or settings.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image

from cotgen.evaluate.reader import Reading, read_scene
from cotgen.judge.provenance import record_generator
from cotgen.judge.reading import reading_mode, set_reading_mode
from cotgen.judge.vlm import VLMJudge, load_judge, save_judge
from cotgen.models.presets import weights_digest
from cotgen.recipe import parse_config, run, save_resolved
from cotgen.train.common.log import log
from cotgen.train.common.schedule import Budget, set_lr, warmup_cosine
from cotgen.train.judge.card import summary_table, write_card
from cotgen.train.judge.census_scenes import draw_census_batch
from cotgen.train.judge.config import AnswerStageConfig, TrainJudgeConfig, recipe_chain
from cotgen.train.judge.count_fit import count_fitting_images, fit_count_head
from cotgen.train.judge.dataset import JudgeDataset, build_dataset
from cotgen.train.judge.evaluation import evaluate_all, headline
from cotgen.train.judge.examples import Example, ExampleSet
from cotgen.train.judge.losses import (
    Batch,
    answer_histories,
    batch_census_loss,
    batch_reflection_loss,
    centre_head,
    centre_loss,
    read_first,
)
from cotgen.train.judge.model import UNREAD_KEY, build_judge, check_unread, count_parameters
from cotgen.train.judge.reading import READ_TASKS, judge_mode
from cotgen.train.judge.reflection import target_loss
from cotgen.train.judge.renders import render_image
from cotgen.train.judge.rollouts import first_records
from cotgen.train.judge.sampler import BalancedSampler
from cotgen.train.judge.where_head import fit_where_head, fitting_images
from cotgen.world.records import sample_training_record


def training_images(cfg: TrainJudgeConfig, data: JudgeDataset, generated: list[str], rng: np.random.Generator, n: int) -> list[tuple[Image.Image, Reading]]:
    """n (image, reading) pairs for the vision stage: the `generated` images (paths in data.generated)
    at `vision.generated_share`, else fresh renders of training records, half broken."""
    s = cfg.vision
    pairs = []
    for _ in range(n):
        if generated and rng.random() < s.generated_share:
            path = generated[int(rng.integers(len(generated)))]
            pairs.append((data.generated.image(path), data.generated.reading(path)))
        else:
            image = render_image(sample_training_record(rng), rng.random() < 0.5, s.degrade_rate, rng)
            pairs.append((image, read_scene(image)))
    return pairs


def pretrain_vision(cfg: TrainJudgeConfig, judge: VLMJudge, head: torch.nn.Module, data: JudgeDataset, out: Path, budget: Budget) -> dict:
    """The vision tower and a throwaway head learn what is centred in each visual token's cell (an
    object's colour and class, an unrecognised blob or nothing), as the exact evaluator reads the
    image (`centre_loss`), within `budget` (0 minutes: skipped)."""
    if budget.minutes <= 0:
        return {"steps": 0, "minutes": 0.0, "samples_seen": 0}
    s = cfg.vision
    visual = judge.model.model.visual
    params = [*visual.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=s.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng([cfg.seed, 11])
    generated = sorted({e.image for e in data.generated.examples})
    step, start, exact, finished = 0, time.time(), [], False
    visual.train()
    while not finished:
        images, readings = zip(*training_images(cfg, data, generated, rng, s.batch_size))
        loss, hit = centre_loss(judge, head, images, readings)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        exact.append(hit)
        finished = budget.done(step, time.time() - start)
        if step % cfg.log_every == 0 or finished:  # the last step too, however few there were
            log(out, stage="vision", step=step, seconds=round(time.time() - start), loss=loss.item(), images_exact=float(np.mean(exact)))
            exact = []
    judge.model.eval()
    return {"steps": step, "minutes": round((time.time() - start) / 60, 1), "samples_seen": step * s.batch_size}


def answer_target(cfg: TrainJudgeConfig, examples: ExampleSet, e: Example) -> str:
    """What the judge is taught to answer: its reading then the answer for the outcome question of a
    reading judge, else the answer alone."""
    if not (cfg.reads and e.task in READ_TASKS):
        return e.answer
    return read_first(examples, e, e.answer, cfg.every_class)


def answer_batch_loss(cfg: TrainJudgeConfig, judge: VLMJudge, head: torch.nn.Module, batch: Batch, turns: np.random.Generator) -> tuple[torch.Tensor, float | None]:
    """Teacher-forced loss of each example's target (`answer_target`) after its chat (`answer_histories`),
    plus `centre_weight` times the vision stage's loss on the same images; and that loss's share of
    exactly read images."""
    images = [s.image(e.image) for s, e in batch]
    targets = [answer_target(cfg, s, e) for s, e in batch]
    loss = target_loss(judge, images, [e.question for _, e in batch], targets, answer_histories(batch, cfg.census_turn, turns), cfg.answer_weight)
    if not cfg.centre_weight:
        return loss, None
    centre, exact = centre_loss(judge, head, images, [s.reading(e.image) for s, e in batch])
    return loss + cfg.centre_weight * centre, exact


def train_answers(cfg: TrainJudgeConfig, judge: VLMJudge, head: torch.nn.Module, data: JudgeDataset, out: Path, stage: AnswerStageConfig, before: int) -> dict:
    """An answer stage: balanced batches of answers (readings first, for a reading judge), or of
    reflections, within the stage's budget; held-out evaluations and checkpoints every `eval_every`
    steps. `before` answer steps of earlier stages came first (the log counts steps from the first)."""
    d = cfg.data
    sampler = BalancedSampler(
        [(data.renders, 1 - d.generated_share - d.prefix_share), (data.generated, d.generated_share), (first_records(data.prefixes, stage.prefix_subset), d.prefix_share)],
        np.random.default_rng([cfg.seed, 7]),
        stage.tag_weights,
    )  # fmt: skip
    # its own generator: with reflections and the census off, the answer batches are those of a run without them
    reflect_rng = np.random.default_rng([cfg.seed, 8])
    turns = np.random.default_rng([cfg.seed, 9])  # which outcome examples come after the census
    scene_rng = np.random.default_rng([cfg.seed, 10])  # which census images are count scenes
    side_share = cfg.reflection_share + cfg.census_share
    side = BalancedSampler([(data.renders, 1 - d.generated_share), (data.generated, d.generated_share)], reflect_rng) if side_share > 0 else None
    model = judge.model
    params = [*model.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=cfg.weight_decay)
    budget = stage.budget()
    step, reflection_steps, census_steps, start, best = 0, 0, 0, time.time(), None
    window = {"loss": [], "images_exact": [], "reflection_loss": [], "census_loss": []}
    while not budget.done(step, elapsed := time.time() - start):
        set_lr(optimizer, warmup_cosine(stage.lr, step, stage.warmup_steps, budget.progress(step, elapsed)))
        model.train()
        side_draw = reflect_rng.random() if side is not None else 1.0
        if side_draw < cfg.reflection_share:
            loss = batch_reflection_loss(judge, side.draw(cfg.batch_size), cfg.prompts, cfg.reflection_reads, cfg.every_class)
            window["reflection_loss"].append(loss.item())
            reflection_steps += 1
        elif side_draw < side_share:
            loss = batch_census_loss(judge, draw_census_batch(side.draw(cfg.batch_size), data.census_pools(), d.census_scene_share, scene_rng))
            window["census_loss"].append(loss.item())
            census_steps += 1
        else:
            loss, exact = answer_batch_loss(cfg, judge, head, sampler.draw(cfg.batch_size), turns)
            window["loss"].append(loss.item())
            if exact is not None:
                window["images_exact"].append(exact)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        if step % cfg.log_every == 0 or budget.done(step, time.time() - start):  # and the last step
            means = {k: float(np.mean(v)) for k, v in window.items() if v}
            log(out, stage="answers", step=before + step, seconds=round(time.time() - start), **means, lr=optimizer.param_groups[0]["lr"])
            window = {k: [] for k in window}
        if step % cfg.eval_every == 0:
            result, reflected = evaluate_all(cfg, judge, data.heldout, data.heldout_prefixes)
            log(out, stage="answers", step=before + step, seconds=round(time.time() - start), **headline(result, reflected))
            save_judge(judge, out / "judge")  # a checkpoint to look at or continue from
            best = max(best or 0.0, result["orm"]["overall"]["balanced"] or 0.0)
    model.eval()
    minutes = round((time.time() - start) / 60, 1)
    return {"steps": step, "reflection_steps": reflection_steps, "census_steps": census_steps, "minutes": minutes, "samples_seen": step * cfg.batch_size, "best_periodic": best}


def answer_totals(parts: list[dict]) -> dict:
    """The answer stages' figures added up, each stage's own kept under "parts" (when there are several)."""
    totals = {k: sum(p[k] for p in parts) for k in ("steps", "reflection_steps", "census_steps", "samples_seen")}
    totals["minutes"] = round(sum(p["minutes"] for p in parts), 1)
    totals["best_periodic"] = max((p["best_periodic"] for p in parts if p["best_periodic"] is not None), default=None)
    return totals | {"vision": parts[0]["vision"]} | ({"parts": parts} if len(parts) > 1 else {})


def main(argv: list[str]) -> int:
    cfg = parse_config(TrainJudgeConfig, argv, __doc__, "minutes=5 continuations=[] data.generated_images=500")
    chain = recipe_chain(cfg)
    for k, run_cfg in enumerate(chain):
        if len(chain) > 1:
            print(f"run {k + 1} of {len(chain)} of the recipe: {run_cfg.out}", flush=True)
        train(run_cfg)
    return 0


def train(cfg: TrainJudgeConfig) -> None:
    """One run: data, model, stages, evaluation; the judge and its card saved to <out>/judge."""
    out = save_resolved(cfg, cfg.out)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    transformers.utils.logging.disable_progress_bar()  # the checkpoints' "Writing model shards" bars

    check_unread(cfg.data.compositional, cfg.init_from)
    start = time.time()
    folder = Path(cfg.data_from) if cfg.data_from else out / "data"
    log(out, stage="data", status="building or loading", folder=str(folder))
    data = build_dataset(folder, cfg.data, cfg.training_seed, cfg.prompts, progress=True)
    sets = data.sets()
    data_minutes = (time.time() - start) / 60
    log(out, stage="data", minutes=round(data_minutes, 1), **{f"{n}_{a}": sum(c[a] for c in s.counts().values()) for n, s in sets.items() for a in ("yes", "no")})
    base = sum(e.answer == "yes" for e in data.heldout.examples) / max(1, len(data.heldout))
    print(f"held-out base rate: the evaluator calls {base:.3f} of {len(data.heldout)} generated held-out images correct", flush=True)

    judge = load_judge(cfg.init_from) if cfg.init_from else build_judge(cfg.model, cfg.prompts, cfg.seed)
    judge.where = judge.count = None  # heads are fitted on this run's tokens, at the end (rule_where, rule_count)
    judge.model.to(cfg.device)
    set_reading_mode(judge.model, judge_mode(cfg.reads, cfg.every_class, cfg.census_turn > 0, cfg.skeleton, cfg.copy_census, cfg.rule_reasons, cfg.rule_verdict))
    record_generator(judge.model, cfg.data.generator, weights_digest(cfg.data.generator, "generator"))
    setattr(judge.model.config, UNREAD_KEY, cfg.data.compositional)  # checked by check_unread before the data
    judge.reading = reading_mode(judge.model)
    log(out, stage="model", parameters=count_parameters(judge), vocab=len(judge.processor.tokenizer))

    parts = []
    for k, part in enumerate(cfg.stages()):
        if k:  # as a rerun with init_from would start: the same seed, then a fresh head
            torch.manual_seed(cfg.seed)
        head = centre_head(judge, tied=cfg.centre_head == "words")  # the perception head of this stage, dropped after
        budget = Budget(cfg.vision.minutes, cfg.vision.steps) if k == 0 else Budget(part.vision_minutes, part.vision_steps)
        vision = pretrain_vision(cfg, judge, head, data, out, budget)
        parts.append(train_answers(cfg, judge, head, data, out, part, sum(p["steps"] for p in parts)) | {"vision": vision})
    stage = answer_totals(parts)
    if cfg.rule_where:
        judge.model.eval()
        judge.where, loss = fit_where_head(judge, fitting_images(data.generated, data.renders), seed=cfg.seed)
        judge.reading = replace(judge.reading, rule_where=True)
        set_reading_mode(judge.model, judge.reading)
        log(out, stage="where head", loss=round(loss, 4))
    if cfg.rule_count:
        judge.model.eval()
        judge.count, loss = fit_count_head(
            judge, count_fitting_images(data.generated, data.renders, data.census_scenes), seed=cfg.seed
        )
        judge.reading = replace(judge.reading, rule_count=True)
        set_reading_mode(judge.model, judge.reading)
        log(out, stage="count head", loss=round(loss, 4))

    result, reflections = evaluate_all(cfg, judge, data.heldout, data.heldout_prefixes)
    log(out, stage="final", **stage, **headline(result, reflections))
    folder = out / "judge"
    judge.model.to("cpu")
    save_judge(judge, folder)
    (folder / "stage.json").write_text(json.dumps({**stage, "heldout": result, "heldout_reflections": reflections}))
    write_card(folder, cfg, judge, stage, sets, result, reflections, data_minutes)
    print(summary_table(result))
    print(f"held-out base rate {base:.3f}; judge and card in {folder}")


if __name__ == "__main__":
    run(main, "train_judge")
