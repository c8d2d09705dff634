"""A reading's skeleton: the words a question fixes (its classes, a relation) are forced while the
judge writes, and they are the words the judge is taught to write for every world prompt."""

import pytest
import torch
from test_judge_reading import MODE, OUTCOME, picture, taught

from cotgen.errors import InputError
from cotgen.evaluate.reader import read_scene
from cotgen.judge import load_judge, save_judge
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.reading import ReadingMode, reading_mode, set_reading_mode
from cotgen.judge.skeleton import Skeleton, SkeletonForcing, census_facts, skeleton, with_facts
from cotgen.prompts import RELATIONS, TAGS
from cotgen.train.judge.reading import census_text, reading_target
from cotgen.world.records import all_records
from cotgen.world.render import render
from cotgen.world.sampler import sample_scene
from cotgen.world.vocab import SHAPES

WORLD = ReadingMode(marker="answer:", max_tokens=48, subjects=SHAPES, relations=RELATIONS)


def test_a_questions_skeleton_names_its_classes_in_the_readings_order():
    orm = JudgePrompts().orm
    assert skeleton(orm.format(prompt="a photo of four crosses"), WORLD) == Skeleton(("cross",))
    assert skeleton(orm.format(prompt="a photo of a red circle and an orange square"), WORLD) == Skeleton(("circle", "square"))
    # a position prompt reads its reference object first, as GenEval's metadata lists it
    left = skeleton(orm.format(prompt="a photo of a circle left of a square"), WORLD)
    assert left == Skeleton(("square", "circle"), ("circle", "left of", "square"))
    assert skeleton(orm.format(prompt="a photo of a dog"), WORLD) is None  # nothing to force
    assert skeleton(orm.format(prompt="a photo of a circle"), MODE) is None  # a mode without subjects


def walk(forcing: SkeletonForcing, sk: Skeleton, tokens: list[int]) -> None:
    """Every token of a taught reading is one the skeleton allows at its place."""
    for k, token in enumerate(tokens):
        allowed = forcing._allowed(sk, tokens[:k])
        if isinstance(allowed, int):  # free facts: anything, ended by the separator the skeleton wants
            assert token not in forcing.separators or token == allowed, (k, tokens)
        else:
            assert allowed is not None and token in allowed, (k, tokens)
    assert forcing._allowed(sk, tokens) is None  # done: the answer is the judge's


@pytest.mark.parametrize("tag", TAGS)
def test_every_taught_reading_fits_its_questions_skeleton(tag):
    """For images of each world prompt, and of another prompt (classes missing, so no relation), the
    reading the judge is taught fits the skeleton forced on it: forcing never forbids a taught word."""
    tokenizer = load_judge("embedded").processor.tokenizer
    orm = JudgePrompts().orm
    forcing = SkeletonForcing(tokenizer, WORLD, [], 0, set())
    records = all_records(tag)
    for i, record in enumerate(records):
        sk = skeleton(orm.format(prompt=record.prompt), WORLD)
        for shown in (record, records[(i + 1) % len(records)]):
            reading = read_scene(render(sample_scene(shown, i)))
            taught_text = reading_target(reading, record, "yes").removesuffix(" yes")
            tokens = tokenizer.encode(taught_text, add_special_tokens=False)
            walk(forcing, sk, tokens)
            # with every class's facts copied from the census of the same image, all but the
            # relation's "not" is forced, and forced as taught
            walk(forcing, with_facts(sk, census_facts(census_text(reading), SHAPES)), tokens)


@pytest.fixture(scope="module")
def misnamer():
    """A tiny reading judge taught to name the wrong class for OUTCOME (about a circle): "square: …"."""
    taught_to = {"red": "square: 1, red. answer: yes", "blue": "square: 1, blue. answer: no"}
    return taught([(color, OUTCOME, (), text) for color, text in taught_to.items()] + [("red", "Is this image clear?", (), "yes")], MODE)


def test_the_forced_skeleton_names_the_questions_class_and_leaves_direct_answers_alone(misnamer):
    images = [picture("red"), picture("blue")]
    free_p, free = misnamer.read(images, [OUTCOME] * 2)
    assert free == ["square: 1, red", "square: 1, blue"]
    set_reading_mode(misnamer.model, ReadingMode(marker="answer:", max_tokens=24, subjects=("circle", "square")))
    misnamer.reading = reading_mode(misnamer.model)
    try:
        forced_p, forced = misnamer.read(images, [OUTCOME] * 2)
        assert [r.split(":")[0] for r in forced] == ["circle", "circle"]
        assert all(abs(p - 0.5) > 1e-6 for p in forced_p.tolist())  # each reading reached its answer
        clear, _ = misnamer.read([images[0]], ["Is this image clear?"])
        assert clear.item() > 0.9  # a direct answer: nothing forced
    finally:
        set_reading_mode(misnamer.model, MODE)
        misnamer.reading = reading_mode(misnamer.model)
    assert torch.equal(misnamer.read(images, [OUTCOME] * 2)[0], free_p)


def test_a_reading_mode_with_subjects_is_saved_and_checked(tmp_path, misnamer):
    set_reading_mode(misnamer.model, WORLD)
    try:
        save_judge(misnamer, tmp_path)
        assert load_judge(tmp_path).reading == WORLD
    finally:
        set_reading_mode(misnamer.model, MODE)
    with pytest.raises(InputError, match="subjects"):
        ReadingMode(subjects=("circle", "circle"))
    with pytest.raises(InputError, match="relations"):
        ReadingMode(relations=("left of",))


def test_census_facts_are_each_subjects_part_of_a_census():
    census = "circle: 2, red, blue; square: none; triangle: 1, green; diamond: none; cross: none."
    assert census_facts(census, ("circle", "square")) == {"circle": "2, red, blue", "square": "none"}
    assert census_facts("circle: 1, red; garbled; square", ("circle", "square")) == {"circle": "1, red"}
    assert with_facts(Skeleton(("square", "circle")), {"circle": "1, red"}).facts == (None, "1, red")
