"""The VAE alone: how faithfully a round trip through the latents keeps held-out images and their shapes."""
from __future__ import annotations

import numpy as np
import torch

from ..data import World
from ..images import to_pixels
from ..judge import judge
from ..latents import round_trip

__all__ = ["vae_psnr", "vae_shape_kept"]


@torch.no_grad()
def vae_psnr(vae, n: int = 256, seed: int = 999, size: int = 64) -> float:
    """Mean PSNR (dB) of VAE round trips on held-out procedural images (a seed never trained on).

    Args:
        vae: a diffusers `AutoencoderKL` (or anything with its encode/decode interface).
        n: how many world scenes.
        seed: the world's seed.
        size: the scenes' side in pixels; pass the model's own, `sdlearn.eval.image_size(parts)[0]`
            (the default 64 is TinySD's).
    Returns:
        The mean over images of their PSNR in dB (pixels in [-1, 1], the decoder's output clamped).
    """
    world = World(size=size, seed=seed, split="all")
    x = to_pixels(np.stack([world[i].image for i in range(n)]))
    recon = torch.cat([vae.decode(vae.encode(x[i : i + 64]).latent_dist.mode()).sample  # 64 images per batch
                       for i in range(0, n, 64)])
    mse = (((recon.clamp(-1, 1) - x) / 2) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


@torch.no_grad()
def vae_shape_kept(vae, n: int = 300, seed: int = 999, size: int = 64) -> dict[str, float]:
    """How often the judge still reads the right shape after a VAE round trip of a single-object scene.

    Roughly the best shape accuracy generated images can reach: whatever the U-Net does, the
    VAE's decoder draws the final pixels (a U-Net could in principle find latents the decoder
    draws more sharply than the encoder's, so this is not a strict bound). Returned for all
    objects and for small ones, whose corners an 8x-downsampling VAE loses first.

    Args:
        vae: a diffusers `AutoencoderKL` (or anything with its encode/decode interface and config).
        n: how many single-object world scenes.
        seed: the world's seed.
        size: the scenes' side in pixels; pass the model's own, `sdlearn.eval.image_size(parts)[0]`
            (the default 64 is TinySD's).
    Returns:
        {"all": fraction kept, "small": fraction kept among small objects}.
    """
    world = World(size=size, seed=seed, split="all", p_two=0.0)
    scenes = [world[i] for i in range(n)]
    images = np.concatenate([round_trip(vae, np.stack([s.image for s in scenes[i : i + 100]]))[1]
                             for i in range(0, n, 100)])
    ok = np.array([judge(im).shape == s.objects[0].shape for im, s in zip(images, scenes)])
    small = np.array([s.objects[0].size == "small" for s in scenes])
    return {"all": float(ok.mean()), "small": float(ok[small].mean())}
