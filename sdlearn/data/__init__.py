"""Data for the course: the procedural world of captioned shapes, its sketches, and bundled photos."""
from .photos import PHOTOS, load_motorcycle, load_photo
from .sketch import render_sketch
from .world import (
    BACKGROUNDS,
    COLOURS,
    HELD_OUT,
    POSITIONS,
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
    "BACKGROUNDS", "COLOURS", "HELD_OUT", "POSITIONS", "RELATIONS", "SHAPES", "SIZES", "SYNONYMS",
    "Scene", "SceneObject", "World", "make_scene", "repaint_object", "render_sketch", "PHOTOS", "load_photo", "load_motorcycle",
]
