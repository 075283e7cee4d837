"""Stage 5: the depth-to-image U-Net, conditioned on the estimated depth as Stable Diffusion 2's depth model."""
from __future__ import annotations

import types

import numpy as np
import torch
from diffusers import UNet2DConditionModel
from tqdm.auto import tqdm
from transformers import DPTForDepthEstimation

from .. import tinysd
from ..depth import depth_condition, estimate_depth
from .config import DepthUNetStage, Run
from .data import encode_captions, encode_latents, scenes, tokenize
from .loop import final_folder
from .unet import alternative_or_empty, frozen_encoders, train_text_conditioned_unet

__all__ = ["train_unet_depth", "estimated_nearness"]


@torch.no_grad()
def estimated_nearness(out, scene_list, batch: int = 500) -> torch.Tensor:
    """The run's trained depth estimator's maps for `scene_list`, (N, h, w), computed by the depth pipeline's own function."""
    parts = types.SimpleNamespace(
        depth_estimator=DPTForDepthEstimation.from_pretrained(final_folder(out, "depth")).eval(),
        feature_extractor=tinysd.make_depth_processor())
    return torch.cat([estimate_depth(parts, [s.image for s in scene_list[i : i + batch]])
                      for i in tqdm(range(0, len(scene_list), batch), desc="estimating depth")])


def train_unet_depth(run: Run, stage: DepthUNetStage, accelerator, tokenizer) -> None:
    """Like SD 2's depth model, conditioned on the *estimated* depth (MiDaS there, our DPT here), so that
    training sees the same blurred, imperfect maps the pipeline feeds it, not the world's exact ones.
    Starts from the text-to-image U-Net with one more input channel (zero weights); saves its EMA to
    `<out>/unet_depth/final`."""
    vae, text_encoder = frozen_encoders(run.out)
    parent = UNet2DConditionModel.from_pretrained(final_folder(run.out, "unet"))
    batch = scenes(stage.n_scenes, run.seed + stage.data_seed)
    images = np.stack([s.image for s in batch])
    latents = encode_latents(vae, images, disable=not accelerator.is_main_process)
    # (N, 1, h, w) at the latents' size, as the pipeline makes it
    height, width = images.shape[1:3]
    cond = depth_condition(estimated_nearness(run.out, batch), height, width,
                           2 ** (len(vae.config.block_out_channels) - 1))
    text_states = encode_captions(text_encoder, tokenize(tokenizer, [s.caption for s in batch]))
    empty = encode_captions(text_encoder, tokenize(tokenizer, [""]), desc="encoding the empty prompt")
    torch.manual_seed(run.seed + stage.init_seed)
    unet = tinysd.expand_conv_in(parent, parent.config.in_channels + cond.shape[1])
    train_text_conditioned_unet(stage, run, accelerator, unet, latents, vae.config.scaling_factor,
                                alternative_or_empty(text_states, empty), extra_fn=lambda idx, g: cond[idx])
