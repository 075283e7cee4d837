"""Regenerate the README's figures from the library (python scripts/make_figures.py)."""
import os
import pathlib

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import torch  # noqa: E402

import sdlearn  # noqa: E402
from sdlearn import noising, pipelines  # noqa: E402
from sdlearn.data import load_photo  # noqa: E402
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
    parts = swap_scheduler(sdlearn.load(), "ddim")
    prompts = ["a red circle on the left", "a big blue square at the top", "a yellow triangle on the right",
               "a green circle at the bottom", "an orange triangle", "a purple box in the center"]
    r = pipelines.text_to_image(parts, prompts, generator=[torch.Generator().manual_seed(i) for i in range(len(prompts))],
                                progress=False)
    fig = show_images(r.images, titles=prompts, size=2.0)
    fig.savefig(OUT / "tinysd_samples.png", dpi=110)


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    forward_noising()
    tinysd_samples()
    print("wrote", sorted(p.name for p in OUT.glob("*.png")))
