"""Measure TinySD: the judge's table of generated images, VAE and CLIP metrics; --variants: the depth and inpainting tables.

    python -m sdlearn.eval                       # the shipped TinySD
    python -m sdlearn.eval --model path/to/folder --n 200
    python -m sdlearn.eval --variants            # TinySD-depth and TinySD-inpaint next to it
    python -m sdlearn.eval --controlnet          # tinysd-controlnet-edges on TinySD

A benchmark, not a test: it takes a few minutes on a CPU.
"""
from __future__ import annotations

import argparse
import copy
import os
import pathlib
import time

import diffusers
from diffusers import StableDiffusionPipeline
from transformers import CLIPModel

from ..data import HELD_OUT
from ..loading import load, load_controlnet
from ..schedulers import swap_scheduler
from ..text import clip_text_features
from ..tinysd import DEFAULT_FOLDER, RECOMMENDED_GUIDANCE, RECOMMENDED_STEPS
from .clip import clip_binding, clip_retrieval, synonym_similarities
from .controlnet import controlnet_metrics
from .depth import depth_estimator_metrics, depth_to_image_metrics
from .inpaint import inpaint_metrics
from .judged import generate, image_size, judge_prompts
from .localisation import noised_scene_localisation
from .prompts import single_object_prompts, two_object_prompts
from .two_objects import two_object_metrics
from .vae import vae_psnr, vae_shape_kept

__all__ = ["main", "variants_main", "controlnet_main"]


def _print_row(cells: list[str]) -> None:
    """One row of a markdown table."""
    print("| " + " | ".join(cells) + " |")


def _print_table(header: list[str], rows: list[list[str]] = ()) -> None:
    """A markdown table: the header, its rule, then the rows (more may follow with `_print_row`)."""
    for cells in [header, ["---"] * len(header), *rows]:
        _print_row(cells)


def _percent(v: float) -> str:
    return "-" if v != v else f"{v:.1%}"


SWAPS = ("DDIMScheduler", "EulerDiscreteScheduler", "DPMSolverMultistepScheduler", "PNDMScheduler", "LMSDiscreteScheduler")


def main(argv=None):
    """The command line: TinySD's table (judge, binding, attention, VAE, CLIP), or with --variants the depth and
    inpainting tables.

    Args:
        argv: the arguments (default: sys.argv[1:]); see --help.
    Returns:
        None; prints markdown tables.
    """
    parser = argparse.ArgumentParser(prog="python -m sdlearn.eval", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="TinySD folder (default: the shipped one)")
    parser.add_argument("--n", type=int, default=200, help="prompts per row")
    parser.add_argument("--steps", type=int, default=RECOMMENDED_STEPS)
    parser.add_argument("--guidance", type=float, default=RECOMMENDED_GUIDANCE, help="the recommended guidance")
    parser.add_argument("--variants", action="store_true",
                        help="evaluate the depth and inpainting models instead (tinysd-depth and tinysd-inpaint "
                             "next to the TinySD folder)")
    parser.add_argument("--controlnet", nargs="?", const="tinysd-controlnet-edges", default=None,
                        help="evaluate a ControlNet on the model instead (default: tinysd-controlnet-edges)")
    args = parser.parse_args(argv)
    if args.variants:
        variants_main(args.n, args.model)
        return
    if args.controlnet:
        controlnet_main(args.controlnet, args.n, args.model, args.steps, args.guidance)
        return

    folder = args.model or str(DEFAULT_FOLDER)
    pipe = StableDiffusionPipeline.from_pretrained(folder)  # as diffusers loads it: the folder's own scheduler
    pipe.set_progress_bar_config(disable=True)
    own = type(pipe.scheduler).__name__
    g, steps, n = args.guidance, args.steps, args.n
    t0 = time.time()
    rows = []
    single = single_object_prompts(n, seed=1001)
    for scale in (g, 7.5):
        r = judge_prompts(generate(pipe, single, scale, steps), single)
        rows.append([f"single object, guidance {scale:g}, {own} (the folder's)", _percent(r["colour"]), _percent(r["shape"])])
    swapped = copy.copy(pipe)
    for name in SWAPS:
        swapped.scheduler = getattr(diffusers, name).from_config(pipe.scheduler.config)
        r = judge_prompts(generate(swapped, single, g, steps), single)
        rows.append([f"single object, guidance {g:g}, `{name}.from_config(pipe.scheduler.config)`",
                     _percent(r["colour"]), _percent(r["shape"])])
    held = single_object_prompts(n, seed=1003, split="heldout")
    r = judge_prompts(generate(pipe, held, g, steps), held)
    rows.append([f"held-out pairs ({', '.join(f'{c} {s}' for c, s in HELD_OUT)}), guidance {g:g}",
                 _percent(r["colour"]), _percent(r["shape"])])
    positioned = single_object_prompts(n, seed=1002, need_position=True)
    r = judge_prompts(generate(pipe, positioned, g, steps), positioned)
    rows.append([f"with a position phrase, guidance {g:g} (position {_percent(r['position'])})",
                 _percent(r["colour"]), _percent(r["shape"])])
    height, width = image_size(pipe)
    print(f"\nTinySD from {folder}: {steps} steps, {width}x{height}, {n} prompts per row, judged from pixels\n")
    _print_table(["single-object prompts", "colour", "shape"], rows)

    pairs = two_object_prompts(n, seed=1004)
    two = {scale: two_object_metrics(pipe, pairs, scale, steps) for scale in (g, 7.5)}
    noised = noised_scene_localisation(pipe, n=n)
    print()
    _print_table(["two objects, 'a C1 S1 to the left of / above a C2 S2', C1 != C2", "both present",
                  "each its own colour", "both shapes", "all four right", "colour words localise",
                  "shape words localise"],
                 [[f"guidance {scale:g}, {own}", _percent(m["both"]), _percent(m["colours"]), _percent(m["shapes"]),
                   _percent(m["all"]), _percent(m["loc_colour"]), _percent(m["loc_shape"])] for scale, m in two.items()]
                 + [[f"noised world scenes with their captions (t = 300, 500, 700; {noised['n_words']} objects)",
                     "", "", "", "", _percent(noised["colour"]), _percent(noised["shape"])]])
    print(f"\n(generation and judging took {time.time() - t0:.0f} s)")

    psnr = vae_psnr(pipe.vae)
    kept = vae_shape_kept(pipe.vae)
    table = [
        ["VAE PSNR on 256 held-out images", f"{psnr:.2f} dB", ">= 33 dB"],
        ["VAE round trip: judge still reads the shape, 300 single-object scenes (small objects)",
         f"{kept['all']:.1%} ({kept['small']:.1%})", "reported: roughly caps shape accuracy"],
    ]
    print()
    if not os.path.isdir(os.path.join(folder, "clip")):  # a real SD folder ships only the text half of its CLIP
        print(f"(no clip/ folder in {folder}: the CLIP rows need the whole CLIP model, as TinySD ships it; skipped)")
        _print_table(["metric", "value", "target"], table)
        return
    clip = CLIPModel.from_pretrained(os.path.join(folder, "clip")).eval()
    top1 = clip_retrieval(clip, pipe.tokenizer)
    sims = synonym_similarities(lambda ids: clip_text_features(clip, ids), pipe.tokenizer)
    table.append(["CLIP caption -> image top-1 among 32 (10 groups)", f"{top1:.1%}", ">= 91%"])
    table.append(["CLIP: own caption over its colour swap, 400 two-colour scenes", f"{clip_binding(clip, pipe.tokenizer, n=400):.1%}",
                  "reported (chance 50%)"])
    for kind in ("shape", "size", "colour"):
        syn = [c for k, a, b, s, c in sims if k == kind and s]
        non = [c for k, a, b, s, c in sims if k == kind and not s]
        table.append([f"{kind}: lowest synonym-pair cosine vs highest non-synonym", f"{min(syn):.3f} vs {max(non):.3f}",
                      "holds" if min(syn) > max(non) else "FAILS"])
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
                        f"{m['shape']:.1%}", f"{m['both']:.1%}", "outside <= 2x the VAE alone, both >= 80%"])


def controlnet_main(controlnet: str = "tinysd-controlnet-edges", n: int = 200, folder=None, steps: int = RECOMMENDED_STEPS,
                    guidance: float = RECOMMENDED_GUIDANCE):
    """Print the ControlNet's table (python -m sdlearn.eval --controlnet): edge F1 and colours kept, on held-out
    world scenes conditioned on their Canny edges and on drawn outlines, at conditioning scales 0 (no ControlNet),
    0.5, 1 and 1.5."""
    parts = load(folder or DEFAULT_FOLDER)
    cn = load_controlnet(controlnet)
    print()
    _print_table([f"ControlNet, {n} held-out scenes, {steps} steps, guidance {guidance:g}", "scale", "edge F1",
                  "precision", "recall", "colour as prompted"])
    for source in ("canny", "outline"):
        t0 = time.time()
        m = controlnet_metrics(parts, cn, n=n, scales=(0.0, 0.5, 1.0, 1.5), guidance_scale=guidance, steps=steps,
                               source=source)
        for scale, r in m.items():
            what = "Canny edges of the scene" if source == "canny" else "drawn outline of the scene"
            _print_row([what, f"{scale:g}", f"{r['f1']:.3f}", f"{r['precision']:.3f}", f"{r['recall']:.3f}",
                        _percent(r["colour"])])
        print(f"({source}: {time.time() - t0:.0f} s)")
    _print_row(["target (Canny, scale 1)", "", ">= 0.7 and >= scale 0 + 0.3", "", "", ">= 90%"])
