"""The embedded generator's model card (README.md in its folder)."""

from __future__ import annotations

from pathlib import Path

from cotgen.evaluate.summary import Summary, format_table
from cotgen.machine import describe_machine
from cotgen.train.common.cards import config_section
from cotgen.train.generator.config import TrainGeneratorConfig


def write_card(out: Path, cfg: TrainGeneratorConfig, vq_stage: dict, ar_stage: dict, final: Summary, ceiling: float, scenes: int) -> None:
    text = f"""# cotgen embedded generator

A tiny Janus (`JanusForConditionalGeneration`) trained on the shapes world by
`jobs/train_generator.py`. Load it like any Janus checkpoint with `from_pretrained`.

- Image: {cfg.image_size}×{cfg.image_size} px, {cfg.vq.grid}×{cfg.vq.grid} image tokens, {cfg.vq.codebook} codes.
- Language model: Llama, hidden {cfg.ar.hidden_size}, {cfg.ar.layers} layers, {cfg.ar.heads} heads.
- Default sampling: guidance {cfg.ar.guidance}, temperature 1.0, full distribution.
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

{config_section(cfg)}"""
    (out / "README.md").write_text(text)
