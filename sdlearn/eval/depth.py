"""TinySD-depth: is the depth estimator right, and does depth-to-image keep a scene's layout while repainting it."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import World, load_motorcycle
from ..depth import estimate_depth, nearness
from ..images import to_uint8
from ..judge import judge
from ..pipelines import depth_to_image
from .prompts import blue_squares_prompt

__all__ = ["depth_estimator_metrics", "depth_to_image_metrics"]


def _pearson(a, b) -> float:
    """Pearson correlation over the entries where both are finite (the photo's disparity has holes)."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _resized(depth: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """Estimated depth maps (B, h, w) averaged down (or up) to the true map's (H, W)."""
    return torch.nn.functional.interpolate(depth[:, None], size=tuple(shape), mode="area")[:, 0].numpy()


@torch.no_grad()
def depth_estimator_metrics(parts, n: int = 128, seed: int = 4321) -> dict:
    """Pearson correlation of estimated and true nearness (1 - depth) on held-out scenes, and on the motorcycle photo.

    Args:
        parts: a depth model (`sdlearn.load("tinysd-depth")`), with `depth_estimator` and `feature_extractor`.
        n: how many world scenes.
        seed: the world's seed.
    Returns:
        {"scenes_mean_r", "scenes_median_r": correlation per scene, their mean and median;
         "ordered": fraction of two-object scenes (both visible) whose nearer object is estimated nearer;
         "n_pairs": how many such scenes; "motorcycle_r": correlation with the photo's measured disparity}.
    """
    world = World(seed=seed, split="all")
    scenes = [world[i] for i in range(n)]
    est = _resized(estimate_depth(parts, [s.image for s in scenes]), scenes[0].depth.shape)
    per_scene = [_pearson(e, nearness(s.depth)) for e, s in zip(est, scenes)]
    # Two-object scenes with both objects visible: is the nearer one estimated nearer?
    pairs = [(e, s) for e, s in zip(est, scenes) if len(s.objects) == 2 and all(m.sum() > 0 for m in s.masks)]
    ordered = [(e[s.masks[0]].mean() > e[s.masks[1]].mean()) == (s.objects[0].depth < s.objects[1].depth)
               for e, s in pairs]
    left, disparity = load_motorcycle(world.size)  # the photo at the scenes' size
    photo = _pearson(_resized(estimate_depth(parts, left), disparity.shape)[0], disparity)
    return {"scenes_mean_r": float(np.mean(per_scene)), "scenes_median_r": float(np.median(per_scene)),
            "ordered": float(np.mean(ordered)), "n_pairs": len(pairs), "motorcycle_r": photo}


@torch.no_grad()
def depth_to_image_metrics(parts, n: int = 100, seed: int = 5151, steps: int = 25, guidance_scale: float = 7.5) -> dict:
    """Held-out scenes re-rendered as blue squares: layout kept (depth correlation), new colour (judge).

    Args:
        parts: a depth model (`sdlearn.load("tinysd-depth")`), run through `sdlearn.pipelines.depth_to_image`
            at strength 1 (the layout can only come from the depth map).
        n: how many world scenes; scene i is generated with seed i.
        seed: the world's seed.
        steps, guidance_scale: as in the pipeline.
    Returns:
        {"layout_mean_r": mean Pearson correlation of the output's estimated nearness with the input's true
         nearness; "blue": fraction of outputs the judge reads as blue}.
    """
    world = World(seed=seed, split="all")
    rs, blue = [], []
    for i in tqdm(range(n), desc="depth-to-image", leave=False):
        s = world[i]
        res = depth_to_image(parts, blue_squares_prompt(s), s.image, strength=1.0, num_inference_steps=steps,
                             guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(i), progress=False)
        out = to_uint8(res.images[0])
        rs.append(_pearson(_resized(estimate_depth(parts, out), s.depth.shape)[0], nearness(s.depth)))
        blue.append(judge(out).colour == "blue")
    return {"layout_mean_r": float(np.mean(rs)), "blue": float(np.mean(blue))}
