"""Training the embedded generator (`jobs/train_generator.py`): a VQ tokenizer for the shapes world,
then a Janus language model on tokenised scenes.

`config` (the run's settings), `scenes` (rendered training scenes, with the evaluator's reasons for
corrective prompts), `vq_stage` (the tokenizer: build or continue, loss, ceiling), `dataset` (the
tokenised scenes, cached), `ar_stage` (the language model: build or continue, batches, loss,
checkpoints, the training record), `card` (the model card).
"""
