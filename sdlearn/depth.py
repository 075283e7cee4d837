"""The depth stage of depth-to-image: estimate a depth map, and turn it into the U-Net's fifth input.

Stable Diffusion 2's depth model (`StableDiffusionDepth2ImgPipeline`) asks a monocular depth estimator
(MiDaS, a DPT network, Ranftl et al. 2021) for the input image's *relative inverse depth* (larger =
nearer), resizes it to the latent's size and scales it to [-1, 1]; the U-Net reads it as one extra
input channel next to the 4 latent channels. TinySD-depth does the same with a small DPT trained on
the world's depths (`sdlearn.tinysd.make_depth_estimator`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["nearness", "estimate_depth", "depth_condition"]


def nearness(depth: np.ndarray) -> np.ndarray:
    """The world's depth (0 near .. 1 far, background 1) as MiDaS-style inverse depth: 1 - depth."""
    return 1.0 - depth


@torch.no_grad()
def estimate_depth(parts, image) -> torch.Tensor:
    """The depth estimator's map for an image (larger = nearer, as MiDaS), (B, h, w).

    Args:
        parts: anything with `depth_estimator` and `feature_extractor` (e.g. `sdlearn.load("tinysd-depth")`).
        image: a PIL image, a uint8 array (H, W, 3), or a list of them.
    Returns:
        A float tensor (B, h, w) at the estimator's output size.
    """
    images = image if isinstance(image, (list, tuple)) else [image]
    pil = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im)) for im in images]
    pixel_values = parts.feature_extractor(images=[p.convert("RGB") for p in pil], return_tensors="pt").pixel_values
    return parts.depth_estimator(pixel_values.to(parts.depth_estimator.dtype)).predicted_depth


def depth_condition(depth_map: torch.Tensor, height: int, width: int, vae_scale_factor: int) -> torch.Tensor:
    """Depth (B, h, w) -> the U-Net's 5th input (B, 1, height / f, width / f): bicubic resize to latent size,
    min-max scaled to [-1, 1] per image (as diffusers' `prepare_depth_map`)."""
    d = F.interpolate(depth_map[:, None], size=(height // vae_scale_factor, width // vae_scale_factor),
                      mode="bicubic", align_corners=False)
    lo, hi = d.amin(dim=[1, 2, 3], keepdim=True), d.amax(dim=[1, 2, 3], keepdim=True)
    return 2.0 * (d - lo) / (hi - lo) - 1.0
