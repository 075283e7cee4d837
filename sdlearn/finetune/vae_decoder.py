""""VAE files": a fine-tuned decoder, as the public ft-MSE / ft-EMA VAEs for Stable Diffusion were made.

Only the decoder is trained; the encoder is frozen. Latents of any picture therefore stay exactly what they were,
so the U-Net, which was trained on those latents, needs no change: swapping the VAE (`vae=` in diffusers'
`from_pretrained`) changes only how latents are painted back into pixels. The loss is the reconstruction error of
decoding the encoder's mean latents (L1 plus MSE, both on pixels in [-1, 1]).
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from ..images import to_pixels
from ..latents import decoder_loss
from .core import FitResult, fit

__all__ = ["decoder_fine_tune", "train_decoder", "decoder_parameters"]


def decoder_parameters(vae) -> list[torch.nn.Parameter]:
    """What a "VAE file" changes: the decoder and the convolution in front of it (post_quant_conv)."""
    params = list(vae.decoder.parameters())
    if getattr(vae, "post_quant_conv", None) is not None:
        params += list(vae.post_quant_conv.parameters())
    return params


def decoder_fine_tune(vae):
    """A copy of the VAE with only its decoder trainable (the base stays as it was)."""
    tuned = copy.deepcopy(vae)
    tuned.requires_grad_(False)
    for p in decoder_parameters(tuned):
        p.requires_grad_(True)
    return tuned


def train_decoder(vae, images: np.ndarray, steps: int = 200, lr: float = 3e-4, batch_size: int = 16, seed: int = 0,
                  progress: bool = True) -> FitResult:
    """Train the decoder of `vae` (made by `decoder_fine_tune`) to paint `images` (N, H, W, 3) uint8 back."""
    if any(p.requires_grad for p in vae.encoder.parameters()):
        raise ValueError("the encoder must stay frozen (else the U-Net's latents change); use decoder_fine_tune(vae).")
    pixels = to_pixels(images)
    with torch.no_grad():
        latents = torch.cat([vae.encode(pixels[i : i + 64]).latent_dist.mode() for i in range(0, len(pixels), 64)])
    g = torch.Generator().manual_seed(seed)

    def loss_fn(step):
        idx = torch.randint(0, len(pixels), (batch_size,), generator=g)
        return decoder_loss(vae, latents[idx], pixels[idx])

    vae.decoder.train()
    try:
        return fit(decoder_parameters(vae), loss_fn, steps, lr, desc="VAE decoder", progress=progress)
    finally:
        vae.decoder.eval()
