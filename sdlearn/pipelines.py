"""The four Stable Diffusion pipelines written out by hand, step by numbered step.

Each function does what the diffusers pipeline of the same job does, in the same order and
with the same random draws, so that with the same components, scheduler, seed and settings
the images are equal (tests/test_pipelines.py checks this against diffusers):

- `text_to_image`   StableDiffusionPipeline
- `image_to_image`  StableDiffusionImg2ImgPipeline (SDEdit: noise the image part way, denoise)
- `inpaint`         StableDiffusionInpaintPipeline, with either a 9-channel inpainting U-Net or
                    a plain 4-channel U-Net (then the known region is re-imposed every step)
- `depth_to_image`  StableDiffusionDepth2ImgPipeline (depth estimate as a 5th U-Net input)

With `record=True` each returns, per denoising step, the latents, the predicted noise and the
predicted clean latents (x0), which the lessons' step scrubbers show.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .guidance import classifier_free_guidance
from .text import encode_prompt

__all__ = ["Step", "Result", "text_to_image", "image_to_image", "inpaint", "depth_to_image",
           "decode_latents", "x0_from_noise", "prepare_image", "prepare_mask", "to_pil"]


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
    attention: object = None  # an AttentionStore when record_attention=True

    @property
    def pil(self) -> list[Image.Image]:
        return to_pil(self.images)


# ---------------------------------------------------------------- shared small steps

def to_pil(images: np.ndarray) -> list[Image.Image]:
    return [Image.fromarray((im * 255).round().astype("uint8")) for im in images]


def check_inputs(prompt, height, width, num_inference_steps, guidance_scale, vae_scale_factor, strength=None):
    """# 1. Check inputs: raise a concise error instead of silently correcting bad input."""
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, (list, tuple)) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    else:
        raise TypeError("prompt must be a string or a non-empty list of strings.")
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
    return prompts


def _guided(guidance_scale, unet, always: bool = False) -> bool:
    """diffusers applies the CFG formula only when guidance_scale > 1 (and the U-Net has no guidance embedding).

    always=True applies the formula at every scale, so that 0 means "unconditional" and values
    between 0 and 1 interpolate, as the formula says.
    """
    return (always or guidance_scale > 1) and unet.config.time_cond_proj_dim is None


def prepare_image(image, height=None, width=None, vae_scale_factor: int = 8) -> torch.Tensor:
    """A PIL image, uint8 array (H, W, C) or list of them -> float tensor (B, 3, H, W) in [-1, 1].

    RGBA and greyscale images are converted to RGB. The size must already be a multiple of
    the VAE factor (and equal height/width if given): we do not resize silently.
    """
    if isinstance(image, np.ndarray) and image.ndim == 4:
        image = list(image)  # a stacked batch (B, H, W, C)
    images = image if isinstance(image, (list, tuple)) else [image]
    arrays = []
    for im in images:
        if isinstance(im, torch.Tensor):
            raise TypeError("pass images as PIL images or uint8 numpy arrays (H, W, 3), not tensors.")
        pil = im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im))
        arrays.append(np.asarray(pil.convert("RGB"), dtype=np.float32) / 255.0)
    h, w = arrays[0].shape[:2]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError("all images in a batch must have the same size.")
    if (height or h) != h or (width or w) != w:
        raise ValueError(f"the image is {w}x{h} but height x width = {width}x{height}; resize the image first.")
    if h % vae_scale_factor or w % vae_scale_factor:
        raise ValueError(f"image size {w}x{h} is not a multiple of {vae_scale_factor}; resize or crop it first.")
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return 2.0 * x - 1.0


def prepare_mask(mask_image, height: int, width: int) -> torch.Tensor:
    """A mask (PIL, array, bool or 0-255) -> (B, 1, H, W) of 0 and 1, 1 = repaint. Converted to grey, binarised at 0.5."""
    masks = mask_image if isinstance(mask_image, (list, tuple)) else [mask_image]
    out = []
    for m in masks:
        arr = np.asarray(m)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        pil = m if isinstance(m, Image.Image) else Image.fromarray(arr.astype(np.uint8))
        a = np.asarray(pil.convert("L"), dtype=np.float32) / 255.0
        if a.shape != (height, width):
            raise ValueError(f"the mask is {a.shape[1]}x{a.shape[0]} but the image is {width}x{height}; they must match.")
        out.append((a >= 0.5).astype(np.float32))
    return torch.from_numpy(np.stack(out))[:, None]


def _vae_sample(vae, pixels, generator):
    """VAE-encode and draw from the latent distribution, scaled by the config's scaling factor."""
    return vae.config.scaling_factor * vae.encode(pixels).latent_dist.sample(generator)


def _randn(shape, generator, dtype):
    if isinstance(generator, list):
        return torch.cat([torch.randn((1, *shape[1:]), generator=g, dtype=dtype) for g in generator])
    return torch.randn(shape, generator=generator, dtype=dtype)


def x0_from_noise(scheduler, latents, noise_pred, t):
    """x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t): the clean latents a noise prediction implies
    (for variance-preserving latents, as DDIM, DDPM and PNDM keep them)."""
    a = scheduler.alphas_cumprod[int(t)]
    return (latents - (1 - a).sqrt() * noise_pred) / a.sqrt()


def _x0(scheduler, latents, noise_pred, t, step_out):
    """The clean latents implied by this step: the scheduler's own estimate when it gives one,
    else `x0_from_noise`."""
    x0 = getattr(step_out, "pred_original_sample", None)
    if x0 is not None:
        return x0
    return x0_from_noise(scheduler, latents, noise_pred, t)


def decode_latents(vae, latents: torch.Tensor) -> np.ndarray:
    """Latents -> images (B, H, W, 3) in [0, 1]. Raises on NaN (usually an fp16 VAE overflow)."""
    image = vae.decode(latents / vae.config.scaling_factor).sample
    if torch.isnan(image).any():
        raise FloatingPointError("the VAE produced NaN. The usual cause is running the VAE in float16, which overflows; "
                                 "use float32 (sdlearn's default on the CPU).")
    return (image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()


def _timesteps_for_strength(scheduler, num_inference_steps, strength):
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


def _image_pipeline_start(parts, prompt, image, num_inference_steps, guidance_scale, strength, negative_prompt):
    """Steps 1-2 shared by the image pipelines: check inputs, preprocess the image, encode the prompt."""
    vsf = parts.vae_scale_factor
    pixels = prepare_image(image, vae_scale_factor=vsf)
    height, width = pixels.shape[-2:]
    prompts = check_inputs(prompt, height, width, num_inference_steps, guidance_scale, vsf, strength)
    batch_size = len(prompts)
    if pixels.shape[0] not in (1, batch_size):
        raise ValueError(f"{pixels.shape[0]} images for {batch_size} prompts; give one image, or one per prompt.")
    guided = _guided(guidance_scale, parts.unet)
    prompt_embeds, negative_prompt_embeds = encode_prompt(prompts, parts.tokenizer, parts.text_encoder,
                                                          negative_prompt, guided)
    return pixels, batch_size, guided, prompt_embeds, negative_prompt_embeds


def noised_image_latents(parts, pixels, batch_size, timesteps, generator):
    """SDEdit's start: VAE-encode the image (a sample of the latent distribution), then jump it to the
    first remaining timestep with q(x_t | x_0), as diffusers' img2img and depth2img `prepare_latents` do."""
    init_latents = _vae_sample(parts.vae, pixels, generator)
    if init_latents.shape[0] < batch_size:
        init_latents = init_latents.repeat(batch_size // init_latents.shape[0], 1, 1, 1)
    noise = _randn(init_latents.shape, generator, init_latents.dtype)
    return parts.scheduler.add_noise(init_latents, noise, timesteps[:1].repeat(batch_size))


def _denoise(parts, latents, timesteps, prompt_embeds, negative_prompt_embeds, guidance_scale, generator, eta,
             record, extra_channels=None, after_step=None, desc="denoising", progress=True, cfg_always=False,
             on_step=None, guidance_map=None):
    """# 7. The denoising loop shared by all four pipelines.

    extra_channels: tensor appended to the (scaled) latent input (depth, or mask + masked latents).
    after_step(i, latents) -> latents: a hook run after each step (the 4-channel inpainting blend).
    on_step(i, n): called after step i of n, e.g. to move a progress bar in an app.
    guidance_map: a guidance scale per latent position (B, 1, h, w), used instead of guidance_scale
    in the guidance formula when guidance is on.
    """
    unet, scheduler = parts.unet, parts.scheduler
    guided = _guided(guidance_scale, unet, cfg_always)
    embeds = torch.cat([negative_prompt_embeds, prompt_embeds]) if guided else prompt_embeds
    step_kwargs = {}
    accepted = set(inspect.signature(scheduler.step).parameters)
    if "eta" in accepted:
        step_kwargs["eta"] = eta
    if "generator" in accepted:
        step_kwargs["generator"] = generator
    steps = []
    for i, t in enumerate(tqdm(timesteps, desc=desc, disable=not progress)):
        latent_in = torch.cat([latents] * 2) if guided else latents
        latent_in = scheduler.scale_model_input(latent_in, t)
        if extra_channels is not None:
            latent_in = torch.cat([latent_in, extra_channels], dim=1)
        noise_pred = unet(latent_in, t, encoder_hidden_states=embeds).sample
        if guided:
            noise_uncond, noise_text = noise_pred.chunk(2)
            noise_pred = classifier_free_guidance(noise_uncond, noise_text,
                                                  guidance_scale if guidance_map is None else guidance_map)
        out = scheduler.step(noise_pred, t, latents, **step_kwargs)
        if record:
            steps.append(Step(i, int(t), latents.clone(), noise_pred.clone(), _x0(scheduler, latents, noise_pred, t, out).clone()))
        latents = out.prev_sample
        if after_step is not None:
            latents = after_step(i, latents)
        if on_step is not None:
            on_step(i, len(timesteps))
    return latents, steps


def _maybe_capture(parts, record_attention, batch_size):
    import contextlib

    if not record_attention:
        return contextlib.nullcontext(None)
    from .attention import capture_attention

    return capture_attention(parts.unet, batch_size=batch_size)


# ---------------------------------------------------------------- text to image

@torch.no_grad()
def text_to_image(parts, prompt, height=None, width=None, num_inference_steps: int = 25, guidance_scale: float = 7.5,
                  negative_prompt=None, generator=None, latents=None, eta: float = 0.0, prompt_embeds=None,
                  negative_prompt_embeds=None, record: bool = False, record_attention: bool = False,
                  progress: bool = True, cfg_always: bool = False, on_step=None) -> Result:
    """Generate images from text: noise in latent space, denoised under the prompt's guidance, decoded.

    cfg_always=True applies the guidance formula even for guidance_scale <= 1 (diffusers skips it
    there and uses the text-conditioned prediction alone); lesson 09 compares the two.
    """
    # 0. Default size: the U-Net's native latent size times the VAE factor (64 for TinySD, 512 for SD v1)
    vsf = parts.vae_scale_factor
    height = height or parts.unet.config.sample_size * vsf
    width = width or parts.unet.config.sample_size * vsf
    # 1. Check inputs
    prompts = check_inputs(prompt, height, width, num_inference_steps, guidance_scale, vsf)
    batch_size = len(prompts)
    # 2. Encode the prompt (and the empty prompt, for classifier-free guidance)
    guided = _guided(guidance_scale, parts.unet, cfg_always)
    if prompt_embeds is None:
        prompt_embeds, negative_prompt_embeds = encode_prompt(prompts, parts.tokenizer, parts.text_encoder,
                                                              negative_prompt, guided)
    # 3. Timesteps
    parts.scheduler.set_timesteps(num_inference_steps)
    timesteps = parts.scheduler.timesteps
    # 4. Starting latents: Gaussian noise, scaled to the scheduler's starting noise level
    shape = (batch_size, parts.unet.config.in_channels, height // vsf, width // vsf)
    if isinstance(generator, list) and len(generator) != batch_size:
        raise ValueError(f"{len(generator)} generators for a batch of {batch_size} prompts; give one per prompt.")
    if latents is None:
        latents = _randn(shape, generator, prompt_embeds.dtype)
    elif tuple(latents.shape) != shape:
        raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {shape}.")
    latents = latents * parts.scheduler.init_noise_sigma
    # 5.-7. Denoising loop
    with _maybe_capture(parts, record_attention, batch_size) as store:
        latents, steps = _denoise(parts, latents, timesteps, prompt_embeds, negative_prompt_embeds, guidance_scale,
                                  generator, eta, record, progress=progress, cfg_always=cfg_always, on_step=on_step)
    # 8. Decode
    return Result(decode_latents(parts.vae, latents), latents, steps, store)


# ---------------------------------------------------------------- image to image

@torch.no_grad()
def image_to_image(parts, prompt, image, strength: float = 0.8, num_inference_steps: int = 25,
                   guidance_scale: float = 7.5, negative_prompt=None, generator=None, eta: float = 0.0,
                   record: bool = False, record_attention: bool = False, progress: bool = True,
                   on_step=None) -> Result:
    """SDEdit: encode the image, noise it to the step `strength` of the way through the schedule, denoise from there."""
    # 1.-2. Check inputs, preprocess the image, encode the prompt
    pixels, batch_size, guided, prompt_embeds, negative_prompt_embeds = _image_pipeline_start(
        parts, prompt, image, num_inference_steps, guidance_scale, strength, negative_prompt)
    # 3. Timesteps: only the last `strength` part of the schedule is run
    parts.scheduler.set_timesteps(num_inference_steps)
    timesteps = _timesteps_for_strength(parts.scheduler, num_inference_steps, strength)
    # 4. Starting latents: the image's latents, noised to the first remaining timestep
    latents = noised_image_latents(parts, pixels, batch_size, timesteps, generator)
    # 5.-7. Denoising loop
    with _maybe_capture(parts, record_attention, batch_size) as store:
        latents, steps = _denoise(parts, latents, timesteps, prompt_embeds, negative_prompt_embeds, guidance_scale,
                                  generator, eta, record, progress=progress, on_step=on_step)
    # 8. Decode
    return Result(decode_latents(parts.vae, latents), latents, steps, store)


# ---------------------------------------------------------------- inpainting

@torch.no_grad()
def inpaint(parts, prompt, image, mask_image, strength: float = 1.0, num_inference_steps: int = 25,
            guidance_scale: float = 7.5, negative_prompt=None, generator=None, eta: float = 0.0,
            record: bool = False, record_attention: bool = False, progress: bool = True,
            on_step=None, guidance_outside: float | None = None) -> Result:
    """Repaint the white part of `mask_image`, two ways depending on the U-Net:

    - 9 input channels (an inpainting model): the U-Net sees the noisy latents, the mask and
      the latents of the masked image at every step;
    - 4 input channels (a plain model): after every step the latents outside the mask are
      replaced by the original image's latents noised to the current step ("blending").

    guidance_outside: a guidance scale for the latents outside the mask (default: guidance_scale
    everywhere, as diffusers). Guidance amplifies whatever the prompt changes, outside the hole
    too; 1.0 there leaves the outside to the model's conditional prediction alone. Not part of
    diffusers' pipeline.
    """
    vsf = parts.vae_scale_factor
    in_ch = parts.unet.config.in_channels
    if in_ch not in (4, 9):
        raise ValueError(f"inpainting needs a U-Net with 4 (plain) or 9 (inpainting) input channels, not {in_ch}.")
    # 1.-2. Check inputs, preprocess image and mask, encode the prompt
    pixels, batch_size, guided, prompt_embeds, negative_prompt_embeds = _image_pipeline_start(
        parts, prompt, image, num_inference_steps, guidance_scale, strength, negative_prompt)
    if guidance_outside is not None and (not isinstance(guidance_outside, (int, float))
                                         or not math.isfinite(guidance_outside) or guidance_outside < 0):
        raise ValueError(f"guidance_outside must be a number >= 0 (1 = no guidance outside the mask), "
                         f"got {guidance_outside!r}.")
    height, width = pixels.shape[-2:]
    mask = prepare_mask(mask_image, height, width)
    if mask.shape[0] not in (1, batch_size):
        raise ValueError(f"{mask.shape[0]} masks for {batch_size} prompts; give one mask, or one per prompt.")
    # 3. Timesteps
    parts.scheduler.set_timesteps(num_inference_steps)
    timesteps = _timesteps_for_strength(parts.scheduler, num_inference_steps, strength)
    latent_timestep = timesteps[:1].repeat(batch_size)
    is_strength_max = strength == 1.0
    # 4. Starting latents (and the image's latents, which the 4-channel way needs every step)
    shape = (batch_size, parts.vae.config.latent_channels, height // vsf, width // vsf)
    image_latents = None
    if in_ch == 4 or not is_strength_max:
        image_latents = _vae_sample(parts.vae, pixels, generator)
        image_latents = image_latents.repeat(batch_size // image_latents.shape[0], 1, 1, 1)
    noise = _randn(shape, generator, prompt_embeds.dtype)
    if is_strength_max:
        latents = noise * parts.scheduler.init_noise_sigma
    else:
        latents = parts.scheduler.add_noise(image_latents, noise, latent_timestep)
    # 5. The mask at latent resolution, and the latents of the image with the hole cut out
    masked_pixels = pixels * (mask < 0.5)
    small_mask = F.interpolate(mask, size=(height // vsf, width // vsf))
    masked_latents = _vae_sample(parts.vae, masked_pixels, generator)
    small_mask = small_mask.repeat(batch_size // small_mask.shape[0], 1, 1, 1)
    masked_latents = masked_latents.repeat(batch_size // masked_latents.shape[0], 1, 1, 1)
    # 6. What the U-Net gets besides the latents
    extra, after_step = None, None
    if in_ch == 9:
        extra = torch.cat([small_mask, masked_latents], dim=1)
        if guided:
            extra = torch.cat([extra] * 2)
    else:
        def blend_known_region(i, latents):
            known = image_latents
            if i < len(timesteps) - 1:  # noise the original to the level of the next step
                known = parts.scheduler.add_noise(image_latents, noise, torch.tensor([timesteps[i + 1]]))
            return (1 - small_mask) * known + small_mask * latents

        after_step = blend_known_region
    guidance_map = None
    if guided and guidance_outside is not None:
        guidance_map = small_mask * guidance_scale + (1 - small_mask) * guidance_outside
    # 7. Denoising loop
    with _maybe_capture(parts, record_attention, batch_size) as store:
        latents, steps = _denoise(parts, latents, timesteps, prompt_embeds, negative_prompt_embeds, guidance_scale,
                                  generator, eta, record, extra_channels=extra, after_step=after_step, progress=progress,
                                  on_step=on_step, guidance_map=guidance_map)
    # 8. Decode
    return Result(decode_latents(parts.vae, latents), latents, steps, store)


# ---------------------------------------------------------------- depth to image

@torch.no_grad()
def estimate_depth(parts, image) -> torch.Tensor:
    """The depth estimator's map for an image (larger = nearer, as MiDaS), (B, h, w)."""
    images = image if isinstance(image, (list, tuple)) else [image]
    pil = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im)) for im in images]
    pixel_values = parts.feature_extractor(images=[p.convert("RGB") for p in pil], return_tensors="pt").pixel_values
    return parts.depth_estimator(pixel_values.to(parts.depth_estimator.dtype)).predicted_depth


def depth_condition(depth_map: torch.Tensor, height: int, width: int, vae_scale_factor: int) -> torch.Tensor:
    """Depth (B, h, w) -> the U-Net's 5th input: bicubic resize to latent size, min-max scaled to [-1, 1]."""
    d = F.interpolate(depth_map[:, None], size=(height // vae_scale_factor, width // vae_scale_factor),
                      mode="bicubic", align_corners=False)
    lo, hi = d.amin(dim=[1, 2, 3], keepdim=True), d.amax(dim=[1, 2, 3], keepdim=True)
    return 2.0 * (d - lo) / (hi - lo) - 1.0


@torch.no_grad()
def depth_to_image(parts, prompt, image, depth_map=None, strength: float = 0.8, num_inference_steps: int = 25,
                   guidance_scale: float = 7.5, negative_prompt=None, generator=None, eta: float = 0.0,
                   record: bool = False, record_attention: bool = False, progress: bool = True,
                   on_step=None) -> Result:
    """Image-to-image with the image's depth map as an extra U-Net input, so the layout survives a new prompt."""
    vsf = parts.vae_scale_factor
    if parts.unet.config.in_channels != 5:
        raise ValueError(f"depth-to-image needs a U-Net with 5 input channels (latents + depth), this one has "
                         f"{parts.unet.config.in_channels}. Load a depth model, e.g. sdlearn.load('tinysd-depth').")
    # 1.-2. Check inputs, preprocess the image, encode the prompt
    pixels, batch_size, guided, prompt_embeds, negative_prompt_embeds = _image_pipeline_start(
        parts, prompt, image, num_inference_steps, guidance_scale, strength, negative_prompt)
    height, width = pixels.shape[-2:]
    # 3. Depth: estimate it (or take the one given), resize to latent size, scale to [-1, 1]
    if depth_map is None:
        if parts.depth_estimator is None:
            raise ValueError("no depth_map given and the model has no depth estimator; pass depth_map=(B, H, W) tensor.")
        depth_map = estimate_depth(parts, image)
    else:
        depth_map = torch.as_tensor(depth_map, dtype=prompt_embeds.dtype)
        if depth_map.ndim == 2:
            depth_map = depth_map[None]
        if depth_map.ndim != 3 or depth_map.shape[0] not in (1, batch_size):
            raise ValueError(f"depth_map must be (H, W) or (B, H, W) with B = 1 or {batch_size}, got {tuple(depth_map.shape)}.")
    cond = depth_condition(depth_map, height, width, vsf).to(prompt_embeds.dtype)
    if cond.shape[0] < batch_size:
        cond = cond.repeat(batch_size // cond.shape[0], 1, 1, 1)
    extra = torch.cat([cond] * 2) if guided else cond
    # 4. Timesteps
    parts.scheduler.set_timesteps(num_inference_steps)
    timesteps = _timesteps_for_strength(parts.scheduler, num_inference_steps, strength)
    # 5. Starting latents: as image-to-image
    latents = noised_image_latents(parts, pixels, batch_size, timesteps, generator)
    # 6.-7. Denoising loop
    with _maybe_capture(parts, record_attention, batch_size) as store:
        latents, steps = _denoise(parts, latents, timesteps, prompt_embeds, negative_prompt_embeds, guidance_scale,
                                  generator, eta, record, extra_channels=extra, progress=progress, on_step=on_step)
    # 8. Decode
    return Result(decode_latents(parts.vae, latents), latents, steps, store)
