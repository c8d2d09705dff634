"""Corrective prompts: the judge's reflection turned into feedback, and the world tokenizer reading it."""

from __future__ import annotations

import numpy as np
import pytest

from cotgen.evaluate.exact import evaluate_image
from cotgen.evaluate.rules import check
from cotgen.generate.feedback import MAX_FEEDBACK_PIECES, corrective_prompt, feedback_from_explanation, readable
from cotgen.models.janus import image_grid, load_generator
from cotgen.models.tokenizer import SPECIALS, build_world_tokenizer, world_words
from cotgen.prompts import TAGS
from cotgen.world.perturb import broken_image, random_record
from cotgen.world.records import all_records
from cotgen.world.scene import Box


@pytest.mark.parametrize(
    "explanation, feedback",
    [
        ("no: expected 2 circles, found 1", "expected 2 circles, found 1"),
        ("No. the square is blue, expected red", "the square is blue, expected red"),
        ("yes", ""),
        ("Yes: it matches", ""),
        ("nothing matches", "nothing matches"),  # "no" only as a word of its own
    ],
)
def test_feedback_is_the_explanation_without_its_verdict(explanation, feedback):
    assert feedback_from_explanation(explanation) == feedback


def test_corrective_prompt_layout_and_cut():
    assert corrective_prompt("a photo of a cross", "") == "a photo of a cross"
    assert corrective_prompt("a photo of a cross", "expected a cross, found none") == (
        "a photo of a cross. feedback: expected a cross, found none"
    )
    long = corrective_prompt("a photo of a cross", "found none; " * 30)
    assert long.endswith("found none") and long.count("found") == MAX_FEEDBACK_PIECES // 3  # whole reasons
    assert corrective_prompt("a", "x " * 50).count("x") == MAX_FEEDBACK_PIECES


def test_old_word_ids_are_kept_and_feedback_words_come_after():
    tokenizer = build_world_tokenizer()
    words = world_words()
    assert tokenizer.convert_tokens_to_ids(words) == list(range(len(SPECIALS), len(SPECIALS) + len(words)))
    assert len(tokenizer) > len(SPECIALS) + len(words)


def test_every_evaluator_reason_tokenises_and_fits_the_embedded_generator():
    model, tokenizer = load_generator("embedded")
    assert tokenizer.get_vocab() == build_world_tokenizer().get_vocab()  # it knows the feedback words
    positions, image_tokens = model.config.text_config.max_position_embeddings, image_grid(model) ** 2
    rng = np.random.default_rng(0)
    reasons = set()
    for _ in range(600):
        record = random_record(rng)
        verdict = evaluate_image(broken_image(record, rng), record)
        if not verdict.correct:
            reasons.add((record.prompt, "; ".join(verdict.reasons)))
    blobs = (Box(0, 0, 4, 4), Box(8, 8, 12, 12))
    for tag in TAGS:  # nothing found at all, two unrecognisable shapes: the longest reasons there are
        for record in all_records(tag):
            reasons.add((record.prompt, "; ".join(check([], record, blobs).reasons)))
    assert len(reasons) > 300
    for prompt, feedback in reasons:
        ids = tokenizer(corrective_prompt(prompt, feedback)).input_ids
        assert tokenizer.unk_token_id not in ids, tokenizer.convert_ids_to_tokens(ids)
        assert len(ids) + image_tokens <= positions, corrective_prompt(prompt, feedback)


def test_feedback_keeps_only_what_the_generator_can_read():
    vocabulary = set(build_world_tokenizer().get_vocab())
    assert readable("expected 2 circles, found 1", vocabulary.__contains__) == "expected 2 circles, found 1"
    assert readable("Please expected 2 squiggles, found 1", vocabulary.__contains__) == "expected 2 , found 1"
    assert readable("Please squiggle", vocabulary.__contains__) == ""
