"""A procedural world of captioned shapes: the data TinySD learns from.

Every sample is drawn from a seed, so the world is unlimited and reproducible with no
downloads. A scene holds one or two flat shapes on a plain background. Each object sits at
its own depth; nearer objects are painted over farther ones, so occlusion always agrees
with the depth map, and they are drawn larger, as a camera sees them (perspective): a
"large" object at depth 0.2 is 1.35 times as wide as one at depth 0.8. Without that cue a
single picture could not say which of two separate shapes is nearer. Per sample you get the RGB image, a caption, one visible-pixel mask per
object and a depth map.

Captions use synonyms and several sentence templates on purpose ("a big violet disc" and
"a large purple circle" describe the same picture), so that a text encoder trained on them
has to learn that synonyms mean the same thing. Lesson 04 uses that to show what
embeddings are.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "COLOURS",
    "SHAPES",
    "SIZES",
    "POSITIONS",
    "BACKGROUNDS",
    "RELATIONS",
    "HELD_OUT",
    "SYNONYMS",
    "POSITION_PHRASES",
    "RELATION_PHRASES",
    "ANCHORS",
    "Grid",
    "SceneObject",
    "Scene",
    "World",
    "make_scene",
    "repaint_object",
    "render",
    "signed_distance",
    "coverage",
    "article",
    "describe",
    "swap_colours",
    "perspective",
]

# The palette. Object colours are saturated and far apart; backgrounds are neutral.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 30),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "purple": (140, 50, 180),
}
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom", "center")
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 240),
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
}
RELATIONS = ("left of", "above")

# Colour-shape combinations that never appear in the training split, so that generalisation
# to unseen combinations can be measured. Every colour and every shape still appears in
# training, only these pairings are missing.
HELD_OUT: tuple[tuple[str, str], ...] = (
    ("green", "triangle"),
    ("purple", "circle"),
    ("orange", "square"),
)

# Words a caption may use for each attribute. The first entry is the canonical name.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "square": ("square", "box"),
    "circle": ("circle", "disc"),
    "triangle": ("triangle",),
    "large": ("large", "big"),
    "small": ("small", "tiny"),
    "purple": ("purple", "violet"),
    "gray": ("gray", "grey"),
}

POSITION_PHRASES = {
    "left": ("on the left", "at the left"),
    "right": ("on the right", "at the right"),
    "top": ("at the top", "near the top"),
    "bottom": ("at the bottom", "near the bottom"),
    "center": ("in the center", "in the middle"),
}
RELATION_PHRASES = {"left of": ("to the left of", "left of"), "above": ("above",)}
_TEMPLATES = ("{}", "a picture of {}", "an image of {}", "there is {}", "a drawing of {}")

# Object centres as fractions of the image side, before jitter.
ANCHORS = {"left": (0.27, 0.5), "right": (0.73, 0.5), "top": (0.5, 0.27), "bottom": (0.5, 0.73), "center": (0.5, 0.5)}
_RADIUS = {"small": 0.12, "large": 0.22}  # half the side of the bounding box, as a fraction of the image


def perspective(depth: float) -> float:
    """How much larger than its nominal size an object at `depth` looks: 1.15 near (0.2) .. 0.85 far (0.8)."""
    if not 0.0 <= depth <= 1.0:
        raise ValueError(f"depth runs from 0 (near) to 1 (far), got {depth}.")
    return 1.25 - 0.5 * depth


@dataclass
class SceneObject:
    """One flat shape: what it is, where it is and how far away."""

    colour: str
    shape: str
    size: str
    position: str  # one of POSITIONS, the anchor its centre was drawn near
    center: tuple[float, float]  # (x, y) in pixels
    radius: float  # in pixels, nominal size times perspective(depth)
    depth: float  # distance from the camera, 0 (near) .. 1 (far); the background is at 1


@dataclass
class Scene:
    """A rendered sample. Arrays are numpy: image (H, W, 3) uint8, masks (N, H, W) bool,
    depth (H, W) float32 with 1.0 for the background and smaller values for nearer surfaces."""

    image: np.ndarray
    caption: str
    masks: np.ndarray
    depth: np.ndarray
    objects: list[SceneObject]
    background: str
    relation: str | None = None  # "left of" / "above" for two-object scenes: objects[0] REL objects[1]
    seed: int = 0
    index: int = 0
    extra: dict = field(default_factory=dict)


class Grid:
    """Pixel-centre coordinates for one image size, computed once and reused."""

    _cache: dict[int, "Grid"] = {}

    def __init__(self, size: int):
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        self.xs, self.ys, self.size = xs, ys, size

    @classmethod
    def of(cls, size: int) -> "Grid":
        if size not in cls._cache:
            cls._cache[size] = cls(size)
        return cls._cache[size]


def signed_distance(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) from each pixel to the shape's edge.

    dx, dy are pixel offsets from the shape's centre; r is half its bounding-box side.
    Exact distances (the formulas are Inigo Quilez's 2-D distance functions), so that
    anti-aliasing is one pixel wide everywhere, corners included.
    """
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - r
    if shape == "square":
        b = 0.85 * r
        qx, qy = np.abs(dx) - b, np.abs(dy) - b
        outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
        return outside + np.minimum(np.maximum(qx, qy), 0)
    if shape == "triangle":
        # Isosceles, apex up at dy = -r, base at dy = +0.8 r, half base width r.
        qx, qy = r, 1.8 * r
        px, py = np.abs(dx), dy + r
        t = np.clip((px * qx + py * qy) / (qx * qx + qy * qy), 0, 1)
        ax, ay = px - qx * t, py - qy * t
        bx, by = px - qx * np.clip(px / qx, 0, 1), py - qy
        dist2 = np.minimum(ax * ax + ay * ay, bx * bx + by * by)
        side = np.minimum(py * qx - px * qy, qy - py)  # both positive inside
        return np.sqrt(dist2) * -np.sign(side)
    raise ValueError(f"Unknown shape {shape!r}; choose one of {SHAPES}.")


def coverage(sd: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a pixel from the signed distance to the edge."""
    return np.clip(0.5 - sd, 0.0, 1.0)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def describe(obj: SceneObject, rng: random.Random, with_size: bool, with_position: bool) -> str:
    """A noun phrase for one object, with random synonyms: "a big violet disc on the left"."""
    words = []
    if with_size:
        words.append(rng.choice(SYNONYMS[obj.size]))
    words.append(rng.choice(SYNONYMS.get(obj.colour, (obj.colour,))))
    words.append(rng.choice(SYNONYMS[obj.shape]))
    phrase = article(words[0]) + " " + " ".join(words)
    if with_position:
        phrase += " " + rng.choice(POSITION_PHRASES[obj.position])
    return phrase


# every colour word captions use (synonyms included) -> its palette colour
_COLOUR_OF_WORD = {w: c for c in COLOURS for w in SYNONYMS.get(c, (c,))}


def swap_colours(caption: str) -> str | None:
    """The caption with its two objects' colour words exchanged, or None when that would not change its meaning.

    "a red circle left of a blue box" -> "a blue circle left of a red box". Such a caption is the hardest
    negative for binding: it has the same words, so only a text encoder (and an image tower) that keeps each
    colour with its own object can tell it from the caption. None for captions with fewer than two colour
    words or with two words for the same colour ("a violet box above a purple circle").
    """
    words = caption.split()
    spots = [i for i, w in enumerate(words) if w in _COLOUR_OF_WORD]
    if len(spots) != 2 or _COLOUR_OF_WORD[words[spots[0]]] == _COLOUR_OF_WORD[words[spots[1]]]:
        return None
    i, j = spots
    words[i], words[j] = words[j], words[i]
    for k in (i, j):
        if k > 0 and words[k - 1] in ("a", "an"):
            words[k - 1] = article(words[k])
    return " ".join(words)


def _caption(scene_objects, relation, background, rng: random.Random) -> str:
    with_size = rng.random() < 0.5
    if relation is None:
        body = describe(scene_objects[0], rng, with_size, with_position=rng.random() < 0.6)
    else:
        a = describe(scene_objects[0], rng, with_size, with_position=False)
        b = describe(scene_objects[1], rng, with_size, with_position=False)
        body = f"{a} {rng.choice(RELATION_PHRASES[relation])} {b}"
    text = rng.choice(_TEMPLATES).format(body)
    if rng.random() < 0.3:
        text += f" on a {rng.choice(SYNONYMS.get(background, (background,)))} background"
    return text


def _allowed(colour: str, shape: str, split: str) -> bool:
    held = (colour, shape) in HELD_OUT
    return not held if split == "train" else True


def _pick_object(rng: random.Random, split: str, size_px: int, position: str | None = None,
                 colour: str | None = None, shape: str | None = None, size: str | None = None,
                 depth: float | None = None, jitter: float = 0.06) -> SceneObject:
    while True:
        c = colour or rng.choice(tuple(COLOURS))
        s = shape or rng.choice(SHAPES)
        if colour or shape or _allowed(c, s, split):
            break
    sz = size or rng.choice(SIZES)
    pos = position or rng.choice(POSITIONS)
    ax, ay = ANCHORS[pos]
    cx = (ax + rng.uniform(-jitter, jitter)) * size_px
    cy = (ay + rng.uniform(-jitter, jitter)) * size_px
    d = depth if depth is not None else rng.uniform(0.2, 0.8)
    r = _RADIUS[sz] * size_px * perspective(d)
    return SceneObject(c, s, sz, pos, (cx, cy), r, d)


def render(objects: list[SceneObject], background: str, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paint objects far to near over the background. Returns image, visible masks, depth."""
    g = Grid.of(size)
    img = np.empty((size, size, 3), np.float32)
    img[:] = np.asarray(BACKGROUNDS[background], np.float32)
    depth = np.ones((size, size), np.float32)
    covers = []
    order = sorted(range(len(objects)), key=lambda i: -objects[i].depth)  # far first
    for i in order:
        o = objects[i]
        cov = coverage(signed_distance(o.shape, g.xs - o.center[0], g.ys - o.center[1], o.radius))
        img += cov[..., None] * (np.asarray(COLOURS[o.colour], np.float32) - img)
        depth = np.where(cov >= 0.5, np.float32(o.depth), depth)
        covers.append((i, cov))
    # A pixel belongs to the nearest object that covers at least half of it.
    masks = np.zeros((len(objects), size, size), bool)
    taken = np.zeros((size, size), bool)
    for i, cov in reversed(covers):  # near first
        m = (cov >= 0.5) & ~taken
        masks[i] = m
        taken |= m
    return np.rint(img).astype(np.uint8), masks, depth


class World:
    """An endless, seeded stream of captioned scenes.

    Sample i of `World(seed=s)` is always the same, on any machine.

    Args:
        size: image side in pixels (64 by default, as TinySD).
        seed: the world's seed; sample i is drawn from (seed, i).
        split: "train" never shows a HELD_OUT colour-shape pair; "heldout" draws the first
            object from HELD_OUT only; "all" draws from everything.
        p_two: probability of a two-object scene.
    """

    P_TWO = 0.3  # the default share of two-object scenes

    def __init__(self, size: int = 64, seed: int = 0, split: str = "train", p_two: float = P_TWO):
        if split not in ("train", "heldout", "all"):
            raise ValueError(f"split must be 'train', 'heldout' or 'all', got {split!r}.")
        if size < 16:
            raise ValueError(f"size must be at least 16 pixels, got {size}.")
        if not 0.0 <= p_two <= 1.0:
            raise ValueError(f"p_two is a probability, got {p_two}.")
        self.size, self.seed, self.split, self.p_two = size, seed, split, p_two

    def __getitem__(self, index: int) -> Scene:
        return self.sample(index)

    def sample(self, index: int) -> Scene:
        rng = random.Random(self.seed * 1_000_003 + index)
        split = "all" if self.split == "heldout" else self.split
        background = rng.choice(tuple(BACKGROUNDS))
        if self.split == "heldout":
            colour, shape = rng.choice(HELD_OUT)
            first = dict(colour=colour, shape=shape)
        else:
            first = {}
        if rng.random() < self.p_two:
            relation = rng.choice(RELATIONS)
            # objects[0] is left of / above objects[1]
            pa, pb = ("left", "right") if relation == "left of" else ("top", "bottom")
            a = _pick_object(rng, split, self.size, position=pa, **first)
            b = _pick_object(rng, split, self.size, position=pb)
            objects = [a, b]
        else:
            relation = None
            objects = [_pick_object(rng, split, self.size, **first)]
        image, masks, depth = render(objects, background, self.size)
        caption = _caption(objects, relation, background, rng)
        return Scene(image, caption, masks, depth, objects, background, relation, self.seed, index)

    def batch(self, start: int, n: int) -> list[Scene]:
        """Samples start, start+1, ..., start+n-1."""
        return [self.sample(i) for i in range(start, start + n)]


def make_scene(colour: str, shape: str, size: str = "large", position: str = "center",
               background: str = "white", size_px: int = 64, depth: float = 0.5,
               second: dict | None = None, relation: str | None = None, seed: int = 0) -> Scene:
    """Draw one scene exactly as described, e.g. for fixed test cases and lesson figures.

    Args:
        colour, shape, size, position: the (first) object; names from COLOURS, SHAPES, SIZES, POSITIONS.
        second: optional second object as a dict of the same keys (plus "depth").
        relation: "left of" or "above" when `second` is given; sets the two positions.
    """
    for name, value, allowed in (("colour", colour, COLOURS), ("shape", shape, SHAPES), ("size", size, SIZES),
                                 ("position", position, POSITIONS), ("background", background, BACKGROUNDS)):
        if value not in allowed:
            raise ValueError(f"Unknown {name} {value!r}; choose one of {tuple(allowed)}.")
    rng = random.Random(seed)
    if second is not None:
        if relation not in RELATIONS:
            raise ValueError(f"A two-object scene needs relation in {RELATIONS}, got {relation!r}.")
        pa, pb = ("left", "right") if relation == "left of" else ("top", "bottom")
        a = _pick_object(rng, "all", size_px, pa, colour, shape, size, depth, jitter=0.0)
        sec = dict(second)
        b = _pick_object(rng, "all", size_px, pb, sec.get("colour"), sec.get("shape"), sec.get("size"),
                         sec.get("depth"), jitter=0.0)
        objects = [a, b]
    else:
        objects = [_pick_object(rng, "all", size_px, position, colour, shape, size, depth, jitter=0.0)]
    image, masks, depth_map = render(objects, background, size_px)
    caption = _caption(objects, relation if second is not None else None, background, rng)
    return Scene(image, caption, masks, depth_map, objects, background, relation if second else None, seed, 0)


def repaint_object(scene: Scene, index: int, colour: str | None = None, shape: str | None = None) -> Scene:
    """The same scene with object `index` in another colour and/or shape, everything else as it was:
    what a perfect inpainting of that object would give. Used to measure how far real results are from it."""
    if not 0 <= index < len(scene.objects):
        raise ValueError(f"The scene has {len(scene.objects)} object(s); index {index} is out of range.")
    for name, value, allowed in (("colour", colour, COLOURS), ("shape", shape, SHAPES)):
        if value is not None and value not in allowed:
            raise ValueError(f"Unknown {name} {value!r}; choose one of {tuple(allowed)}.")
    objects = list(scene.objects)
    old = objects[index]
    objects[index] = replace(old, colour=colour or old.colour, shape=shape or old.shape)
    image, masks, depth = render(objects, scene.background, scene.image.shape[0])
    caption = _caption(objects, scene.relation, scene.background, random.Random(scene.seed))
    return replace(scene, image=image, caption=caption, masks=masks, depth=depth, objects=objects)
