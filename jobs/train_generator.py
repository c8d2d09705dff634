"""Train the embedded generator: a VQ tokenizer for the shapes world, then a Janus language model.

    python jobs/train_generator.py --config jobs/configs/generator.yaml [key=value ...]

Stage 1 (vq) trains a `JanusVQVAE` on rendered training scenes and keeps the checkpoint with the best
*ceiling*: the share of held-out scenes whose exact-evaluator verdict survives a round trip through
the tokenizer. Stage 2 (ar) tokenises training scenes once, trains the Janus language model on them
with classifier-free dropout, then generates the held-out split with the decoding engine and scores
it. A stage whose output folder is complete is skipped, so a killed run resumes where it stopped.
The model folder gets a model card (README.md) with the config, steps, time, machine and results.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import JanusVQVAEConfig
from transformers.models.janus.modeling_janus import JanusVQVAE

from cotgen.config import check_device, load_config, save_config
from cotgen.errors import InputError
from cotgen.evaluate.exact import evaluate_image
from cotgen.evaluate.summary import Summary, format_table
from cotgen.generate.engine import Sampling, StepwiseGenerator
from cotgen.generate.feedback import corrective_prompt
from cotgen.generate.pipeline import generate_and_score
from cotgen.models.ar import build_janus, drop_prompts, image_token_loss, pad_prompts
from cotgen.models.janus import load_generator, tokenizer_specials
from cotgen.models.tokenizer import build_world_tokenizer
from cotgen.models.vq import (
    build_vq,
    finalize_codebook,
    object_weights,
    pixels_to_tensor,
    quantize,
    reconstruct,
    restart_dead_codes,
    tensor_to_pixels,
)  # fmt: skip
from cotgen.machine import describe_machine
from cotgen.world.perturb import broken_image
from cotgen.world.records import evaluation_records, first_per_tag, sample_training_record
from cotgen.world.render import render_array
from cotgen.world.sampler import sample_random_scene, sample_scene


@dataclass
class VQStage:
    codebook: int = 1024
    """Number of codes."""
    grid: int = 16
    """Image tokens per side (64 px / 16 = 4 px per token)."""
    base_channels: int = 32
    """Channels of the first conv level (a multiple of 32: GroupNorm uses 32 groups)."""
    channel_multiplier: list[int] = field(default_factory=lambda: [1, 1, 2])
    """Per-level channel multipliers; len − 1 downsamplings."""
    latent_channels: int = 64
    """Encoder output channels before the projection to the code dimension."""
    batch_size: int = 16
    lr: float = 1e-3
    minutes: float = 25.0
    """Wall-clock budget of the stage."""
    object_weight: float = 5.0
    """Loss weight of object pixels relative to background."""
    random_scene_rate: float = 0.2
    """Share of prompt-free random scenes in the training images."""
    eval_every: int = 250
    """Steps between ceiling measurements (and checkpoints)."""
    eval_scenes: int = 111
    """Held-out scenes used to measure the ceiling during training."""
    init_from: str | None = None
    """Continue training this VQ folder (a run's vq/) instead of a fresh VQ; its steps and minutes
    count in the card."""


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass
class ARStage:
    hidden_size: int = 192
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 512
    dataset_scenes: int = 20000
    """Training scenes tokenised once and sampled with replacement."""
    workers: int = 1
    """Processes that render the training scenes (and check their broken renders)."""
    batch_size: int = 32
    lr: float = 2e-3
    warmup_steps: int = 100
    minutes: float = 40.0
    """Wall-clock budget of the stage (the learning rate decays to 10 % over it)."""
    cfg_dropout: float = 0.1
    """Share of prompts trained without their words (for classifier-free guidance)."""
    guidance_scale: float = 3.0
    """Default guidance written to the model's card and used for the final evaluation."""
    init_from: str | None = None
    """Continue training this generator folder instead of starting a fresh language model."""
    eval_every: int = 300
    eval_records: int = 96
    """Held-out records generated and scored at each evaluation during training."""
    feedback_share: float = 0.0
    """Share of training prompts given as corrective prompts (`cotgen.generate.feedback`): the prompt
    plus the exact evaluator's reasons for a broken render of it, with a right render as the target.
    This teaches the generator to be PARM++'s corrector."""
    precision: str = "fp32"
    """fp32; bf16: forward and backward under autocast, the weights stay float32 (about 1.7× faster on
    CPUs with AVX-512 BF16, several times slower on CPUs without); auto: bf16 where it is fast (CUDA,
    or a CPU with AVX-512 BF16 or AMX), else fp32."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.feedback_share < 1.0:
            raise InputError(f"ar.feedback_share: must be within [0, 1), got {self.feedback_share}")
        if self.workers < 1:
            raise InputError(f"ar.workers: must be at least 1, got {self.workers}")
        if self.precision not in [*PRECISIONS, "auto"]:
            raise InputError(f"ar.precision: {self.precision!r} is not one of {', '.join(PRECISIONS)}, auto")


@dataclass
class TrainGeneratorConfig:
    out: str = "runs/generator"
    """Output folder: vq/, generator/ (the final model), config.yaml, log.jsonl."""
    seed: int = 0
    threads: int = 2
    """torch CPU threads."""
    image_size: int = 64
    final_per_tag: int = 0
    """Held-out records per tag in the final evaluation and ceiling (0: all 553, the figure to quote)."""
    device: str = "cpu"
    """cpu or cuda[:N]: where both stages train and the evaluations run."""
    vq: VQStage = field(default_factory=VQStage)
    ar: ARStage = field(default_factory=ARStage)

    def __post_init__(self) -> None:
        check_device(self.device)


def resolve_precision(precision: str, device: str) -> str:
    """`auto` as fp32 or bf16: bf16 autocast only pays off on hardware with bf16 arithmetic."""
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "bf16"
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.exists() else set()
    return "bf16" if flags & {"avx512_bf16", "amx_bf16"} else "fp32"


def log(out: Path, **record) -> None:
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()), flush=True)
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


SCENES_PER_CHUNK = 500


def _render_chunk(task: tuple[int, int, int, float, bool]) -> list[tuple]:
    seed, count, size, random_rate, feedback = task
    rng = np.random.default_rng(seed)
    scenes = []
    for _ in range(count):
        if rng.random() < random_rate:
            scenes.append((None, render_array(sample_random_scene(rng, size)), None))
            continue
        record = sample_training_record(rng)
        image, reasons = render_array(sample_scene(record, rng, size)), None
        if feedback:
            verdict = evaluate_image(broken_image(record, rng), record)
            reasons = None if verdict.correct else "; ".join(verdict.reasons)
        scenes.append((record, image, reasons))
    return scenes


def training_images(n: int, rng: np.random.Generator, size: int, random_rate: float = 0.0, feedback: bool = False, workers: int = 1):
    """n rendered training scenes: their records (None for prompt-free random scenes), images and, with
    `feedback`, the exact evaluator's reasons against a broken render of each record (None where that
    render is still right). Chunks of scenes have their own seeds, so `workers` processes draw the same
    scenes as one."""
    starts = range(0, n, SCENES_PER_CHUNK)
    seeds = rng.integers(2**63, size=len(starts))
    tasks = [(int(seed), min(SCENES_PER_CHUNK, n - start), size, random_rate, feedback) for start, seed in zip(starts, seeds)]
    if workers > 1 and len(tasks) > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:  # the workers touch no torch
            chunks = pool.map(_render_chunk, tasks)
    else:
        chunks = [_render_chunk(task) for task in tasks]
    records, images, reasons = zip(*(scene for chunk in chunks for scene in chunk))
    return list(records), list(images), list(reasons)


def vq_ceiling(vq: JanusVQVAE, records, pixels: torch.Tensor) -> tuple[float, int]:
    """Share of scenes whose verdict survives `encode` → `decode` (the shipped path), and the number
    of codes used. Normalises the codebook first, which training on the sphere leaves unchanged."""
    finalize_codebook(vq)
    vq.eval()
    with torch.no_grad():
        tokens = vq.encode(pixels.to(vq.device)).image_tokens.view(len(pixels), -1)
        decoded = tensor_to_pixels(vq.decode(tokens))
    vq.train()
    kept = sum(evaluate_image(Image.fromarray(p), r).correct for p, r in zip(decoded, records))
    return kept / len(records), len(torch.unique(tokens))


def train_vq(cfg: TrainGeneratorConfig, out: Path, rng: np.random.Generator) -> dict:
    s = cfg.vq
    before = {"steps": 0, "minutes": 0.0}
    if s.init_from:
        vq = JanusVQVAE.from_pretrained(s.init_from).train()
        if (vq.config.num_patches, vq.config.num_embeddings) != (s.grid, s.codebook):
            raise InputError(f"vq.init_from: {s.init_from} has grid {vq.config.num_patches} and {vq.config.num_embeddings} codes, the config says {s.grid} and {s.codebook}")
        before = json.loads((Path(s.init_from) / "stage.json").read_text())
        rng = np.random.default_rng([cfg.seed, before["steps"]])  # a continuation must not replay earlier batches
    else:
        vq = build_vq(JanusVQVAEConfig(
            embed_dim=8, num_embeddings=s.codebook, latent_channels=s.latent_channels, base_channels=s.base_channels,
            channel_multiplier=s.channel_multiplier, num_res_blocks=1, num_patches=s.grid,
        ))  # fmt: skip
    vq.to(cfg.device)
    if cfg.image_size // 2 ** (len(vq.config.channel_multiplier) - 1) != s.grid:
        raise InputError(f"vq.grid: {s.grid} does not match image_size {cfg.image_size} and channel_multiplier {vq.config.channel_multiplier}")
    held_out = evaluation_records()[:: max(1, 553 // s.eval_scenes)][: s.eval_scenes]
    held_pixels = pixels_to_tensor([render_array(sample_scene(r, i, cfg.image_size)) for i, r in enumerate(held_out)])
    optimizer = torch.optim.Adam(vq.parameters(), lr=s.lr)
    usage = torch.zeros(s.codebook, device=vq.device)
    best, step, start, finished = -1.0, 0, time.time(), False
    while not finished:
        _, images, _ = training_images(s.batch_size, rng, cfg.image_size, s.random_scene_rate)
        pixels = pixels_to_tensor(images).to(vq.device)
        q = quantize(vq, pixels)
        error = reconstruct(vq, q.quantized) - pixels
        weights = object_weights(pixels, s.object_weight)
        reconstruction = (weights * error.abs()).mean() + (weights * error**2).mean()
        optimizer.zero_grad()
        (reconstruction + q.commitment).backward()
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
    summary = {"steps": before["steps"] + step, "minutes": round(minutes, 1), "best_ceiling": best}
    (out / "stage.json").write_text(json.dumps(summary))
    return summary


def tokenise(vq: JanusVQVAE, images: list[np.ndarray], batch: int = 256) -> torch.Tensor:
    """Image tokens through the shipped path (`JanusVQVAE.encode`), as the model will see them."""
    vq.eval()
    with torch.no_grad():
        return torch.cat([
            vq.encode(pixels_to_tensor(images[i : i + batch]).to(vq.device)).image_tokens.view(len(images[i : i + batch]), -1).cpu()
            for i in range(0, len(images), batch)
        ])  # fmt: skip


def save_generator(model, tokenizer, guidance_scale: float, out: Path) -> None:
    model.generation_config.guidance_scale = guidance_scale
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def training_dataset(cfg: TrainGeneratorConfig, vq: JanusVQVAE, tokenizer, cache: Path, rng: np.random.Generator):
    """Prompt ids, corrective prompt ids (None where a scene has none) and image tokens of
    `ar.dataset_scenes` training scenes, built once and cached in `cache`."""
    scenes = cfg.ar.dataset_scenes
    meta = cache / "meta.json"
    if meta.exists() and json.loads(meta.read_text()) == {"scenes": scenes}:
        prompts, corrective = (json.loads((cache / name).read_text()) for name in ("prompts.json", "corrective.json"))
        return prompts, corrective, load_file(cache / "tokens.safetensors")["image_tokens"].long()
    start = time.time()
    records, images, reasons = training_images(scenes, rng, cfg.image_size, feedback=True, workers=cfg.ar.workers)
    log(cache.parent, stage="ar", rendered=scenes, seconds=round(time.time() - start))
    start = time.time()
    image_tokens = tokenise(vq, images)
    prompts = [tokenizer(r.prompt).input_ids for r in records]
    corrective = [tokenizer(corrective_prompt(r.prompt, why)).input_ids if why else None for r, why in zip(records, reasons)]
    cache.mkdir(parents=True, exist_ok=True)
    save_file({"image_tokens": image_tokens.to(torch.int16).contiguous()}, cache / "tokens.safetensors")  # codes < 32768
    (cache / "prompts.json").write_text(json.dumps(prompts))
    (cache / "corrective.json").write_text(json.dumps(corrective))
    meta.write_text(json.dumps({"scenes": scenes}))  # last: a cache without it is rebuilt
    log(cache.parent, stage="ar", tokenised=scenes, seconds=round(time.time() - start))
    return prompts, corrective, image_tokens


def previous_stage(folder: str) -> dict:
    """The training record (steps, minutes, samples, rounds) of a generator folder to continue."""
    try:
        return json.loads((Path(folder) / "stage.json").read_text())
    except FileNotFoundError:
        raise InputError(f"ar.init_from: {folder} has no stage.json (the record of its training); continue from a folder train_generator wrote") from None


class CorrectivePrompts:
    """Training prompts, a `share` of them drawn as corrective prompts where the scene has one: the
    prompt plus the exact evaluator's reasons for a broken render of its record (the image target
    stays the right render)."""

    def __init__(self, prompts: list[list[int]], corrective: list[list[int] | None], share: float):
        self.prompts, self.corrective, self.share = prompts, corrective, share

    def draw(self, index: int, rng: np.random.Generator) -> list[int]:
        if rng.random() < self.share and self.corrective[index] is not None:
            return self.corrective[index]
        return self.prompts[index]


def train_ar(cfg: TrainGeneratorConfig, vq: JanusVQVAE, out: Path, rng: np.random.Generator) -> dict:
    s = cfg.ar
    tokenizer = build_world_tokenizer()
    special = tokenizer_specials(tokenizer)
    if s.init_from:
        model = load_generator(s.init_from)[0]
        rounds_before = previous_stage(s.init_from).get("rounds", 1)
        rng = np.random.default_rng([cfg.seed, rounds_before])  # a continuation must not replay earlier batches
        if model.get_input_embeddings().num_embeddings < len(tokenizer):  # trained before the feedback words
            model.resize_token_embeddings(len(tokenizer))
    else:
        model = build_janus(vq, tokenizer, cfg.image_size, s.hidden_size, s.layers, s.heads, s.intermediate_size)
    model.to(cfg.device)
    prompts, corrective_ids, image_tokens = training_dataset(cfg, model.model.vqmodel, tokenizer, out.parent / "ar_dataset", rng)
    corrective = CorrectivePrompts(prompts, corrective_ids, s.feedback_share)
    trainable = [p for n, p in model.named_parameters() if not n.startswith(("model.vqmodel", "model.vision_model", "model.aligner"))]
    optimizer = torch.optim.AdamW(trainable, lr=s.lr, weight_decay=0.01)
    held_out = evaluation_records()[:: max(1, 553 // s.eval_records)][: s.eval_records]
    engine = StepwiseGenerator(model, Sampling(guidance_scale=s.guidance_scale, temperature=1.0))
    precision = resolve_precision(s.precision, cfg.device)
    log(out.parent, stage="ar", precision=precision)
    step, start = 0, time.time()
    model.train()
    while (elapsed := time.time() - start) < s.minutes * 60:
        progress = elapsed / (s.minutes * 60)
        for group in optimizer.param_groups:
            group["lr"] = s.lr * min(1.0, (step + 1) / s.warmup_steps) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress)))
        batch = rng.integers(len(prompts), size=s.batch_size)
        ids, mask = pad_prompts([corrective.draw(i, rng) for i in batch], special.pad)
        ids = drop_prompts(ids, special, s.cfg_dropout, rng)
        with torch.autocast(model.device.type, dtype=PRECISIONS[precision], enabled=precision != "fp32"):
            loss = image_token_loss(model, ids.to(model.device), mask.to(model.device), image_tokens[batch].to(model.device))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        step += 1
        if step % 50 == 0:
            log(out.parent, stage="ar", step=step, seconds=round(time.time() - start), loss=loss.item())
        if step % s.eval_every == 0:
            model.eval()
            summary = generate_and_score(engine, tokenizer, held_out, seed=cfg.seed)
            model.train()
            log(out.parent, stage="ar", step=step, overall=summary.overall, **{t: v.mean for t, v in summary.tags.items()})
            save_generator(model, tokenizer, s.guidance_scale, out)  # a checkpoint to look at or continue from
    model.eval()
    save_generator(model, tokenizer, s.guidance_scale, out)
    summary = {"steps": step, "minutes": round((time.time() - start) / 60, 1), "samples_seen": step * s.batch_size}
    machines = [describe_machine()]
    if s.init_from:  # the card counts the whole training, not just this continuation
        before = previous_stage(s.init_from)
        summary = {k: round(summary[k] + before[k], 1) for k in summary} | {"rounds": before.get("rounds", 1) + 1}
        machines = list(dict.fromkeys(before.get("machines", []) + machines))
    return summary | {"machines": machines}


def write_card(out: Path, cfg: TrainGeneratorConfig, vq_stage: dict, ar_stage: dict, final: Summary, ceiling: float, scenes: int) -> None:
    text = f"""# cotgen embedded generator

A tiny Janus (`JanusForConditionalGeneration`) trained on the shapes world by
`jobs/train_generator.py`. Load it like any Janus checkpoint with `from_pretrained`.

- Image: {cfg.image_size}×{cfg.image_size} px, {cfg.vq.grid}×{cfg.vq.grid} image tokens, {cfg.vq.codebook} codes.
- Language model: Llama, hidden {cfg.ar.hidden_size}, {cfg.ar.layers} layers, {cfg.ar.heads} heads.
- Default sampling: guidance {cfg.ar.guidance_scale}, temperature 1.0, full distribution.
- PARM++'s corrector too: {cfg.ar.feedback_share:.0%} of the last run's training prompts were corrective prompts (`cotgen.generate.feedback`).
- Trained on: {'; '.join(ar_stage.get('machines', ['not recorded']))}.
- Evaluated on: {describe_machine()}.

## Training
| stage | steps | minutes | notes |
|---|---|---|---|
| vq | {vq_stage['steps']} | {vq_stage['minutes']} | best ceiling during training {vq_stage['best_ceiling']:.3f} |
| ar | {ar_stage['steps']} | {ar_stage['minutes']} | {ar_stage['samples_seen']} sequences of tokenised training scenes, in {ar_stage.get('rounds', 1)} run(s) (`ar.init_from` continues one) |

## Tokenizer ceiling
Share of the {scenes} held-out scenes whose exact-evaluator verdict is the same after a round trip
through the VQ tokenizer (`JanusVQVAE.encode` → `decode`): **{ceiling:.3f}**.

## Held-out evaluation (exact evaluator, one image per record, seed {cfg.seed})
```
{format_table({"generator": final})}
```

## Config
```yaml
{json.dumps(asdict(cfg), indent=2)}
```
"""
    (out / "README.md").write_text(text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML config (defaults apply where it is silent)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. ar.minutes=5")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(TrainGeneratorConfig, args.config, args.overrides)
    except InputError as err:
        print(f"train_generator: error: {err}", file=sys.stderr)
        return 2
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    vq_dir = out / "vq"
    if not (vq_dir / "stage.json").exists():
        try:
            train_vq(cfg, vq_dir, rng)
        except InputError as err:
            print(f"train_generator: error: {err}", file=sys.stderr)
            return 2
    vq_stage = json.loads((vq_dir / "stage.json").read_text())
    vq = JanusVQVAE.from_pretrained(vq_dir)

    model_dir = out / "generator"
    if not (model_dir / "stage.json").exists():
        try:
            ar_stage = train_ar(cfg, vq, model_dir, rng)
        except InputError as err:
            print(f"train_generator: error: {err}", file=sys.stderr)
            return 2
        (model_dir / "stage.json").write_text(json.dumps(ar_stage))
    ar_stage = json.loads((model_dir / "stage.json").read_text())

    model, tokenizer = load_generator(model_dir)
    model.generation_config.guidance_scale = cfg.ar.guidance_scale  # the evaluated guidance is the model's default
    model.generation_config.save_pretrained(model_dir)
    model.to(cfg.device)
    records = first_per_tag(evaluation_records(), cfg.final_per_tag) if cfg.final_per_tag else evaluation_records()
    ceiling, _ = vq_ceiling(model.model.vqmodel, records, pixels_to_tensor([render_array(sample_scene(r, i, cfg.image_size)) for i, r in enumerate(records)]))
    engine = StepwiseGenerator(model, Sampling(guidance_scale=cfg.ar.guidance_scale))
    final = generate_and_score(engine, tokenizer, records, seed=cfg.seed, progress=True)
    write_card(model_dir, cfg, vq_stage, ar_stage, final, ceiling, len(records))
    print(format_table({"generator": final}))
    print(f"tokenizer ceiling {ceiling:.3f}; model and card in {model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
