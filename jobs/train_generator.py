"""Train the embedded generator: a VQ tokenizer for the shapes world, then a Janus language model.

    python jobs/train_generator.py --config jobs/configs/generator.yaml [key=value ...]

1. Config: load and validate (`cotgen.train.generator.config`); the resolved copy is saved as
   <out>/config.yaml.
2. VQ stage: a `JanusVQVAE` (fresh, or `vq.init_from` continued) trains on rendered training scenes
   and keeps the checkpoint with the best *ceiling*: the share of held-out scenes whose
   exact-evaluator verdict survives a round trip through the tokenizer.
3. AR stage: training scenes are tokenised once (cached in <out>/ar_dataset); the Janus language
   model (fresh, or `ar.init_from` continued) learns them with classifier-free dropout and, for a
   share of the prompts, corrective prompts; it is scored on held-out records every `eval_every` steps.
4. Report: the final model generates the held-out split with the decoding engine, scored by the exact
   evaluator; the model folder gets a card (README.md) with the config, steps, time, machines, results.

A stage whose output folder is complete (stage.json) is skipped, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from transformers.models.janus.modeling_janus import JanusVQVAE

from cotgen.evaluate.summary import format_table, summarize
from cotgen.generate.engine import StepwiseGenerator
from cotgen.generate.pipeline import generate_verdicts
from cotgen.generate.sampling import Sampling
from cotgen.models.janus import load_generator, tokenizer_specials
from cotgen.models.tokenizer import build_world_tokenizer
from cotgen.models.vq import pixels_to_tensor, restart_dead_codes
from cotgen.recipe import parse_config, run, save_resolved
from cotgen.train.common.log import log
from cotgen.train.common.schedule import set_lr, warmup_cosine
from cotgen.train.generator.ar_stage import batch_loss, draw_batch, save_generator, stage_record, start_ar, trainable
from cotgen.train.generator.card import write_card
from cotgen.train.generator.config import TrainGeneratorConfig, resolve_precision
from cotgen.train.generator.dataset import CorrectivePrompts, training_dataset
from cotgen.train.generator.heldout import final_records, scene_pixels, spaced_records, vq_ceiling
from cotgen.train.generator.scenes import training_images
from cotgen.train.generator.vq_stage import start_vq, vq_loss


def train_vq(cfg: TrainGeneratorConfig, out: Path, rng: np.random.Generator) -> dict:
    """The VQ stage: Adam on the reconstruction within `vq.minutes`, dead codes restarted, the best
    ceiling's checkpoint kept in `out`."""
    s = cfg.vq
    vq, before, rng = start_vq(cfg, rng)
    held_out = spaced_records(s.eval_scenes)
    held_pixels = scene_pixels(held_out, cfg.image_size)
    optimizer = torch.optim.Adam(vq.parameters(), lr=s.lr)
    usage = torch.zeros(s.codebook, device=vq.device)
    best, step, start, finished = -1.0, 0, time.time(), False
    while not finished:
        _, images, _ = training_images(s.batch_size, rng, cfg.image_size, s.random_scene_rate)
        loss, reconstruction, q = vq_loss(vq, pixels_to_tensor(images).to(vq.device), s.object_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        usage += torch.bincount(q.tokens.flatten(), minlength=s.codebook)
        step += 1
        if step % 100 == 0:
            restarted = restart_dead_codes(vq, usage, q.latents)
            usage.zero_()
            log(out.parent, stage="vq", step=step, seconds=round(time.time() - start), reconstruction=reconstruction.item(), restarted=restarted)
        finished = time.time() - start >= s.minutes * 60
        if step % s.eval_every == 0 or finished:
            ceiling, used = vq_ceiling(vq, held_out, held_pixels)
            log(out.parent, stage="vq", step=step, ceiling=ceiling, codes_used=used)
            if ceiling >= best:
                best = ceiling
                vq.save_pretrained(out)
    minutes = before["minutes"] + (time.time() - start) / 60
    return {"steps": before["steps"] + step, "minutes": round(minutes, 1), "best_ceiling": best}


def train_ar(cfg: TrainGeneratorConfig, vq: JanusVQVAE, out: Path, rng: np.random.Generator) -> dict:
    """The AR stage: AdamW on the image-token cross-entropy within `ar.minutes` (warm-up, then a
    cosine decay over the budget), scored and checkpointed in `out` every `eval_every` steps."""
    s = cfg.ar
    tokenizer = build_world_tokenizer()
    special = tokenizer_specials(tokenizer)
    model, rng = start_ar(cfg, vq, tokenizer, rng)
    prompts, corrective, image_tokens = training_dataset(cfg, model.model.vqmodel, tokenizer, out.parent / "ar_dataset", rng)
    prompts = CorrectivePrompts(prompts, corrective, s.feedback_share)
    params = trainable(model)
    optimizer = torch.optim.AdamW(params, lr=s.lr, weight_decay=0.01)
    held_out = spaced_records(s.eval_records)
    engine = StepwiseGenerator(model, Sampling(guidance=s.guidance, temperature=1.0))
    precision = resolve_precision(s.precision, cfg.device)
    log(out.parent, stage="ar", precision=precision)
    step, start = 0, time.time()
    model.train()
    while (elapsed := time.time() - start) < s.minutes * 60:
        set_lr(optimizer, warmup_cosine(s.lr, step, s.warmup_steps, elapsed / (s.minutes * 60)))
        loss = batch_loss(model, *draw_batch(prompts, image_tokens, s.batch_size, special, s.cfg_dropout, rng), precision)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        if step % 50 == 0:
            log(out.parent, stage="ar", step=step, seconds=round(time.time() - start), loss=loss.item())
        if step % s.eval_every == 0:
            model.eval()
            summary = summarize(generate_verdicts(engine, tokenizer, held_out, seed=cfg.seed))
            model.train()
            log(out.parent, stage="ar", step=step, overall=summary.overall, **{t: v.mean for t, v in summary.tags.items()})
            save_generator(model, tokenizer, s.guidance, out)  # a checkpoint to look at or continue from
    model.eval()
    save_generator(model, tokenizer, s.guidance, out)
    return stage_record(cfg, step, start)


def main(argv: list[str]) -> int:
    cfg = parse_config(TrainGeneratorConfig, argv, __doc__, "ar.minutes=5")
    out = save_resolved(cfg, cfg.out)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    vq_dir = out / "vq"
    if not (vq_dir / "stage.json").exists():
        vq_stage = train_vq(cfg, vq_dir, rng)
        (vq_dir / "stage.json").write_text(json.dumps(vq_stage))
    vq_stage = json.loads((vq_dir / "stage.json").read_text())

    model_dir = out / "generator"
    if not (model_dir / "stage.json").exists():
        ar_stage = train_ar(cfg, JanusVQVAE.from_pretrained(vq_dir), model_dir, rng)
        (model_dir / "stage.json").write_text(json.dumps(ar_stage))
    ar_stage = json.loads((model_dir / "stage.json").read_text())

    model, tokenizer = load_generator(model_dir)
    model.generation_config.guidance_scale = cfg.ar.guidance  # the evaluated guidance is the model's default
    model.generation_config.save_pretrained(model_dir)
    model.to(cfg.device)
    records = final_records(cfg.final_per_tag)
    ceiling, _ = vq_ceiling(model.model.vqmodel, records, scene_pixels(records, cfg.image_size))
    final = summarize(generate_verdicts(StepwiseGenerator(model, Sampling(guidance=cfg.ar.guidance)), tokenizer, records, seed=cfg.seed, progress=True))
    write_card(model_dir, cfg, vq_stage, ar_stage, final, ceiling, len(records))
    print(format_table({"generator": final}))
    print(f"tokenizer ceiling {ceiling:.3f}; model and card in {model_dir}")
    return 0


if __name__ == "__main__":
    run(main, "train_generator")
