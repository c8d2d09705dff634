"""The detector evaluator: tiny random Mask2Former and CLIP for the plumbing, constructed detections
for GenEval's selection and verdict rules."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    Mask2FormerConfig,
    Mask2FormerForUniversalSegmentation,
    Mask2FormerImageProcessorPil,
    PreTrainedTokenizerFast,
    SwinConfig,
)

from cotgen.cli import main
from cotgen.errors import InputError
from cotgen.evaluate.detector import (
    BACKGROUND,
    COLORS,
    MAX_OBJECTS,
    OBJECT_NAMES,
    TEMPLATES,
    UNJUDGED,
    Detection,
    keep,
    load_detector,
    mask_box,
    masked_crop,
    threshold_for,
    verdict_on,
)
from cotgen.evaluate.detector_folder import detect_folder
from cotgen.layout import write_prompt_folder
from cotgen.prompts import Clause, Record, load_records
from cotgen.world.scene import ShapeObject

DOG = OBJECT_NAMES.index("dog")


def clip_tokenizer() -> PreTrainedTokenizerFast:
    """CLIP's conventions (start and end tokens, the end token pooled) over the words GenEval's colour prompts use."""
    words = {w for t in TEMPLATES for w in t.replace("-", " - ").split() if "{" not in w}
    words |= set(COLORS) | {w for name in OBJECT_NAMES for w in name.split()}
    specials = ["<pad>", "<|startoftext|>", "<unk>", "<|endoftext|>"]
    core = Tokenizer(models.WordLevel({t: i for i, t in enumerate(specials + sorted(words))}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    core.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", 1), ("<|endoftext|>", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="<pad>", unk_token="<unk>"
    )  # fmt: skip


@pytest.fixture(scope="module")
def detector_dir(tmp_path_factory):
    """A tiny random Mask2Former (Swin backbone, COCO's 80 classes) whose class head is set to call every
    query a dog, and a tiny random CLIP, saved where `load_detector` looks."""
    root = tmp_path_factory.mktemp("geneval")
    torch.manual_seed(0)
    backbone = SwinConfig(
        image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )  # fmt: skip
    config = Mask2FormerConfig(
        backbone_config=backbone, feature_size=32, mask_feature_size=32, hidden_dim=32, encoder_feedforward_dim=64,
        dim_feedforward=64, encoder_layers=1, decoder_layers=2, num_attention_heads=2, num_queries=8,
        num_labels=len(OBJECT_NAMES), use_pretrained_backbone=False,
    )  # fmt: skip
    segmenter = Mask2FormerForUniversalSegmentation(config)
    with torch.no_grad():
        segmenter.class_predictor.weight.zero_()
        segmenter.class_predictor.bias.zero_()
        segmenter.class_predictor.bias[DOG] = 12.0
    segmenter.save_pretrained(root / "mask2former")
    Mask2FormerImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 128}).save_pretrained(root / "mask2former")
    tokenizer = clip_tokenizer()
    text = {
        "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
        "max_position_embeddings": 32, "bos_token_id": 1, "eos_token_id": 3, "pad_token_id": 0,
    }  # fmt: skip
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 32, "patch_size": 8}
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(root / "clip")
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(root / "clip")
    tokenizer.save_pretrained(root / "clip")
    return root


def scene() -> Image.Image:
    image = Image.new("RGB", (96, 80), "white")  # not square: the processor pads it
    image.paste(Image.new("RGB", (30, 30), (200, 30, 30)), (10, 20))
    return image


def record(tag, *include, exclude=()):
    return Record(tag, tuple(include), "a photo", tuple(exclude))


def detection(cls, score, box, size=(80, 96)):
    mask = np.zeros(size, dtype=bool)
    mask[box[1] : box[3], box[0] : box[2]] = True
    return Detection(cls, score, mask_box(mask), mask)


def test_an_image_through_the_detector_yields_objects_the_rules_judge(detector_dir):
    detector = load_detector(detector_dir, device="cpu")
    image = scene()
    found = detector.detect(image, threshold_for(record("single_object", Clause("dog", 1))))
    assert found and all(d.cls == "dog" and d.score > 0.3 for d in found)
    for d in found:
        assert d.mask.shape == (80, 96) and mask_box(d.mask) == d.box
    one_red = record("colors", Clause("dog", 1, color="red"))
    result = detector.evaluate(image, one_red)
    assert all(isinstance(o, ShapeObject) and o.cls == "dog" for o in result.objects)
    assert [o.box for o in result.objects] == [d.box for d in sorted(found, key=lambda d: -d.score)]
    assert result.objects[0].color in COLORS and {o.color for o in result.objects[1:]} <= {UNJUDGED}
    assert result.correct == (result.objects[0].color == "red")
    too_many = detector.evaluate(image, record("colors", Clause("dog", len(found) + 1, color="red")))
    assert {o.color for o in too_many.objects} == {UNJUDGED}  # too few dogs: no colour is asked for
    assert too_many.reasons == (f"expected {len(found) + 1} dogs, found {len(found)}",)
    assert detector.evaluate(image, record("single_object", Clause("dog", 1))).correct
    assert not detector.evaluate(image, record("single_object", Clause("cat", 1))).correct


def test_selection_keeps_genevals_thresholds_order_and_cap():
    counting = record("counting", Clause("dog", 2), exclude=(Clause("dog", 3),))
    assert threshold_for(counting) == 0.9 and threshold_for(record("two_object", Clause("dog", 1))) == 0.3
    found = [detection("dog", s, (0, 0, 10, 10)) for s in (0.3, 0.5, 0.95, 0.91)]
    assert [d.score for d in keep(found, 0.3)["dog"]] == [0.95, 0.91, 0.5]  # above, not at, the threshold
    assert [d.score for d in keep(found, 0.9)["dog"]] == [0.95, 0.91]
    many = [detection("cat", 0.5 + i / 100, (i, 0, i + 5, 5)) for i in range(20)]
    assert len(keep(many, 0.3)["cat"]) == MAX_OBJECTS
    assert verdict_on(keep(found, 0.9), {}, counting).correct
    three = verdict_on(keep([*found, detection("dog", 0.99, (40, 40, 60, 60))], 0.9), {}, counting)
    assert not three.correct and three.reasons == ("expected 2 dogs, found 3",)


def test_colour_and_position_are_judged_on_the_most_confident_objects():
    small_sure = detection("dog", 0.9, (0, 0, 10, 10))
    large_unsure = detection("dog", 0.4, (30, 30, 90, 79))
    kept = keep([large_unsure, small_sure], 0.3)
    white = record("colors", Clause("dog", 1, color="white"))
    verdict = verdict_on(kept, {"dog": ["black"]}, white)
    assert not verdict.correct and verdict.reasons == ("the dog is black, expected white",)
    assert [o.color for o in verdict.objects] == ["black", UNJUDGED]
    cat = detection("cat", 0.8, (50, 0, 70, 20))
    left = record("position", Clause("cat", 1), Clause("dog", 1, position=("left of", 0)))
    assert verdict_on(keep([small_sure, large_unsure, cat], 0.3), {}, left).correct
    right = record("position", Clause("cat", 1), Clause("dog", 1, position=("right of", 0)))
    assert not verdict_on(keep([small_sure, large_unsure, cat], 0.3), {}, right).correct


def test_colour_is_read_from_the_object_masked_over_grey():
    image = Image.new("RGB", (96, 80), "white")
    image.paste(Image.new("RGB", (20, 20), "red"), (10, 10))
    mask = np.zeros((80, 96), dtype=bool)
    mask[10:30, 10:20] = True  # the left half of the red square
    mask[40, 50] = True  # and a stray white pixel far away
    crop = np.asarray(masked_crop(image, Detection("dog", 0.9, mask_box(mask), mask)))
    assert crop.shape == (31, 41, 3)
    assert (crop[0, :10] == (255, 0, 0)).all() and (crop[0, 10:] == BACKGROUND).all()
    assert (crop[30, 40] == (255, 255, 255)).all()


def test_cli_scores_a_folder_with_the_detector(detector_dir, tmp_path, capsys):
    images = tmp_path / "images"
    write_prompt_folder(images, 0, Record("single_object", (Clause("dog", 1),), "a photo of a dog"), [scene()] * 2)
    write_prompt_folder(images, 1, Record("single_object", (Clause("zebra", 1),), "a photo of a zebra"), [scene()])
    results = tmp_path / "results.jsonl"
    assert main(["evaluate", str(images), "--detector", str(detector_dir), "--results", str(results)]) == 0
    assert "detector" in capsys.readouterr().out
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [row["correct"] for row in rows] == [True, True, False]
    assert rows[0]["objects"][0]["class"] == "dog" and rows[2]["reasons"] == ["expected a zebra, found none"]


def test_genevals_own_records_are_scored(detector_dir, geneval_metadata, tmp_path):
    records = load_records(geneval_metadata)
    first = [next(r for r in records if r.tag == tag) for tag in dict.fromkeys(r.tag for r in records)]
    for i, r in enumerate(first):
        write_prompt_folder(tmp_path, i, r, [scene()])
    rows, summary = detect_folder(tmp_path, load_detector(detector_dir, device="cpu"))
    assert [row["tag"] for row in rows] == [r.tag for r in first] and len(rows) == 6
    assert summary.to_json()["images"] == 6


def test_missing_detector_says_what_to_download(tmp_path, capsys):
    with pytest.raises(InputError, match="hf download facebook/mask2former-swin-small-coco-instance .*openai/clip-vit-large-patch14"):
        load_detector(tmp_path)
    assert main(["evaluate", str(tmp_path), "--detector", str(tmp_path / "none")]) == 2
    assert "no GenEval detector" in capsys.readouterr().err
