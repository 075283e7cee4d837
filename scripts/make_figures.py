"""Regenerate the README's figures from the library: `make figures` (or python scripts/make_figures.py [names]).

Every figure is drawn by sdlearn's own functions on TinySD, offline, in about a minute on 2 cores.
"""
import functools
import os
import pathlib
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import sdlearn  # noqa: E402
from sdlearn import noising, pipelines  # noqa: E402
from sdlearn.data import load_photo, make_scene, render_sketch  # noqa: E402
from sdlearn.depth import estimate_depth  # noqa: E402
from sdlearn.plotting import show_images  # noqa: E402
from sdlearn.schedulers import swap_scheduler  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[1] / "figures"


def forward_noising():
    x0 = torch.tensor(load_photo("chelsea", 128)).permute(2, 0, 1).float() / 127.5 - 1
    abar = noising.alphas_cumprod(noising.make_betas("scaled_linear"))
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    ts = [0, 100, 250, 500, 750, 999]
    fig = show_images([noising.q_sample(x0[None], noise[None], t, abar)[0] for t in ts], titles=[f"t = {t}" for t in ts])
    fig.savefig(OUT / "forward_noising.png", dpi=110)


def tinysd_samples():
    parts = _tiny()
    prompts = ["a red circle on the left", "a big blue square at the top", "a yellow triangle on the right",
               "a green circle at the bottom", "an orange triangle", "a purple box in the center"]
    r = pipelines.text_to_image(parts, prompts, generator=[torch.Generator().manual_seed(i) for i in range(len(prompts))],
                                progress=False)
    fig = show_images(r.images, titles=prompts, size=2.0)
    fig.savefig(OUT / "tinysd_samples.png", dpi=110)


@functools.lru_cache(maxsize=None)
def _tiny():
    return swap_scheduler(sdlearn.load(), "ddim")  # loaded once, shared by the figures


def denoising_steps():
    from sdlearn.widgets import steps_figure

    parts = _tiny()
    r = pipelines.text_to_image(parts, "a blue square at the top", generator=torch.Generator().manual_seed(0),
                                record=True, progress=False)
    steps_figure(parts, r, every=4).savefig(OUT / "denoising_steps.png", dpi=110)


def vae_round_trip():
    from sdlearn.latents import round_trip

    parts = _tiny()
    scene = make_scene("red", "circle", second={"colour": "blue", "shape": "square", "depth": 0.4}, relation="left of")
    images = [scene.image, load_photo("chelsea", 64)]
    shown, titles = [], []
    for name, im in zip(("scene", "photo"), images):
        z, back = round_trip(parts.vae, im)
        shown += [im, z[0, 0], back[0]]
        titles += [f"{name} 64x64x3", "latent ch 0 (8x8)", "decoded"]
    show_images(shown, titles=titles, ncols=6, size=1.8).savefig(OUT / "vae_round_trip.png", dpi=110)


def attention_maps():
    from sdlearn.attention import heatmaps

    parts = _tiny()
    prompt = "a red circle to the left of a blue square"
    r = pipelines.text_to_image(parts, prompt, generator=torch.Generator().manual_seed(1), record_attention=True,
                                progress=False)
    tokens = [t.replace("</w>", "") for t in parts.tokenizer.convert_ids_to_tokens(parts.tokenizer(prompt).input_ids)]
    maps = heatmaps(r.attention, size=(64, 64))[0]
    words = ["red", "circle", "blue", "square"]
    fig, axes = plt.subplots(1, len(words) + 1, figsize=(2.0 * (len(words) + 1), 2.3))
    axes[0].imshow(r.images[0])
    axes[0].set_title("image", fontsize=8)
    for ax, w in zip(axes[1:], words):
        ax.imshow(r.images[0])
        ax.imshow(maps[tokens.index(w)].numpy(), cmap="jet", alpha=0.55)
        ax.set_title(repr(w), fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(OUT / "attention_maps.png", dpi=110)


def cfg_grid():
    from sdlearn.eval import guidance_sweep

    scales = (1.0, 3.0, 7.5, 12.0)
    images, scores = guidance_sweep(_tiny(), "a yellow triangle on the left", scales=scales, seeds=(0, 1, 2, 3),
                                    progress=False)
    titles = [f"g={s}, colour {scores[s]['colour']:.0%}" if i == 0 else "" for s in scales for i in range(4)]
    show_images(list(images.reshape(-1, *images.shape[2:])), titles=titles, ncols=4, size=1.6).savefig(
        OUT / "cfg_grid.png", dpi=110)


def strength_sweep():
    parts = _tiny()
    sketch = render_sketch(make_scene("red", "circle", position="left"), seed=1)
    shown, titles = [sketch], ["sketch"]
    for strength in (0.2, 0.4, 0.6, 0.8, 1.0):
        r = pipelines.image_to_image(parts, "a red circle on the left", sketch, strength=strength,
                                     generator=torch.Generator().manual_seed(0), progress=False)
        shown.append(r.images[0])
        titles.append(f"strength {strength}")
    show_images(shown, titles=titles, size=1.8).savefig(OUT / "strength_sweep.png", dpi=110)


def _variant(name):
    from sdlearn.loading import ModelNotAvailableError

    try:
        return swap_scheduler(sdlearn.load(name), "ddim")
    except ModelNotAvailableError:
        return None


def inpainting():
    scene = make_scene("red", "circle", second={"colour": "blue", "shape": "square", "depth": 0.4}, relation="left of")
    mask = np.zeros((64, 64), np.uint8)
    mask[:, :32] = 255
    shown, titles = [scene.image, mask / 255.0], ["input", "mask (white = repaint)"]
    for name, parts in (("blend, 4-ch", _tiny()), ("inpaint model, 9-ch", _variant("tinysd-inpaint"))):
        if parts is None:
            continue
        r = pipelines.inpaint(parts, "a yellow triangle to the left of a blue square", scene.image, mask,
                              generator=torch.Generator().manual_seed(0), progress=False)
        shown.append(r.images[0])
        titles.append(name)
    show_images(shown, titles=titles, size=1.8).savefig(OUT / "inpainting.png", dpi=110)


def depth_to_image():
    parts = _variant("tinysd-depth")
    if parts is None:
        print("skipped depth_to_image: tinysd-depth is not installed")
        return
    scene = make_scene("orange", "circle", second={"colour": "green", "shape": "square", "depth": 0.3},
                       relation="left of", background="gray", depth=0.7)
    depth = estimate_depth(parts, scene.image)[0]
    r = pipelines.depth_to_image(parts, "a blue square to the left of a blue square", scene.image, strength=1.0,
                                 generator=torch.Generator().manual_seed(0), progress=False)
    show_images([scene.image, depth.numpy(), r.images[0]], titles=["input", "estimated depth", "'blue squares'"],
                size=2.0).savefig(OUT / "depth_to_image.png", dpi=110)


FIGURES = {f.__name__: f for f in (forward_noising, tinysd_samples, denoising_steps, vae_round_trip, attention_maps,
                                   cfg_grid, strength_sweep, inpainting, depth_to_image)}

if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name in sys.argv[1:] or FIGURES:
        FIGURES[name]()
        plt.close("all")
        print("figure:", name)
    print("figures in", OUT, ":", sorted(p.name for p in OUT.glob("*.png")))
