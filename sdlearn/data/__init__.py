"""Data for the course: the procedural world of captioned shapes, its sketches, and bundled photos."""
from .photos import PHOTOS, load_motorcycle, load_photo
from .sketch import render_outline, render_sketch
from .world import (
    ANCHORS,
    BACKGROUNDS,
    COLOURS,
    HELD_OUT,
    POSITION_PHRASES,
    POSITIONS,
    RELATION_PHRASES,
    RELATIONS,
    SHAPES,
    SIZES,
    SYNONYMS,
    Scene,
    SceneObject,
    World,
    make_scene,
    repaint_object,
)

__all__ = [
    "ANCHORS", "BACKGROUNDS", "COLOURS", "HELD_OUT", "POSITION_PHRASES", "POSITIONS", "RELATION_PHRASES", "RELATIONS",
    "SHAPES", "SIZES", "SYNONYMS",
    "Scene", "SceneObject", "World", "make_scene", "repaint_object", "render_sketch", "render_outline", "PHOTOS", "load_photo", "load_motorcycle",
]
