"""Preference training (the paper's DPO and iterative DPO) for Janus image generators, without Ray.

- `config`: the run's config (`DPOConfig`) and its sections: training hyperparameters (the paper's
  β 0.1, lr 1e-5, one epoch by default), the Ray Train workers, the held-out evaluation.
- `pairs`: labelled samples of the current policy → "yes" images paired with "no" images of the same
  prompt (one pair per prompt, or up to `pairs_per_prompt`), on the image tokens the sweep stored
  with them (replaying a sample of their path keys is a check).
- `loss`: sequence log-probs of image tokens (conditional, teacher-forced, no guidance) and the
  sigmoid DPO loss with TRL's metrics, against precomputed reference log-probs.
- `batches`: each optimizer step's pairs, split between the workers.
- `rounds`: a run folder's layout, round by round, and the models it was started with.
- `card`: each round's model card and the seconds of its phases.

The Ray layer is `cotgen.distributed.dpo_train` (sampling, Ray Train) and `dpo_worker`; the recipe
that owns the round loop is `jobs/train_dpo.py`.
"""
