"""Train every U-Net customisation of lesson 16 on the same task and compare them (a benchmark, not a test).

The task: TinySD learns the "wide" style (shapes stretched to about twice their width) from 64 wide pictures plus
64 ordinary ones. For each technique: the numbers it trains, its training time, and the judge's reading of 48
"a wide C S" prompts (wide; wide with the prompted colour and shape) and of 48 plain prompts (still round, right
colour and shape), at the recommended guidance and at 7.5.

    python scripts/bench_customising.py                    # all four, 1,200 steps each
    python scripts/bench_customising.py --techniques cross --steps 400 --lr 5e-3
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import sdlearn
from sdlearn.data import COLOURS, SHAPES
from sdlearn.data.concepts import concept_images
from sdlearn.eval import image_size
from sdlearn.finetune import add_hypernetwork, add_lora, encode_concept, full_fine_tune, train_unet
from sdlearn.images import to_uint8
from sdlearn.judge import judge_concept
from sdlearn.pipelines import text_to_image

LEARNING_RATES = {"cross": 2e-3, "all": 2e-3, "hyper": 2e-3, "full": 1e-4}


def generate(parts, prompts, guidance, seed):
    images = []
    for start in range(0, len(prompts), 24):
        chunk = prompts[start : start + 24]
        gens = [torch.Generator().manual_seed(seed + start + k) for k in range(len(chunk))]
        out = text_to_image(parts, chunk, num_inference_steps=parts.recommended_steps, guidance_scale=guidance,
                            generator=gens, progress=False)
        images.append(to_uint8(out.images))
    return np.concatenate(images)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--techniques", nargs="+", default=list(LEARNING_RATES), choices=list(LEARNING_RATES))
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--lr", type=float, default=None, help="default: per technique (LEARNING_RATES)")
    parser.add_argument("--rank", type=int, default=4)
    args = parser.parse_args()
    pairs = ([(c, s) for s in SHAPES for c in COLOURS] * 3)[:48]  # every colour-shape pair two or three times
    print("| technique | trained numbers | steps | seconds | guidance | wide | wide, colour and shape | plain prompts right |")
    print("| --- " * 8 + "|")
    for technique in args.techniques:
        parts = sdlearn.load()
        size = image_size(parts)[0]
        wide, plain = concept_images("wide", 64, seed=0, size_px=size), concept_images("filled", 64, seed=0, size_px=size)
        data = encode_concept(parts, np.concatenate([wide.images, plain.images]), wide.captions + plain.captions)
        if technique in ("cross", "all"):
            params = add_lora(parts.unet, args.rank, technique)
        elif technique == "hyper":
            params = list(add_hypernetwork(parts.unet).parameters())
        else:
            parts.unet, params = full_fine_tune(parts.unet)
        t0 = time.perf_counter()
        fit = train_unet(parts, data, params, steps=args.steps, lr=args.lr or LEARNING_RATES[technique], progress=False)
        seconds = time.perf_counter() - t0
        for guidance in (parts.recommended_guidance, 7.5):
            w = [judge_concept(im) for im in generate(parts, [f"a wide {c} {s}" for c, s in pairs], guidance, 0)]
            p = [judge_concept(im) for im in generate(parts, [f"a {c} {s}" for c, s in pairs], guidance, 1000)]
            cells = [technique, f"{fit.trained:,}", args.steps, f"{seconds:.0f}", guidance,
                     f"{np.mean([v.wide for v in w]):.1%}",
                     f"{np.mean([v.wide and v.colour == c and v.shape == s for v, (c, s) in zip(w, pairs)]):.1%}",
                     f"{np.mean([not v.wide and v.colour == c and v.shape == s for v, (c, s) in zip(p, pairs)]):.1%}"]
            print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
