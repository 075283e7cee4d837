"""A rough "hand-drawn sketch" of a scene, the input of the image-to-image lesson; and its outline alone.

SDEdit (Meng et al., 2021) turns a crude drawing into a clean picture by noising it part
of the way and denoising it with the model. A sketch here is what a child might draw of the
same scene: wobbly outlines, a scribbled, uneven fill, on off-white paper.

`render_outline` draws only the wobbly outlines, white on black, as a ControlNet's edge condition looks:
the ControlNet lesson's "hand-drawn" input, and a share of that ControlNet's training conditions.
"""
from __future__ import annotations

import random

import numpy as np

from .world import BACKGROUNDS, COLOURS, Grid, Scene, signed_distance

__all__ = ["render_sketch", "render_outline"]

_PAPER = np.array((250, 248, 240), np.float32)


def _wobbly_distance(o, g: Grid, rng: random.Random, wobble: float) -> np.ndarray:
    """The object's signed distance (pixels, negative inside) with a hand's wobble: a few random angular bumps."""
    dx, dy = g.xs - o.center[0], g.ys - o.center[1]
    theta = np.arctan2(dy, dx)
    bumps = sum(np.sin(k * theta + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0) for k in (2, 3, 5))
    return signed_distance(o.shape, dx, dy, o.radius) + wobble * o.radius * bumps / 2


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
        sd = _wobbly_distance(o, g, rng, wobble)
        colour = np.asarray(COLOURS[o.colour], np.float32)
        # scribbled fill: diagonal strokes of uneven pressure that leave paper showing through
        angle, freq = rng.uniform(0.6, 1.0), rng.uniform(0.9, 1.3)
        strokes = 0.5 + 0.5 * np.sin((g.xs * angle + g.ys) * freq + rng.uniform(0, 6.3))
        fill = np.clip(0.5 - sd, 0, 1) * (0.35 + 0.55 * strokes)
        img += fill[..., None] * (colour - img)
        outline = np.clip(1.2 - np.abs(sd), 0, 1)
        img += outline[..., None] * (0.6 * colour - img)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_outline(scene: Scene, seed: int = 0, wobble: float = 0.12, width: float = 1.0) -> np.ndarray:
    """Draw only the outlines of `scene`'s objects, wobbly as in `render_sketch`, white on black.

    A nearer object hides the outline of a farther one where it covers it, as edges of the picture would.
    Returns an (H, W, 3) uint8 image, 255 on a line and 0 elsewhere (antialiased at the lines' sides).

    Args:
        scene: a Scene from `World` or `make_scene`.
        seed: the hand's randomness; the same seed wobbles as `render_sketch` with that seed does.
        wobble: outline wobble amplitude as a fraction of each object's radius (0: exact outlines).
        width: line width in pixels.
    """
    if width <= 0:
        raise ValueError(f"width is the lines' width in pixels and must be > 0, got {width}.")
    size = scene.image.shape[0]
    g = Grid.of(size)
    rng = random.Random(seed)
    line = np.zeros((size, size), np.float32)
    for o in sorted(scene.objects, key=lambda o: -o.depth):  # far first: a near object covers what is behind it
        sd = _wobbly_distance(o, g, rng, wobble)
        rng.uniform(0.6, 1.0), rng.uniform(0.9, 1.3), rng.uniform(0, 6.3)  # render_sketch's fill draws, skipped
        line *= np.clip(sd + 0.5, 0, 1)  # erase what the object covers
        line = np.maximum(line, np.clip(width / 2 + 0.5 - np.abs(sd), 0, 1))
    return np.repeat(np.rint(line * 255).astype(np.uint8)[..., None], 3, axis=-1)
