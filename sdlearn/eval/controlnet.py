"""A ControlNet for outlines: does the picture follow the outline, and keep the colours the prompt asks for?"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..controlnet import controlnet_to_image
from ..data import World, render_outline
from ..edges import canny_edges, edge_condition, edge_f1, edges_of
from ..images import to_uint8
from ..judge import judge, judge_pair
from .judged import image_size

__all__ = ["controlnet_cases", "controlnet_metrics"]


def controlnet_cases(n: int, seed: int = 8080, source: str = "canny", size: int = 64):
    """`n` world scenes (`size` pixels square) no training drew (their own seed), each with its caption and its
    condition picture: the scene's Canny edges (`source="canny"`) or its wobbly hand-drawn outline (`"outline"`)."""
    if source not in ("canny", "outline"):
        raise ValueError(f"source must be 'canny' or 'outline', got {source!r}.")
    scenes = World(size=size, seed=seed, split="train").batch(0, n)
    if source == "canny":
        conditions = [edge_condition(canny_edges(s.image)) for s in scenes]
    else:
        conditions = [render_outline(s, seed=i) for i, s in enumerate(scenes)]
    return scenes, conditions


def _colours_right(image: np.ndarray, scene) -> list[bool]:
    """Per object of `scene`: is the colour the caption asks for the colour drawn there (read by the judge)?"""
    if len(scene.objects) == 1:
        return [judge(image).colour == scene.objects[0].colour]
    got = judge_pair(image, scene.relation)
    return [v.colour == o.colour for v, o in zip(got, scene.objects)]


def controlnet_metrics(parts, controlnet, n: int = 100, seed: int = 8080, scales=(0.0, 1.0), guidance_scale=3.0,
                       steps: int = 25, source: str = "canny", batch: int = 25) -> dict[float, dict[str, float]]:
    """Generate each case's caption under its condition at each conditioning scale (0: no ControlNet at all,
    exactly plain text-to-image) with the same seeds, and measure against the condition.

    Returns:
        {scale: {"precision", "recall", "f1": edge agreement with a 1-pixel tolerance between the condition's
        edges and the generated picture's Canny edges, mean over cases; "colour": share of objects drawn in
        the caption's colour}}.
    """
    scenes, conditions = controlnet_cases(n, seed, source, size=image_size(parts)[0])
    out = {}
    for scale in scales:
        scores, colours = [], []
        for start in tqdm(range(0, n, batch), desc=f"ControlNet at scale {scale}", leave=False):
            chunk = range(start, min(start + batch, n))
            gens = [torch.Generator().manual_seed(seed + k) for k in chunk]
            res = controlnet_to_image(parts, controlnet, [scenes[k].caption for k in chunk],
                                      [conditions[k] for k in chunk], num_inference_steps=steps,
                                      guidance_scale=guidance_scale, controlnet_conditioning_scale=scale,
                                      generator=gens, progress=False)
            for k, image in zip(chunk, to_uint8(res.images)):
                scores.append(edge_f1(edges_of(conditions[k]), canny_edges(image)))
                colours += _colours_right(image, scenes[k])
        p, r, f = np.mean(scores, axis=0)
        out[scale] = {"precision": float(p), "recall": float(r), "f1": float(f), "colour": float(np.mean(colours))}
    return out
