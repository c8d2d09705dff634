"""Training the embedded judge (`jobs/train_judge.py`).

Data, every label the exact evaluator's verdict on an image: `examples` (the schema and cached
example sets), `labels` (ORM labels, swapped prompts), `renders`, `generated` and `rollouts` (the
builders of each source), `dataset` (the five sets together), `cells` (the vision stage's targets),
`sampler` (balanced batches). Model: `tokenizer`, `model` (the random Qwen2-VL). Training and
measuring: `config`, `losses`, `reflection` (PARM++'s reflection target, loss and scores),
`metrics`, `evaluation`, `card`.
"""
