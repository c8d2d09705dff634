"""Seconds per training step of the embedded generator's language model, fp32 against bf16 autocast.

    python bench/train_precision.py [--model embedded] [--batch 32] [--steps 5] [--threads 2]

The same batch (random image tokens behind one prompt) through `image_token_loss`, backward and an
AdamW step, alternating fp32 and bf16 rounds so that both see the same machine load; prints each
round and the ratio of the medians. bf16 autocast is what `ar.precision: bf16` trains with.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cotgen.machine import describe_machine
from cotgen.models.ar import image_token_loss
from cotgen.models.janus import image_grid, load_generator, pad_prompts, tokenizer_specials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_generator(args.model)
    model.train()
    ids, mask = pad_prompts([tokenizer("a photo of two red circles").input_ids] * args.batch, tokenizer_specials(tokenizer).pad)
    tokens = torch.randint(model.config.vq_config.num_embeddings, (args.batch, image_grid(model) ** 2), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)

    def step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = image_token_loss(model, ids, mask, tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    print(f"machine: {describe_machine()}; batch {args.batch}, {args.threads} threads")
    seconds = {"fp32": [], "bf16": []}
    for _ in range(args.rounds):
        for name, times in seconds.items():
            step(name == "bf16")  # warm-up
            start = time.perf_counter()
            for _ in range(args.steps):
                step(name == "bf16")
            times.append((time.perf_counter() - start) / args.steps)
            print(f"{name}: {times[-1]:.3f} s/step", flush=True)
    fp32, bf16 = statistics.median(seconds["fp32"]), statistics.median(seconds["bf16"])
    print(f"median fp32 {fp32:.3f} s/step, bf16 {bf16:.3f} s/step: bf16 is {fp32 / bf16:.2f}x as fast")


if __name__ == "__main__":
    main()
