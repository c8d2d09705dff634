"""Images per second of cotgen's step-wise engine against transformers' `generate()`, same model,
same batch, same machine, measured side by side in one run.

    python bench/engine_vs_generate.py [--model embedded] [--batch 16] [--repeats 3]

Both sample with classifier-free guidance and decode the tokens to images. `generate()` is given
what it needs to run at all (an attention mask, a guidance scale above 1, the begin-of-image id).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cotgen.generate import PathKey, Sampling, StepwiseGenerator
from cotgen.machine import describe_machine
from cotgen.models.janus import load_generator, pad_prompts, tokenizer_specials
from cotgen.world.records import evaluation_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_generator(args.model)
    special = tokenizer_specials(tokenizer)
    # generate() does not shift positions for left padding: give both equal-length prompts.
    prompts = [r.prompt for r in evaluation_records() if r.tag == "colors"][: args.batch]
    ids = [tokenizer(p).input_ids for p in prompts]
    input_ids, mask = pad_prompts(ids, special.pad)
    engine = StepwiseGenerator(model, Sampling(guidance=args.guidance))

    def run_engine() -> None:
        engine.finish(engine.start(ids, [PathKey(0, str(i), 0) for i in range(len(ids))]))

    @torch.no_grad()
    def run_generate() -> None:
        tokens = model.generate(input_ids, attention_mask=mask, generation_mode="image", do_sample=True, guidance_scale=args.guidance)
        model.decode_image_tokens(tokens)

    timings: dict[str, list[float]] = {"engine": [], "generate": []}
    run_engine(), run_generate()  # warm up
    for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits both alike
        for name, fn in (("engine", run_engine), ("generate", run_generate)):
            start = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - start)
    rate = {name: args.batch / statistics.median(t) for name, t in timings.items()}
    print(f"machine: {describe_machine()}, torch threads {args.threads}")
    print(f"model {args.model}, batch {args.batch}, {engine.grid ** 2} image tokens, guidance {args.guidance}, {args.repeats} repeats")
    for name, times in timings.items():
        print(f"{name:<10}{rate[name]:>8.2f} images/s  (median of {', '.join(f'{t:.2f}' for t in times)} s)")
    print(f"engine / generate: {rate['engine'] / rate['generate']:.2f}x")


if __name__ == "__main__":
    main()
