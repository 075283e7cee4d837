"""Extra stage: a "VAE file", TinySD's decoder fine-tuned to paint fine detail, the encoder frozen.

The public ft-MSE / ft-EMA VAEs for Stable Diffusion were made this way: the same encoder, so every latent the
U-Net was trained on stays what it was, and a decoder trained further to paint those latents back better. Here
the detail is that of the customising lessons' new concepts (stars, outlined shapes, the badge, stripes), which
TinySD's decoder blurs; the world's own scenes stay in the mix so that the decoder does not unlearn them.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np
import torch
from diffusers import AutoencoderKL

from ..data.concepts import concept_images
from ..images import to_pixels
from ..latents import decoder_loss
from .config import Run, VaeDecoderStage
from .data import make_dataset
from .loop import final_folder, final_loss, log_time, run_stage

__all__ = ["train_vae_decoder", "decoder_training_pictures"]


def decoder_training_pictures(run: Run, stage: VaeDecoderStage) -> np.ndarray:
    """The stage's pictures (N, 64, 64, 3) uint8: each concept's, then the world's scenes."""
    concepts = [concept_images(c, stage.n_per_concept, seed=run.seed + stage.concept_seed).images
                for c in stage.concepts]
    world, _ = make_dataset(stage.n_scenes, seed=run.seed + stage.data_seed)
    return np.concatenate(concepts + [world])


def train_vae_decoder(run: Run, stage: VaeDecoderStage, accelerator) -> None:
    """Fine-tune the decoder (and post_quant_conv) of the run's VAE; save the whole VAE to `<out>/vae_decoder/final`."""
    start = pathlib.Path(stage.init or final_folder(run.out, "vae"))
    if not (start / "config.json").exists():
        raise FileNotFoundError(f"no VAE to start from at {start}; run the vae stage first or pass "
                                "--vae-decoder-init sdlearn/weights/tinysd/vae.")
    vae = AutoencoderKL.from_pretrained(start)
    vae.requires_grad_(False)
    vae.decoder.requires_grad_(True)
    vae.post_quant_conv.requires_grad_(True)
    pixels = to_pixels(decoder_training_pictures(run, stage))
    with torch.no_grad():  # the encoder is frozen: each picture's latents are fixed, computed once
        latents = torch.cat([vae.encode(pixels[i : i + 128]).latent_dist.mode() for i in range(0, len(pixels), 128)])
    g = torch.Generator().manual_seed(run.seed + stage.generator_seed + accelerator.process_index)

    class Decoder(torch.nn.Module):  # what the loop trains: only these parameters reach the optimiser
        def __init__(self):
            super().__init__()
            self.decoder, self.post_quant_conv = vae.decoder, vae.post_quant_conv

    def step_fn(model, step):
        idx = torch.randint(0, len(pixels), (stage.batch,), generator=g)
        loss = decoder_loss(vae, latents[idx], pixels[idx])
        return loss, loss.item()

    t0 = time.time()
    _, losses = run_stage(stage, run, accelerator, Decoder(), step_fn)
    vae.save_pretrained(final_folder(run.out, stage.name))
    log_time(run.out, stage.name, time.time() - t0, final_loss=final_loss(losses, stage.loss_window))
