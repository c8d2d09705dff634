"""GenEval for real images: Mask2Former COCO instance segmentation and CLIP ViT-L/14 colours, judged
by the rules the exact evaluator uses (`cotgen.evaluate.rules`).

A re-implementation of GenEval's `evaluate_images.py` on transformers models; its scores are close
to, not identical with, the mmdet-based original's. Kept from GenEval: score threshold 0.3 (0.9 for
counting prompts), at most 16 objects per class in score order, no suppression of overlapping
objects (GenEval's default `max_overlap` of 1 disables it), position threshold 0.1, colour among
GenEval's ten names by zero-shot CLIP over its three prompt templates, on the object's mask
composited over #999 grey and cropped to its box, judged only on the objects the rules look at.
Different: the detector weights (facebook/mask2former-swin-small-coco-instance rather than mmdet's
Swin-S run), its resize (the checkpoint's processor rather than mmdet's 1333×800) and transformers'
instance post-processing (top query-class pairs scored by class probability × mean mask
probability, as mmdet does, but not bit for bit); CLIP's weights are the same OpenAI ViT-L/14, its
resize and crop transformers' rather than open_clip's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import (
    AutoTokenizer,
    CLIPImageProcessorPil,
    CLIPModel,
    Mask2FormerForUniversalSegmentation,
    Mask2FormerImageProcessorPil,
)

from cotgen.errors import InputError
from cotgen.evaluate.exact import Evaluation
from cotgen.evaluate.rules import check
from cotgen.models.presets import models_root
from cotgen.prompts import Record
from cotgen.world.scene import Box, ShapeObject

THRESHOLD = 0.3
COUNTING_THRESHOLD = 0.9
MAX_OBJECTS = 16
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
TEMPLATES = ("a photo of a {color} {cls}", "a photo of a {color}-colored {cls}", "a photo of a {color} object")
BACKGROUND = (153, 153, 153)  # GenEval's "#999"
UNJUDGED = ""  # the colour of an object no colour clause looks at: never classified

# GenEval's object_names.txt: COCO's 80 classes in the detector's label order, in GenEval's words.
OBJECT_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "computer mouse", "tv remote",
    "computer keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock",
    "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# Where `load_detector("geneval")` looks, and what goes there.
PARTS = {"mask2former": "facebook/mask2former-swin-small-coco-instance", "clip": "openai/clip-vit-large-patch14"}


@dataclass(frozen=True)
class Detection:
    cls: str
    score: float
    box: Box
    mask: np.ndarray  # bool, image height × width


def mask_box(mask: np.ndarray) -> Box:
    """The tightest box around a mask (x1 and y1 exclusive, like mmdet's mask-to-box)."""
    ys, xs = np.nonzero(mask)
    return Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def threshold_for(record: Record) -> float:
    return COUNTING_THRESHOLD if record.tag == "counting" else THRESHOLD


def keep(detections: list[Detection], threshold: float) -> dict[str, list[Detection]]:
    """GenEval's selection: per class, scores above the threshold, best first, at most MAX_OBJECTS."""
    by_class: dict[str, list[Detection]] = defaultdict(list)
    for d in sorted(detections, key=lambda d: -d.score):
        if d.score > threshold and len(by_class[d.cls]) < MAX_OBJECTS:
            by_class[d.cls].append(d)
    return dict(by_class)


def colour_needs(record: Record) -> dict[str, int]:
    """How many of each class's best objects a colour clause looks at."""
    needs: dict[str, int] = {}
    for clause in record.include:
        if clause.color is not None:
            needs[clause.cls] = max(needs.get(clause.cls, 0), clause.count)
    return needs


def masked_crop(image: Image.Image, detection: Detection) -> Image.Image:
    """The object alone: its mask over grey, cropped to its box (what GenEval's CLIP sees)."""
    grey = Image.new("RGB", image.size, BACKGROUND)
    alone = Image.composite(image.convert("RGB"), grey, Image.fromarray(detection.mask.astype(np.uint8) * 255))
    return alone.crop(detection.box.as_list())


def verdict_on(kept: dict[str, list[Detection]], colours: dict[str, list[str]], record: Record) -> Evaluation:
    """The verdict on kept detections, `colours[cls]` naming the colours of that class's first objects."""
    objects = []
    for cls, found in kept.items():
        named = colours.get(cls, [])
        objects += [ShapeObject(cls, named[i] if i < len(named) else UNJUDGED, d.box) for i, d in enumerate(found)]
    verdict = check(objects, record, ordered=True)
    return Evaluation(verdict.correct, verdict.reasons, tuple(objects), ())


class GenEvalDetector:
    """Mask2Former for the objects, CLIP for their colours."""

    def __init__(self, segmenter, segmenter_processor, clip, clip_processor, tokenizer):
        if segmenter.config.num_labels != len(OBJECT_NAMES):
            raise InputError(f"the detector has {segmenter.config.num_labels} classes; GenEval needs COCO's 80")
        self.segmenter, self.segmenter_processor = segmenter.eval(), segmenter_processor
        self.clip, self.clip_processor, self.tokenizer = clip.eval(), clip_processor, tokenizer
        self._classifiers: dict[str, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return self.segmenter.device

    @torch.no_grad()
    def detect(self, image: Image.Image, threshold: float) -> list[Detection]:
        inputs = self.segmenter_processor(images=[image.convert("RGB")], return_tensors="pt").to(self.device)
        outputs = self.segmenter(**inputs)
        if "pixel_mask" in inputs:
            # Drop the mask logits over the processor's padding, so that the rescale to the image is exact.
            height, width = inputs["pixel_values"].shape[-2:]
            rows, cols = inputs["pixel_mask"][0].any(1).sum().item(), inputs["pixel_mask"][0].any(0).sum().item()
            mask_h, mask_w = outputs.masks_queries_logits.shape[-2:]
            outputs.masks_queries_logits = outputs.masks_queries_logits[
                ..., : -(-rows * mask_h // height), : -(-cols * mask_w // width)
            ]
        (result,) = self.segmenter_processor.post_process_instance_segmentation(
            outputs, threshold=threshold, target_sizes=[image.size[::-1]], return_binary_maps=True
        )
        if not result["segments_info"]:
            return []
        masks = result["segmentation"].bool().cpu().numpy()
        return [
            Detection(OBJECT_NAMES[info["label_id"]], info["score"], mask_box(mask), mask)
            for info, mask in zip(result["segments_info"], masks)
        ]

    @torch.no_grad()
    def _classifier(self, cls: str) -> torch.Tensor:
        """Zero-shot weights (colours × dim): each colour's template embeddings averaged, as clip_benchmark does."""
        if cls not in self._classifiers:
            texts = [t.format(color=c, cls=cls) for c in COLORS for t in TEMPLATES]
            tokens = self.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
            embedded = self.clip.get_text_features(**tokens).pooler_output
            embedded = torch.nn.functional.normalize(embedded, dim=-1).view(len(COLORS), len(TEMPLATES), -1)
            self._classifiers[cls] = torch.nn.functional.normalize(embedded.mean(1), dim=-1)
        return self._classifiers[cls]

    @torch.no_grad()
    def colours(self, image: Image.Image, detections: list[Detection], cls: str) -> list[str]:
        if not detections:
            return []
        crops = [masked_crop(image, d) for d in detections]
        pixels = self.clip_processor(images=crops, return_tensors="pt")["pixel_values"].to(self.device)
        features = torch.nn.functional.normalize(self.clip.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        return [COLORS[i] for i in (features @ self._classifier(cls).T).argmax(-1).tolist()]

    def evaluate(self, image: Image.Image, record: Record) -> Evaluation:
        kept = keep(self.detect(image, threshold_for(record)), threshold_for(record))
        colours = {  # as GenEval: only where enough objects were found for the colour to matter
            cls: self.colours(image, kept[cls][:count], cls)
            for cls, count in colour_needs(record).items()
            if len(kept.get(cls, [])) >= count
        }
        return verdict_on(kept, colours, record)


def load_detector(path: str | Path = "geneval", device: str | torch.device | None = None) -> GenEvalDetector:
    """A folder holding `mask2former/` and `clip/` (each a `save_pretrained` folder), or "geneval" for
    `$COTGEN_MODELS/geneval`; never downloads."""
    folder = models_root() / "geneval" if str(path) == "geneval" else Path(path)
    missing = [name for name in PARTS if not (folder / name / "config.json").is_file()]
    if missing:
        fetch = "; ".join(f"`hf download {PARTS[name]} --local-dir {folder / name}`" for name in missing)
        raise InputError(f"{folder}: no GenEval detector ({', '.join(missing)} missing); fetch it with {fetch}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return GenEvalDetector(
        Mask2FormerForUniversalSegmentation.from_pretrained(folder / "mask2former").to(device),
        Mask2FormerImageProcessorPil.from_pretrained(folder / "mask2former"),
        CLIPModel.from_pretrained(folder / "clip").to(device),
        CLIPImageProcessorPil.from_pretrained(folder / "clip"),
        AutoTokenizer.from_pretrained(folder / "clip"),
    )
