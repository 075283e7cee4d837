"""Classifier-free guidance (Ho & Salimans, 2022), written out.

The U-Net predicts the noise twice per step: once without the prompt (the empty prompt "",
or a negative prompt) and once with it. Guidance extrapolates from the first towards and
past the second:

    eps = eps_uncond + guidance_scale * (eps_text - eps_uncond)

guidance_scale = 0 gives the unconditional prediction (the prompt is ignored), 1 the plain
text-conditioned prediction, and larger values push harder towards what the prompt
describes. Note that diffusers' pipelines skip the formula whenever guidance_scale <= 1 and
then use the text-conditioned prediction alone, so their "guidance 0" behaves like 1.
"""
from __future__ import annotations

import torch

__all__ = ["classifier_free_guidance"]


def classifier_free_guidance(noise_uncond: torch.Tensor, noise_text: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """eps_uncond + guidance_scale * (eps_text - eps_uncond)."""
    return noise_uncond + guidance_scale * (noise_text - noise_uncond)
