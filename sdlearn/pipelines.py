"""The four Stable Diffusion pipelines written out by hand, step by numbered step.

Each function does what the diffusers pipeline of the same job does, in the same order and
with the same random draws, so that with the same components, scheduler, seed and settings
the images are equal (tests/test_pipelines.py checks this against diffusers):

- `text_to_image`   StableDiffusionPipeline
- `image_to_image`  StableDiffusionImg2ImgPipeline (SDEdit: noise the image part way, denoise)
- `inpaint`         StableDiffusionInpaintPipeline, with either a 9-channel inpainting U-Net or
                    a plain 4-channel U-Net (then the known region is re-imposed every step)
- `depth_to_image`  StableDiffusionDepth2ImgPipeline (depth estimate as a 5th U-Net input)

All four use one numbering, that of diffusers' text-to-image pipeline, and each writes its
denoising loop out in full (the loop is what lessons 08-12 teach; it is repeated on purpose):

| step | here | diffusers' img2img | inpaint | depth2img |
| --- | --- | --- | --- | --- |
| check inputs (and preprocess the image, whose size is checked) | 1 | 1, 4 | 1, 5 | 1, 5 |
| define call parameters (batch size, guidance on?; the mask) | 2 | 2 | 2, 5 | 2 |
| encode the prompt | 3 | 3 | 3 | 3 |
| prepare timesteps | 4 | 5 | 4 | 6 |
| prepare latents (and the mask or depth the U-Net also reads) | 5 | 6 | 6, 7 | 4, 7 |
| prepare extra step kwargs (eta, generator) | 6 | 7 | 9 | 8 |
| denoising loop | 7 | 8 | 10 | 9 |
| decode | 8 | after the loop | after the loop | after the loop |

With `record=True` each returns, per denoising step, the latents, the predicted noise and the
predicted clean latents (x0), which the lessons' step scrubbers show.
"""
from __future__ import annotations

import contextlib
import inspect
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .attention import AttentionStore, capture_attention
from .depth import depth_condition, estimate_depth
from .guidance import classifier_free_guidance
from .images import prepare_image, prepare_mask, to_pil
from .latents import decode_latents, sample_latents, vae_scale_factor
from .noising import x0_from_noise
from .text import encode_prompt

__all__ = ["Step", "Result", "text_to_image", "image_to_image", "inpaint", "depth_to_image", "check_inputs",
           "do_classifier_free_guidance", "encode_prompt_step", "randn_latents", "timesteps_for_strength",
           "noised_image_latents", "extra_step_kwargs", "step_x0", "record_attention_if",
           "check_image_batch", "paste_outside"]


@dataclass
class Step:
    """What one denoising step saw and produced."""

    index: int
    t: int
    latents: torch.Tensor  # the latents going into this step, (B, 4, h, w)
    noise_pred: torch.Tensor  # after guidance
    x0_pred: torch.Tensor  # the clean latents this step predicts


@dataclass
class Result:
    images: np.ndarray  # (B, H, W, 3) float in [0, 1], like diffusers' output_type="np"
    latents: torch.Tensor  # the final latents
    steps: list[Step] = field(default_factory=list)
    attention: AttentionStore | None = None  # when record_attention=True

    @property
    def pil(self) -> list[Image.Image]:
        return to_pil(self.images)


# ---------------------------------------------------------------- small steps the four pipelines share

def check_inputs(prompt, height, width, num_inference_steps, guidance_scale, vae_scale_factor, strength=None,
                 prompt_embeds=None, negative_prompt=None, negative_prompt_embeds=None) -> int:
    """# 1. Check inputs: raise a concise error instead of silently correcting bad input. Returns the batch size."""
    if (prompt is None) == (prompt_embeds is None):
        raise ValueError("give either prompt or prompt_embeds (exactly one of them); "
                         f"got {'both' if prompt is not None else 'neither'}.")
    if prompt is not None and not (isinstance(prompt, str) or (isinstance(prompt, (list, tuple)) and prompt
                                                               and all(isinstance(p, str) for p in prompt))):
        raise TypeError("prompt must be a string or a non-empty list of strings.")
    if prompt_embeds is not None and (not isinstance(prompt_embeds, torch.Tensor) or prompt_embeds.ndim != 3):
        raise ValueError("prompt_embeds must be a tensor (batch, tokens, width), as `sdlearn.text.encode_prompt` returns.")
    if negative_prompt is not None and negative_prompt_embeds is not None:
        raise ValueError("give negative_prompt or negative_prompt_embeds, not both.")
    if prompt_embeds is not None and negative_prompt_embeds is not None and prompt_embeds.shape != negative_prompt_embeds.shape:
        raise ValueError(f"prompt_embeds {tuple(prompt_embeds.shape)} and negative_prompt_embeds "
                         f"{tuple(negative_prompt_embeds.shape)} must have the same shape.")
    if height % vae_scale_factor or width % vae_scale_factor:
        raise ValueError(f"height and width must be multiples of {vae_scale_factor} (the VAE's downsampling factor), "
                         f"got {height}x{width}. Try {height // vae_scale_factor * vae_scale_factor}x"
                         f"{width // vae_scale_factor * vae_scale_factor}.")
    if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be a whole number >= 1, got {num_inference_steps!r}.")
    if not isinstance(guidance_scale, (int, float)) or not math.isfinite(guidance_scale) or guidance_scale < 0:
        raise ValueError(f"guidance_scale must be a number >= 0 (1 = no guidance, 7.5 is typical), got {guidance_scale!r}.")
    if strength is not None and not (isinstance(strength, (int, float)) and 0 <= strength <= 1):
        raise ValueError(f"strength must lie in [0, 1] (0 keeps the image, 1 ignores it), got {strength!r}.")
    if prompt_embeds is not None:
        return prompt_embeds.shape[0]
    return 1 if isinstance(prompt, str) else len(prompt)


def do_classifier_free_guidance(guidance_scale, unet, always: bool = False) -> bool:
    """diffusers applies the CFG formula only when guidance_scale > 1 (and the U-Net has no guidance embedding).

    always=True applies the formula at every scale, so that 0 means "unconditional" and values
    between 0 and 1 interpolate, as the formula says.
    """
    return (always or guidance_scale > 1) and unet.config.time_cond_proj_dim is None


def encode_prompt_step(parts, prompt, do_cfg: bool, negative_prompt=None, prompt_embeds=None, negative_prompt_embeds=None):
    """# 3. Encode the prompt, unless its embeddings are given; with guidance on, also the negative (default: "").

    Returns (prompt_embeds, negative_prompt_embeds); the second is None when guidance is off.
    """
    if prompt_embeds is None:
        return encode_prompt(prompt, parts.tokenizer, parts.text_encoder, negative_prompt, do_cfg)
    if not do_cfg:
        return prompt_embeds, None
    if negative_prompt_embeds is None:
        negatives = [""] * prompt_embeds.shape[0] if negative_prompt is None else negative_prompt
        negative_prompt_embeds, _ = encode_prompt(negatives, parts.tokenizer, parts.text_encoder,
                                                  do_classifier_free_guidance=False)
    return prompt_embeds, negative_prompt_embeds


def randn_latents(shape, generator, dtype) -> torch.Tensor:
    """Gaussian noise of `shape`; with a list of generators, one per batch item (as diffusers' `randn_tensor`)."""
    if isinstance(generator, list):
        return torch.cat([torch.randn((1, *shape[1:]), generator=g, dtype=dtype) for g in generator])
    return torch.randn(shape, generator=generator, dtype=dtype)


def timesteps_for_strength(scheduler, num_inference_steps: int, strength: float) -> torch.Tensor:
    """As diffusers' get_timesteps: skip the first (1 - strength) of the schedule."""
    init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
    t_start = max(num_inference_steps - init_timestep, 0)
    timesteps = scheduler.timesteps[t_start * scheduler.order :]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(t_start * scheduler.order)
    if len(timesteps) == 0:
        raise ValueError(f"strength {strength} with {num_inference_steps} steps leaves no denoising step; "
                         "raise strength or num_inference_steps.")
    return timesteps


def noised_image_latents(parts, pixels, batch_size, timesteps, generator) -> torch.Tensor:
    """SDEdit's start: VAE-encode the image (a sample of the latent distribution), then jump it to the
    first remaining timestep with q(x_t | x_0), as diffusers' img2img and depth2img `prepare_latents` do."""
    init_latents = sample_latents(parts.vae, pixels, generator)
    if init_latents.shape[0] < batch_size:
        init_latents = init_latents.repeat(batch_size // init_latents.shape[0], 1, 1, 1)
    noise = randn_latents(init_latents.shape, generator, init_latents.dtype)
    return parts.scheduler.add_noise(init_latents, noise, timesteps[:1].repeat(batch_size))


def extra_step_kwargs(scheduler, generator, eta: float) -> dict:
    """# 6. The keyword arguments this scheduler's `step` takes: eta (DDIM's noise) and the generator."""
    accepted = set(inspect.signature(scheduler.step).parameters)
    kwargs = {}
    if "eta" in accepted:
        kwargs["eta"] = eta
    if "generator" in accepted:
        kwargs["generator"] = generator
    return kwargs


def step_x0(scheduler, latents, noise_pred, t, step_out) -> torch.Tensor:
    """The clean latents implied by this step: the scheduler's own estimate when it gives one,
    else `noising.x0_from_noise`."""
    x0 = getattr(step_out, "pred_original_sample", None)
    return x0 if x0 is not None else x0_from_noise(scheduler, latents, noise_pred, t)


def record_attention_if(record: bool, unet, batch_size: int):
    """`capture_attention(unet)` when `record`, else a context that yields None."""
    return capture_attention(unet, batch_size=batch_size) if record else contextlib.nullcontext(None)


def check_image_batch(pixels: torch.Tensor, batch_size: int) -> None:
    """One input image for all prompts, or one per prompt."""
    if pixels.shape[0] not in (1, batch_size):
        raise ValueError(f"{pixels.shape[0]} images for {batch_size} prompts; give one image, or one per prompt.")


# ---------------------------------------------------------------- text to image

@torch.no_grad()
def text_to_image(parts, prompt=None, height=None, width=None, num_inference_steps: int = 25, guidance_scale: float = 7.5,
                  negative_prompt=None, generator=None, latents=None, eta: float = 0.0, prompt_embeds=None,
                  negative_prompt_embeds=None, record: bool = False, record_attention: bool = False,
                  progress: bool = True, cfg_always: bool = False, on_step=None) -> Result:
    """Generate images from text: noise in latent space, denoised under the prompt's guidance, decoded.

    Args:
        parts: the model, `sdlearn.load()`.
        prompt: a string or a list of strings; or None when `prompt_embeds` are given.
        height, width: the image size (default: the U-Net's native size times the VAE factor).
        num_inference_steps, guidance_scale, negative_prompt, generator, latents, eta, prompt_embeds,
            negative_prompt_embeds: as in diffusers' StableDiffusionPipeline.
        record: keep every step's latents, noise prediction and x0 prediction in `Result.steps`.
        record_attention: capture the cross-attention maps in `Result.attention`.
        progress: show a progress bar. on_step(i, n): called after step i of n (e.g. an app's bar).
        cfg_always: apply the guidance formula even for guidance_scale <= 1 (diffusers skips it there and
            uses the text-conditioned prediction alone); lesson 09 compares the two.
    Returns:
        A `Result` with images (B, H, W, 3) in [0, 1].
    """
    unet, scheduler, vsf = parts.unet, parts.scheduler, vae_scale_factor(parts.vae)
    # 0. Default size: the U-Net's native latent size times the VAE factor (64 for TinySD, 512 for SD v1)
    height = height or unet.config.sample_size * vsf
    width = width or unet.config.sample_size * vsf
    # 1. Check inputs
    batch_size = check_inputs(prompt, height, width, num_inference_steps, guidance_scale, vsf, None, prompt_embeds,
                              negative_prompt, negative_prompt_embeds)
    # 2. Define call parameters
    do_cfg = do_classifier_free_guidance(guidance_scale, unet, cfg_always)
    if isinstance(generator, list) and len(generator) != batch_size:
        raise ValueError(f"{len(generator)} generators for a batch of {batch_size} prompts; give one per prompt.")
    # 3. Encode the prompt (and the empty or negative prompt, for classifier-free guidance)
    prompt_embeds, negative_prompt_embeds = encode_prompt_step(parts, prompt, do_cfg, negative_prompt, prompt_embeds,
                                                               negative_prompt_embeds)
    embeds = torch.cat([negative_prompt_embeds, prompt_embeds]) if do_cfg else prompt_embeds
    # 4. Prepare timesteps
    scheduler.set_timesteps(num_inference_steps)
    timesteps = scheduler.timesteps
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
    steps = []
    with record_attention_if(record_attention, unet, batch_size) as store:
        for i, t in enumerate(tqdm(timesteps, desc="denoising", disable=not progress)):
            # one U-Net call for both predictions: [unconditional, text-conditioned]
            latent_model_input = torch.cat([latents] * 2) if do_cfg else latents
            latent_model_input = scheduler.scale_model_input(latent_model_input, t)
            noise_pred = unet(latent_model_input, t, encoder_hidden_states=embeds).sample
            if do_cfg:  # eps = eps_uncond + s (eps_text - eps_uncond)
                noise_uncond, noise_text = noise_pred.chunk(2)
                noise_pred = classifier_free_guidance(noise_uncond, noise_text, guidance_scale)
            out = scheduler.step(noise_pred, t, latents, **step_kwargs)  # x_t -> x_{t-1}
            if record:
                x0 = step_x0(scheduler, latents, noise_pred, t, out)
                steps.append(Step(i, int(t), latents.clone(), noise_pred.clone(), x0.clone()))
            latents = out.prev_sample
            if on_step is not None:
                on_step(i, len(timesteps))
    # 8. Decode
    return Result(decode_latents(parts.vae, latents), latents, steps, store)


# ---------------------------------------------------------------- image to image

@torch.no_grad()
def image_to_image(parts, prompt, image, strength: float = 0.8, num_inference_steps: int = 25,
                   guidance_scale: float = 7.5, negative_prompt=None, generator=None, eta: float = 0.0,
                   prompt_embeds=None, negative_prompt_embeds=None, record: bool = False,
                   record_attention: bool = False, progress: bool = True, on_step=None) -> Result:
    """SDEdit: encode the image, noise it to the step `strength` of the way through the schedule, denoise from there.

    Args:
        parts: the model; prompt: a string or list (or None with `prompt_embeds`); image: PIL or uint8 (H, W, 3),
            one or one per prompt, its sides multiples of the VAE factor.
        strength: how much of the schedule to run (0 keeps the image, 1 starts from pure noise).
        The rest: as `text_to_image`.
    Returns:
        A `Result` with images (B, H, W, 3) in [0, 1].
    """
    unet, scheduler, vsf = parts.unet, parts.scheduler, vae_scale_factor(parts.vae)
    # 1. Check inputs
    pixels = prepare_image(image, vae_scale_factor=vsf)  # the image as pixels in [-1, 1]; raises on a bad one
    height, width = pixels.shape[-2:]
    batch_size = check_inputs(prompt, height, width, num_inference_steps, guidance_scale, vsf, strength, prompt_embeds,
                              negative_prompt, negative_prompt_embeds)
    # 2. Define call parameters
    do_cfg = do_classifier_free_guidance(guidance_scale, unet)
    check_image_batch(pixels, batch_size)
    # 3. Encode the prompt
    prompt_embeds, negative_prompt_embeds = encode_prompt_step(parts, prompt, do_cfg, negative_prompt, prompt_embeds,
                                                               negative_prompt_embeds)
    embeds = torch.cat([negative_prompt_embeds, prompt_embeds]) if do_cfg else prompt_embeds
    # 4. Prepare timesteps: only the last `strength` part of the schedule is run
    scheduler.set_timesteps(num_inference_steps)
    timesteps = timesteps_for_strength(scheduler, num_inference_steps, strength)
    # 5. Prepare latents: the image's latents, noised to the first remaining timestep
    latents = noised_image_latents(parts, pixels, batch_size, timesteps, generator)
    # 6. Prepare extra step kwargs
    step_kwargs = extra_step_kwargs(scheduler, generator, eta)
    # 7. Denoising loop
    steps = []
    with record_attention_if(record_attention, unet, batch_size) as store:
        for i, t in enumerate(tqdm(timesteps, desc="denoising", disable=not progress)):
            latent_model_input = torch.cat([latents] * 2) if do_cfg else latents
            latent_model_input = scheduler.scale_model_input(latent_model_input, t)
            noise_pred = unet(latent_model_input, t, encoder_hidden_states=embeds).sample
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
    return Result(decode_latents(parts.vae, latents), latents, steps, store)


# ---------------------------------------------------------------- inpainting

@torch.no_grad()
def inpaint(parts, prompt, image, mask_image, strength: float = 1.0, num_inference_steps: int = 25,
            guidance_scale: float = 7.5, negative_prompt=None, generator=None, eta: float = 0.0,
            prompt_embeds=None, negative_prompt_embeds=None, record: bool = False, record_attention: bool = False,
            progress: bool = True, on_step=None, guidance_outside: float | None = None,
            paste_back: bool = False) -> Result:
    """Repaint the white part of `mask_image`, two ways depending on the U-Net:

    - 9 input channels (an inpainting model): the U-Net sees the noisy latents, the mask and
      the latents of the masked image at every step;
    - 4 input channels (a plain model): after every step the latents outside the mask are
      replaced by the original image's latents noised to the current step ("blending").

    Args:
        mask_image: white (or True) where to repaint; the image's size.
        guidance_outside: a guidance scale for the latents outside the mask (default: guidance_scale
            everywhere, as diffusers). Guidance amplifies whatever the prompt changes, outside the hole
            too; 1.0 there leaves the outside to the model's conditional prediction alone. Not part of
            diffusers' pipeline.
        paste_back: after decoding, put the original pixels back outside the mask, as diffusers'
            `image_processor.apply_overlay` (used with `padding_mask_crop`) and most inpainting UIs do.
            Off by default: without it the outside shows what the model itself does to it (a latent
            model cannot keep pixels more exactly than its VAE round trip); with it the outside is
            exact but a seam can show at the mask's edge.
        The rest: as `image_to_image` (strength defaults to 1, as diffusers').
    Returns:
        A `Result` with images (B, H, W, 3) in [0, 1].
    """
    unet, scheduler, vsf = parts.unet, parts.scheduler, vae_scale_factor(parts.vae)
    # 1. Check inputs
    in_ch = unet.config.in_channels
    if in_ch not in (4, 9):
        raise ValueError(f"inpainting needs a U-Net with 4 (plain) or 9 (inpainting) input channels, not {in_ch}.")
    pixels = prepare_image(image, vae_scale_factor=vsf)  # the image as pixels in [-1, 1]; raises on a bad one
    height, width = pixels.shape[-2:]
    batch_size = check_inputs(prompt, height, width, num_inference_steps, guidance_scale, vsf, strength, prompt_embeds,
                              negative_prompt, negative_prompt_embeds)
    if guidance_outside is not None and (not isinstance(guidance_outside, (int, float))
                                         or not math.isfinite(guidance_outside) or guidance_outside < 0):
        raise ValueError(f"guidance_outside must be a number >= 0 (1 = no guidance outside the mask), "
                         f"got {guidance_outside!r}.")
    # 2. Define call parameters; preprocess the mask
    do_cfg = do_classifier_free_guidance(guidance_scale, unet)
    check_image_batch(pixels, batch_size)
    mask = prepare_mask(mask_image, height, width)
    if mask.shape[0] not in (1, batch_size):
        raise ValueError(f"{mask.shape[0]} masks for {batch_size} prompts; give one mask, or one per prompt.")
    # 3. Encode the prompt
    prompt_embeds, negative_prompt_embeds = encode_prompt_step(parts, prompt, do_cfg, negative_prompt, prompt_embeds,
                                                               negative_prompt_embeds)
    embeds = torch.cat([negative_prompt_embeds, prompt_embeds]) if do_cfg else prompt_embeds
    # 4. Prepare timesteps
    scheduler.set_timesteps(num_inference_steps)
    timesteps = timesteps_for_strength(scheduler, num_inference_steps, strength)
    # 5. Prepare latents: noise (or the image noised part way), the image's own latents (the 4-channel way
    #    re-imposes them every step), the mask at latent size and the latents of the image with the hole cut out
    is_strength_max = strength == 1.0
    shape = (batch_size, parts.vae.config.latent_channels, height // vsf, width // vsf)
    image_latents = None
    if in_ch == 4 or not is_strength_max:
        image_latents = sample_latents(parts.vae, pixels, generator)
        image_latents = image_latents.repeat(batch_size // image_latents.shape[0], 1, 1, 1)
    noise = randn_latents(shape, generator, prompt_embeds.dtype)
    if is_strength_max:
        latents = noise * scheduler.init_noise_sigma
    else:
        latents = scheduler.add_noise(image_latents, noise, timesteps[:1].repeat(batch_size))
    masked_pixels = pixels * (mask < 0.5)
    small_mask = F.interpolate(mask, size=(height // vsf, width // vsf))  # nearest, as diffusers
    masked_latents = sample_latents(parts.vae, masked_pixels, generator)
    small_mask = small_mask.repeat(batch_size // small_mask.shape[0], 1, 1, 1)
    masked_latents = masked_latents.repeat(batch_size // masked_latents.shape[0], 1, 1, 1)
    mask_channels = torch.cat([small_mask, masked_latents], dim=1)  # what a 9-channel U-Net reads beside the latents
    if do_cfg:
        mask_channels = torch.cat([mask_channels] * 2)
    scale = guidance_scale
    if do_cfg and guidance_outside is not None:  # a guidance scale per latent position
        scale = small_mask * guidance_scale + (1 - small_mask) * guidance_outside
    # 6. Prepare extra step kwargs
    step_kwargs = extra_step_kwargs(scheduler, generator, eta)
    # 7. Denoising loop
    steps = []
    with record_attention_if(record_attention, unet, batch_size) as store:
        for i, t in enumerate(tqdm(timesteps, desc="denoising", disable=not progress)):
            latent_model_input = torch.cat([latents] * 2) if do_cfg else latents
            latent_model_input = scheduler.scale_model_input(latent_model_input, t)
            if in_ch == 9:
                latent_model_input = torch.cat([latent_model_input, mask_channels], dim=1)
            noise_pred = unet(latent_model_input, t, encoder_hidden_states=embeds).sample
            if do_cfg:
                noise_uncond, noise_text = noise_pred.chunk(2)
                noise_pred = classifier_free_guidance(noise_uncond, noise_text, scale)
            out = scheduler.step(noise_pred, t, latents, **step_kwargs)
            if record:
                x0 = step_x0(scheduler, latents, noise_pred, t, out)
                steps.append(Step(i, int(t), latents.clone(), noise_pred.clone(), x0.clone()))
            latents = out.prev_sample
            if in_ch == 4:  # blending: outside the mask, the original noised to the next step's level
                known = image_latents
                if i < len(timesteps) - 1:
                    known = scheduler.add_noise(image_latents, noise, torch.tensor([timesteps[i + 1]]))
                latents = (1 - small_mask) * known + small_mask * latents
            if on_step is not None:
                on_step(i, len(timesteps))
    # 8. Decode
    images = decode_latents(parts.vae, latents)
    # 9. Paste the original pixels back outside the mask (optional; diffusers' apply_overlay)
    if paste_back:
        images = paste_outside(images, pixels, mask)
    return Result(images, latents, steps, store)


def paste_outside(images: np.ndarray, pixels: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Generated images inside the mask, the original pixels outside it.

    Args:
        images: (B, H, W, 3) in [0, 1], as decoded; pixels: the original (1 or B, 3, H, W) in [-1, 1];
        mask: (1 or B, 1, H, W) of 0 and 1, 1 = repainted.
    Returns:
        (B, H, W, 3) in [0, 1]; outside the mask exactly the original's pixels (as uint8 round trips).
    """
    original = ((pixels.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    keep = mask.permute(0, 2, 3, 1).numpy()
    return (keep * images + (1 - keep) * original).astype(images.dtype)


# ---------------------------------------------------------------- depth to image

@torch.no_grad()
def depth_to_image(parts, prompt, image, depth_map=None, strength: float = 0.8, num_inference_steps: int = 25,
                   guidance_scale: float = 7.5, negative_prompt=None, generator=None, eta: float = 0.0,
                   prompt_embeds=None, negative_prompt_embeds=None, record: bool = False,
                   record_attention: bool = False, progress: bool = True, on_step=None) -> Result:
    """Image-to-image with the image's depth map as an extra U-Net input, so the layout survives a new prompt.

    Args:
        depth_map: (H, W) or (B, H, W) relative inverse depth (larger = nearer); default: the model's
            depth estimator's estimate of `image`.
        The rest: as `image_to_image`.
    Returns:
        A `Result` with images (B, H, W, 3) in [0, 1].
    """
    unet, scheduler, vsf = parts.unet, parts.scheduler, vae_scale_factor(parts.vae)
    # 1. Check inputs
    if unet.config.in_channels != 5:
        raise ValueError(f"depth-to-image needs a U-Net with 5 input channels (latents + depth), this one has "
                         f"{unet.config.in_channels}. Load a depth model, e.g. sdlearn.load('tinysd-depth').")
    pixels = prepare_image(image, vae_scale_factor=vsf)  # the image as pixels in [-1, 1]; raises on a bad one
    height, width = pixels.shape[-2:]
    batch_size = check_inputs(prompt, height, width, num_inference_steps, guidance_scale, vsf, strength, prompt_embeds,
                              negative_prompt, negative_prompt_embeds)
    if depth_map is None and parts.depth_estimator is None:
        raise ValueError("no depth_map given and the model has no depth estimator; pass depth_map=(B, H, W) tensor.")
    # 2. Define call parameters
    do_cfg = do_classifier_free_guidance(guidance_scale, unet)
    check_image_batch(pixels, batch_size)
    # 3. Encode the prompt
    prompt_embeds, negative_prompt_embeds = encode_prompt_step(parts, prompt, do_cfg, negative_prompt, prompt_embeds,
                                                               negative_prompt_embeds)
    embeds = torch.cat([negative_prompt_embeds, prompt_embeds]) if do_cfg else prompt_embeds
    # 4. Prepare timesteps
    scheduler.set_timesteps(num_inference_steps)
    timesteps = timesteps_for_strength(scheduler, num_inference_steps, strength)
    # 5. Prepare latents (as image-to-image) and the depth channel: estimated (or given), resized to the
    #    latent size, scaled to [-1, 1]
    if depth_map is None:
        depth_map = estimate_depth(parts, image)
    else:
        depth_map = torch.as_tensor(depth_map, dtype=prompt_embeds.dtype)
        if depth_map.ndim == 2:
            depth_map = depth_map[None]
        if depth_map.ndim != 3 or depth_map.shape[0] not in (1, batch_size):
            raise ValueError(f"depth_map must be (H, W) or (B, H, W) with B = 1 or {batch_size}, got {tuple(depth_map.shape)}.")
    depth = depth_condition(depth_map, height, width, vsf).to(prompt_embeds.dtype)
    depth = depth.repeat(batch_size // depth.shape[0], 1, 1, 1)
    if do_cfg:
        depth = torch.cat([depth] * 2)
    latents = noised_image_latents(parts, pixels, batch_size, timesteps, generator)
    # 6. Prepare extra step kwargs
    step_kwargs = extra_step_kwargs(scheduler, generator, eta)
    # 7. Denoising loop
    steps = []
    with record_attention_if(record_attention, unet, batch_size) as store:
        for i, t in enumerate(tqdm(timesteps, desc="denoising", disable=not progress)):
            latent_model_input = torch.cat([latents] * 2) if do_cfg else latents
            latent_model_input = scheduler.scale_model_input(latent_model_input, t)
            latent_model_input = torch.cat([latent_model_input, depth], dim=1)  # the 5th channel
            noise_pred = unet(latent_model_input, t, encoder_hidden_states=embeds).sample
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
    return Result(decode_latents(parts.vae, latents), latents, steps, store)
