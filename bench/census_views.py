"""Are a census judge's wrong counts noise or bias? Its census read on shifted and flipped views.

A census-copying judge (the shipped one) copies each class's count from its greedy census answer. If
a wrong count came from how objects fall across its 8-px patches (noise), the same image shifted by
half a patch, or mirrored, would be read right often enough that a vote over views mends it; if it
came from what the judge makes of the shapes (bias), every view repeats it. Per tag, the share of
the prompt's classes whose count the census gets right, per view and by majority vote over all
views (`cotgen.judge.census_views`, as a judge with `census_views` votes), and by its count head where
it has one (`cotgen.judge.count_head`); and, per tag, the wrong
counts split by whether the evaluator found an unrecognisable shape ("blob") in the image; and how
often the data folder's training images (the generator's, and the count scenes) hold one.

    python bench/census_views.py --data runs/scenes/data --validation 600   # where settings are chosen
    python bench/census_views.py --data runs/scenes/data                    # the held-out images
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from cotgen.judge.census_views import VIEWS, voted_facts
from cotgen.judge.reading import answer_greedily
from cotgen.judge.skeleton import census_facts
from cotgen.judge.vlm import VLMJudge, load_judge
from cotgen.judge.where import visual_features
from cotgen.train.judge.examples import ExampleSet
from cotgen.train.judge.reading import CENSUS_QUESTION, reading_text
from cotgen.world.records import records_by_prompt
from cotgen.world.vocab import SHAPES

sys.path.insert(0, str(Path(__file__).parent))
from judge_heldout import comparison_set, facts

BLOB_SAMPLE = 1500
"""Images of each training set read for the share that holds a blob."""


def census(judge: VLMJudge, images: list[Image.Image], batch: int = 64) -> list[dict[str, str]]:
    """Each image's census facts per class ("2, red, blue", "none"), from the judge's greedy census answer."""
    found = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        inputs = judge.encode(chunk, [CENSUS_QUESTION] * len(chunk))
        texts, _ = answer_greedily(judge.model, judge.processor.tokenizer, inputs, judge.reading.first_tokens)
        found += [census_facts(text, SHAPES) for text in texts]
    return found


def head_counts(judge: VLMJudge, images: list[Image.Image], batch: int = 64) -> list[dict[str, str]]:
    """Each image's count of every class as the judge's count head finds it, as census facts ("2", "none")."""
    found = []
    for start in range(0, len(images), batch):
        counts = judge.count.counts(visual_features(judge, images[start : start + batch]))
        found += [{cls: str(n) if n else "none" for cls, n in c.items()} for c in counts]
    return found


def count(facts_of: dict[str, str], cls: str) -> str:
    return facts_of.get(cls, "").split(",")[0]


def caption(reading, got: dict[str, str]) -> str:
    """The evaluator's count of each class it names, its blobs, and the census's counts."""
    named = Counter(o.cls for o in reading.objects)
    truth = ", ".join(f"{n} {cls}" for cls, n in named.items()) or "nothing"
    census = ", ".join(f"{count(got, cls)} {cls}" for cls in SHAPES if count(got, cls) not in ("", "none")) or "nothing"
    blobs = len(reading.blobs)
    return f"evaluator: {truth} + {blobs} blob{'s' if blobs > 1 else ''}\ncensus: {census}"


def blob_figure(images: list[Image.Image], captions: list[str], path: Path, scale: int = 3, columns: int = 6) -> None:
    """The images enlarged in a grid, each captioned below."""
    side, text = images[0].width * scale if images else 0, 30
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * (side + 8), max(rows, 1) * (side + text + 8)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (image, words) in enumerate(zip(images, captions)):
        x, y = (k % columns) * (side + 8), (k // columns) * (side + text + 8)
        sheet.paste(image.resize((side, side), Image.NEAREST), (x, y))
        draw.multiline_text((x + 2, y + side + 2), words, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", default="embedded")
    parser.add_argument("--data", type=Path, required=True, help="a jobs/train_judge.py data folder")
    parser.add_argument(
        "--validation", type=int, default=0, help="new images of N training-split records instead of the held-out ones"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--figure", type=Path, help="a PNG of the counting images holding a blob, each with both counts")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    judge = load_judge(args.judge)
    if judge.reading is None or not judge.reading.first:
        raise SystemExit(f"{args.judge}: not a judge that answers the census first")
    kind, asked = comparison_set(args.data, args.validation, 0)
    examples = asked.examples
    truth = []
    for e in examples:
        want = facts(reading_text(asked.reading(e.image), records_by_prompt()[e.prompt]))
        truth.append({cls: count(want, cls) for cls in want if cls != "relation"})
    read = {name: census(judge, [view(asked.image(e.image)) for e in examples]) for name, view in VIEWS.items()}
    read["vote of all views"] = [voted_facts([read[name][i] for name in VIEWS]) for i in range(len(examples))]
    if judge.count is not None:  # the count head's counts (`rule_count`), on the image as it is
        read["count head"] = head_counts(judge, [asked.image(e.image) for e in examples])
    tags = list(dict.fromkeys(e.tag for e in examples))
    print(f"census counts of the prompt's classes right, {args.judge} on the {kind} images ({len(examples)})\n")
    print("| view | " + " | ".join(tags) + " |\n|---|" + "---|" * len(tags))
    for name, found in read.items():
        right, total = Counter(), Counter()
        for e, want, got in zip(examples, truth, found):
            total[e.tag] += len(want)
            right[e.tag] += sum(count(got, cls) == n for cls, n in want.items())
        print(f"| {name} | " + " | ".join(f"{right[t] / total[t]:.3f}" for t in tags) + " |")
    print("\n| tag | images | with a blob | wrong counts with a blob | wrong counts without |\n|---|---|---|---|---|")
    for tag in tags:
        rows = [
            (bool(asked.reading(e.image).blobs), any(count(got, c) != n for c, n in want.items()))
            for e, want, got in zip(examples, truth, read["as is"])
            if e.tag == tag
        ]
        blob = [wrong for has, wrong in rows if has]
        clean = [wrong for has, wrong in rows if not has]
        print(f"| {tag} | {len(rows)} | {len(blob)} | {sum(blob)} of {len(blob)} | {sum(clean)} of {len(clean)} |")
    if args.figure:
        blobbed = [(e, got) for e, got in zip(examples, read["as is"]) if e.tag == "counting" and asked.reading(e.image).blobs]
        blob_figure([asked.image(e.image) for e, _ in blobbed], [caption(asked.reading(e.image), got) for e, got in blobbed], args.figure)
        print(f"figure: {args.figure} ({len(blobbed)} images)")
    for name in ("generated", "census_scenes"):  # how often the census saw a blob in training
        if (args.data / name / "examples.jsonl").is_file():
            images = ExampleSet.load(args.data / name)
            sources = dict.fromkeys(e.source.split("/")[0] for e in images.examples)  # count scenes and counting images apart
            for source in sources:
                paths = list(dict.fromkeys(e.image for e in images.examples if e.source.split("/")[0] == source))[:BLOB_SAMPLE]
                share = sum(bool(images.reading(path).blobs) for path in paths) / len(paths)
                print(f"training set {name} ({source}): {share:.3f} of {len(paths)} images hold a blob")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
