"""CLIP alone: does a caption retrieve a picture it fits, and do synonyms embed closer than other words."""
from __future__ import annotations

import itertools

import numpy as np
import torch

from ..data import RELATION_PHRASES, SYNONYMS, World
from ..data.world import swap_colours
from ..images import to_pixels
from ..judge import parse_prompt

__all__ = ["caption_fits", "clip_retrieval", "clip_binding", "synonym_similarities"]


def caption_fits(caption: str, scene) -> bool:
    """Is `caption` a true description of `scene`? (colour, shape, position and relation as stated).

    Args:
        caption: a world-style caption (what it leaves out may be anything).
        scene: a world `Scene`.
    Returns:
        True when everything the caption states holds in the scene.
    """
    if scene.relation is None:
        want = parse_prompt(caption)
        o = scene.objects[0]
        return (want["colour"] in (None, o.colour) and want["shape"] in (None, o.shape)
                and want["position"] in (None, o.position) and " above " not in caption and "left of" not in caption)
    for rel, phrases in RELATION_PHRASES.items():  # longest phrase first: "to the left of" before "left of"
        for phrase in phrases:
            if f" {phrase} " in caption:
                if rel != scene.relation:
                    return False
                a, b = caption.split(f" {phrase} ", 1)
                pa, pb = parse_prompt(a), parse_prompt(b)
                oa, ob = scene.objects
                return (pa["colour"] == oa.colour and pa["shape"] == oa.shape
                        and pb["colour"] == ob.colour and pb["shape"] == ob.shape)
    return False


@torch.no_grad()
def clip_retrieval(clip, tokenizer, groups: int = 10, k: int = 32, seed: int = 777) -> float:
    """Caption -> image top-1 among k held-out candidates, averaged over groups.

    The captions leave some attributes out ("a red circle" fits any red circle), so a retrieval
    counts as right when the retrieved image fits the caption.

    Args:
        clip: a transformers `CLIPModel`.
        tokenizer: its tokenizer.
        groups: how many groups of k scenes.
        k: candidates per group; each scene's caption retrieves among its group.
        seed: the world's seed.
    Returns:
        The fraction of captions whose top image fits them.
    """
    world = World(seed=seed, split="all")
    right = []
    for gidx in range(groups):
        scenes = [world[gidx * k + i] for i in range(k)]
        x = to_pixels(np.stack([s.image for s in scenes]))
        ids = tokenizer([s.caption for s in scenes], padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids
        out = clip(input_ids=ids, pixel_values=x)
        best = out.logits_per_text.argmax(1)
        right += [caption_fits(s.caption, scenes[int(j)]) for s, j in zip(scenes, best)]
    return float(np.mean(right))



@torch.no_grad()
def clip_binding(clip, tokenizer, n: int = 200, seed: int = 778) -> float:
    """How often CLIP scores a two-object scene's caption above the same caption with the colours exchanged.

    "a red circle left of a blue box" against "a blue circle left of a red box": the same words, so only a model
    that keeps each colour with its own object can tell them apart. Chance is 50%.

    Args:
        clip: a transformers `CLIPModel`.
        tokenizer: its tokenizer.
        n: how many two-object scenes with two different colours.
        seed: the world's seed.
    Returns:
        The fraction of scenes whose own caption scores higher.
    """
    if n < 1:
        raise ValueError(f"n is how many scenes to score and must be at least 1, got {n}.")
    world, scenes, i = World(seed=seed, split="all"), [], 0
    while len(scenes) < n:
        s = world[i]
        i += 1
        if s.relation is not None and swap_colours(s.caption) is not None:
            scenes.append(s)
    right = []
    for start in range(0, n, 50):
        batch = scenes[start : start + 50]
        x = to_pixels(np.stack([s.image for s in batch]))
        texts = [s.caption for s in batch] + [swap_colours(s.caption) for s in batch]
        ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids
        logits = clip(input_ids=ids, pixel_values=x).logits_per_image  # (B, 2B)
        k = torch.arange(len(batch))
        right += (logits[k, k] > logits[k, k + len(batch)]).tolist()
    return float(np.mean(right))

@torch.no_grad()
def synonym_similarities(text_encoder_with_projection, tokenizer) -> list[tuple[str, str, str, bool, float]]:
    """Cosine similarities between words of the same kind, each word embedded in a few carrier sentences.

    Args:
        text_encoder_with_projection: token ids (B, L) -> sentence embeddings (B, D), e.g.
            `lambda ids: sdlearn.text.clip_text_features(clip, ids)`.
        tokenizer: the matching tokenizer.
    Returns:
        A list of (kind, word_a, word_b, is_synonym, cosine), kind being "shape", "size" or "colour".
    """
    kinds = {
        "shape": (["square", "box", "circle", "disc", "triangle"], ["a red {}", "a big blue {}", "a {} on the left"]),
        "size": (["large", "big", "small", "tiny"], ["a {} red circle", "a {} green square", "there is a {} blue triangle"]),
        "colour": (["purple", "violet", "red", "orange", "yellow", "green", "blue"],
                   ["a {} circle", "a small {} square", "an image of a {} triangle"]),
    }
    rows = []
    for kind, (words, templates) in kinds.items():
        emb = {}
        for w in words:
            prompts = [t.format(w) for t in templates]
            ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                            return_tensors="pt").input_ids
            e = text_encoder_with_projection(ids)
            e = torch.nn.functional.normalize(e, dim=-1).mean(0)
            emb[w] = torch.nn.functional.normalize(e, dim=0)
        canon = {w: next((c for c, syn in SYNONYMS.items() if w in syn), w) for w in words}
        for a, b in itertools.combinations(words, 2):
            rows.append((kind, a, b, canon[a] == canon[b], float(emb[a] @ emb[b])))
    return rows
