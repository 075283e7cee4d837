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
from diffusers import StableDiffusionPipeline

import sdlearn
from sdlearn.data import COLOURS, SHAPES
from sdlearn.data.concepts import concept_images
from sdlearn.eval import generate as eval_generate
from sdlearn.eval import image_size
from sdlearn.finetune import add_hypernetwork, add_lora, encode_concept, full_fine_tune, train_unet
from sdlearn.judge import judge_concept

LEARNING_RATES = {"cross": 2e-3, "all": 2e-3, "hyper": 2e-3, "full": 1e-4}


def generate(parts, prompts, guidance, seed):
    """The prompts drawn by diffusers' pipeline around the (customised) parts, as eval does."""
    pipe = StableDiffusionPipeline(**parts.as_kwargs(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return eval_generate(pipe, prompts, guidance, parts.recommended_steps, seed=seed, batch=24)


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
