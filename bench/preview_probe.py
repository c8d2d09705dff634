"""Does an early preview show what decides the outcome? Linear probes on the judge's and on the
generator's state at the same step, against the rollouts' verdict.

    python bench/preview_probe.py                          # 1,200 training and 553 held-out paths at step 1
    python bench/preview_probe.py --train 300 --heldout 120 --rollouts 4

Two paths in three are decided at step 1 (`bench/potential_ceiling.py`), when the preview shows
only the top quarter of the rows, and the judge's potential at the first clear step trails an
oracle from fresh rollouts by a quarter. Either the preview holds the outcome and the judge fails
to read it, or the outcome sits in the generator's state (its tokens so far, read by its own
layers) and no picture of those rows shows it. Each path (the keys of the judge's prefix data) is
stopped at `--step`; `--rollouts` continuations give its pass rate, and a path is labelled by
their majority. Logistic probes, fitted on the paths of training-split records the judge never saw
(its validation records) with the L2 weight chosen by 5-fold cross-validation, read:
- `prompt`: the generator's hidden state at begin-of-image (the prompt alone: how hard it is);
- `generator`: that state beside its mean over the prefix's image positions and its state after the
  last token (what the generator's own layers make of the prompt and the tokens so far);
- `judge`: the judge's hidden state where it answers potential on the preview (after the clarity
  turn, as PARM asks it); the judge's own answer (P(yes) ≥ 0.5) is reported beside the probes.
Held-out balanced accuracy (pooled, mean over tags) with paired bootstrap intervals of the
differences, over all paths and over the paths decided at that step (the first 4 rollouts agree,
where PARM's potential is asked).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.vlm import load_judge
from cotgen.models.janus import generation_prompt_ids, load_generator
from cotgen.prompts import TAGS
from cotgen.train.judge.generated import heldout_records, validation_records
from cotgen.train.judge.metrics import balanced_accuracy
from cotgen.train.judge.rollouts import prefix_rollouts

PROBES = ("prompt", "generator", "judge")
DECIDED_BY = 4  # the data's prefix_rollouts: the rollouts a potential label is read off


@torch.no_grad()
def generator_states(generator: str, prompts: list[str], tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The generator's last-layer hidden state at begin-of-image (the prompt alone), and that state
    beside the mean over the prefix's image positions and the state after its last token (the
    conditional stream its next-token logits come from): what its own layers make of the tokens so far."""
    model, tokenizer = load_generator(generator)
    lm, embed = model.model.language_model, model.get_input_embeddings()
    at_boi, with_prefix = [], []
    for prompt, prefix in zip(prompts, torch.as_tensor(tokens)):
        ids = torch.tensor([generation_prompt_ids(tokenizer, prompt)])
        embeds = torch.cat([embed(ids), model.prepare_embeddings_for_image_generation(prefix[None])], dim=1)
        hidden = lm(inputs_embeds=embeds).last_hidden_state[0].float()
        boi = hidden[ids.shape[1] - 1]
        at_boi.append(boi)
        with_prefix.append(torch.cat([boi, hidden[ids.shape[1] :].mean(0), hidden[-1]]))
    return torch.stack(at_boi).numpy(), torch.stack(with_prefix).numpy()


@torch.no_grad()
def judge_states(judge_path: str, previews, prompts: list[str], batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The judge's last-layer hidden state where it answers potential after the clarity turn, and its P(yes)."""
    judge, asked = load_judge(judge_path), JudgePrompts()
    states, p_yes = [], []
    for first in tqdm(range(0, len(previews), batch), desc="judge", unit="batch", disable=None):
        images, chunk = previews[first : first + batch], prompts[first : first + batch]
        history = [((asked.clarity.format(prompt=p), "yes"),) for p in chunk]
        questions = [asked.potential] * len(chunk)
        inputs = judge.encode(images, questions, history)
        states.append(judge.model(**inputs, output_hidden_states=True).hidden_states[-1][:, -1].float())
        p_yes.append(judge.p_yes(images, questions, history))
    return torch.cat(states).numpy(), torch.cat(p_yes).numpy()


def collect(records, args, judge_path: str, cache: Path) -> dict:
    """Every path stopped at `args.step`: its features, pass rate, label and whether it is decided.
    Kept in `cache` (an .npz), which a rerun with the same settings reads instead."""
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **rollout_paths(records, args, judge_path))
    saved = dict(np.load(cache))
    at_boi, with_prefix = generator_states(args.generator, list(saved["prompt"]), saved["tokens"])
    return {"features": {"prompt": at_boi, "generator": with_prefix, "judge": saved.pop("judge")}, **saved}


def rollout_paths(records, args, judge_path: str) -> dict[str, np.ndarray]:
    """The step's prefixes with their rollouts' verdicts and what the judge makes of their previews."""
    prefixes = [
        p for p in prefix_rollouts(records, args.rollouts, args.seed, args.generator, args.batch, progress=True, last_step=args.step)
        if p.step == args.step
    ]  # fmt: skip
    prompts = [records[p.record].prompt for p in prefixes]
    judge, p_yes = judge_states(judge_path, [p.preview for p in prefixes], prompts, args.batch)
    passes = np.array([p.passes for p in prefixes], dtype=float)
    return {
        "prompt": np.array(prompts),
        "tokens": torch.stack([p.tokens for p in prefixes]).numpy(),
        "judge": judge,
        "judge_p_yes": p_yes,
        "pass_rate": passes.mean(1),
        "label": passes.mean(1) >= 0.5,
        "decided": np.array([p.clear_by(DECIDED_BY) for p in prefixes]),
        "first_verdict": passes[:, 0] > 0.5,
        "tag": np.array([records[p.record].tag for p in prefixes]),
    }


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of an L2-regularised logistic regression (classes weighted to balance), by L-BFGS."""
    x, y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    weight = torch.where(y > 0.5, 0.5 / y.mean().clamp(min=1e-6), 0.5 / (1 - y.mean()).clamp(min=1e-6))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iterations, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = (weight * F.binary_cross_entropy_with_logits(x @ w + b, y, reduction="none")).mean() + l2 * w.square().sum()
        value.backward()
        return value

    opt.step(loss)
    return w.detach(), b.detach()


class Probe:
    """Standardised features, a logistic regression, its L2 weight chosen by k-fold balanced accuracy."""

    def __init__(self, x: np.ndarray, y: np.ndarray, l2s=(1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0), folds: int = 5, seed: int = 0):
        x = x.astype(np.float64)
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-6
        z = (x - self.mean) / self.scale
        fold = np.random.default_rng(seed).permutation(len(y)) % folds
        scores = {}
        for l2 in l2s:
            predicted = np.zeros(len(y), dtype=bool)
            for k in range(folds):
                w, b = fit_logistic(z[fold != k], y[fold != k], l2)
                predicted[fold == k] = (torch.tensor(z[fold == k]) @ w + b).numpy() > 0
            scores[l2] = balanced(predicted, y)
        self.l2 = max(scores, key=scores.get)
        self.cv = scores
        self.w, self.b = fit_logistic(z, y, self.l2)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (torch.tensor((x.astype(np.float64) - self.mean) / self.scale) @ self.w + self.b).numpy() > 0


def balanced(predicted: np.ndarray, label: np.ndarray) -> float:
    return balanced_accuracy(predicted.astype(float).tolist(), ["yes" if y else "no" for y in label])["balanced"]


def scores(predictions: dict[str, np.ndarray], label: np.ndarray, tag: np.ndarray) -> dict[str, dict]:
    """Each predictor's pooled balanced accuracy and its mean over the tags."""
    out = {}
    for name, predicted in predictions.items():
        per_tag = [balanced(predicted[tag == t], label[tag == t]) for t in TAGS if len(set(label[tag == t])) == 2]
        out[name] = {"pooled": balanced(predicted, label), "tag_mean": float(np.mean(per_tag))}
    return out


def paired_interval(a: np.ndarray, b: np.ndarray, label: np.ndarray, resamples: int = 2000) -> tuple[float, float]:
    """95 % bootstrap interval of balanced(a) − balanced(b) over the same resampled paths."""
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(resamples):
        i = rng.integers(0, len(label), len(label))
        if len(set(label[i])) == 2:
            diffs.append(balanced(a[i], label[i]) - balanced(b[i], label[i]))
    return float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))


def report(train: dict, heldout: dict) -> dict:
    probes = {name: Probe(train["features"][name], train["label"]) for name in PROBES}
    result = {"cv": {name: {str(k): v for k, v in p.cv.items()} for name, p in probes.items()}}
    for subset, mask, label in (
        ("all paths (majority of the rollouts)", np.ones(len(heldout["label"]), dtype=bool), heldout["label"]),
        ("decided paths (first 4 rollouts agree)", heldout["decided"], heldout["first_verdict"]),
    ):
        predictions = {name: p.predict(heldout["features"][name][mask]) for name, p in probes.items()}
        predictions["judge's answer"] = heldout["judge_p_yes"][mask] >= 0.5
        label, tag = label[mask], heldout["tag"][mask]
        pairs = [("generator", "judge"), ("generator", "prompt"), ("judge", "prompt"), ("judge", "judge's answer")]
        result[subset] = {
            "paths": int(mask.sum()),
            "scores": scores(predictions, label, tag),
            "differences": {f"{a} − {b}": paired_interval(predictions[a], predictions[b], label) for a, b in pairs},
        }
    return result


def print_report(result: dict) -> None:
    for subset, r in result.items():
        if subset == "cv":
            continue
        print(f"\n{subset}: {r['paths']} held-out paths")
        print("| reader | balanced | mean over tags |\n|---|---|---|")
        for name, s in r["scores"].items():
            print(f"| {name} | {s['pooled']:.3f} | {s['tag_mean']:.3f} |")
        for pair, (low, high) in r["differences"].items():
            a, b = pair.split(" − ")
            print(f"{pair}: {r['scores'][a]['pooled'] - r['scores'][b]['pooled']:+.3f} [{low:+.3f}, {high:+.3f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=1200, help="training-split records (apart from the judge's data) the probes are fitted on")
    ap.add_argument("--heldout", type=int, default=553, help="held-out records they are scored on (553: all)")
    ap.add_argument("--step", type=int, default=1, help="checkpoint step the paths are stopped at")
    ap.add_argument("--rollouts", type=int, default=8, help="continuations that give each prefix's pass rate")
    ap.add_argument("--seed", type=int, default=0, help="the data's seed (judge.yaml's)")
    ap.add_argument("--generator", default="embedded")
    ap.add_argument("--judge", default="embedded")
    ap.add_argument("--batch", type=int, default=32, help="images decoded (and judged) together")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/preview_probe.json"))
    args = ap.parse_args()
    if args.rollouts < DECIDED_BY or args.step < 1:
        ap.error(f"--rollouts must be at least {DECIDED_BY} and --step at least 1")
    torch.set_num_threads(args.threads)
    settings = f"step{args.step}_r{args.rollouts}_seed{args.seed}"
    train = collect(validation_records(args.train, args.seed), args, args.judge, args.out.with_name(f"{args.out.stem}_train{args.train}_{settings}.npz"))
    heldout = collect(heldout_records(args.heldout), args, args.judge, args.out.with_name(f"{args.out.stem}_heldout{args.heldout}_{settings}.npz"))
    result = report(train, heldout)
    counts = defaultdict(int)
    for t, d in zip(heldout["tag"], heldout["decided"]):
        counts[t] += int(d)
    result["decided_by_tag"] = dict(counts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **result}, indent=1))
    print_report({k: v for k, v in result.items() if k != "decided_by_tag"})
    print(f"\nprobes' L2 weights by 5-fold balanced accuracy on the training paths: {result['cv']}\nwrote {args.out}")


if __name__ == "__main__":
    main()
