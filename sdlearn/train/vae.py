"""Stage 2: the VAE, trained to reconstruct images through its 8x8x4 latent; then its scaling factor is measured."""
from __future__ import annotations

import time

import torch

from .. import tinysd
from ..images import to_pixels
from .config import Run, VaeStage
from .data import make_dataset, random_masks, scenes
from .loop import final_folder, final_loss, log_time, run_stage
from .losses import vae_loss

__all__ = ["train_vae"]


def train_vae(run: Run, stage: VaeStage, accelerator) -> None:
    """Train TinySD's VAE, set its `scaling_factor` so scaled latents have unit variance; save to `<out>/vae/final`."""
    images, _ = make_dataset(stage.n_scenes, seed=run.seed + stage.data_seed)
    holes = None
    if stage.local_weight > 0:
        # One hole per scene, of the inpainting stage's kinds (an object's outline or a box); the
        # masks need the scenes themselves, drawn again (40,000 take about 10 s).
        again = scenes(stage.n_scenes, run.seed + stage.data_seed)
        holes = random_masks(again, torch.Generator().manual_seed(run.seed + stage.masks_seed))[0].to(torch.uint8)
        del again
    torch.manual_seed(run.seed + stage.init_seed)
    vae = tinysd.make_vae()
    g = torch.Generator().manual_seed(run.seed + stage.generator_seed + accelerator.process_index)

    def step_fn(m, step):
        idx = torch.randint(0, len(images), (stage.batch,), generator=g)
        # bfloat16 autocast: measured 30% faster per step on a 2-core CPU with AVX-512 BF16.
        with torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=stage.bf16):
            loss, mse = vae_loss(m, to_pixels(images[idx.numpy()]), g, kl_weight=stage.kl_weight,
                                 edge_weight=stage.edge_weight, holes=None if holes is None else holes[idx].float(),
                                 local_weight=stage.local_weight)
        return loss, mse.item()

    t0 = time.time()
    vae, losses = run_stage(stage, run, accelerator, vae, step_fn)
    # Measure the scaling factor: 1 / std of (sampled) latents, so scaled latents have unit variance.
    vae.eval()
    with torch.no_grad():
        z = torch.cat([vae.encode(to_pixels(images[i : i + stage.scale_batch])).latent_dist.sample(g)
                       for i in range(0, min(len(images), stage.scale_images), stage.scale_batch)])
    vae.register_to_config(scaling_factor=float(1.0 / z.std()))
    vae.save_pretrained(final_folder(run.out, stage.name))
    log_time(run.out, stage.name, time.time() - t0, scaling_factor=vae.config.scaling_factor,
             final_mse=final_loss(losses, stage.loss_window))
