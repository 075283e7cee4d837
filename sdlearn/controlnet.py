"""ControlNet: text-to-image steered by an outline, written out by hand, and a ControlNet's anatomy.

A ControlNet (Zhang, Rao & Agrawala 2023) is a trainable copy of the U-Net's encoder (input convolution, down
blocks, middle block) that also reads a condition picture, here white edges on black. After each block it
copied sits a 1x1 "zero convolution", initialised to zero; what comes out of them is added to the frozen U-Net's
skip connections (one residual per skip) and to its middle block's output. An untrained ControlNet adds exactly
zero, so the U-Net generates as it always did; training grows the zero convolutions only as far as the condition
helps predict the noise.

`controlnet_to_image` does what diffusers' `StableDiffusionControlNetPipeline` does, in the same order and with
the same random draws (tests/test_controlnet.py checks they are equal), numbered as sdlearn's other pipelines:

| step | here | diffusers' ControlNet pipeline |
| --- | --- | --- |
| check inputs, preprocess the condition picture | 1 | 1, 4 |
| define call parameters | 2 | 2 |
| encode the prompt | 3 | 3 |
| prepare timesteps | 4 | 5 |
| prepare latents | 5 | 6 |
| prepare extra step kwargs | 6 | 7 |
| denoising loop (ControlNet, then the U-Net with its residuals) | 7 | 8 |
| decode | 8 | after the loop |

Two simplifications, both exact: the residuals are scaled here rather than inside the ControlNet (the same
multiplication), and the ControlNet is not called at steps outside [control_guidance_start,
control_guidance_end], where diffusers calls it with scale 0 and adds zeros. Not written out: diffusers'
guess_mode, several ControlNets at once, IP-Adapter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from diffusers import ControlNetModel
from tqdm.auto import tqdm

from .guidance import classifier_free_guidance
from .images import prepare_condition
from .latents import decode_latents, vae_scale_factor
from .pipelines import (Result, Step, check_inputs, do_classifier_free_guidance, encode_prompt_step, extra_step_kwargs,
                        randn_latents, record_attention_if, step_x0)

__all__ = ["ControlResult", "Residuals", "controlnet_to_image", "make_controlnet", "zero_convolutions",
           "controlnet_keep"]


@dataclass
class Residuals:
    """What the ControlNet added at one denoising step (text-conditioned half, after the conditioning scale)."""

    index: int
    t: int
    down: list[torch.Tensor]  # one per skip connection of the U-Net's encoder, (B, C, h, w), high resolution first
    mid: torch.Tensor  # added to the middle block's output


@dataclass
class ControlResult(Result):
    residuals: list[Residuals] = field(default_factory=list)  # when record_residuals=True


def make_controlnet(unet, **kwargs) -> ControlNetModel:
    """An untrained ControlNet for `unet`: its encoder copied (weights too), the condition encoder new, every
    zero convolution zero. `kwargs` go to `ControlNetModel.from_unet` (e.g. conditioning_channels)."""
    return ControlNetModel.from_unet(unet, **kwargs)


def zero_convolutions(controlnet) -> list[torch.nn.Conv2d]:
    """The ControlNet's zero convolutions, in the order their outputs meet the U-Net: one per skip connection
    of the encoder, then the middle block's; and the last layer of the condition encoder, zero-initialised too."""
    return [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
            controlnet.controlnet_cond_embedding.conv_out]


def controlnet_keep(n_steps: int, start: float, end: float) -> list[float]:
    """1.0 for the steps at which the ControlNet acts, 0.0 elsewhere: step i acts if it lies within [start, end]
    of the schedule (diffusers' control_guidance_start / control_guidance_end)."""
    return [1.0 - float(i / n_steps < start or (i + 1) / n_steps > end) for i in range(n_steps)]


def _check_control(controlnet, unet, scale, start, end):
    if not isinstance(controlnet, ControlNetModel):
        raise TypeError("controlnet must be a diffusers ControlNetModel, e.g. sdlearn.load_controlnet('tinysd-controlnet-edges').")
    if controlnet.config.cross_attention_dim != unet.config.cross_attention_dim or \
            list(controlnet.config.block_out_channels) != list(unet.config.block_out_channels):
        raise ValueError("this ControlNet was made for another U-Net (its channels or text width differ from the "
                         "model's); load the ControlNet trained for this model.")
    if not isinstance(scale, (int, float)) or not math.isfinite(scale) or not 0 <= scale <= 2:
        raise ValueError(f"controlnet_conditioning_scale must be a number in [0, 2] (0 ignores the outline, 1 is "
                         f"as trained), got {scale!r}.")
    if not (isinstance(start, (int, float)) and isinstance(end, (int, float)) and 0 <= start < end <= 1):
        raise ValueError(f"need 0 <= control_guidance_start < control_guidance_end <= 1, got {start!r} and {end!r}.")


@torch.no_grad()
def controlnet_to_image(parts, controlnet, prompt, image, height=None, width=None, num_inference_steps: int = 25,
                        guidance_scale: float = 7.5, controlnet_conditioning_scale: float = 1.0,
                        control_guidance_start: float = 0.0, control_guidance_end: float = 1.0,
                        negative_prompt=None, generator=None, latents=None, eta: float = 0.0, record: bool = False,
                        record_residuals: bool = False, record_attention: bool = False, progress: bool = True,
                        on_step=None) -> ControlResult:
    """Generate images from text, steered by an outline through a ControlNet.

    Args:
        parts: the model, `sdlearn.load()`; its U-Net stays as it is.
        controlnet: a `ControlNetModel` trained for that U-Net.
        prompt: a string or a list of strings.
        image: the condition, white lines on black: one picture (PIL, uint8 (H, W) or (H, W, 3)) or one per prompt.
        height, width: the image size (default: the U-Net's native size times the VAE factor); the
            condition must be that size.
        controlnet_conditioning_scale: how strongly the residuals count (0: plain text-to-image; 1: as trained).
        control_guidance_start, control_guidance_end: the part of the schedule in which the ControlNet acts.
        num_inference_steps, guidance_scale, negative_prompt, generator, latents, eta: as `text_to_image`.
        record: keep every step's latents, noise and x0 predictions; record_residuals: what the ControlNet added
            at every step, in `ControlResult.residuals`; record_attention: the U-Net's cross-attention maps.
        progress: show a progress bar. on_step(i, n): called after step i of n.
    Returns:
        A `ControlResult` with images (B, H, W, 3) in [0, 1].
    """
    unet, scheduler, vsf = parts.unet, parts.scheduler, vae_scale_factor(parts.vae)
    height = height or unet.config.sample_size * vsf
    width = width or unet.config.sample_size * vsf
    # 1. Check inputs; preprocess the condition picture to (B, 3, H, W) in [0, 1]
    batch_size = check_inputs(prompt, height, width, num_inference_steps, guidance_scale, vsf,
                              negative_prompt=negative_prompt)
    _check_control(controlnet, unet, controlnet_conditioning_scale, control_guidance_start, control_guidance_end)
    cond = prepare_condition(image, height, width).to(unet.dtype)
    if cond.shape[0] not in (1, batch_size):
        raise ValueError(f"{cond.shape[0]} outlines for {batch_size} prompts; give one outline, or one per prompt.")
    # 2. Define call parameters
    do_cfg = do_classifier_free_guidance(guidance_scale, unet)
    if isinstance(generator, list) and len(generator) != batch_size:
        raise ValueError(f"{len(generator)} generators for a batch of {batch_size} prompts; give one per prompt.")
    cond = cond.repeat_interleave(batch_size // cond.shape[0], dim=0)
    if do_cfg:  # the ControlNet sees the outline in both halves: unconditional and text-conditioned
        cond = torch.cat([cond] * 2)
    # 3. Encode the prompt (and the empty or negative prompt, for classifier-free guidance)
    prompt_embeds, negative_prompt_embeds = encode_prompt_step(parts, prompt, do_cfg, negative_prompt)
    embeds = torch.cat([negative_prompt_embeds, prompt_embeds]) if do_cfg else prompt_embeds
    # 4. Prepare timesteps, and at which of them the ControlNet acts
    scheduler.set_timesteps(num_inference_steps)
    timesteps = scheduler.timesteps
    keep = controlnet_keep(len(timesteps), control_guidance_start, control_guidance_end)
    # 5. Prepare latents: Gaussian noise, scaled to the scheduler's starting noise level
    shape = (batch_size, unet.config.in_channels, height // vsf, width // vsf)
    if latents is None:
        latents = randn_latents(shape, generator, prompt_embeds.dtype)
    elif tuple(latents.shape) != shape:
        raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {shape}.")
    latents = latents * scheduler.init_noise_sigma
    # 6. Prepare extra step kwargs
    step_kwargs = extra_step_kwargs(scheduler, generator, eta)
    # 7. Denoising loop
    steps, recorded = [], []
    with record_attention_if(record_attention, unet, batch_size) as store:
        for i, t in enumerate(tqdm(timesteps, desc="denoising", disable=not progress)):
            latent_model_input = torch.cat([latents] * 2) if do_cfg else latents
            latent_model_input = scheduler.scale_model_input(latent_model_input, t)
            scale = controlnet_conditioning_scale * keep[i]
            down = mid = None
            if scale != 0:
                # the ControlNet reads the same noisy latents, timestep and text as the U-Net, plus the outline ...
                down, mid = controlnet(latent_model_input, t, encoder_hidden_states=embeds, controlnet_cond=cond,
                                       return_dict=False)
                down, mid = [d * scale for d in down], mid * scale
                if record_residuals:
                    half = slice(batch_size, None) if do_cfg else slice(None)
                    recorded.append(Residuals(i, int(t), [d[half].clone() for d in down], mid[half].clone()))
            # ... and the U-Net adds its residuals to its skip connections and its middle block's output
            noise_pred = unet(latent_model_input, t, encoder_hidden_states=embeds, down_block_additional_residuals=down,
                              mid_block_additional_residual=mid).sample
            if do_cfg:
                noise_uncond, noise_text = noise_pred.chunk(2)
                noise_pred = classifier_free_guidance(noise_uncond, noise_text, guidance_scale)
            out = scheduler.step(noise_pred, t, latents, **step_kwargs)
            if record:
                x0 = step_x0(scheduler, latents, noise_pred, t, out)
                steps.append(Step(i, int(t), latents.clone(), noise_pred.clone(), x0.clone()))
            latents = out.prev_sample
            if on_step is not None:
                on_step(i, len(timesteps))
    # 8. Decode
    return ControlResult(decode_latents(parts.vae, latents), latents, steps, store, recorded)
