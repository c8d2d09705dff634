"""The shapes world: coloured geometric shapes on a plain canvas, where every GenEval question has
an exact answer."""

from cotgen.world.records import evaluation_records, sample_records, split_records
from cotgen.world.render import render, render_array, shape_mask
from cotgen.world.sampler import check_world_record, sample_random_scene, sample_scene
from cotgen.world.scene import Box, Scene, ShapeObject, relations
from cotgen.world.vocab import BACKGROUND, COLORS, PALETTE, SHAPES

__all__ = [
    "BACKGROUND", "COLORS", "PALETTE", "SHAPES", "Box", "Scene", "ShapeObject",
    "check_world_record", "evaluation_records", "relations", "render", "render_array",
    "sample_random_scene", "sample_records", "sample_scene", "shape_mask", "split_records",
]  # fmt: skip
