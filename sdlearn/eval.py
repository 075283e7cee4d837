"""Measure TinySD: prints a table of what the judge reads from generated images, VAE PSNR and CLIP retrieval.

    python -m sdlearn.eval                       # the shipped TinySD
    python -m sdlearn.eval --model path/to/folder --n 200

A benchmark, not a test: it takes a few minutes on a CPU.
"""
from __future__ import annotations

import argparse
import itertools
import os
import pathlib
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import HELD_OUT, SYNONYMS, World
from .judge import judge, parse_prompt

__all__ = ["single_object_prompts", "judge_prompts", "vae_psnr", "vae_shape_kept", "clip_retrieval", "synonym_similarities",
           "depth_estimator_metrics", "depth_to_image_metrics", "inpaint_case", "inpaint_metrics", "main"]


def single_object_prompts(n: int, seed: int, split: str = "train", need_position: bool = False) -> list[str]:
    """n single-object captions from the world (templates and synonyms), optionally only ones with a position."""
    world = World(seed=seed, split=split, p_two=0.0)
    prompts, i = [], 0
    while len(prompts) < n:
        caption = world[i].caption
        i += 1
        if need_position and parse_prompt(caption)["position"] is None:
            continue
        prompts.append(caption)
    return prompts


def generate(pipe, prompts, guidance_scale, steps=25, seed=0, batch=50):
    """Images for prompts with a fixed seed per prompt index, in batches."""
    images = []
    for start in tqdm(range(0, len(prompts), batch), desc=f"generating (guidance {guidance_scale})", leave=False):
        chunk = prompts[start : start + batch]
        gens = [torch.Generator().manual_seed(seed + start + k) for k in range(len(chunk))]
        out = pipe(chunk, num_inference_steps=steps, guidance_scale=guidance_scale, generator=gens,
                   height=64, width=64, output_type="np")
        images += [(im * 255).round().astype(np.uint8) for im in out.images]
    return images


def judge_prompts(images, prompts) -> dict[str, float]:
    """Fraction of images whose judged colour / shape / position equals what the prompt asked for."""
    hits = {"colour": [], "shape": [], "position": []}
    for img, prompt in zip(images, prompts):
        want, got = parse_prompt(prompt), judge(img)
        for key in hits:
            if want[key] is not None:
                hits[key].append(getattr(got, key) == want[key])
    return {k: float(np.mean(v)) if v else float("nan") for k, v in hits.items()}


@torch.no_grad()
def vae_psnr(vae, n: int = 256, seed: int = 999) -> float:
    """Mean PSNR (dB) of VAE round trips on held-out procedural images (a seed never trained on)."""
    world = World(seed=seed, split="all")
    images = np.stack([world[i].image for i in range(n)])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    recon = torch.cat([vae.decode(vae.encode(x[i : i + 64]).latent_dist.mode()).sample for i in range(0, n, 64)])
    mse = (((recon.clamp(-1, 1) - x) / 2) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


@torch.no_grad()
def vae_shape_kept(vae, n: int = 300, seed: int = 999) -> dict[str, float]:
    """How often the judge still reads the right shape after a VAE round trip of a single-object scene.

    Roughly the best shape accuracy generated images can reach: whatever the U-Net does, the
    VAE's decoder draws the final pixels (a U-Net could in principle find latents the decoder
    draws more sharply than the encoder's, so this is not a strict bound). Returned for all objects and for small ones, whose
    corners an 8x-downsampling VAE loses first.
    """
    from .latents import round_trip

    world = World(seed=seed, split="all", p_two=0.0)
    scenes = [world[i] for i in range(n)]
    images = np.concatenate([round_trip(vae, np.stack([s.image for s in scenes[i : i + 100]]))[1]
                             for i in range(0, n, 100)])
    ok = np.array([judge(im).shape == s.objects[0].shape for im, s in zip(images, scenes)])
    small = np.array([s.objects[0].size == "small" for s in scenes])
    return {"all": float(ok.mean()), "small": float(ok[small].mean())}


def caption_fits(caption: str, scene) -> bool:
    """Is `caption` a true description of `scene`? (colour, shape, position and relation as stated)."""
    if scene.relation is None:
        want = parse_prompt(caption)
        o = scene.objects[0]
        return (want["colour"] in (None, o.colour) and want["shape"] in (None, o.shape)
                and want["position"] in (None, o.position) and " above " not in caption and "left of" not in caption)
    for phrase in (" to the left of ", " left of ", " above "):
        if phrase in caption:
            a, b = caption.split(phrase, 1)
            rel = "left of" if "left" in phrase else "above"
            if rel != scene.relation:
                return False
            pa, pb = parse_prompt(a), parse_prompt(b)
            oa, ob = scene.objects
            return pa["colour"] == oa.colour and pa["shape"] == oa.shape and pb["colour"] == ob.colour and pb["shape"] == ob.shape
    return False


@torch.no_grad()
def clip_retrieval(clip, tokenizer, groups: int = 10, k: int = 32, seed: int = 777) -> float:
    """Caption -> image top-1 among k held-out candidates, averaged over groups.

    The captions leave some attributes out ("a red circle" fits any red circle), so a retrieval
    counts as right when the retrieved image fits the caption.
    """
    world = World(seed=seed, split="all")
    right = []
    for gidx in range(groups):
        scenes = [world[gidx * k + i] for i in range(k)]
        x = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2).float() / 127.5 - 1
        ids = tokenizer([s.caption for s in scenes], padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt").input_ids
        out = clip(input_ids=ids, pixel_values=x)
        best = out.logits_per_text.argmax(1)
        right += [caption_fits(s.caption, scenes[int(j)]) for s, j in zip(scenes, best)]
    return float(np.mean(right))


@torch.no_grad()
def synonym_similarities(text_encoder_with_projection, tokenizer):
    """Cosine similarities between words of the same kind, each word embedded in a few carrier sentences.

    Returns a list of (kind, word_a, word_b, is_synonym, cosine).
    """
    kinds = {
        "shape": (["square", "box", "circle", "disc", "triangle"], ["a red {}", "a big blue {}", "a {} on the left"]),
        "size": (["large", "big", "small", "tiny"], ["a {} red circle", "a {} green square", "there is a {} blue triangle"]),
        "colour": (["purple", "violet", "red", "orange", "yellow", "green", "blue"],
                   ["a {} circle", "a small {} square", "an image of a {} triangle"]),
    }
    rows = []
    for kind, (words, templates) in kinds.items():
        emb = {}
        for w in words:
            prompts = [t.format(w) for t in templates]
            ids = tokenizer(prompts, padding="max_length", max_length=77, return_tensors="pt").input_ids
            e = text_encoder_with_projection(ids)
            e = torch.nn.functional.normalize(e, dim=-1).mean(0)
            emb[w] = torch.nn.functional.normalize(e, dim=0)
        canon = {w: next((c for c, syn in SYNONYMS.items() if w in syn), w) for w in words}
        for a, b in itertools.combinations(words, 2):
            rows.append((kind, a, b, canon[a] == canon[b], float(emb[a] @ emb[b])))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="TinySD folder (default: the shipped one)")
    parser.add_argument("--n", type=int, default=200, help="prompts per row")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--scheduler", default="ddim", help="sampler for generation (see sdlearn.schedulers)")
    parser.add_argument("--variants", action="store_true",
                        help="evaluate the depth and inpainting models instead (tinysd-depth and tinysd-inpaint "
                             "next to the TinySD folder)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.variants:
        variants_main(args.n, args.model)
        return

    from diffusers import StableDiffusionPipeline
    from transformers import CLIPModel

    from . import tinysd
    from .schedulers import make_scheduler
    from .text import clip_text_features

    folder = args.model or str(tinysd.DEFAULT_FOLDER)
    pipe = StableDiffusionPipeline.from_pretrained(folder)
    pipe.scheduler = make_scheduler(args.scheduler, pipe.scheduler.config)  # (DDIM: without sample clipping)
    pipe.set_progress_bar_config(disable=True)
    rows = []
    t0 = time.time()
    single = single_object_prompts(args.n, seed=1001)
    for g in (7.5, 3.0, 1.0):  # the 7.5 and 1.0; 3.0 because TinySD draws its best shapes there
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

    print(f"\nTinySD from {folder}: {args.steps} {type(pipe.scheduler).__name__} steps, 64x64, judged from pixels\n")
    print("| prompts | n | colour | shape | position |")
    print("| --- | --- | --- | --- | --- |")
    fmt = lambda v: "-" if v != v else f"{v:.1%}"
    for name, n, c, s, p in rows:
        print(f"| {name} | {n} | {fmt(c)} | {fmt(s)} | {fmt(p)} |")
    print(f"\n(generation and judging took {gen_time:.0f} s)")

    psnr = vae_psnr(pipe.vae)
    kept = vae_shape_kept(pipe.vae)
    clip = CLIPModel.from_pretrained(os.path.join(folder, "clip")).eval()
    top1 = clip_retrieval(clip, pipe.tokenizer)
    sims = synonym_similarities(lambda ids: clip_text_features(clip, ids), pipe.tokenizer)
    print("\n| metric | value | target |")
    print("| --- | --- | --- |")
    print(f"| VAE PSNR on 256 held-out images | {psnr:.2f} dB | >= 28 dB |")
    print(f"| VAE round trip: judge still reads the shape, 300 single-object scenes (small objects) | "
          f"{kept['all']:.1%} ({kept['small']:.1%}) | reported: roughly caps shape accuracy |")
    print(f"| CLIP caption -> image top-1 among 32 (10 groups) | {top1:.1%} | >= 90% |")
    for kind in ("shape", "size", "colour"):
        syn = [c for k, a, b, s, c in sims if k == kind and s]
        non = [c for k, a, b, s, c in sims if k == kind and not s]
        ok = min(syn) > max(non)
        print(f"| {kind}: lowest synonym-pair cosine vs highest non-synonym | {min(syn):.3f} vs {max(non):.3f} | "
              f"{'holds' if ok else 'FAILS'} |")


# ---------------------------------------------------------------- depth and inpainting variants

def _pearson(a, b) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _to64(depth: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.interpolate(depth[:, None], size=(64, 64), mode="area")[:, 0].numpy()


@torch.no_grad()
def depth_estimator_metrics(parts, n: int = 128, seed: int = 4321) -> dict:
    """Pearson correlation of estimated and true nearness (1 - depth) on held-out scenes, and on the motorcycle photo."""
    from .data import load_motorcycle
    from .pipelines import estimate_depth

    world = World(seed=seed, split="all")
    scenes = [world[i] for i in range(n)]
    est = _to64(estimate_depth(parts, [s.image for s in scenes]))
    per_scene = [_pearson(e, 1 - s.depth) for e, s in zip(est, scenes)]
    # Two-object scenes with both objects visible: is the nearer one estimated nearer?
    pairs = [(e, s) for e, s in zip(est, scenes) if len(s.objects) == 2 and all(m.sum() > 0 for m in s.masks)]
    ordered = [(e[s.masks[0]].mean() > e[s.masks[1]].mean()) == (s.objects[0].depth < s.objects[1].depth)
               for e, s in pairs]
    left, disparity = load_motorcycle(64)
    photo = _pearson(_to64(estimate_depth(parts, left))[0], disparity)
    return {"scenes_mean_r": float(np.mean(per_scene)), "scenes_median_r": float(np.median(per_scene)),
            "ordered": float(np.mean(ordered)), "n_pairs": len(pairs), "motorcycle_r": photo}


def _blue_prompt(scene) -> str:
    if scene.relation is None:
        return "a blue square"
    return "a blue square to the left of a blue square" if scene.relation == "left of" else "a blue square above a blue square"


@torch.no_grad()
def depth_to_image_metrics(parts, n: int = 100, seed: int = 5151, steps: int = 25, guidance_scale: float = 7.5) -> dict:
    """Held-out scenes re-rendered as blue squares: layout kept (depth correlation), new colour (judge)."""
    from .pipelines import depth_to_image, estimate_depth

    world = World(seed=seed, split="all")
    rs, blue = [], []
    for i in tqdm(range(n), desc="depth-to-image", leave=False):
        s = world[i]
        res = depth_to_image(parts, _blue_prompt(s), s.image, strength=1.0, num_inference_steps=steps,
                             guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(i), progress=False)
        out = (res.images[0] * 255).round().astype(np.uint8)
        rs.append(_pearson(_to64(estimate_depth(parts, out))[0], 1 - s.depth))
        blue.append(judge(out).colour == "blue")
    return {"layout_mean_r": float(np.mean(rs)), "blue": float(np.mean(blue))}


def latent_cells(hole: np.ndarray, factor: int = 8) -> np.ndarray:
    """The latent cells (rows, cols) that a pixel mask touches: each cell is a factor x factor patch."""
    h, w = hole.shape
    if h % factor or w % factor:
        raise ValueError(f"the mask is {h}x{w}; its sides must be multiples of the VAE factor {factor}.")
    return hole.reshape(h // factor, factor, w // factor, factor).any(axis=(1, 3))


def inpaint_case(scene, i: int) -> tuple[np.ndarray, str, str]:
    """The hole and the request `inpaint_metrics` uses for scene number i: the first object's box grown by
    3 pixels (a bool mask), and another colour and shape for it, cycling through the alternatives."""
    from .data.world import COLOURS, SHAPES

    if not scene.objects or not scene.masks[0].any():
        raise ValueError("inpaint_case needs a scene whose first object is visible; pick another scene.")
    o = scene.objects[0]
    colour = [c for c in COLOURS if c != o.colour][i % 5]
    shape = [x for x in SHAPES if x != o.shape][i % 2]
    ys, xs = np.nonzero(scene.masks[0])
    hole = np.zeros(scene.masks[0].shape, bool)
    hole[max(ys.min() - 3, 0) : ys.max() + 4, max(xs.min() - 3, 0) : xs.max() + 4] = True
    return hole, colour, shape


@torch.no_grad()
def inpaint_metrics(parts, n: int = 100, seed: int = 6262, steps: int = 25, whole_scene: bool = False,
                    guidance_scale: float = 7.5, guidance_outside: float | None = None) -> dict:
    """Mask each scene's first object (grown by 3 px), ask for another colour and shape there.

    Outside the mask: mean absolute difference to the input in 0-255 units (per scene, then their mean
    and median: a few scenes whose whole background shifts dominate the mean; the outputs are returned
    as "images"), over all pixels
    outside the mask and over those whose 8x8 latent cell the mask does not touch (a latent
    cell the mask cuts is repainted whole, so its outside pixels may change), and, for
    reference, what a plain VAE round trip of the input changes outside the mask (the floor any
    pipeline that decodes latents starts from). Inside: does the
    judge, looking at the repainted region on the original background, find the asked colour
    and shape. whole_scene=True describes the whole picture in the prompt ("a green square
    above a red circle"), as the training captions did; otherwise only the new object.
    """
    from .data.world import _RELATION_PHRASES
    from .latents import round_trip
    from .pipelines import inpaint

    world = World(seed=seed, split="all")
    outside, untouched, floor, colour_ok, shape_ok, images = [], [], [], [], [], []
    for i in tqdm(range(n), desc="inpainting", leave=False):
        s = world[i]
        mask, colour, shape = inpaint_case(s, i)
        prompt = f"a {colour} {shape}"
        if whole_scene and len(s.objects) == 2:
            other = s.objects[1]
            prompt += f" {_RELATION_PHRASES[s.relation][0]} a {other.colour} {other.shape}"
        res = inpaint(parts, prompt, s.image, mask, num_inference_steps=steps, guidance_scale=guidance_scale,
                      guidance_outside=guidance_outside, generator=torch.Generator().manual_seed(i), progress=False)
        out = (res.images[0] * 255).round().astype(np.uint8)
        images.append(out)
        diff = np.abs(out.astype(float) - s.image).mean(-1)
        outside.append(float(diff[~mask].mean()))
        cells = latent_cells(mask)
        far = ~np.kron(cells, np.ones((8, 8), bool))
        untouched.append(float(diff[far].mean()) if far.any() else float("nan"))
        # the floor: what a VAE round trip of the input alone changes outside the mask
        rt = round_trip(parts.vae, s.image)[1][0].astype(float)
        floor.append(float(np.abs(rt - s.image).mean(-1)[~mask].mean()))
        probe = np.empty_like(out)
        probe[:] = s.image[0, 0]  # the background colour, then the repainted region on top
        probe[mask] = out[mask]
        v = judge(probe)
        colour_ok.append(v.colour == colour)
        shape_ok.append(v.shape == shape)
    return {"outside_mad": float(np.mean(outside)), "outside_median": float(np.median(outside)),
            "outside_per_scene": outside, "images": images, "untouched_mad": float(np.nanmean(untouched)),
            "vae_floor_mad": float(np.mean(floor)),
            "colour": float(np.mean(colour_ok)),
            "shape": float(np.mean(shape_ok)),
            "both": float(np.mean(np.array(colour_ok) & np.array(shape_ok)))}


def variants_main(n: int = 100, folder=None):
    """Print the depth and inpainting tables (python -m sdlearn.eval --variants): the models in the
    folders tinysd-depth and tinysd-inpaint next to the TinySD `folder` (default: the shipped ones)."""
    from .loading import load
    from .schedulers import swap_scheduler
    from .tinysd import DEFAULT_FOLDER

    base = pathlib.Path(folder or DEFAULT_FOLDER)
    depth = swap_scheduler(load(base.parent / "tinysd-depth"), "ddim")
    d = depth_estimator_metrics(depth)
    print("\n| depth estimator | value | target |")
    print("| --- | --- | --- |")
    print(f"| Pearson r with true depth, 128 held-out scenes (mean) | {d['scenes_mean_r']:.3f} | >= 0.9 |")
    print(f"| two-object scenes where the nearer object is estimated nearer | {d['ordered']:.1%} of {d['n_pairs']} | "
          f"reported (chance 50%) |")
    print(f"| Pearson r with measured disparity, motorcycle photo | {d['motorcycle_r']:.3f} | reported |")
    # Guidance 7.5 is diffusers' default; strong guidance distorts shapes (lesson 09), so weaker scales are shown too.
    print(f"\n| depth-to-image, {n} held-out scenes -> 'blue squares', strength 1 | layout: Pearson r, output's "
          f"estimated depth vs input depth | judge finds blue |")
    print("| --- | --- | --- |")
    for g in (7.5, 5.0, 3.0):
        dd = depth_to_image_metrics(depth, n, guidance_scale=g)
        print(f"| guidance {g:g} | {dd['layout_mean_r']:.3f} | {dd['blue']:.1%} |")
    print("| target | >= 0.8 | >= 90% |")
    print(f"\n| inpainting, {n} held-out scenes | outside MAD (0-255) | median scene | MAD away from the mask's "
          f"latent cells | VAE round trip alone, outside | colour | shape | both | target |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, model in (("9-channel TinySD-inpaint", base.parent / "tinysd-inpaint"), ("blending, 4-channel TinySD", base)):
        parts = swap_scheduler(load(model), "ddim")
        cases = [(False, None), (True, None)] + [(False, 1.0)] * name.startswith("9")
        for whole, outside in cases:
            m = inpaint_metrics(parts, n, whole_scene=whole, guidance_outside=outside)
            how = "whole-scene prompt" if whole else "new object only"
            if outside is not None:
                how += f", guidance {outside:g} outside the mask (sdlearn's pipeline only)"
            print(f"| {name}, {how} | {m['outside_mad']:.2f} | {m['outside_median']:.2f} | {m['untouched_mad']:.2f} | {m['vae_floor_mad']:.2f} | "
                  f"{m['colour']:.1%} | {m['shape']:.1%} | "
                  f"{m['both']:.1%} | outside <= 3, inside >= 85% |")


if __name__ == "__main__":
    main()
