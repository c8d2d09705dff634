"""Images per second of a 7B-class judge answering PARM's and ORM's yes/no questions on one GPU: the
cost of a check against a generated image, beside the generator's (bench/gpu_engine.py).

    python bench/gpu_judge.py                       # GPU, bf16, batches 20 and 80
    python bench/gpu_judge.py --tiny                # the embedded judge's architecture on the CPU, in seconds
    python bench/gpu_judge.py --json out.json       # also write the figures as JSON

The judge is Qwen2-VL-7B's architecture with random weights (Qwen2-7B language model: 3584 wide, 28
layers, 28 heads over 4 key/value heads, MLP 18944; a 32-block, 1280-wide vision tower with 14-px
patches merged 2×2), built on the GPU in bf16, through `VLMJudge` as a downloaded judge would run:
P(yes) from one left-padded forward pass per batch. Janus's 384-px images become 28×28 patches, 196
visual tokens. Its tokenizer is the embedded judge's (a few hundred tokens, not Qwen's 152K): the
vocabulary only sizes the embedding table and the one row of logits read, small beside the layers.

Each question is timed whole (the processor on the CPU, then the forward pass) and as the forward
pass alone, on the same batch: ORM's question, and PARM's potential question asked after clarity
was answered "yes" (a longer chat).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.vlm import VLMJudge
from cotgen.machine import default_dtype, describe_machine, seconds_on
from cotgen.train.judge.config import JudgeModelConfig
from cotgen.train.judge.model import build_judge, count_parameters

IMAGE_SIDE = 384  # Janus's images
PROMPT = "a photo of a red circle and a blue square"


def qwen2_vl_7b() -> JudgeModelConfig:
    """Qwen2-VL-7B's shapes, its images resized to 392 px (the multiple of 28 nearest 384)."""
    return JudgeModelConfig(
        image_size=392, patch_size=14, merge_size=2, vision_dim=1280, vision_depth=32, vision_heads=16, vision_mlp_ratio=4,
        hidden_size=3584, layers=28, heads=28, kv_heads=4, intermediate_size=18944, rope_theta=1e6, init_std=0.02,
    )  # fmt: skip


def build(spec: JudgeModelConfig, device: str, dtype: torch.dtype) -> VLMJudge:
    """The random judge built where it runs: a 7B model in float32 on the CPU first would need 32 GB."""
    with default_dtype(dtype), torch.device(device):
        return build_judge(spec)


def questions(prompts: JudgePrompts) -> dict[str, tuple[str, tuple]]:
    """Each timed question and the exchanges before it."""
    clarity = prompts.clarity.format(prompt=PROMPT)
    return {"orm": (prompts.orm.format(prompt=PROMPT), ()), "potential": (prompts.potential, ((clarity, "yes"),))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="the embedded judge's architecture on the CPU (a smoke test, not a figure)")
    parser.add_argument("--batches", type=int, nargs="+", help="images per batch (default: 20 80; tiny: 2 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per question and batch, after one warm-up")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    if device == "cpu" and not args.tiny:
        print("no GPU here: nothing measured (pass --tiny for the CPU smoke test)")
        return {"device": describe_machine(), "timings": []}
    spec, dtype, batches = (JudgeModelConfig(), torch.float32, args.batches or [2, 4]) if args.tiny else (qwen2_vl_7b(), torch.bfloat16, args.batches or [20, 80])
    start = time.perf_counter()
    judge = build(spec, device, dtype)
    name = torch.cuda.get_device_name() if device == "cuda" else describe_machine()
    print(f"device: {name}; {'embedded judge architecture' if args.tiny else 'Qwen2-VL-7B architecture'}, random weights, {dtype}, "
          f"{count_parameters(judge) / 1e6:,.1f}M parameters, built in {time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip

    rng = np.random.default_rng(0)
    timings = []
    for batch in batches:
        images = [Image.fromarray(rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)) for _ in range(batch)]
        for task, (question, history) in questions(JudgePrompts()).items():
            chats = ([question] * batch, [history] * batch)
            inputs = judge.encode(images, *chats)
            run_whole = functools.partial(judge.p_yes, images, *chats)
            run_forward = torch.no_grad()(functools.partial(judge.model, **inputs, logits_to_keep=1))
            run_whole()  # warm-up
            forward = [seconds_on(device, run_forward) for _ in range(args.repeats)]
            whole = [seconds_on(device, run_whole) for _ in range(args.repeats)]
            row = {"task": task, "batch": batch, "tokens_per_chat": inputs["input_ids"].shape[1],
                   "images_per_s": batch / statistics.median(whole), "forward_images_per_s": batch / statistics.median(forward),
                   "seconds": whole, "forward_seconds": forward}  # fmt: skip
            timings.append(row)
            print(f"batch {batch:>3}  {task:<10} {row['images_per_s']:>8.2f} images/s whole, {row['forward_images_per_s']:>8.2f} "
                  f"forward alone ({row['tokens_per_chat']} tokens a chat)", flush=True)  # fmt: skip
    result = {"device": name, "tiny": args.tiny, "dtype": str(dtype), "parameters": count_parameters(judge), "timings": timings}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
