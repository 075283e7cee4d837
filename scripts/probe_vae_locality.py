"""Probe: how local are a VAE's latents, and does a locality term in its training make them more so?

Inpainting can keep the outside of a hole only if the latents outside it belong to the outside alone. This
prints, on inpaint_metrics' scenes and holes (`python -m sdlearn.eval --variants`):

- encoder gap: how much cutting the hole out (mid-grey) changes the latents in cells the hole does not touch;
- outside MAD (0-255) of the perfect answer (`repaint_object`) encoded and decoded, and of a splice of its
  latents in the hole's cells with the input's latents everywhere else (what blending aims at).

Run: python scripts/probe_vae_locality.py                        # the shipped TinySD VAE
     python scripts/probe_vae_locality.py --train 600 --local 0.1 # a short training from scratch (~6 min)

`--local` adds, during training, `sdlearn.train.locality_gap` (the squared difference between the cut-out image's
latents outside the hole and the whole image's, relative to the latents' mean square); `python -m sdlearn.train`
uses the same term (`--vae-local-weight`). Measured on 2 cores, 100 scenes:

| VAE | PSNR | encoder gap | outside MAD, perfect answer | splice |
| --- | --- | --- | --- | --- |
| shipped TinySD v0.4 (2,000 steps) | 33.57 dB | 0.207 | 3.02 | 10.81 |
| full recipe, 1,600 steps, --vae-local-weight 0.1 (python -m sdlearn.train; not shipped) | 31.55 dB | 0.126 | 3.74 | 9.45 |
| 600 steps, no locality term | 24.58 dB | 0.233 | 7.65 | 22.90 |
| 600 steps, --local 0.1 | 22.91 dB | 0.113 | 8.97 | 11.60 |
| 600 steps, --local 0.1 --no-attention | 22.67 dB | 0.130 | 10.28 | 15.93 |
"""
import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sdlearn import tinysd  # noqa: E402
from sdlearn.data import World, repaint_object  # noqa: E402
from sdlearn.eval import inpaint_case, latent_cells  # noqa: E402
from sdlearn.latents import decode, encode, psnr  # noqa: E402
from sdlearn.images import to_pixels  # noqa: E402
from sdlearn.train import make_dataset, random_masks, vae_loss  # noqa: E402


def train(steps: int, local: float, attention: bool):
    """A TinySD VAE trained from scratch for `steps` (edge-weighted loss, bf16 autocast, as sdlearn.train)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = tinysd.make_vae()
    if not attention:  # (a second model: different initial weights too)
        vae = AutoencoderKL.from_config({**vae.config, "mid_block_add_attention": False})
    images, _ = make_dataset(8000, seed=1)
    masks, _ = random_masks(World(seed=1, split="train").batch(0, 8000), torch.Generator().manual_seed(5))
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    lr = lambda s: min(1, (s + 1) / 100) * 0.5 * (1 + np.cos(np.pi * s / steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr)
    g = torch.Generator().manual_seed(10)
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(0, len(images), (16,), generator=g)
        x = to_pixels(images[idx.numpy()])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, mse = vae_loss(vae, x, g, edge_weight=20.0, holes=masks[idx], local_weight=local)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0:
            print(f"step {step}: loss {loss.item():.4f}, mse {mse.item():.4f}, {time.time() - t0:.0f} s", flush=True)
    vae.eval()
    with torch.no_grad():
        z = torch.cat([vae.encode(to_pixels(images[i : i + 256])).latent_dist.mean for i in range(0, 1024, 256)])
    vae.register_to_config(scaling_factor=float(1 / z.std()))
    return vae


@torch.no_grad()
def locality(vae, n: int = 100, seed: int = 6262) -> dict:
    world = World(seed=seed, split="all")
    rows = {"psnr": [], "gap": [], "perfect": [], "splice": []}
    for i in range(n):
        s = world[i]
        hole, colour, shape = inpaint_case(s, i)
        cells = torch.from_numpy(latent_cells(hole))
        cut = s.image.copy()
        cut[hole] = 128
        z_in, z_cut, z_perfect = (encode(vae, im) for im in (s.image, cut, repaint_object(s, 0, colour, shape).image))
        mad = lambda z: np.abs(decode(vae, z)[0].astype(float) - s.image).mean(-1)[~hole].mean()
        rows["psnr"].append(psnr(decode(vae, z_in)[0], s.image))
        rows["gap"].append((z_cut - z_in)[0][:, ~cells].abs().mean().item())
        rows["perfect"].append(mad(z_perfect))
        rows["splice"].append(mad(torch.where(cells, z_perfect, z_in)))
    return {k: float(np.mean(v)) for k, v in rows.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=0, help="train a VAE for this many steps (0: the shipped one)")
    parser.add_argument("--local", type=float, default=0.0, help="weight of the locality term when training")
    parser.add_argument("--no-attention", action="store_true", help="train without the mid-block attention")
    parser.add_argument("--n", type=int, default=100, help="scenes to measure")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.train:
        vae = train(args.train, args.local, not args.no_attention)
    else:
        from sdlearn.loading import load

        vae = load("tinysd").vae
    m = locality(vae, args.n)
    print(f"PSNR {m['psnr']:.2f} dB | encoder gap away from the hole {m['gap']:.3f} (latent std 1) | "
          f"outside MAD: perfect answer {m['perfect']:.2f}, splice {m['splice']:.2f}")


if __name__ == "__main__":
    main()
