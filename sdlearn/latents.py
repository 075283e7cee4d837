"""The VAE stage: pixels <-> latents (Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models", 2022).

Stable Diffusion does not denoise pixels. Its VAE encoder squeezes a 512x512x3 image into a
64x64x4 latent (48 times fewer numbers), the U-Net works there, and the decoder paints the
result back into pixels. Latents are multiplied by the VAE's `scaling_factor` (0.18215 for
SD v1, measured for TinySD) so that they have roughly unit variance, the scale the noise
schedule assumes.
"""
from __future__ import annotations

import numpy as np
import torch

from .images import prepare_image, to_uint8

__all__ = ["vae_scale_factor", "encode", "sample_latents", "decode_latents", "decode", "round_trip", "compression_ratio", "decoder_loss",
           "psnr", "show_latent_channels"]


def vae_scale_factor(vae) -> int:
    """How many times smaller the latent is than the image on each side: 2 ** (levels - 1), 8 for SD and TinySD."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


@torch.no_grad()
def encode(vae, image, sample: bool = False, generator=None) -> torch.Tensor:
    """Image(s) -> scaled latents (B, 4, H/8, W/8): the mean of the encoder's distribution, or a sample from it."""
    pixels = prepare_image(image, vae_scale_factor=vae_scale_factor(vae))
    dist = vae.encode(pixels.to(vae.dtype)).latent_dist
    z = dist.sample(generator) if sample else dist.mode()
    return z * vae.config.scaling_factor


def sample_latents(vae, pixels: torch.Tensor, generator=None) -> torch.Tensor:
    """Pixels (B, 3, H, W) in [-1, 1] -> a sample of the encoder's latent distribution, times `scaling_factor`.

    This is what diffusers' image pipelines do with an input image (`retrieve_latents(..., "sample")`).
    """
    return vae.config.scaling_factor * vae.encode(pixels).latent_dist.sample(generator)


def decode_latents(vae, latents: torch.Tensor) -> np.ndarray:
    """Scaled latents -> images (B, H, W, 3) in [0, 1], as diffusers' output_type="np".

    Raises on NaN (usually an fp16 VAE overflow).
    """
    image = vae.decode(latents / vae.config.scaling_factor).sample
    if torch.isnan(image).any():
        raise FloatingPointError("the VAE produced NaN. The usual cause is running the VAE in float16, which overflows; "
                                 "use float32 (sdlearn's default on the CPU).")
    return (image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()


@torch.no_grad()
def decode(vae, latents: torch.Tensor) -> np.ndarray:
    """Scaled latents -> images (B, H, W, 3) as uint8."""
    return to_uint8(decode_latents(vae, latents))


def round_trip(vae, image) -> tuple[torch.Tensor, np.ndarray]:
    """Encode then decode; returns (latents, reconstructed uint8 images)."""
    z = encode(vae, image)
    return z, decode(vae, z)


def decoder_loss(vae, latents: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """How far the decoder paints unscaled latents (B, C, h, w) from the pixels (B, 3, H, W, in [-1, 1]): L1 + MSE.

    The objective of a decoder-only fine-tune ("VAE files" such as SD's ft-MSE): the encoder gives the latents
    and stays frozen, so only how they are painted back changes.
    """
    out = vae.decode(latents).sample
    return torch.nn.functional.l1_loss(out, pixels) + torch.nn.functional.mse_loss(out, pixels)


def compression_ratio(image_shape, latent_shape) -> float:
    """How many times fewer numbers the latent holds, computed from the two shapes.

    image_shape is (H, W, 3) or (3, H, W) or (B, 3, H, W); latent_shape (C, h, w) or (B, C, h, w).
    """
    n_image = int(np.prod(image_shape[-3:]))
    n_latent = int(np.prod(latent_shape[-3:]))
    return n_image / n_latent


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images (higher is closer; 30+ dB looks identical)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}.")
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def show_latent_channels(latents: torch.Tensor, title: str | None = None):
    """Draw the channels of one latent side by side, each on its own colour scale."""
    import matplotlib.pyplot as plt  # imported here so that the VAE stage loads without matplotlib

    z = latents[0] if latents.ndim == 4 else latents
    fig, axes = plt.subplots(1, z.shape[0], figsize=(2.2 * z.shape[0], 2.4))
    for c, ax in enumerate(axes):
        ax.imshow(z[c].float().cpu().numpy(), cmap="RdBu_r")
        ax.set_title(f"channel {c}", fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
