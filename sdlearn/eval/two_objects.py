"""Two objects in one prompt: does each get its own colour and shape, and is each word read on its own object?

"a red circle to the left of a blue square": the attribute-binding test (GenEval's "colour attribution",
Ghosh et al. 2023). Each generated image is read by the judge's two-object reading (`judge_pair`), and the
cross-attention maps captured while it was drawn are compared with the objects it found
(`localisation.localises`).
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..attention import AttentionMean, capture_attention
from ..images import to_uint8
from ..judge import judge_pair
from .judged import image_size
from .localisation import KINDS, localises, object_word_positions

__all__ = ["two_object_metrics"]


def two_object_metrics(pipe, prompts, guidance_scale: float, steps: int = 25, seed: int = 0, batch: int = 25,
                       progress: bool = True) -> dict:
    """Generate every two-object prompt, read both objects, and measure where their words were read.

    Args:
        pipe: a diffusers `StableDiffusionPipeline` (its own scheduler is used).
        prompts: `prompts.two_object_prompts(...)`.
        guidance_scale: classifier-free guidance scale.
        steps: denoising steps.
        seed: prompt number k is generated with seed + k.
        batch: prompts per pipeline call.
        progress: show a progress bar.
    Returns:
        A dict of fractions over the prompts: "both" (both objects found), "colours" (each object its own
        colour), "shapes" (both shapes right), "all" (all four right); "loc_colour" / "loc_shape" (share of
        colour / shape words whose map is higher on their own object, over images where both objects were
        found; "loc_n" such images), and "images" (uint8).
    """
    height, width = image_size(pipe)
    rows, images = [], []
    loc = {kind: [] for kind in KINDS}
    for start in tqdm(range(0, len(prompts), batch), desc=f"two objects (guidance {guidance_scale})",
                      disable=not progress, leave=False):
        chunk = prompts[start : start + batch]
        gens = [torch.Generator().manual_seed(seed + start + k) for k in range(len(chunk))]
        with capture_attention(pipe.unet, AttentionMean((height, width)), batch_size=len(chunk)) as store:
            out = pipe([p.prompt for p in chunk], num_inference_steps=steps, guidance_scale=guidance_scale,
                       generator=gens, height=height, width=width, output_type="np")
        maps = store.mean()
        for p, image, m in zip(chunk, to_uint8(out.images), maps):
            first, second = judge_pair(image, p.relation)
            got = [(first.colour, first.shape), (second.colour, second.shape)]
            found = first.colour is not None and second.colour is not None
            rows.append((found, [g[0] for g in got] == [o[0] for o in p.objects],
                         [g[1] for g in got] == [o[1] for o in p.objects], got == list(p.objects)))
            images.append(image)
            if found:
                positions = object_word_positions(p.prompt, p.relation, p.objects, pipe.tokenizer)
                for kind, v in localises(m, [first.mask, second.mask], positions).items():
                    loc[kind] += v
    both, colours, shapes, right = (float(np.mean(col)) for col in zip(*rows))
    return {"both": both, "colours": colours, "shapes": shapes, "all": right,
            "loc_colour": float(np.mean(loc["colour"])) if loc["colour"] else float("nan"),
            "loc_shape": float(np.mean(loc["shape"])) if loc["shape"] else float("nan"),
            "loc_n": len(loc["colour"]) // 2, "images": np.stack(images)}
