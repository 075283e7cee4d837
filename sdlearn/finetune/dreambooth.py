"""DreamBooth (Ruiz et al., 2023): bind a rare word to one particular object from a handful of its pictures.

The instance pictures are captioned "a [V] [class]" ("a sks circle"): a rare token [V] that means nothing yet,
and the class the object belongs to, so the model can reuse what it knows about the class. The whole U-Net (here
a LoRA on every attention layer, as most DreamBooth files people share are) is trained on them. Trained on five
pictures alone, the model soon draws the object for the class word too: "a circle" turns into the badge, and
the class is forgotten (language drift). Prior preservation is the paper's remedy: the model first draws
pictures for the class prompt itself, and training keeps its loss low on those as well.
"""
from __future__ import annotations

import numpy as np
import torch

from ..pipelines import text_to_image
from ..images import to_uint8
from .core import ConceptBatch, encode_concept

__all__ = ["class_pictures"]


@torch.no_grad()
def class_pictures(parts, class_prompt: str, n: int, guidance_scale: float, steps: int, seed: int = 0,
                   batch: int = 25) -> tuple[ConceptBatch, np.ndarray]:
    """The prior: n pictures the unchanged model draws for the class prompt, as a ConceptBatch (and as uint8)."""
    images = []
    for start in range(0, n, batch):
        k = min(batch, n - start)
        gens = [torch.Generator().manual_seed(seed + start + i) for i in range(k)]
        out = text_to_image(parts, [class_prompt] * k, num_inference_steps=steps, guidance_scale=guidance_scale,
                            generator=gens, progress=False)
        images.append(to_uint8(out.images))
    images = np.concatenate(images)
    return encode_concept(parts, images, [class_prompt] * n), images
