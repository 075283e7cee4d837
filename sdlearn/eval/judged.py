"""Generated images read by the judge: how often TinySD draws the colour, shape and position a prompt asks for."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..images import to_uint8
from ..judge import judge, parse_prompt
from ..latents import vae_scale_factor
from ..pipelines import text_to_image

__all__ = ["image_size", "generate", "judge_prompts", "guidance_sweep"]


def image_size(pipe) -> tuple[int, int]:
    """The size (height, width) a model generates natively: the U-Net's latent size times the VAE factor.

    Args:
        pipe: a diffusers pipeline or `sdlearn.load()` parts (anything with `unet` and `vae`).
    Returns:
        (height, width) in pixels, (64, 64) for TinySD.
    """
    size = pipe.unet.config.sample_size
    h, w = (size, size) if isinstance(size, int) else size
    f = vae_scale_factor(pipe.vae)
    return h * f, w * f


def generate(pipe, prompts, guidance_scale, steps=25, seed=0, batch=50) -> list[np.ndarray]:
    """Images for prompts at the model's native size, with a fixed seed per prompt index, in batches.

    Args:
        pipe: a diffusers `StableDiffusionPipeline`.
        prompts: a list of prompts.
        guidance_scale: classifier-free guidance scale.
        steps: denoising steps.
        seed: prompt number k is generated with seed + k.
        batch: prompts per pipeline call.
    Returns:
        A list of uint8 images (H, W, 3), one per prompt.
    """
    height, width = image_size(pipe)
    images = []
    for start in tqdm(range(0, len(prompts), batch), desc=f"generating (guidance {guidance_scale})", leave=False):
        chunk = prompts[start : start + batch]
        gens = [torch.Generator().manual_seed(seed + start + k) for k in range(len(chunk))]
        out = pipe(chunk, num_inference_steps=steps, guidance_scale=guidance_scale, generator=gens,
                   height=height, width=width, output_type="np")
        images += list(to_uint8(out.images))
    return images


def judge_prompts(images, prompts) -> dict[str, float]:
    """Fraction of images whose judged colour / shape / position equals what the prompt asked for.

    Args:
        images: uint8 images (H, W, 3).
        prompts: one single-object prompt per image.
    Returns:
        {"colour": ..., "shape": ..., "position": ...}, each a fraction over the prompts that ask for
        that attribute (NaN when none does).
    """
    hits = {"colour": [], "shape": [], "position": []}
    for img, prompt in zip(images, prompts):
        want, got = parse_prompt(prompt), judge(img)
        for key in hits:
            if want[key] is not None:
                hits[key].append(getattr(got, key) == want[key])
    return {k: float(np.mean(v)) if v else float("nan") for k, v in hits.items()}


def guidance_sweep(parts, prompt: str, scales=(1.0, 3.0, 7.5, 12.0), seeds=(0, 1, 2), num_inference_steps: int = 25,
                   progress: bool = True):
    """Generate `prompt` at every guidance scale for every seed and let the judge score each image.

    Args:
        parts: the model (`sdlearn.load()`), run through `sdlearn.pipelines.text_to_image`.
        prompt: one single-object prompt.
        scales: guidance scales to try.
        seeds: one image per seed at each scale.
        num_inference_steps: denoising steps.
        progress: show a progress bar over the scales.
    Returns:
        (images, scores): images is a (len(scales), len(seeds), H, W, 3) uint8 grid and scores a dict
        scale -> {"colour": fraction right, "shape": ..., "position": ...} for what the prompt asks.
    """
    want = parse_prompt(prompt)
    rows, scores = [], {}
    for scale in tqdm(scales, desc="guidance sweep", disable=not progress):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        result = text_to_image(parts, [prompt] * len(seeds), num_inference_steps=num_inference_steps,
                               guidance_scale=scale, generator=gens, progress=False)
        images = to_uint8(result.images)
        rows.append(images)
        verdicts = [judge(im) for im in images]
        scores[scale] = {k: float(np.mean([getattr(v, k) == want[k] for v in verdicts]))
                         for k in want if want[k] is not None}
    return np.stack(rows), scores
