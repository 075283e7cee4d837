"""Measure TinySD: the judge's table of generated images, VAE and CLIP metrics; --variants: the depth and inpainting tables.

    python -m sdlearn.eval                       # the shipped TinySD
    python -m sdlearn.eval --model path/to/folder --n 200
    python -m sdlearn.eval --variants            # TinySD-depth and TinySD-inpaint next to it

A benchmark, not a test: it takes a few minutes on a CPU.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import time

from diffusers import StableDiffusionPipeline
from transformers import CLIPModel

from ..data import HELD_OUT
from ..loading import load
from ..schedulers import make_scheduler, swap_scheduler
from ..text import clip_text_features
from ..tinysd import DEFAULT_FOLDER
from .clip import clip_retrieval, synonym_similarities
from .depth import depth_estimator_metrics, depth_to_image_metrics
from .inpaint import inpaint_metrics
from .judged import generate, image_size, judge_prompts
from .prompts import single_object_prompts
from .vae import vae_psnr, vae_shape_kept

__all__ = ["main", "variants_main"]


def _print_row(cells: list[str]) -> None:
    """One row of a markdown table."""
    print("| " + " | ".join(cells) + " |")


def _print_table(header: list[str], rows: list[list[str]] = ()) -> None:
    """A markdown table: the header, its rule, then the rows (more may follow with `_print_row`)."""
    for cells in [header, ["---"] * len(header), *rows]:
        _print_row(cells)


def _percent(v: float) -> str:
    return "-" if v != v else f"{v:.1%}"


def main(argv=None):
    """The command line: TinySD's table (judge, VAE, CLIP), or with --variants the depth and inpainting tables.

    Args:
        argv: the arguments (default: sys.argv[1:]); see --help.
    Returns:
        None; prints markdown tables.
    """
    parser = argparse.ArgumentParser(prog="python -m sdlearn.eval", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="TinySD folder (default: the shipped one)")
    parser.add_argument("--n", type=int, default=200, help="prompts per row")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--scheduler", default="ddim", help="sampler for generation (see sdlearn.schedulers)")
    parser.add_argument("--variants", action="store_true",
                        help="evaluate the depth and inpainting models instead (tinysd-depth and tinysd-inpaint "
                             "next to the TinySD folder)")
    args = parser.parse_args(argv)
    if args.variants:
        variants_main(args.n, args.model)
        return

    folder = args.model or str(DEFAULT_FOLDER)
    pipe = StableDiffusionPipeline.from_pretrained(folder)
    pipe.scheduler = make_scheduler(args.scheduler, pipe.scheduler.config)  # (DDIM: without sample clipping)
    pipe.set_progress_bar_config(disable=True)
    rows = []
    t0 = time.time()
    single = single_object_prompts(args.n, seed=1001)
    # 7.5 is diffusers' default and 1.0 no guidance at all; 3.0 because TinySD draws its best shapes there.
    for g in (7.5, 3.0, 1.0):
        r = judge_prompts(generate(pipe, single, g, args.steps), single)
        rows.append((f"single object, guidance {g}", args.n, r["colour"], r["shape"], float("nan")))
    positioned = single_object_prompts(args.n, seed=1002, need_position=True)
    r = judge_prompts(generate(pipe, positioned, 7.5, args.steps), positioned)
    rows.append(("with a position phrase, guidance 7.5", args.n, r["colour"], r["shape"], r["position"]))
    held = single_object_prompts(args.n, seed=1003, split="heldout")
    r = judge_prompts(generate(pipe, held, 7.5, args.steps), held)
    held_name = ", ".join(f"{c} {s}" for c, s in HELD_OUT)
    rows.append((f"held out ({held_name}), guidance 7.5", args.n, r["colour"], r["shape"], float("nan")))
    gen_time = time.time() - t0

    height, width = image_size(pipe)
    print(f"\nTinySD from {folder}: {args.steps} {type(pipe.scheduler).__name__} steps, {width}x{height}, "
          "judged from pixels\n")
    _print_table(["prompts", "n", "colour", "shape", "position"],
                 [[name, str(n), _percent(c), _percent(s), _percent(p)] for name, n, c, s, p in rows])
    print(f"\n(generation and judging took {gen_time:.0f} s)")

    psnr = vae_psnr(pipe.vae)
    kept = vae_shape_kept(pipe.vae)
    clip = CLIPModel.from_pretrained(os.path.join(folder, "clip")).eval()
    top1 = clip_retrieval(clip, pipe.tokenizer)
    sims = synonym_similarities(lambda ids: clip_text_features(clip, ids), pipe.tokenizer)
    table = [
        ["VAE PSNR on 256 held-out images", f"{psnr:.2f} dB", ">= 28 dB"],
        ["VAE round trip: judge still reads the shape, 300 single-object scenes (small objects)",
         f"{kept['all']:.1%} ({kept['small']:.1%})", "reported: roughly caps shape accuracy"],
        ["CLIP caption -> image top-1 among 32 (10 groups)", f"{top1:.1%}", ">= 90%"],
    ]
    for kind in ("shape", "size", "colour"):
        syn = [c for k, a, b, s, c in sims if k == kind and s]
        non = [c for k, a, b, s, c in sims if k == kind and not s]
        table.append([f"{kind}: lowest synonym-pair cosine vs highest non-synonym", f"{min(syn):.3f} vs {max(non):.3f}",
                      "holds" if min(syn) > max(non) else "FAILS"])
    print()
    _print_table(["metric", "value", "target"], table)


def variants_main(n: int = 100, folder=None):
    """Print the depth and inpainting tables (python -m sdlearn.eval --variants).

    Args:
        n: scenes per depth-to-image and inpainting row.
        folder: the TinySD folder (default: the shipped one); the models are read from the folders
            tinysd-depth and tinysd-inpaint next to it.
    Returns:
        None; prints markdown tables.
    """
    base = pathlib.Path(folder or DEFAULT_FOLDER)
    depth = swap_scheduler(load(base.parent / "tinysd-depth"), "ddim")
    d = depth_estimator_metrics(depth)
    print()
    _print_table(["depth estimator", "value", "target"], [
        ["Pearson r with true depth, 128 held-out scenes (mean)", f"{d['scenes_mean_r']:.3f}", ">= 0.9"],
        ["two-object scenes where the nearer object is estimated nearer", f"{d['ordered']:.1%} of {d['n_pairs']}",
         "reported (chance 50%)"],
        ["Pearson r with measured disparity, motorcycle photo", f"{d['motorcycle_r']:.3f}", "reported"],
    ])

    # Guidance 7.5 is diffusers' default; strong guidance distorts shapes (lesson 09), so weaker scales are shown too.
    print()
    _print_table([f"depth-to-image, {n} held-out scenes -> 'blue squares', strength 1",
                  "layout: Pearson r, output's estimated depth vs input depth", "judge finds blue"])
    for g in (7.5, 5.0, 3.0):
        dd = depth_to_image_metrics(depth, n, guidance_scale=g)
        _print_row([f"guidance {g:g}", f"{dd['layout_mean_r']:.3f}", f"{dd['blue']:.1%}"])
    _print_row(["target", ">= 0.8", ">= 90%"])

    print()
    _print_table([f"inpainting, {n} held-out scenes", "outside MAD (0-255)", "median scene",
                  "MAD away from the mask's latent cells", "VAE round trip alone, outside", "colour", "shape", "both",
                  "target"])
    for name, model in (("9-channel TinySD-inpaint", base.parent / "tinysd-inpaint"), ("blending, 4-channel TinySD", base)):
        parts = swap_scheduler(load(model), "ddim")
        cases = [(False, None), (True, None)] + [(False, 1.0)] * name.startswith("9")
        for whole, outside in cases:
            m = inpaint_metrics(parts, n, whole_scene=whole, guidance_outside=outside)
            how = "whole-scene prompt" if whole else "new object only"
            if outside is not None:
                how += f", guidance {outside:g} outside the mask (sdlearn's pipeline only)"
            _print_row([f"{name}, {how}", f"{m['outside_mad']:.2f}", f"{m['outside_median']:.2f}",
                        f"{m['untouched_mad']:.2f}", f"{m['vae_floor_mad']:.2f}", f"{m['colour']:.1%}",
                        f"{m['shape']:.1%}", f"{m['both']:.1%}", "outside <= 3, inside >= 85%"])
