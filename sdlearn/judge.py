"""A programmatic judge: read colour, shape and position of the main object from the pixels.

The procedural world's palette, shapes and layout are known, so a generated image can be
scored without a learned model: find the background, cut out the largest patch of one
palette colour, and compare its outline with ideal circles, squares and triangles fitted
to its bounding box. `judge_pair` reads both objects of a "left of" / "above" picture. Used by `sdlearn.eval` (its tables and the guidance sweep) and the tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .data.world import ANCHORS, BACKGROUNDS, COLOURS, POSITION_PHRASES, RELATION_PHRASES, SHAPES, SYNONYMS, signed_distance

__all__ = ["Verdict", "judge", "judge_pair", "parse_prompt"]

_PALETTE = np.array(list(COLOURS.values()), np.float32)
_PALETTE_NAMES = list(COLOURS)
_BG = np.array(list(BACKGROUNDS.values()), np.float32)
_BG_NAMES = list(BACKGROUNDS)


@dataclass
class Verdict:
    """What the judge reads from an image; None where it finds no object."""

    colour: str | None
    shape: str | None
    position: str | None
    background: str
    pixels: int  # size of the object patch
    iou: float  # how well the best ideal shape fits the patch
    scores: dict[str, float] = field(default_factory=dict)  # how well each ideal shape fits it (IoU)
    mask: np.ndarray | None = field(default=None, repr=False)  # the object's pixels (holes filled)


def _shape_iou(mask: np.ndarray) -> dict[str, float]:
    ys, xs = np.nonzero(mask)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    h, w = bottom - top, right - left
    gy, gx = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]].astype(np.float32) + 0.5
    scores = {}
    for shape in SHAPES:
        if shape == "triangle":  # apex at top, base at cy + 0.8 r: the box is 2r wide, 1.8r tall
            r = (w / 2 + h / 1.8) / 2
            cx, cy = left + w / 2, top + r
        elif shape == "square":  # side 1.7 r
            r = (w + h) / 2 / 1.7
            cx, cy = left + w / 2, top + h / 2
        else:
            r = (w + h) / 4
            cx, cy = left + w / 2, top + h / 2
        ideal = signed_distance(shape, gx - cx, gy - cy, r) <= 0
        scores[shape] = float((ideal & mask).sum() / max((ideal | mask).sum(), 1))
    return scores


def _pixels(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"the judge expects an (H, W, 3) RGB image, got shape {img.shape}.")
    return img.astype(np.float32)


def _foreground(img: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """The background's name, the foreground mask and each pixel's nearest palette colour (its index)."""
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    bg_colour = np.median(border, axis=0)
    background = _BG_NAMES[int(np.argmin(((_BG - bg_colour) ** 2).sum(1)))]
    # distance of every pixel to each palette colour and to the background
    d_pal = ((img[:, :, None, :] - _PALETTE[None, None]) ** 2).sum(-1)  # (H, W, 6)
    d_bg = ((img - bg_colour) ** 2).sum(-1)
    nearest = d_pal.argmin(-1)
    fg = d_pal.min(-1) < d_bg
    fg &= np.sqrt(d_bg) > 50
    return background, fg, nearest


def _patches(fg: np.ndarray, nearest: np.ndarray):
    """Every connected patch of one palette colour: (pixels, colour index, mask), colour by colour."""
    for k in range(len(_PALETTE_NAMES)):
        labels, n = ndimage.label(fg & (nearest == k))
        if n == 0:
            continue
        sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, n + 1))
        for j in range(n):
            yield int(sizes[j]), k, labels == j + 1


def _read(pixels: int, k: int, mask: np.ndarray, background: str) -> Verdict:
    """Colour, shape and position of one patch."""
    H, W = mask.shape
    mask = ndimage.binary_fill_holes(mask)
    scores = _shape_iou(mask)
    shape = max(scores, key=scores.get)
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean() / W, ys.mean() / H
    position = min(ANCHORS, key=lambda p: (ANCHORS[p][0] - cx) ** 2 + (ANCHORS[p][1] - cy) ** 2)
    return Verdict(_PALETTE_NAMES[k], shape, position, background, pixels, scores[shape], scores, mask)


def judge(image, min_pixels: int = 12) -> Verdict:
    """Read the dominant object of an (H, W, 3) uint8 image (or PIL image).

    Returns a Verdict; colour/shape/position are None when no object patch of at least
    `min_pixels` pixels stands out from the background.
    """
    img = _pixels(image)
    background, fg, nearest = _foreground(img)
    best = None
    for patch in _patches(fg, nearest):  # the largest patch (on a tie, the first found)
        if best is None or patch[0] > best[0]:
            best = patch
    if best is None or best[0] < min_pixels:
        return Verdict(None, None, None, background, 0 if best is None else best[0], 0.0)
    return _read(*best, background)


def judge_pair(image, relation: str, min_pixels: int = 12) -> tuple[Verdict, Verdict]:
    """Read both objects of a two-object image: the first "left of" / "above" the second.

    Every patch of one palette colour is a candidate; the first object is the largest patch whose centre lies
    in the left (top) half, the second the largest in the right (bottom) half. Each is read as `judge` reads
    one object, and its Verdict carries its mask (to compare attention maps with).

    Args:
        image: an (H, W, 3) uint8 image (or PIL image).
        relation: "left of" or "above", as in the world's RELATIONS.
        min_pixels: the smallest patch that counts as an object.
    Returns:
        (first, second) Verdicts; an object not found has colour, shape and position None and no mask.
    """
    if relation not in RELATION_PHRASES:
        raise ValueError(f"relation must be one of {tuple(RELATION_PHRASES)}, got {relation!r}.")
    img = _pixels(image)
    background, fg, nearest = _foreground(img)
    axis = 1 if relation == "left of" else 0  # the coordinate that tells the two objects apart
    half = img.shape[axis] / 2
    best: list = [None, None]
    for patch in _patches(fg, nearest):
        if patch[0] < min_pixels:
            continue
        side = int(np.nonzero(patch[2])[axis].mean() + 0.5 >= half)
        if best[side] is None or patch[0] > best[side][0]:
            best[side] = patch
    first, second = (Verdict(None, None, None, background, 0, 0.0) if b is None else _read(*b, background)
                     for b in best)
    return first, second


def parse_prompt(prompt: str) -> dict[str, str | None]:
    """The colour, shape and position a single-object prompt asks for (synonyms understood)."""
    text = f" {prompt.lower()} "
    found: dict[str, str | None] = {"colour": None, "shape": None, "position": None}
    for colour in COLOURS:
        if any(f" {w} " in text for w in SYNONYMS.get(colour, (colour,))):
            found["colour"] = colour
    for shape in SHAPES:
        if any(f" {w} " in text or f" {w}s " in text for w in SYNONYMS.get(shape, (shape,))):
            found["shape"] = shape
    for pos, phrases in POSITION_PHRASES.items():
        if any(p in text for p in phrases):
            found["position"] = pos
    return found
