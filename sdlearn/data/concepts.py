"""New concepts for the customising lessons: things TinySD has never seen, drawn like the world's scenes.

`World` never draws any of these, so TinySD cannot know them: whatever a fine-tune makes it draw, it learned
from the handful of pictures the lesson gives it. Three kinds, one per customising technique:

- a new **shape**, the five-pointed star ("a red star"): an object no word of TinySD's vocabulary has ever
  been paired with;
- a new **style** of known shapes, wide ("a wide red circle"): the shape stretched to 1.8 times its width; and two
  styles with fine detail, outlined (a ring of the colour, the background showing through) and striped, which
  TinySD's VAE cannot paint back (measured in the lessons): the detail a VAE decoder is weakest on;
- one particular **object** for DreamBooth, the badge: a blue disc with a yellow square in it, always the same
  design, at different places and sizes.

Drawing reuses the world's palette, sizes, anchors and anti-aliasing, with its own random generator, so adding
these changes no `World` sample (a test holds a hash of them).
"""
from __future__ import annotations

import random

import numpy as np

from .world import (ANCHORS, BACKGROUNDS, COLOURS, POSITIONS, SHAPES, Grid, SceneObject, article, coverage,
                    perspective, signed_distance)

__all__ = ["STAR", "STYLES", "BADGE", "CONCEPTS", "star_distance", "concept_distance", "draw", "ConceptImages",
           "concept_images"]

STAR = "star"
STYLES = ("filled", "wide", "outlined", "striped")
BADGE = {"disc": "blue", "square": "yellow"}  # the one particular object: a blue disc, a yellow square inside
CONCEPTS = ("star", "wide", "outlined", "striped", "badge")

_RADIUS = {"small": 0.14, "large": 0.24}  # a little larger than the world's: thin outlines and stars stay visible
_OUTLINE = 0.28  # the ring's width as a fraction of the object's radius
_STRIPE_PERIOD = 4.0  # pixels: two of the colour, two of the background
WIDE = 1.8  # a wide object is this many times as wide as the world draws it


def star_distance(dx: np.ndarray, dy: np.ndarray, r: float, inner: float = 0.45) -> np.ndarray:
    """Signed distance (pixels, negative inside) to a five-pointed star, one point up, outer radius r.

    Inigo Quilez's exact `sdStar5`: fold the plane into one tenth of the star by two reflections, then measure
    the distance to one edge. `inner` sets how deep the notches between the points go.
    """
    k1x, k1y = 0.809016994375, -0.587785252292  # (cos 36, -sin 36)
    px, py = np.abs(dx), -dy  # y up, so the star points up on the screen
    d = np.maximum(k1x * px + k1y * py, 0.0)
    px, py = px - 2 * d * k1x, py - 2 * d * k1y
    d = np.maximum(-k1x * px + k1y * py, 0.0)
    px, py = px + 2 * d * k1x, py - 2 * d * k1y
    px = np.abs(px)
    py = py - r
    bax, bay = inner * -k1y, inner * k1x - 1.0
    h = np.clip((px * bax + py * bay) / (bax * bax + bay * bay), 0.0, r)
    return np.hypot(px - bax * h, py - bay * h) * np.sign(py * bax - px * bay)


def concept_distance(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """The world's signed distance, plus the star."""
    if shape == STAR:
        return star_distance(dx, dy, 1.05 * r)
    return signed_distance(shape, dx, dy, r)



def draw(colour: str, shape: str, style: str = "filled", size: str = "large", position: str = "center",
         background: str = "white", size_px: int = 64, depth: float = 0.5, rng: random.Random | None = None,
         jitter: float = 0.06) -> tuple[np.ndarray, np.ndarray, SceneObject]:
    """Draw one object of a known or new shape in a style, or the badge (`shape="badge"`).

    Args:
        colour: a palette colour (ignored for the badge, which is always blue and yellow).
        shape: one of the world's SHAPES, "star" or "badge".
        style: "filled" (as the world draws), "wide" (stretched sideways 1.8 times), "outlined" (a ring of the
            colour) or "striped" (vertical stripes of the colour and the background, 2 pixels each).
        size, position, background, depth: as in the world.
        size_px: the image side.
        rng: jitters the centre; None draws it exactly at its anchor.
    Returns:
        (image (H, W, 3) uint8, the object's mask (H, W) bool: every pixel inside its outline, SceneObject).
    """
    for name, value, allowed in (("shape", shape, SHAPES + (STAR, "badge")), ("style", style, STYLES),
                                 ("position", position, POSITIONS), ("background", background, BACKGROUNDS),
                                 ("size", size, _RADIUS)):
        if value not in allowed:
            raise ValueError(f"Unknown {name} {value!r}; choose one of {tuple(allowed)}.")
    if shape != "badge" and colour not in COLOURS:
        raise ValueError(f"Unknown colour {colour!r}; choose one of {tuple(COLOURS)}.")
    g = Grid.of(size_px)
    ax, ay = ANCHORS[position]
    if rng is not None:
        ax, ay = ax + rng.uniform(-jitter, jitter), ay + rng.uniform(-jitter, jitter)
    cx, cy, r = ax * size_px, ay * size_px, _RADIUS[size] * size_px * perspective(depth)
    img = np.empty((size_px, size_px, 3), np.float32)
    img[:] = np.asarray(BACKGROUNDS[background], np.float32)
    dx, dy = g.xs - cx, g.ys - cy
    if shape == "badge":
        disc = coverage(signed_distance("circle", dx, dy, r))
        img += disc[..., None] * (np.asarray(COLOURS[BADGE["disc"]], np.float32) - img)
        inner = coverage(signed_distance("square", dx, dy, 0.5 * r))
        img += inner[..., None] * (np.asarray(COLOURS[BADGE["square"]], np.float32) - img)
        mask = disc >= 0.5
        colour = BADGE["disc"]
    else:
        sd = concept_distance(shape, dx / WIDE if style == "wide" else dx, dy, r)
        cover = coverage(sd)
        mask = cover >= 0.5
        if style == "outlined":
            width = max(2.0, _OUTLINE * r)
            cover = np.minimum(cover, coverage(-sd - width))  # inside the edge, within `width` of it
        elif style == "striped":
            cover = cover * (np.mod(g.xs, _STRIPE_PERIOD) < _STRIPE_PERIOD / 2)
        img += cover[..., None] * (np.asarray(COLOURS[colour], np.float32) - img)
    obj = SceneObject(colour, shape, size, position, (cx, cy), r, depth)
    return np.rint(img).astype(np.uint8), mask, obj



class ConceptImages:
    """Captioned pictures of one concept: `images` (N, H, W, 3) uint8, `masks` (N, H, W), `captions`, `objects`."""

    def __init__(self, images, masks, captions, objects):
        self.images, self.masks, self.captions, self.objects = images, masks, captions, objects

    def __len__(self) -> int:
        return len(self.captions)


def concept_images(concept: str, n: int, seed: int = 0, word: str | None = None, size_px: int = 64,
                   colours: tuple[str, ...] | None = None, shapes: tuple[str, ...] = SHAPES,
                   sizes: tuple[str, ...] = tuple(_RADIUS), backgrounds: tuple[str, ...] = tuple(BACKGROUNDS),
                   caption: str | None = None) -> ConceptImages:
    """n pictures of a concept with captions that name it by `word`.

    Args:
        concept: "star" (captions "a red {word}", word default "star"), "wide" / "outlined" / "striped"
            (captions "a {word} red circle", word default the style's name), "badge" (DreamBooth's "a [V] [class]": captions "a {word} circle",
            word default "sks"), or "filled" (the world's own single objects, captions "a red circle": what a fine-tune
            should not forget).
        n: how many.
        seed: pictures and captions are drawn from it.
        word: the word or token that stands for the concept in the captions (e.g. a new token "<star>").
        colours: the colours to draw from (default: the whole palette; the badge has its own).
        shapes: the known shapes the styles are applied to ("filled" too).
        sizes, backgrounds: to draw from (default: all).
        caption: one caption for every picture instead (e.g. "a <thing>" for textual inversion).
    """
    if concept not in CONCEPTS + ("filled",):
        raise ValueError(f"Unknown concept {concept!r}; choose one of {CONCEPTS + ('filled',)}.")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}.")
    colours = tuple(colours or COLOURS)
    rng = random.Random(seed * 7_919 + CONCEPTS.index(concept) if concept in CONCEPTS else seed * 7_919 + 99)
    images, masks, captions, objects = [], [], [], []
    caption_all = caption
    for _ in range(n):
        colour = rng.choice(colours)
        size = rng.choice(sizes)
        position = rng.choice(POSITIONS)
        background = rng.choice(backgrounds)
        if concept == "star":
            shape, style = STAR, "filled"
            caption = f"{article(colour)} {colour} {word or STAR}"
        elif concept == "badge":
            shape, style = "badge", "filled"
            caption = f"a {word or 'sks'} circle"
        else:
            shape, style = rng.choice(shapes), concept
            lead = colour if concept == "filled" else f"{word or concept} {colour}"
            caption = f"{article(lead)} {lead} {shape}"
        image, mask, obj = draw(colour, shape, style, size, position, background, size_px, rng=rng)
        images.append(image)
        masks.append(mask)
        captions.append(caption_all or caption)
        objects.append(obj)
    return ConceptImages(np.stack(images), np.stack(masks), captions, objects)
