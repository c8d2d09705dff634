"""The language model's training data: prompt ids, corrective prompt ids and image tokens of
`ar.dataset_scenes` rendered training scenes, tokenised once through the VQ and cached."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers.models.janus.modeling_janus import JanusVQVAE

from cotgen.generate.feedback import corrective_prompt
from cotgen.models.vq import pixels_to_tensor
from cotgen.train.common.log import log
from cotgen.train.generator.config import TrainGeneratorConfig
from cotgen.train.generator.scenes import training_images


def tokenise(vq: JanusVQVAE, images: list[np.ndarray], batch: int = 256) -> torch.Tensor:
    """Image tokens through the shipped path (`JanusVQVAE.encode`), as the model will see them."""
    vq.eval()
    with torch.no_grad():
        return torch.cat([
            vq.encode(pixels_to_tensor(images[i : i + batch]).to(vq.device)).image_tokens.view(len(images[i : i + batch]), -1).cpu()
            for i in range(0, len(images), batch)
        ])  # fmt: skip


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
