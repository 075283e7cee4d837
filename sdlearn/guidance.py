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

from .noising import x0_from_noise
from .text import encode_prompt
from .unet import predict_noise

__all__ = ["classifier_free_guidance", "guided_predictions"]


def classifier_free_guidance(noise_uncond: torch.Tensor, noise_text: torch.Tensor, guidance_scale) -> torch.Tensor:
    """eps_uncond + guidance_scale * (eps_text - eps_uncond).

    Args:
        noise_uncond, noise_text: the two noise predictions, (B, C, h, w).
        guidance_scale: a number, or a tensor that broadcasts against them (a scale per position).
    Returns:
        The guided noise prediction, (B, C, h, w).
    """
    return noise_uncond + guidance_scale * (noise_text - noise_uncond)


@torch.no_grad()
def guided_predictions(parts, latents: torch.Tensor, t, prompt, guidance_scale: float = 7.5, negative_prompt=None):
    """At one denoising step, the clean latents (x0) that each noise prediction implies.

    x0 = (z_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) is linear in eps, so guidance acts on the
    predicted pictures exactly as on the noise: x0_guided = x0_uncond + s (x0_text - x0_uncond).
    What guidance adds is s - 1 times the *difference* between the picture the prompt asks for
    and the picture the model expects without it (lesson 09 shows what that does to a square).

    Args:
        parts: the model (`sdlearn.load()`), with a variance-preserving scheduler (DDIM, DDPM, PNDM).
        latents: the latents at step t, (B, 4, h, w); t: the timestep.
        prompt: one prompt per latent; guidance_scale, negative_prompt: as in the pipelines.
    Returns:
        A dict of (B, 4, h, w) latents: "uncond", "text" and "guided".
    """
    if float(parts.scheduler.init_noise_sigma) != 1.0:
        raise ValueError(f"{type(parts.scheduler).__name__} keeps latents as x0 + sigma * eps, not in the variance-preserving "
                         "form this x0 formula needs; swap in DDIM first: sdlearn.schedulers.swap_scheduler(parts, 'ddim').")
    prompt_embeds, negative_embeds = encode_prompt(prompt, parts.tokenizer, parts.text_encoder, negative_prompt)
    if prompt_embeds.shape[0] != latents.shape[0]:
        raise ValueError(f"{prompt_embeds.shape[0]} prompt(s) for {latents.shape[0]} latents; give one prompt per latent.")
    latent_in = parts.scheduler.scale_model_input(torch.cat([latents] * 2), t)
    noise_uncond, noise_text = predict_noise(parts.unet, latent_in, t, torch.cat([negative_embeds, prompt_embeds])).chunk(2)
    x0 = lambda eps: x0_from_noise(parts.scheduler, latents, eps, t)
    return {"uncond": x0(noise_uncond), "text": x0(noise_text),
            "guided": x0(classifier_free_guidance(noise_uncond, noise_text, guidance_scale))}
