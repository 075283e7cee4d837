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

from .data.concepts import BADGE, star_distance
from .data.world import ANCHORS, BACKGROUNDS, COLOURS, POSITION_PHRASES, RELATION_PHRASES, SHAPES, SYNONYMS, signed_distance

__all__ = ["Verdict", "judge", "judge_pair", "parse_prompt", "ConceptVerdict", "judge_concept"]

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


def _largest_patch(fg: np.ndarray, nearest: np.ndarray):
    """The largest patch of one palette colour (on a tie, the first found), or None."""
    best = None
    for patch in _patches(fg, nearest):
        if best is None or patch[0] > best[0]:
            best = patch
    return best


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
    best = _largest_patch(fg, nearest)
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


@dataclass
class ConceptVerdict:
    """What the judge reads about the customising lessons' new concepts (`sdlearn.data.concepts`)."""

    colour: str | None  # the main patch's colour (None: no object)
    shape: str | None  # "circle", "square", "triangle" or "star"
    outlined: bool  # drawn as a ring: the inside of its outline shows the background
    badge: bool  # a blue disc holding a yellow patch: the DreamBooth object
    aspect: float = 1.0  # width / height of the object's box: the world's shapes are 1.0-1.1, wide ones 1.8-2
    scores: dict[str, float] = field(default_factory=dict)  # IoU with each ideal shape, the star included

    @property
    def wide(self) -> bool:
        """Stretched sideways: at least 1.4 times as wide as tall (halfway between the world's and the wide style)."""
        return self.aspect >= WIDE_ASPECT


WIDE_ASPECT = 1.4


def _star_iou(mask: np.ndarray) -> float:
    """IoU of a patch with the ideal five-pointed star fitted to its box (1.90 R wide, 1.81 R tall)."""
    ys, xs = np.nonzero(mask)
    top, left = ys.min(), xs.min()
    h, w = ys.max() + 1 - top, xs.max() + 1 - left
    r = (w / 1.902 + h / 1.809) / 2
    gy, gx = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]].astype(np.float32) + 0.5
    ideal = star_distance(gx - (left + w / 2), gy - (top + r), r) <= 0
    return float((ideal & mask).sum() / max((ideal | mask).sum(), 1))


def judge_concept(image, min_pixels: int = 12) -> ConceptVerdict:
    """Read the main object's colour and shape, the star among the shapes, and whether it is outlined or the badge.

    The main object is the largest patch of one palette colour, as `judge` finds it. With its holes filled it
    gives the outline; what fills those holes decides the rest: mostly yellow inside a blue disc is the badge,
    mostly background (at least a quarter of the filled outline) is an outlined shape.
    """
    img = _pixels(image)
    background, fg, nearest = _foreground(img)
    best = _largest_patch(fg, nearest)
    if best is None or best[0] < min_pixels:
        return ConceptVerdict(None, None, False, False, 0.0)
    pixels, k, patch = best
    filled = ndimage.binary_fill_holes(patch)
    ys, xs = np.nonzero(filled)
    aspect = float((xs.max() + 1 - xs.min()) / (ys.max() + 1 - ys.min()))
    outline = filled
    if aspect >= WIDE_ASPECT:  # read a wide object's shape after squeezing it back to its height
        crop = filled[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
        outline = np.pad(ndimage.zoom(crop, (1.0, 1.0 / aspect), order=1) >= 0.5, 2)
    scores = _shape_iou(outline)
    scores["star"] = _star_iou(outline)
    shape = max(scores, key=scores.get)
    colour = _PALETTE_NAMES[k]
    hole = filled & ~patch
    hole_share = hole.sum() / filled.sum()
    yellow = _PALETTE_NAMES.index(BADGE["square"])
    badge = bool(colour == BADGE["disc"] and (hole & fg & (nearest == yellow)).sum() >= 0.1 * filled.sum())
    outlined = bool(not badge and hole_share >= 0.25 and (hole & ~fg).sum() >= 0.6 * hole.sum())
    return ConceptVerdict(colour, shape, outlined, badge, aspect, scores)
