"""Preference training (the paper's DPO and iterative DPO) for Janus image generators, without Ray.

- `pairs`: labelled samples of the current policy → one "yes" and one "no" image per prompt, as
  path keys (the engine reproduces a path's tokens exactly from its key).
- `loss`: sequence log-probs of image tokens (conditional, teacher-forced, no guidance) and the
  sigmoid DPO loss with TRL's metrics, against precomputed reference log-probs.
- `config`: the training hyperparameters (the paper's β 0.1, lr 1e-5, one epoch by default).

The Ray Train / DeepSpeed layer is `cotgen.distributed.dpo_train`; the job `jobs/train_dpo.py`.
"""
