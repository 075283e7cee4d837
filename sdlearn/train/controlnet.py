"""Extra stage: a ControlNet for outlines (Zhang, Rao & Agrawala 2023), on top of the frozen TinySD.

`ControlNetModel.from_unet` copies the U-Net's input convolution, down blocks and middle block (their
trained weights), adds a small convolutional encoder for the condition picture, and puts a 1x1 convolution
with zero weights after every block it copied. At the start the ControlNet therefore adds exactly zero to the
U-Net, which keeps generating as before; training moves the zero convolutions (and the copy) only as far as
the outlines help predict the noise. The U-Net, VAE and text encoder never change.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np
import torch
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from tqdm.auto import tqdm
from transformers import CLIPTextModel

from .. import tinysd
from ..data import render_outline
from ..edges import canny_edges
from .config import ControlNetStage, Run
from .data import encode_captions, encode_latents, make_scenes, tokenize
from .loop import final_folder, final_loss, log_time, run_stage
from .losses import controlnet_loss

__all__ = ["train_controlnet", "edge_conditions", "controlled_parts"]


def edge_conditions(scenes, stage: ControlNetStage, seed: int, disable: bool = False) -> torch.Tensor:
    """Each scene's two conditions (N, 2, H, W) uint8, white on black: its Canny edges, its hand-drawn outline."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(scenes), 2, *scenes[0].image.shape[:2]), np.uint8)
    for i, s in enumerate(tqdm(scenes, desc="drawing edges and outlines", disable=disable)):
        out[i, 0] = canny_edges(s.image) * np.uint8(255)
        wobble, width = rng.uniform(0, stage.max_wobble), rng.uniform(1, stage.max_width)
        out[i, 1] = render_outline(s, seed=int(rng.integers(1 << 30)), wobble=wobble, width=width)[..., 0]
    return torch.from_numpy(out)


def controlled_parts(run: Run, stage: ControlNetStage):
    """The frozen U-Net, VAE and text encoder the ControlNet learns to steer: the model folder `stage.base`,
    or the run's own unet, vae and clip stages."""
    if stage.base is not None:
        base = pathlib.Path(stage.base)
        if not (base / "unet" / "config.json").exists():
            raise FileNotFoundError(f"{base} is not a model folder (no unet/config.json); give a folder such as "
                                    "sdlearn/weights/tinysd.")
        unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
        vae = AutoencoderKL.from_pretrained(base, subfolder="vae")
        text_encoder = CLIPTextModel.from_pretrained(base, subfolder="text_encoder")
    else:
        for name in ("unet", "vae", "clip"):
            if not final_folder(run.out, name).exists():
                raise FileNotFoundError(f"the controlnet stage needs the run's {name} stage ({final_folder(run.out, name)})"
                                        " or a model to control: pass --controlnet-base sdlearn/weights/tinysd.")
        unet = UNet2DConditionModel.from_pretrained(final_folder(run.out, "unet"))
        vae = AutoencoderKL.from_pretrained(final_folder(run.out, "vae"))
        text_encoder = CLIPTextModel.from_pretrained(final_folder(run.out, "clip"))
    for m in (unet, vae, text_encoder):
        m.eval().requires_grad_(False)
    return unet, vae, text_encoder


def train_controlnet(run: Run, stage: ControlNetStage, accelerator, tokenizer) -> None:
    """Train a ControlNet on the world's edges and outlines; save it to `<out>/controlnet/final`."""
    unet, vae, text_encoder = controlled_parts(run, stage)
    quiet = not accelerator.is_main_process
    scenes = make_scenes(stage.n_scenes, seed=run.seed + stage.data_seed, p_two=stage.p_two)
    conditions = edge_conditions(scenes, stage, run.seed + stage.outline_seed, disable=quiet)
    mean, std = encode_latents(vae, np.stack([s.image for s in scenes]), disable=quiet)
    with torch.no_grad():
        text_states = encode_captions(text_encoder, tokenize(tokenizer, [s.caption for s in scenes]))
        empty = encode_captions(text_encoder, tokenize(tokenizer, [""]), desc="encoding the empty prompt")
    del scenes
    scale = vae.config.scaling_factor
    abar = tinysd.shipped_scheduler().alphas_cumprod
    torch.manual_seed(run.seed + stage.init_seed)
    controlnet = ControlNetModel.from_unet(unet)
    g = torch.Generator().manual_seed(run.seed + stage.generator_seed + accelerator.process_index)

    def step_fn(model, step):
        # one generator, in this order: scenes, latent samples, which condition, which get the empty prompt,
        # then the loss's noise and timesteps
        idx = torch.randint(0, len(mean), (stage.batch,), generator=g)
        latents = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * scale
        outline = (torch.rand(stage.batch, generator=g) < stage.outline_rate).long()
        cond = conditions[idx, outline].float().div(255).unsqueeze(1).expand(-1, 3, -1, -1)
        states = text_states[idx].clone()
        states[torch.rand(stage.batch, generator=g) < stage.empty_prompt_rate] = empty
        loss = controlnet_loss(model, unet, latents, states, cond, abar, g)
        return loss, loss.item()

    t0 = time.time()
    controlnet, losses = run_stage(stage, run, accelerator, controlnet, step_fn)
    controlnet.save_pretrained(final_folder(run.out, stage.name))
    log_time(run.out, stage.name, time.time() - t0, final_loss=final_loss(losses, stage.loss_window))
