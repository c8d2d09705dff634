"""Images per second of Janus-Pro-1B's architecture (random weights) with classifier-free guidance:
(a) an eager KV-cache loop written like deepseek-ai/Janus `generation_inference.py`, (b) cotgen's
step-wise engine, (c) the engine showing a preview at each checkpoint step, as PARM does, and (d) the
engine's static-shape path (`cotgen/generate/static.py`: fixed shapes per token, compiled into CUDA
graphs on a GPU, eager on the CPU), in the same run, beside the memory-bandwidth floor. Each figure
is printed as soon as it is measured.

    python bench/gpu_engine.py                      # GPU, bf16, batches 16 and 64
    python bench/gpu_engine.py --tiny               # a tiny random Janus on the CPU, in seconds
    python bench/gpu_engine.py --json out.json      # also write the figures as JSON

Without a GPU (and without --tiny) it times nothing and prints the floors only, computed from the
architecture on the meta device.

The floor: every decode step reads the language model's weights once, and each row's KV cache so
far; at a device's peak memory bandwidth that time is a lower bound, so batch / (sum over the 576
steps) bounds images/s from above. It ignores the VQ decode and the prefill, small beside 576 steps.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import JanusConfig, JanusForConditionalGeneration, LlamaConfig

from cotgen.generate import PathKey, Sampling, StepwiseGenerator
from cotgen.machine import default_dtype, describe_machine, seconds_on
from cotgen.models.janus import SpecialTokens, configure_generation, tiny_janus_config

SPECIAL = SpecialTokens(bos=1, pad=0, boi=3)
PROMPT_TOKENS = 32  # Janus-Pro's conversation format around a GenEval-length prompt
GUIDANCE = 5.0
# Peak memory bandwidth (bytes/s) of the devices the figures are meant for, by name fragment.
BANDWIDTH = {"H200": 4.8e12, "H100": 3.35e12, "A100": 2.0e12}


def janus_pro_1b_config() -> JanusConfig:
    """Janus-Pro-1B's shapes: Llama 2048 hidden, 24 layers, 16 heads, 5632 MLP; 24×24 = 576 image
    tokens at 384 px; VQ codebook 16384 (JanusConfig's vision and VQ defaults are Janus's own)."""
    text = LlamaConfig(
        vocab_size=102400, hidden_size=2048, intermediate_size=5632, num_hidden_layers=24, num_attention_heads=16,
        num_key_value_heads=16, max_position_embeddings=16384, bos_token_id=SPECIAL.bos, pad_token_id=SPECIAL.pad,
    )  # fmt: skip
    return JanusConfig(text_config=text, image_token_id=100581)


def build(config: JanusConfig, device: str, dtype: torch.dtype) -> JanusForConditionalGeneration:
    """The random model built where it runs, in `dtype` from the start (no float32 copy first)."""
    torch.manual_seed(0)
    with default_dtype(dtype), torch.device(device):
        model = JanusForConditionalGeneration(config).eval()
    configure_generation(model, SPECIAL)
    return model


# -- (a) the reference's loop -----------------------------------------------------------------------
@torch.inference_mode()
def eager_loop(model: JanusForConditionalGeneration, prompt: list[int], batch: int, temperature: float) -> torch.Tensor:
    """Janus's sampling loop: conditional and unconditional rows interleaved, transformers' default
    (dynamic) KV cache, one token per forward pass, then the VQ decode. Returns the image tokens."""
    lm, grid = model.model.language_model, model.config.vision_config.num_image_tokens
    device = next(model.parameters()).device
    rows = torch.tensor([prompt] * (2 * batch), device=device)
    rows[1::2, 1:-1] = SPECIAL.pad
    embeds = model.get_input_embeddings()(rows)
    tokens = torch.zeros((batch, grid), dtype=torch.long, device=device)
    cache, kwarg = None, "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"
    for i in range(grid):
        out = lm(inputs_embeds=embeds, use_cache=True, **{kwarg: cache})
        cache = out.past_key_values
        logits = model.model.generation_head(out.last_hidden_state[:, -1]).float()
        logits = logits[1::2] + GUIDANCE * (logits[0::2] - logits[1::2])
        if temperature == 0:
            token = logits.argmax(-1)
        else:
            token = torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1).squeeze(1)
        tokens[:, i] = token
        embeds = model.prepare_embeddings_for_image_generation(token.repeat_interleave(2)[:, None])
    model.decode_image_tokens(tokens)
    return tokens


# -- (b)–(d) cotgen's engine -----------------------------------------------------------------------
def engine_run(engine: StepwiseGenerator, prompt: list[int], batch: int, previews: bool) -> torch.Tensor:
    state = engine.start([prompt] * batch, [PathKey(0, "bench", i) for i in range(batch)])
    while not engine.done(state):
        engine.step(state)
        if previews:
            engine.preview(state)
    return engine.finish(state)[0]


# -- the floor ---------------------------------------------------------------------------------------
def step_weight_bytes(model: JanusForConditionalGeneration) -> int:
    """Weights one decode step reads: the decoder layers and norm, the generation head and aligner
    (not the text or image embedding tables, of which a step reads two rows)."""
    parts = [model.model.language_model.layers, model.model.language_model.norm, model.model.generation_head,
             model.model.generation_aligner]  # fmt: skip
    return sum(p.numel() * p.element_size() for part in parts for p in part.parameters())


def floor_images_per_s(model: JanusForConditionalGeneration, batch: int, prompt_len: int, bandwidth: float) -> float:
    text = model.config.text_config
    head_dim = text.hidden_size // text.num_attention_heads
    kv_per_position = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * next(model.parameters()).element_size()
    steps = model.config.vision_config.num_image_tokens
    positions = sum(prompt_len + t for t in range(steps))  # each step attends to everything so far
    total = steps * step_weight_bytes(model) + 2 * batch * positions * kv_per_position  # CFG: 2 rows per image
    return batch * bandwidth / total


@dataclass
class Timing:
    method: str
    batch: int
    seconds: list[float]

    @property
    def images_per_s(self) -> float:
        return self.batch / statistics.median(self.seconds)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a tiny random Janus on the CPU (a smoke test, not a figure)")
    parser.add_argument("--batches", type=int, nargs="+", help="images per batch (default: 16 64; tiny: 2 4)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per method and batch, after one warm-up")
    parser.add_argument("--temperature", type=float, default=1.0, help="0: greedy, so (a) and (b) must agree token for token")
    parser.add_argument("--bandwidth", type=float, help="the device's peak memory bandwidth in TB/s (default: by its name)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    if args.tiny:
        config, dtype, batches = tiny_janus_config(grid=8, vocab_size=64), torch.float32, args.batches or [2, 4]
    else:
        config, dtype, batches = janus_pro_1b_config(), torch.bfloat16, args.batches or [16, 64]
    measure = args.tiny or device == "cuda"
    model = build(config, device if measure else "meta", dtype)
    vocab = config.text_config.vocab_size
    prompt = [SPECIAL.bos, *torch.randint(4, vocab - 1, (PROMPT_TOKENS - 2,)).tolist(), SPECIAL.boi]
    sampling = Sampling(guidance=GUIDANCE, temperature=args.temperature, steps=4)
    engine, static = StepwiseGenerator(model, sampling, static=False), StepwiseGenerator(model, sampling, static=True)
    name = torch.cuda.get_device_name() if device == "cuda" else describe_machine()
    bandwidth = args.bandwidth * 1e12 if args.bandwidth else next((b for k, b in BANDWIDTH.items() if k in name), None)

    methods = {
        "eager loop (Janus's script)": lambda b: eager_loop(model, prompt, b, args.temperature),
        "cotgen engine": lambda b: engine_run(engine, prompt, b, previews=False),
        "cotgen engine + previews": lambda b: engine_run(engine, prompt, b, previews=True),
        "cotgen engine, static": lambda b: engine_run(static, prompt, b, previews=False),  # CUDA graphs on a GPU
    }
    print(f"device: {name}; {'tiny random Janus' if args.tiny else 'Janus-Pro-1B architecture, random weights'}, {dtype}")
    print(f"{config.vision_config.num_image_tokens} image tokens, CFG {GUIDANCE}, temperature {args.temperature}, prompt {PROMPT_TOKENS} tokens", flush=True)
    if not measure:
        print("images/s: not measured — no GPU here (run it on one, or pass --tiny for the CPU smoke test)")
    timings, agree = [], {}
    for batch in batches if measure else []:
        tokens = {m: fn(batch) for m, fn in methods.items()}  # warm-up, and the tokens to compare
        agree[batch] = all(torch.equal(t, tokens["cotgen engine"]) for t in tokens.values())
        runs = {m: Timing(m, batch, []) for m in methods}
        for _ in range(args.repeats):  # interleaved, so drift hits every method alike
            for m, fn in methods.items():
                runs[m].seconds.append(seconds_on(device, functools.partial(fn, batch)))
        timings += runs.values()
        for t in runs.values():  # as soon as measured: a GPU run may be cut short
            print(f"batch {t.batch:>3}  {t.method:<28}{t.images_per_s:>9.2f} images/s  (median of {', '.join(f'{s:.2f}' for s in t.seconds)} s)", flush=True)
    floors = {
        label: {b: floor_images_per_s(model, b, PROMPT_TOKENS, bw) for b in batches}
        for label, bw in ({**BANDWIDTH, "this device": bandwidth} if bandwidth else BANDWIDTH).items()
    }
    for label, per_batch in floors.items():
        print(f"bandwidth floor at {label}: " + ", ".join(f"batch {b}: {v:.1f} images/s" for b, v in per_batch.items()))
    if measure and args.temperature == 0:
        print("greedy tokens identical across methods: " + ", ".join(f"batch {b}: {ok}" for b, ok in agree.items()))
    result = {
        "device": name, "tiny": args.tiny, "dtype": str(dtype), "temperature": args.temperature,
        "timings": [{"method": t.method, "batch": t.batch, "images_per_s": t.images_per_s, "seconds": t.seconds} for t in timings],
        "floors": floors, "greedy_agree": agree if measure and args.temperature == 0 else None,
    }  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
