"""Inpainting (TinySD-inpaint and blending with TinySD): is the hole repainted as asked, and the rest left alone."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import COLOURS, SHAPES, World
from ..images import to_uint8
from ..judge import judge
from ..latents import round_trip, vae_scale_factor
from ..pipelines import inpaint
from .judged import image_size
from .prompts import inpaint_prompt

__all__ = ["latent_cells", "inpaint_case", "inpaint_metrics"]


def latent_cells(hole: np.ndarray, factor: int = 8) -> np.ndarray:
    """The latent cells (rows, cols) that a pixel mask touches: each cell is a factor x factor patch.

    Args:
        hole: a bool mask (H, W), True where the image is repainted.
        factor: the VAE's downsampling factor (`sdlearn.latents.vae_scale_factor(vae)`; 8 for SD and TinySD).
    Returns:
        A bool array (H / factor, W / factor), True for every cell the mask touches.
    """
    h, w = hole.shape
    if h % factor or w % factor:
        raise ValueError(f"the mask is {h}x{w}; its sides must be multiples of the VAE factor {factor}.")
    return hole.reshape(h // factor, factor, w // factor, factor).any(axis=(1, 3))


def inpaint_case(scene, i: int) -> tuple[np.ndarray, str, str]:
    """The hole and the request `inpaint_metrics` uses for scene number i.

    Args:
        scene: a world `Scene` whose first object is visible.
        i: the scene's number; the requests cycle through the other colours and shapes with it.
    Returns:
        (hole, colour, shape): the first object's box grown by 3 pixels (a bool mask (H, W)), and a
        colour and a shape other than the object's.
    """
    if not scene.objects or not scene.masks[0].any():
        raise ValueError("inpaint_case needs a scene whose first object is visible; pick another scene.")
    o = scene.objects[0]
    colour = [c for c in COLOURS if c != o.colour][i % (len(COLOURS) - 1)]
    shape = [x for x in SHAPES if x != o.shape][i % (len(SHAPES) - 1)]
    ys, xs = np.nonzero(scene.masks[0])
    hole = np.zeros(scene.masks[0].shape, bool)
    hole[max(ys.min() - 3, 0) : ys.max() + 4, max(xs.min() - 3, 0) : xs.max() + 4] = True
    return hole, colour, shape


@torch.no_grad()
def inpaint_metrics(parts, n: int = 100, seed: int = 6262, steps: int = 25, whole_scene: bool = False,
                    guidance_scale: float = 7.5, guidance_outside: float | None = None,
                    size: int | None = None) -> dict:
    """Mask each scene's first object (grown by 3 px), ask for another colour and shape there.

    Outside the mask: mean absolute difference to the input in 0-255 units (per scene, then their
    mean and median: a few scenes whose whole background shifts dominate the mean), over all
    pixels outside the mask and over those whose latent cell the mask does not touch (a latent
    cell the mask cuts is repainted whole, so its outside pixels may change), and, for reference,
    what a plain VAE round trip of the input changes outside the mask (the floor any pipeline that
    decodes latents starts from). Inside: does the judge, looking at the repainted region on the
    original background, find the asked colour and shape.

    Args:
        parts: an inpainting model (9-channel U-Net) or a plain one (4 channels: blending), run through
            `sdlearn.pipelines.inpaint`.
        n: how many world scenes; scene i is generated with seed i.
        seed: the world's seed.
        steps, guidance_scale, guidance_outside: as in the pipeline.
        whole_scene: describe the whole picture in the prompt ("a green square above a red circle"), as
            the training captions did; otherwise only the new object.
        size: the scenes' side in pixels; by default the model's own image size
            (`sdlearn.eval.image_size(parts)`, 64 for TinySD).
    Returns:
        {"outside_mad", "outside_median": mean and median over scenes of the outside MAD;
         "outside_per_scene": the per-scene values; "images": the uint8 outputs;
         "untouched_mad": MAD away from the mask's latent cells; "vae_floor_mad": a round trip's MAD outside;
         "colour", "shape", "both": fractions of holes the judge reads as asked}.
    """
    factor = vae_scale_factor(parts.vae)
    if size is None:
        size = image_size(parts)[0]
    world = World(size=size, seed=seed, split="all")
    outside, untouched, floor, colour_ok, shape_ok, images = [], [], [], [], [], []
    for i in tqdm(range(n), desc="inpainting", leave=False):
        s = world[i]
        mask, colour, shape = inpaint_case(s, i)
        prompt = inpaint_prompt(s, colour, shape, whole_scene)
        res = inpaint(parts, prompt, s.image, mask, num_inference_steps=steps, guidance_scale=guidance_scale,
                      guidance_outside=guidance_outside, generator=torch.Generator().manual_seed(i), progress=False)
        out = to_uint8(res.images[0])
        images.append(out)
        diff = np.abs(out.astype(float) - s.image).mean(-1)
        outside.append(float(diff[~mask].mean()))
        far = ~np.kron(latent_cells(mask, factor), np.ones((factor, factor), bool))
        untouched.append(float(diff[far].mean()) if far.any() else float("nan"))
        # the floor: what a VAE round trip of the input alone changes outside the mask
        rt = round_trip(parts.vae, s.image)[1][0].astype(float)
        floor.append(float(np.abs(rt - s.image).mean(-1)[~mask].mean()))
        probe = np.empty_like(out)
        probe[:] = s.image[0, 0]  # the background colour, then the repainted region on top
        probe[mask] = out[mask]
        v = judge(probe)
        colour_ok.append(v.colour == colour)
        shape_ok.append(v.shape == shape)
    return {"outside_mad": float(np.mean(outside)), "outside_median": float(np.median(outside)),
            "outside_per_scene": outside, "images": images, "untouched_mad": float(np.nanmean(untouched)),
            "vae_floor_mad": float(np.mean(floor)),
            "colour": float(np.mean(colour_ok)),
            "shape": float(np.mean(shape_ok)),
            "both": float(np.mean(np.array(colour_ok) & np.array(shape_ok)))}
