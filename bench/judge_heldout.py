"""A judge on a training run's held-out sets, and a run's held-out curve beside a reference judge.

    # the card's held-out ORM images alone (no training data), for judges compared without training
    python bench/judge_heldout.py --data runs/forced/data --make-heldout
    # any judge (the shipped one by default) on the held-out sets of a jobs/train_judge.py data folder
    python bench/judge_heldout.py --judge embedded --data runs/judge_cot/data --out runs/judge_cot/embedded_heldout.json
    # the periodic and final held-out evaluations of a run's log, against answer-stage samples seen,
    # with a reference judge's figures (the JSON above) as flat lines; a run continued (init_from)
    # in another folder follows its first log on the same axis
    python bench/judge_heldout.py --plot runs/judge_cot/log.jsonl runs/judge_cot2/log.jsonl --reference runs/judge_cot/embedded_heldout.json
    # where a reading judge's readings go wrong, per tag: presence, count, colours, relation
    python bench/judge_heldout.py --judge embedded --data runs/judge_cot/data --readings
    # the same facts from a census-trained judge's answers to the census question (every class's count)
    python bench/judge_heldout.py --judge runs/judge8/judge --data runs/judge7/data --readings --census
    # a census_turn judge's readings after the true census, on training-split prompts' new images
    python bench/judge_heldout.py --judge runs/judge11/judge --data runs/judge7/data --readings --given-census --validation 600
    # two judges (or more) on the same held-out ORM images: each one's balanced accuracy minus the
    # first's, with paired 95 % bootstrap intervals over the images
    python bench/judge_heldout.py --data runs/judge_cot/data --compare embedded runs/judge_ctl/judge runs/judge_tied/judge
    # the same on the validation set (600 training-split records' new images), where settings are chosen
    python bench/judge_heldout.py --data runs/judge_cot/data --compare embedded runs/judge_ctl/judge --validation 600
    # the same on 600 of the generator's training images, asked their own prompt (what the judge has seen)
    python bench/judge_heldout.py --data runs/judge_cot/data --compare embedded --seen 600
    # potential at each path's first clear step (where PARM asks it) instead of ORM, on the same sets
    # (--validation N: prefixes of new paths of N training-split records, rolled out once under --data)
    python bench/judge_heldout.py --data runs/judge_cot/data --compare embedded runs/judge_ctl/judge --task potential --validation 300
    # each judge also asked one clause of two-object and colour-binding prompts at a time (never two classes at once)
    python bench/judge_heldout.py --data runs/judge7/data --compare embedded runs/judge7/judge --clauses --validation 600
    # judges trained with data.compositional, on combinations none of them read (where settings that
    # change how a judge generalises are chosen; the held-out split stays for the report)
    python bench/judge_heldout.py --data runs/judge_c0/data --compare runs/judge_c0/judge runs/judge_c1/judge --validation 300 --compositional unread
    # ... and on the validation set's records that name none of those combinations (all read)
    python bench/judge_heldout.py --data runs/judge_c0/data --compare runs/judge_c0/judge runs/judge_c1/judge --validation 600 --compositional read
    # one judge read three ways (JUDGE#MODE): its own reading; the question's classes and relation forced
    # (the skeleton); each class's facts copied from its own census (a census-trained judge)
    python bench/judge_heldout.py --data runs/census/data --compare runs/census/judge#free runs/census/judge#skeleton runs/census/judge#census
    # PARM++'s reflections on the same ORM images: says "no" to wrong ones, reason recall, says "yes" to correct ones
    python bench/judge_heldout.py --data runs/judge_cot/data --compare embedded runs/judge_ctl/judge --task reflection --validation 600
    # one judge's reflections two ways (JUDGE#MODE): as it writes them, and by rule from its reading
    # (and its answers after a reading: as it learnt them, embedded#answer, or embedded#verdict, the
    # evaluator's verdict on the facts read)
    python bench/judge_heldout.py --data runs/scenes/data --compare embedded#written embedded#rules --task reflection --validation 600
    # a census judge copying facts voted over seven views of each finished image, against one view
    python bench/judge_heldout.py --data runs/scenes/data --compare embedded embedded#views --validation 600

The figures are `cotgen.train.judge.evaluation.evaluate`'s, as the trainer's log and card report them:
balanced accuracy (P(yes) ≥ 0.5) pooled and as the mean over tags, per task.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

from cotgen.judge.census_views import VIEWS
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.skeleton import census_facts
from cotgen.judge.vlm import VLMJudge, load_judge
from cotgen.prompts import Record
from cotgen.report.plot import PALETTE, Series, plot
from cotgen.train.judge.card import summary_table
from cotgen.train.judge.config import JudgeDataConfig
from cotgen.train.judge.dataset import (
    build_heldout_set,
    build_validation,
    build_validation_prefixes,
    without_judge_validation,
)
from cotgen.train.judge.evaluation import evaluate, explain_each, judge_p_yes, judge_read, reflect
from cotgen.train.judge.examples import ExampleSet, spread
from cotgen.train.judge.reading import CENSUS_QUESTION, census_history, copying_census, reading_text, with_skeleton
from cotgen.train.judge.rollouts import first_clear_step
from cotgen.world.records import colors, records_by_prompt, single_object
from cotgen.world.vocab import SHAPES

FIGURE = Path(__file__).parent / "figures" / "judge_reading_run.png"
CURVES = (("orm", "ORM pooled"), ("orm_tag_mean", "ORM mean over tags"), ("potential_first_clear_tag_mean", "potential at first clear step, tag mean"))


def own_reading(mode):
    """The mode without a copied census: a census-copying judge then writes its facts itself."""
    return dataclasses.replace(mode, first="", first_tokens=0, first_facts=False) if mode.first_facts else mode


READING_MODES = {
    "free": lambda mode: dataclasses.replace(
        own_reading(mode), subjects=(), relations=(), rule_where=False, rule_count=False
    ),
    "skeleton": lambda mode: with_skeleton(own_reading(mode)),
    "census": copying_census,
    "rules": lambda mode: dataclasses.replace(mode, rule_reasons=True),
    "written": lambda mode: dataclasses.replace(mode, rule_reasons=False),
    "verdict": lambda mode: dataclasses.replace(mode, rule_verdict=True),
    "answer": lambda mode: dataclasses.replace(mode, rule_verdict=False),
    "views": lambda mode: dataclasses.replace(mode, census_views=len(VIEWS)),
    "one-view": lambda mode: dataclasses.replace(mode, census_views=1),
    "where": lambda mode: dataclasses.replace(mode, rule_where=True),
    "nowhere": lambda mode: dataclasses.replace(mode, rule_where=False),
    "count": lambda mode: dataclasses.replace(mode, rule_count=True),
    "nocount": lambda mode: dataclasses.replace(mode, rule_count=False),
}
"""How a judge named JUDGE#MODE reads: freely, with its skeleton forced (both writing their own facts),
or copying its census's facts; how it reflects: by rule from its reading, or as it writes; and how it
answers after a reading: by the evaluator's verdict on the facts read, or as it learnt; and whether it
votes on its census over every view of a finished image (`cotgen.judge.census_views`) or reads it once;
and whether a position's relation is where its where head finds the classes (`cotgen.judge.where`) or its own word,
and whether its counts are its count head's (`cotgen.judge.count_head`) or its census's."""


def load_variant(spec: str) -> VLMJudge:
    """The judge named by a folder, preset or "embedded", read as its config says, or as `#MODE` says."""
    name, _, how = spec.partition("#")
    judge = load_judge(name)
    if how:
        if how not in READING_MODES:
            raise SystemExit(f"{spec}: reading mode {how!r} is not one of {', '.join(READING_MODES)}")
        if judge.reading is None:
            raise SystemExit(f"{spec}: {name} answers directly, it writes no reading")
        judge.reading = READING_MODES[how](judge.reading)
    return judge


def measure(judge: str, data: Path, out: Path, threads: int) -> None:
    torch.set_num_threads(threads)
    result = evaluate(load_variant(judge), ExampleSet.load(data / "heldout"), ExampleSet.load(data / "heldout_prefixes"), batch=64)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"judge": judge, "data": str(data), "result": result}))
    print(summary_table(result))
    print(f"wrote {out}")


def facts(reading: str) -> dict[str, str]:
    """A reading's facts by subject: "circle" → "2, red, blue" (or "none"), "relation" → the relation
    clause ("circle is left of square")."""
    found = census_facts(reading, SHAPES)
    relation = [part.strip() for part in reading.rstrip(".").split(";") if " is " in part and ":" not in part]
    return found | {"relation": relation[0]} if relation else found


def census_readings(judge, images: ExampleSet, batch: int) -> list[str]:
    """The judge's greedy answer to the census question about each image (every class's count)."""
    texts = explain_each(judge, images, images.examples, [CENSUS_QUESTION] * len(images), batch, max_new_tokens=96)
    return [t.rstrip(".") for t in texts]


def reading_errors(
    judge: str, data: Path, threads: int, census: bool = False, validation: int = 0, given_census: bool = False, compositional: str = ""
) -> None:  # fmt: skip
    """Per tag, the share of held-out ORM images (or the validation set's, `validation`) whose
    reading is exact, and per fact of the expected reading: presence (none or some), count, colours
    (of the counted objects, in order), the relation. With `census`, the facts of the prompt's
    classes are taken from the judge's answer to the census question instead (a judge trained with
    census_share), without the relation. With `given_census`, the reading is written with the true
    census in the chat before the question (a judge trained with census_turn): what is left to get
    wrong is the text, not what the judge sees. Exact: every fact of the expected reading stated,
    whatever else the reading states."""
    torch.set_num_threads(threads)
    kind, heldout = comparison_set(data, validation, 0, compositional=compositional)
    model = load_variant(judge)
    if model.reading is None:
        raise SystemExit(f"{judge}: not a judge that reads before it answers")
    if given_census:
        model.reading = dataclasses.replace(model.reading, first="", first_tokens=0)  # the census is given, not asked
        told = [dataclasses.replace(e, history=census_history(heldout.reading(e.image), e.history)) for e in heldout.examples]
        heldout = ExampleSet(heldout.folder, told)
    readings = census_readings(model, heldout, 64) if census else judge_read(model, heldout, 64)[1]
    print(f"readings of {judge} on the {kind} images ({len(heldout)})" + (", after the true census" if given_census else ""))
    tally: dict[str, dict[str, list[bool]]] = {}
    for e, read in zip(heldout.examples, readings):
        expected = reading_text(heldout.reading(e.image), records_by_prompt()[e.prompt])
        row = tally.setdefault(e.tag, {"exact": [], "presence": [], "count": [], "colours": [], "relation": []})
        want, got = facts(expected), facts(read)
        if census:
            want.pop("relation", None)
        row["exact"].append(all(got.get(k) == v for k, v in want.items()))  # a census reading states more
        for subject, fact in want.items():
            said = got.get(subject, "")
            if subject == "relation":
                row["relation"].append(said == fact)
                continue
            row["presence"].append((fact == "none") == (said == "none"))
            row["count"].append(fact.split(",")[0] == said.split(",")[0])
            if fact != "none" and row["count"][-1]:
                row["colours"].append(fact == said)
    print("| tag | images | exact | presence | count | colours (count right) | relation |")
    print("|---|---|---|---|---|---|---|")
    for tag, row in tally.items():
        cells = [f"{sum(v) / len(v):.3f}" if v else "–" for v in row.values()]
        print(f"| {tag} | {len(row['exact'])} | " + " | ".join(cells) + " |")


def resampled_balanced(said: np.ndarray, truth: np.ndarray, tags: np.ndarray, picks: np.ndarray) -> dict[str, np.ndarray]:
    """Balanced accuracy, pooled, per tag and as the tag mean, of each resample (a row of `picks`)."""

    def balanced(mask: np.ndarray) -> np.ndarray:
        s, t = said[picks], truth[picks]
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((s & t & mask).sum(1) / (t & mask).sum(1) + (~s & ~t & mask).sum(1) / (~t & mask).sum(1)) / 2

    result = {"pooled": balanced(np.ones_like(picks, dtype=bool))}
    for tag in dict.fromkeys(tags):
        result[tag] = balanced(tags[picks] == tag)
    result["tag mean"] = np.nanmean(np.stack([result[t] for t in dict.fromkeys(tags)]), axis=0)
    return result


def run_generator(data: Path) -> tuple[JudgeDataConfig, int]:
    """The generator and the held-out seed of the data folder (`data.heldout_seed`), to make
    validation sets with."""
    made = data / "heldout" / "done.json"
    if not made.is_file():
        raise SystemExit(f"{data}: no finished heldout/ set, so no generator and seed to make the validation set with")
    settings = json.loads(made.read_text())["settings"]
    return JudgeDataConfig(generator=settings["generator"]), settings["seed"]


def first_clear(prefixes: ExampleSet) -> ExampleSet:
    """The potential examples asked at each path's first clear step (where PARM asks potential)."""
    return ExampleSet(prefixes.folder, [prefixes.examples[i] for i in sorted(first_clear_step(prefixes.examples))])


def comparison_set(data: Path, validation: int, seen: int, task: str = "orm", compositional: str = "") -> tuple[str, ExampleSet]:
    """The examples `compare` asks, and what they are: the held-out ones; the validation set's (new
    images, or prefixes of new paths, of `validation` training-split records, where settings are
    chosen; `compositional` "unread": images of records naming a judge-validation combination, which
    judges trained with `data.compositional` never read, "read": the validation set without them); or
    `seen` training ones (how well the judge knows what it was
    trained on). For `task` "orm" the images asked their own prompt; for "potential" the prefixes at
    their first clear step."""
    potential = task == "potential"
    if compositional and (potential or not validation):
        raise SystemExit("--compositional: ORM or reflections on the validation set only (give --validation N)")
    if compositional == "unread":
        config, seed = run_generator(data)
        return "compositional validation (combinations unread)", build_validation(data, config, seed, validation, progress=True, compositional=True)
    if validation:
        config, seed = run_generator(data)
        made = (build_validation_prefixes if potential else build_validation)(data, config, seed, validation, progress=True)
        if compositional == "read":
            return "validation (combinations read)", without_judge_validation(made)
        return "validation", first_clear(made) if potential else made
    if seen:
        if potential:
            asked = first_clear(ExampleSet.load(data / "prefixes"))
            return "seen training", ExampleSet(asked.folder, spread(asked.examples, seen))
        generated = ExampleSet.load(data / "generated")
        return "seen training", ExampleSet(generated.folder, spread([e for e in generated.examples if e.source == "generated"], seen))
    return "held-out", first_clear(ExampleSet.load(data / "heldout_prefixes")) if potential else ExampleSet.load(data / "heldout")


def clause_prompts(record: Record) -> list[str]:
    """The single-class prompts of a two-object or colour-binding record's clauses ("a photo of a red
    circle", "a photo of a blue square"); none for the other tags (asked whole)."""
    if record.tag not in ("two_object", "color_attr"):
        return []
    return [(colors(c.color, c.cls) if c.color else single_object(c.cls)).prompt for c in record.include]


def by_clause(judge, examples: ExampleSet, batch: int, whole: np.ndarray) -> np.ndarray:
    """P(yes) of each example (`whole`: the judge's, asked the whole prompt), two-object and
    colour-binding prompts asked one clause at a time instead (the ORM question about each clause's
    single-class prompt) and combined as the least of the clauses' (yes only when every clause is
    answered yes): the judge never sees two classes of a prompt at once."""
    p_yes = whole.copy()
    asked = [(i, JudgePrompts().orm.format(prompt=part)) for i, e in enumerate(examples.examples) for part in clause_prompts(records_by_prompt()[e.prompt])]
    clauses = ExampleSet(examples.folder, [dataclasses.replace(examples.examples[i], question=q) for i, q in asked])
    for i in {i for i, _ in asked}:
        p_yes[i] = 1.0
    for (i, _), p in zip(asked, judge_p_yes(judge, clauses, batch)):
        p_yes[i] = min(p_yes[i], p)
    return p_yes


def compare(
    judges: list[str], data: Path, threads: int, resamples: int, validation: int = 0, seen: int = 0, task: str = "orm", clauses: bool = False,
    compositional: str = "",
) -> None:  # fmt: skip
    """Each judge's balanced accuracy on the same examples (`comparison_set`), and its difference from
    the first judge's with a paired 95 % bootstrap interval (the examples resampled together). With
    `clauses`, each judge asked one clause at a time (`by_clause`) too, as another row."""
    torch.set_num_threads(threads)
    kind, heldout = comparison_set(data, validation, seen, task, compositional)
    truth = np.array([e.answer == "yes" for e in heldout.examples])
    tags = np.array([e.tag for e in heldout.examples])
    whole = np.arange(len(truth))[None]
    picks = np.random.default_rng(0).integers(0, len(truth), (resamples, len(truth)))
    said = {}
    for name in judges:
        judge = load_variant(name)
        p_yes = np.array(judge_p_yes(judge, heldout, 64, finished=task == "orm"))
        said[name] = p_yes >= 0.5
        if clauses:
            said[f"{name}, by clause"] = by_clause(judge, heldout, 64, p_yes) >= 0.5
    figures = {name: resampled_balanced(s, truth, tags, whole) for name, s in said.items()}
    first, judges = judges[0], list(said)
    what = "ORM" if task == "orm" else "Potential at the first clear step,"
    print(f"{what} balanced accuracy on {len(truth)} {kind} examples; [paired 95 % interval of the difference from {first}, {resamples} resamples]")
    print("| judge | " + " | ".join(figures[first]) + " |")
    print("|---|" + "---|" * len(figures[first]))
    base = resampled_balanced(said[first], truth, tags, picks)
    for judge in judges:
        cells = [f"{figures[judge][k][0]:.3f}" for k in figures[first]]
        if judge != first:
            mine = resampled_balanced(said[judge], truth, tags, picks)
            cells = [f"{c} ({figures[judge][k][0] - figures[first][k][0]:+.3f} [{np.nanpercentile(mine[k] - base[k], 2.5):+.3f}, {np.nanpercentile(mine[k] - base[k], 97.5):+.3f}])" for c, k in zip(cells, figures[first])]
        print(f"| {judge} | " + " | ".join(cells) + " |")


def reflection_hits(texts: list[str], examples: list) -> dict[str, np.ndarray]:
    """Per image: whether the reflection says "no" (wrong images) or "yes" (correct ones), and how many
    of the evaluator's reasons it names word for word, out of how many (`reflection_scores`, per image)."""
    wrong = np.array([e.answer == "no" for e in examples])
    return {
        "wrong": wrong,
        "says_no": np.array([t.startswith("no") for t in texts]) & wrong,
        "says_yes": np.array([t.startswith("yes") for t in texts]) & ~wrong,
        "found": np.array([sum(r in t for r in e.reasons) for t, e in zip(texts, examples)]),
        "reasons": np.array([len(e.reasons) for e in examples]),
    }


def resampled_reflections(hits: dict[str, np.ndarray], picks: np.ndarray) -> dict[str, np.ndarray]:
    """The reflections' rates of each resample (a row of `picks`): says "no" on wrong images, reason
    recall (reasons named over reasons, on wrong images) and says "yes" on correct ones."""
    wrong = hits["wrong"][picks]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            'wrong answered "no"': hits["says_no"][picks].sum(1) / wrong.sum(1),
            "reason recall": hits["found"][picks].sum(1) / hits["reasons"][picks].sum(1),
            'correct answered "yes"': hits["says_yes"][picks].sum(1) / (~wrong).sum(1),
        }


def compare_reflections(judges: list[str], data: Path, threads: int, resamples: int, validation: int = 0, compositional: str = "") -> None:
    """Each judge's greedy reflections on the same ORM images (held-out, or the validation set's), and
    their rates' differences from the first judge's with paired 95 % bootstrap intervals."""
    torch.set_num_threads(threads)
    kind, images = comparison_set(data, validation, 0, compositional=compositional)
    examples = images.examples
    picks = np.random.default_rng(0).integers(0, len(examples), (resamples, len(examples)))
    whole = np.arange(len(examples))[None]
    prompts = JudgePrompts()
    hits = {judge: reflection_hits(reflect(load_variant(judge), images, examples, 64, prompts), examples) for judge in judges}
    first = judges[0]
    base, first_point = resampled_reflections(hits[first], picks), resampled_reflections(hits[first], whole)
    print(f"Reflections on {len(examples)} {kind} images ({int(hits[first]['wrong'].sum())} wrong); [paired 95 % interval of the difference from {first}, {resamples} resamples]")
    print("| judge | " + " | ".join(base) + " |")
    print("|---|" + "---|" * len(base))
    for judge in judges:
        point = resampled_reflections(hits[judge], whole)
        cells = [f"{point[k][0]:.3f}" for k in base]
        if judge != first:
            mine = resampled_reflections(hits[judge], picks)
            cells = [f"{c} ({point[k][0] - first_point[k][0]:+.3f} [{np.nanpercentile(mine[k] - base[k], 2.5):+.3f}, {np.nanpercentile(mine[k] - base[k], 97.5):+.3f}])" for c, k in zip(cells, base)]
        print(f"| {judge} | " + " | ".join(cells) + " |")


def evaluations_of(logs: list[Path], batch_size: int) -> tuple[list[dict], list[int]]:
    """The held-out evaluations of `logs` (a run, then the runs that continued it) and the answer-stage
    samples seen at each, counted from the first run's start."""
    evaluations, xs, before = [], [], 0
    for log in logs:
        found = [r for r in map(json.loads, log.read_text().splitlines()) if "orm_tag_mean" in r]
        if not found:
            raise SystemExit(f"{log}: no held-out evaluations in this log")
        evaluations += found
        xs += [before + (r["samples_seen"] if r["stage"] == "final" else r["step"] * batch_size) for r in found]
        before = xs[-1]
    return evaluations, xs


def draw(logs: list[Path], reference: Path | None, batch_size: int) -> None:
    evaluations, samples = evaluations_of(logs, batch_size)
    xs = [x / 1000 for x in samples]  # short tick labels
    series = []
    for (key, label), color in zip(CURVES, PALETTE):
        series.append(Series(label, xs, [r[key] for r in evaluations], color, marker=True))
    if "orm_readings_exact" in evaluations[0]:
        series.append(Series("ORM readings exact", xs, [r["orm_readings_exact"] for r in evaluations], PALETTE[3], marker=True))
    if reference is not None:
        result = json.loads(reference.read_text())["result"]
        figures = {"orm": result["orm"]["overall"]["balanced"], "orm_tag_mean": result["orm"]["tag_mean"],
                   "potential_first_clear_tag_mean": result["potential_first_clear"]["tag_mean"]}  # fmt: skip
        for (key, label), color in zip(CURVES, PALETTE):
            series.append(Series(f"reference: {label}", [xs[0], xs[-1]], [figures[key]] * 2, color, dashed=True, marker=False))
    plot(series, "Judge training run: held-out figures", "answer-stage samples seen (thousands)", "balanced accuracy / share",
         size=(900, 520), log_x=False).save(FIGURE)  # fmt: skip
    for r, x in zip(evaluations, samples):
        print(f"{x:>8} samples: " + ", ".join(f"{k} {r[k]:.3f}" for k, _ in CURVES) + (f", readings exact {r['orm_readings_exact']:.3f}" if "orm_readings_exact" in r else ""))
    print(f"wrote {FIGURE}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", default="embedded", help="judge folder, preset or 'embedded'")
    parser.add_argument("--data", type=Path, help="a jobs/train_judge.py data folder (its heldout and heldout_prefixes)")
    parser.add_argument("--out", type=Path, help="where to write the figures as JSON")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", type=Path, nargs="+", help="a run's log.jsonl, then those of runs continuing it: draw their held-out evaluations and stop")
    parser.add_argument("--reference", type=Path, help="with --plot: a JSON written by this script")
    parser.add_argument("--batch-size", type=int, default=32, help="with --plot: the run's answer-stage batch size")
    parser.add_argument("--make-heldout", action="store_true", help="with --data: build the held-out ORM images of the embedded generator there, and stop")
    parser.add_argument("--readings", action="store_true", help="with --data: where a reading judge's readings go wrong")
    parser.add_argument("--census", action="store_true", help="with --readings: the facts from the judge's census answers instead")
    parser.add_argument("--given-census", action="store_true", help="with --readings: readings written after the true census in the chat (a census_turn judge)")
    parser.add_argument("--compare", nargs="+", help="with --data: judges on the same held-out images, paired with the first")
    parser.add_argument("--clauses", action="store_true", help="with --compare (ORM): each judge also asked one clause of two-class prompts at a time")
    parser.add_argument("--resamples", type=int, default=2000, help="with --compare: bootstrap resamples")
    parser.add_argument("--validation", type=int, default=0, metavar="N",
                        help="with --compare or --readings: on the validation set of N training-split records (built once under --data) instead of held-out")
    parser.add_argument("--compositional", choices=("unread", "read"), default="",
                        help="with --validation: images of records naming a judge-validation combination (unread by judges trained with data.compositional), or the validation set without them (read)")
    parser.add_argument("--seen", type=int, default=0, metavar="N",
                        help="with --compare: on N of the generated training images, asked their own prompt, instead of held-out")
    parser.add_argument("--task", choices=("orm", "potential", "reflection"), default="orm",
                        help="with --compare: ORM on final images, potential at each path's first clear step (prefix sets), or reflections on the ORM images")  # fmt: skip
    args = parser.parse_args(argv)
    if args.make_heldout and args.data:
        torch.set_num_threads(args.threads)
        print(f"{len(build_heldout_set(args.data, JudgeDataConfig(), progress=True))} held-out ORM examples in {args.data / 'heldout'}")
    elif args.compare and args.data and args.task == "reflection":
        compare_reflections(args.compare, args.data, args.threads, args.resamples, args.validation, args.compositional)
    elif args.compare and args.data:
        compare(args.compare, args.data, args.threads, args.resamples, args.validation, args.seen, args.task, args.clauses, args.compositional)
    elif args.readings and args.data:
        reading_errors(args.judge, args.data, args.threads, args.census, args.validation, args.given_census, args.compositional)
    elif args.plot:
        draw(args.plot, args.reference, args.batch_size)
    elif args.data and args.out:
        measure(args.judge, args.data, args.out, args.threads)
    else:
        parser.error("give --data and --out to measure a judge, or --plot LOG")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
