"""Where a reading judge's counts go wrong: in what its visual tokens show, or in how its language
model reads them.

A fresh head is trained on the frozen judge's visual tokens (the merged tokens its language model
sees) to tell what is centred in each token's cell (`centre_targets`, the vision stage's target),
on the generator's images of training records. On the held-out images, counting the tokens the head
calls "<colour> <class>" gives a count per class that needs no language model. Side by side with
the judge's own readings of the same images, per tag: if the probe counts right far more often than
the judge writes, the visual tokens hold the counts and the language model fails to read them out.

    python bench/judge_perception.py --judge embedded --data runs/judge_cot/data
    python bench/judge_perception.py --judge embedded --data runs/judge_cot/data --hidden 256   # an MLP probe
    # also each class of a two-class prompt asked alone (its single-object prompt): is it the
    # prompt naming two classes, or the image holding more objects, that the reading fails on?
    python bench/judge_perception.py --judge embedded --data runs/judge_cot/data --one-class
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch

from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.skeleton import census_facts
from cotgen.judge.vlm import VLMJudge, load_judge
from cotgen.judge.where import visual_features
from cotgen.prompts import Record
from cotgen.train.judge.evaluation import judge_read
from cotgen.train.judge.examples import ExampleSet
from cotgen.train.judge.losses import centre_cross_entropy, centre_target_ids, visual_cells_of
from cotgen.train.judge.reading import CENTRE_CLASSES
from cotgen.world.records import records_by_prompt

Facts = dict[str, tuple[int, tuple[str, ...]]]
"""Per class the prompt names: how many, and their colours sorted."""


@torch.no_grad()
def token_features(judge: VLMJudge, examples: ExampleSet, paths: list[str], batch: int = 64) -> torch.Tensor:
    """(images, tokens, hidden) visual tokens of each image."""
    cells = visual_cells_of(judge)
    chunks = [visual_features(judge, [examples.image(p) for p in paths[i : i + batch]]) for i in range(0, len(paths), batch)]
    return torch.cat(chunks).float().view(len(paths), cells * cells, -1)


def token_targets(judge: VLMJudge, examples: ExampleSet, paths: list[str]) -> torch.Tensor:
    """(images, tokens) index in CENTRE_CLASSES of what the evaluator finds centred in each cell."""
    return centre_target_ids(judge, [examples.reading(path) for path in paths])


def train_probe(features: torch.Tensor, targets: torch.Tensor, hidden: int, epochs: int, seed: int) -> torch.nn.Module:
    """A linear head (hidden 0) or a one-hidden-layer MLP on the frozen tokens, Adam, minibatches of 64 images."""
    torch.manual_seed(seed)
    width = features.shape[-1]
    classes = len(CENTRE_CLASSES)
    head = torch.nn.Linear(width, classes) if hidden == 0 else torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, classes))
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    for epoch in range(epochs):
        order = torch.randperm(len(features))
        total = 0.0
        for start in range(0, len(order), 64):
            rows = order[start : start + 64]
            loss = centre_cross_entropy(head(features[rows]).flatten(0, 1), targets[rows].flatten())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        print(f"  probe epoch {epoch + 1}/{epochs}: loss {total / len(order):.4f}", flush=True)
    return head


def probe_facts(classes: list[int], record: Record) -> Facts:
    """What counting the probe's tokens says for each class the prompt names."""
    named = [CENTRE_CLASSES[c].split(" ") for c in classes if c > 1]
    return {cls: (sum(k == cls for _, k in named), tuple(sorted(c for c, k in named if k == cls))) for cls in class_names(record)}


def evaluator_facts(examples: ExampleSet, path: str, record: Record) -> Facts:
    objects = examples.reading(path).objects
    return {cls: (sum(o.cls == cls for o in objects), tuple(sorted(o.color for o in objects if o.cls == cls))) for cls in class_names(record)}


def reading_facts(reading: str, record: Record) -> Facts:
    """What a judge's reading ("circle: 2, red, blue; square: none; …") says for each class named."""
    said = census_facts(reading, class_names(record))
    facts = {}
    for cls in class_names(record):
        words = [w.strip() for w in said.get(cls, "none").split(",")]
        count = int(words[0]) if words[0].isdigit() else 0
        facts[cls] = (count, tuple(sorted(words[1:])))
    return facts


def class_names(record: Record) -> list[str]:
    return list(dict.fromkeys(c.cls for c in record.include))


def tally(rows: dict[str, Counter], tag: str, who: str, got: Facts, want: Facts) -> None:
    """Count and colours right per class, under the tag and, where the prompt names two classes,
    also under "<tag>, class 1" or "class 2" (its place in the prompt)."""
    for place, (cls, (count, colours)) in enumerate(want.items(), 1):
        for key in (tag, f"{tag}, class {place}") if len(want) > 1 else (tag,):
            row = rows.setdefault(key, Counter())
            row["classes"] += who == "probe"
            row[f"{who} count"] += got[cls][0] == count
            row[f"{who} count+colours"] += got[cls] == (count, colours)


def one_class_facts(judge: VLMJudge, heldout: ExampleSet, batch: int = 64) -> list[tuple[str, str, Facts, Facts]]:
    """For each class named by a two-class prompt of the held-out set: (tag, class, what the judge
    reads when the image is asked about that class alone with its single-object prompt, what the
    evaluator finds), the facts keyed by that class only."""
    records = records_by_prompt()
    alone = {r.include[0].cls: prompt for prompt, r in records.items() if r.tag == "single_object"}
    asked = [(e, cls) for e in heldout.examples for cls in class_names(records[e.prompt]) if len(class_names(records[e.prompt])) > 1]
    orm = JudgePrompts().orm
    rows = []
    for start in range(0, len(asked), batch):
        chunk = asked[start : start + batch]
        _, readings = judge.read([heldout.image(e.image) for e, _ in chunk], [orm.format(prompt=alone[cls]) for _, cls in chunk])
        for (e, cls), read in zip(chunk, readings):
            want = evaluator_facts(heldout, e.image, records[e.prompt])[cls]
            rows.append((e.tag, cls, reading_facts(read, records[alone[cls]]), {cls: want}))
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", default="embedded")
    parser.add_argument("--data", type=Path, required=True, help="a jobs/train_judge.py data folder (generated/, heldout/)")
    parser.add_argument("--hidden", type=int, default=0, help="the probe's hidden width (0: linear)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one-class", action="store_true", help="also ask each class of a two-class prompt alone")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    judge = load_judge(args.judge)
    judge.model.eval()
    train, heldout = ExampleSet.load(args.data / "generated"), ExampleSet.load(args.data / "heldout")
    train_paths = list(dict.fromkeys(e.image for e in train.examples))
    test_paths = list(dict.fromkeys(e.image for e in heldout.examples))
    print(f"visual tokens of {len(train_paths)} training and {len(test_paths)} held-out images", flush=True)
    head = train_probe(token_features(judge, train, train_paths), token_targets(judge, train, train_paths), args.hidden, args.epochs, args.seed)
    with torch.no_grad():
        predicted = head(token_features(judge, heldout, test_paths)).argmax(-1)
    targets = token_targets(judge, heldout, test_paths)
    centred = targets > 0
    print(f"\nheld-out tokens with something centred: {(predicted == targets)[centred].float().mean():.3f} right; "
          f"empty tokens: {(predicted == targets)[~centred].float().mean():.3f} right; "
          f"images with every token right: {(predicted == targets).all(1).float().mean():.3f}")
    print("judge readings of the held-out images …", flush=True)
    _, readings = judge_read(judge, heldout, 64)
    by_path = dict(zip(test_paths, predicted.tolist()))
    records = records_by_prompt()
    rows: dict[str, Counter] = {}
    for e, read in zip(heldout.examples, readings):
        record = records[e.prompt]
        want = evaluator_facts(heldout, e.image, record)
        tally(rows, e.tag, "probe", probe_facts(by_path[e.image], record), want)
        tally(rows, e.tag, "judge", reading_facts(read, record), want)
    print("\nper class the prompt names: the count (and count with colours) right, by counting the probe's tokens and in the judge's reading")
    print("| tag | classes | probe count | judge count | probe count+colours | judge count+colours |")
    print("|---|---|---|---|---|---|")
    for tag, row in rows.items():  # a tag's "class 1" and "class 2" rows follow it: one tally adds all three
        n = row["classes"]
        print(f"| {tag} | {n} | " + " | ".join(f"{row[k] / n:.3f}" for k in ("probe count", "judge count", "probe count+colours", "judge count+colours")) + " |")
    if args.one_class:
        facts = one_class_facts(judge, heldout)
        alone: dict[str, Counter] = {}
        for tag, _, got, want in facts:
            tally(alone, tag, "judge", got, want)
        classes = Counter(tag for tag, *_ in facts)
        print("\neach class of a two-class prompt asked alone (its single-object prompt): the judge's reading right")
        print("| tag | classes | count | count+colours |\n|---|---|---|---|")
        for tag, row in alone.items():
            n = classes[tag]
            print(f"| {tag} | {n} | {row['judge count'] / n:.3f} | {row['judge count+colours'] / n:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
