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

__all__ = ["classifier_free_guidance", "guidance_sweep"]


def classifier_free_guidance(noise_uncond: torch.Tensor, noise_text: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """eps_uncond + guidance_scale * (eps_text - eps_uncond)."""
    return noise_uncond + guidance_scale * (noise_text - noise_uncond)


def guidance_sweep(parts, prompt: str, scales=(1.0, 3.0, 7.5, 12.0), seeds=(0, 1, 2), num_inference_steps: int = 25,
                   progress: bool = True):
    """Generate `prompt` at every guidance scale for every seed and let the judge score each image.

    Returns (images, scores): images is a (len(scales), len(seeds), H, W, 3) uint8 grid and scores a
    dict scale -> {"colour": fraction right, "shape": ..., "position": ...} for what the prompt asks.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from .judge import judge, parse_prompt
    from .pipelines import text_to_image

    want = parse_prompt(prompt)
    rows, scores = [], {}
    for scale in tqdm(scales, desc="guidance sweep", disable=not progress):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        result = text_to_image(parts, [prompt] * len(seeds), num_inference_steps=num_inference_steps,
                               guidance_scale=scale, generator=gens, progress=False)
        images = (result.images * 255).round().astype(np.uint8)
        rows.append(images)
        verdicts = [judge(im) for im in images]
        scores[scale] = {k: float(np.mean([getattr(v, k) == want[k] for v in verdicts]))
                         for k in want if want[k] is not None}
    return np.stack(rows), scores
