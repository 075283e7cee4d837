"""Captions made from captions: hard negatives for CLIP, partial captions for the U-Net, hole captions for inpainting."""
from __future__ import annotations

import random

import numpy as np

from ..data.world import COLOURS, SHAPES, SYNONYMS, describe, swap_colours

__all__ = ["KIND_OF_WORD", "swap_attribute", "swap_colours", "drop_attribute", "hole_captions"]

# Every shape or colour word captions use (synonyms included) -> (its kind, "shape" or "colour"; its canonical name).
KIND_OF_WORD = {w: (kind, canon) for kind, names in (("shape", SHAPES), ("colour", tuple(COLOURS)))
                for canon in names for w in SYNONYMS.get(canon, (canon,))}


def swap_attribute(caption: str, rng: np.random.Generator) -> str:
    """The caption with one shape or colour word replaced by a different shape or colour.

    "a red circle above a blue box" -> "a red triangle above a blue box". Such a caption is a
    hard negative: with random in-batch negatives alone, the tiny CLIP can tell most captions
    apart by colour and position and never needs to learn circles from squares.

    Args:
        caption: a procedural caption with at least one shape or colour word.
        rng: picks the word and its replacement.
    Returns:
        The new caption ("a"/"an" fixed before the new word).
    """
    words = caption.split()
    spots = [i for i, w in enumerate(words) if w in KIND_OF_WORD]
    shape_spots = [i for i in spots if KIND_OF_WORD[words[i]][0] == "shape"]
    # Shapes are the harder attribute, so they are swapped more often.
    pool = shape_spots if shape_spots and rng.random() < 0.6 else spots
    i = pool[rng.integers(len(pool))]
    kind, canon = KIND_OF_WORD[words[i]]
    others = [w for w, (k, c) in KIND_OF_WORD.items() if k == kind and c != canon]
    words[i] = others[rng.integers(len(others))]
    if i > 0 and words[i - 1] in ("a", "an"):
        words[i - 1] = "an" if words[i][0] in "aeiou" else "a"
    return " ".join(words)


def drop_attribute(caption: str, rng: np.random.Generator, kind: str = "colour") -> str:
    """The caption with one object's colour (or shape) word left out: "a big red circle" -> "a big circle".

    The U-Net sees some captions like that (see `sdlearn.train.unet.train_unet`). A caption without a colour
    still shows a coloured shape, so the shape word alone cannot predict the colour, and the
    colour word becomes the only reliable carrier of colour. It is meant to help the model
    combine a colour and a shape it never saw together ("a green triangle"): held-out colour
    accuracy rose from 37.5% to 56% in TinySD v0.3, which also changed other things.

    Args:
        caption: a procedural caption.
        rng: picks which word, when there are several of the kind.
        kind: "colour" or "shape".
    Returns:
        The caption without that word (unchanged if it has none; "a"/"an" fixed).
    """
    if kind not in ("colour", "shape"):
        raise ValueError(f"kind must be 'colour' or 'shape', got {kind!r}.")
    words = caption.split()
    spots = [i for i, w in enumerate(words) if KIND_OF_WORD.get(w, ("",))[0] == kind]
    if not spots:
        return caption
    i = spots[rng.integers(len(spots))]
    del words[i]
    if 0 < i < len(words) and words[i - 1] in ("a", "an"):
        words[i - 1] = "an" if words[i][0] in "aeiou" else "a"
    return " ".join(words)


def hole_captions(scenes, which, seed: int) -> list[str | None]:
    """For a scene whose mask is one object's, a caption naming only that object ("a big violet disc"),
    as people prompt an inpainting model: the text says what goes in the hole, not what is around it.
    None for box masks.

    Args:
        scenes: the scenes.
        which: per scene, the index of the object whose mask is the hole, -1 for a box (see `random_masks`).
        seed: seed of the Python generator that words the captions.
    Returns:
        One caption or None per scene.
    """
    rng = random.Random(seed)
    return [None if k < 0 else describe(s.objects[k], rng, with_size=rng.random() < 0.5, with_position=False)
            for s, k in zip(scenes, which)]
