"""The prompts the evaluation asks for: world captions, and the requests of the depth and inpainting checks."""
from __future__ import annotations

from ..data import RELATION_PHRASES, World
from ..judge import parse_prompt

__all__ = ["single_object_prompts", "blue_squares_prompt", "inpaint_prompt"]


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
