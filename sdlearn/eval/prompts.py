"""The prompts the evaluation asks for: world captions, and the requests of the depth and inpainting checks."""
from __future__ import annotations

import random
from dataclasses import dataclass

from ..data import COLOURS, HELD_OUT, RELATION_PHRASES, RELATIONS, SHAPES, World
from ..data.world import article
from ..judge import parse_prompt

__all__ = ["single_object_prompts", "TwoObjectPrompt", "two_object_prompts", "blue_squares_prompt", "inpaint_prompt"]


@dataclass(frozen=True)
class TwoObjectPrompt:
    """"a C1 S1 to the left of a C2 S2" with what it asks for: the relation and each object's colour and shape."""

    prompt: str
    relation: str  # "left of" / "above": objects[0] is left of / above objects[1]
    objects: tuple[tuple[str, str], tuple[str, str]]  # (colour, shape) of the first and the second object


def single_object_prompts(n: int, seed: int, split: str = "train", need_position: bool = False) -> list[str]:
    """Captions of single-object world scenes (with their templates and synonyms), in the world's order.

    Args:
        n: how many captions.
        seed: the world's seed (the eval uses seeds the model never trained on).
        split: "train", "heldout" (only the held-out colour-shape pairs) or "all".
        need_position: keep only captions that name a position ("on the left").
    Returns:
        A list of n captions.
    """
    world = World(seed=seed, split=split, p_two=0.0)
    prompts, i = [], 0
    while len(prompts) < n:
        caption = world[i].caption
        i += 1
        if need_position and parse_prompt(caption)["position"] is None:
            continue
        prompts.append(caption)
    return prompts



def two_object_prompts(n: int, seed: int) -> list[TwoObjectPrompt]:
    """Prompts "a C1 S1 to the left of a C2 S2" / "a C1 S1 above a C2 S2" with two different colours.

    The binding test: each object must get its own colour. Colour-shape pairs held out of training are
    left out, so that this row measures binding and not generalisation.

    Args:
        n: how many prompts.
        seed: picks relations, colours and shapes.
    Returns:
        A list of n TwoObjectPrompt.
    """
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        relation = rng.choice(RELATIONS)
        c1, c2 = rng.sample(list(COLOURS), 2)
        s1, s2 = rng.choice(SHAPES), rng.choice(SHAPES)
        if (c1, s1) in HELD_OUT or (c2, s2) in HELD_OUT:
            continue
        prompt = f"{article(c1)} {c1} {s1} {RELATION_PHRASES[relation][0]} {article(c2)} {c2} {s2}"
        out.append(TwoObjectPrompt(prompt, relation, ((c1, s1), (c2, s2))))
    return out


def blue_squares_prompt(scene) -> str:
    """The depth-to-image request for a scene: its objects, in the same relation, as blue squares.

    Args:
        scene: a world `Scene`.
    Returns:
        "a blue square", or two blue squares joined by the scene's relation ("left of" / "above").
    """
    if scene.relation is None:
        return "a blue square"
    return f"a blue square {RELATION_PHRASES[scene.relation][0]} a blue square"


def inpaint_prompt(scene, colour: str, shape: str, whole_scene: bool = False) -> str:
    """The inpainting request: the new object, and with `whole_scene` the rest of a two-object scene too.

    Args:
        scene: the world `Scene` being repainted (its first object is the one replaced).
        colour, shape: what to paint in the hole.
        whole_scene: describe the whole picture ("a green square above a red circle"), as the training
            captions did; otherwise only the new object.
    Returns:
        The prompt.
    """
    prompt = f"a {colour} {shape}"
    if whole_scene and len(scene.objects) == 2:
        other = scene.objects[1]
        prompt += f" {RELATION_PHRASES[scene.relation][0]} a {other.colour} {other.shape}"
    return prompt
