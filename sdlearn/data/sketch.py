"""A rough "hand-drawn sketch" of a scene, the input of the image-to-image lesson.

SDEdit (Meng et al., 2021) turns a crude drawing into a clean picture by noising it part
of the way and denoising it with the model. A sketch here is what a child might draw of the
same scene: wobbly outlines, a scribbled, uneven fill, on off-white paper.
"""
from __future__ import annotations

import random

import numpy as np

from .world import BACKGROUNDS, COLOURS, Grid, Scene, signed_distance

__all__ = ["render_sketch"]

_PAPER = np.array((250, 248, 240), np.float32)


def render_sketch(scene: Scene, seed: int = 0, wobble: float = 0.12) -> np.ndarray:
    """Draw `scene` as a sketch. Returns an (H, W, 3) uint8 image.

    Args:
        scene: a Scene from `World` or `make_scene`.
        seed: the hand's randomness (wobble phases, fill strokes).
        wobble: outline wobble amplitude as a fraction of each object's radius.
    """
    size = scene.image.shape[0]
    g = Grid.of(size)
    rng = random.Random(seed)
    img = np.empty((size, size, 3), np.float32)
    img[:] = _PAPER
    if scene.background != "white":  # a quick wash of the background colour
        img += 0.6 * (np.asarray(BACKGROUNDS[scene.background], np.float32) - img)
    for o in sorted(scene.objects, key=lambda o: -o.depth):  # far first
        dx, dy = g.xs - o.center[0], g.ys - o.center[1]
        theta = np.arctan2(dy, dx)
        bumps = sum(np.sin(k * theta + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0) for k in (2, 3, 5))
        sd = signed_distance(o.shape, dx, dy, o.radius) + wobble * o.radius * bumps / 2
        colour = np.asarray(COLOURS[o.colour], np.float32)
        # scribbled fill: diagonal strokes of uneven pressure that leave paper showing through
        angle, freq = rng.uniform(0.6, 1.0), rng.uniform(0.9, 1.3)
        strokes = 0.5 + 0.5 * np.sin((g.xs * angle + g.ys) * freq + rng.uniform(0, 6.3))
        fill = np.clip(0.5 - sd, 0, 1) * (0.35 + 0.55 * strokes)
        img += fill[..., None] * (colour - img)
        outline = np.clip(1.2 - np.abs(sd), 0, 1)
        img += outline[..., None] * (0.6 * colour - img)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
