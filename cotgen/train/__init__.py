"""Training, apart from inference: what the recipes in `jobs/` build their runs from.

- `common`: run logging, the learning-rate schedule, the recipes' command-line plumbing, card helpers.
- `generator`: the embedded generator's config, training scenes, VQ and language-model stages, card.
- `judge`: the embedded judge's labelled examples, rollout labels, reflections, model builder, card.
- `dpo`: preference pairs, the DPO loss, the run's config and folder layout.

Inference (`cotgen.generate`, `cotgen.judge`, `cotgen.verify`) never imports this package.
"""
