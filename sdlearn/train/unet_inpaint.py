"""Stage 6: the inpainting U-Net, given the mask and the masked image's latents as Stable Diffusion's inpainting model."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel

from .. import tinysd
from ..images import to_pixels
from .captions import hole_captions
from .config import InpaintUNetStage, Run
from .data import encode_captions, encode_latents, random_masks, scenes, tokenize
from .loop import final_folder
from .unet import alternative_or_empty, frozen_encoders, train_text_conditioned_unet

__all__ = ["train_unet_inpaint"]


def train_unet_inpaint(run: Run, stage: InpaintUNetStage, accelerator, tokenizer) -> None:
    """Train the inpainting U-Net on one fixed mask per scene (an object's outline or a box). Starts from the
    text-to-image U-Net with 5 more input channels (mask, masked-image latents; zero weights); saves its EMA to
    `<out>/unet_inpaint/final`."""
    vae, text_encoder = frozen_encoders(run.out)
    parent = UNet2DConditionModel.from_pretrained(final_folder(run.out, "unet"))
    batch = scenes(stage.n_scenes, run.seed + stage.data_seed)
    pixels = to_pixels(np.stack([s.image for s in batch]))
    latents = encode_latents(vae, pixels, disable=not accelerator.is_main_process)
    g = torch.Generator().manual_seed(run.seed + stage.masks_seed)
    masks, which = random_masks(batch, g, size=pixels.shape[-1])  # one fixed mask per scene
    masked = pixels * (masks < 0.5)  # as the pipeline does: masked pixels become 0 (mid-grey)
    m_mean, m_std = encode_latents(vae, masked, "encoding masked images", disable=not accelerator.is_main_process)
    scale = vae.config.scaling_factor
    small_masks = F.interpolate(masks, size=latents[0].shape[-2:])  # nearest, as in the pipeline
    # Outside the hole the latents must come back as the image's: their noise error counts `stage.keep_weight`
    # times as much, and their x0 error is added with weight `stage.keep_x0_weight` (the noise error hides how
    # wrong the outside is at high noise). Measured at 1,300 steps (200 scenes, guidance 7.5): keep-weight alone
    # 20.9 -> 19.0 / 255 outside; with x0 weight 0.1 and hole captions 18.4, shape in the hole 61.5% -> 75.0%;
    # 1,800 steps then gave 14.0 and 78.0% (TinySD-inpaint's card). What stops it
    # going lower: the masked image's latents differ from the image's outside the hole by about 0.21 (latent std 1),
    # as TinySD's VAE encoder sees the whole picture, and the model's x0 error outside stays at about that.
    keep = 1 + (stage.keep_weight - 1) * (1 - small_masks)

    def extra(idx, gen):
        masked_latents = (m_mean[idx] + m_std[idx] * torch.randn(m_mean[idx].shape, generator=gen)) * scale
        return torch.cat([small_masks[idx], masked_latents], dim=1)

    # Where the hole is one object, a share `stage.hole_captions` of the samples are captioned with that object
    # alone, so the model learns that the text says what to paint in the hole while the outside comes from the
    # masked image.
    alt_captions = hole_captions(batch, which, run.seed + stage.hole_captions_seed)
    text_states = encode_captions(text_encoder, tokenize(tokenizer, [s.caption for s in batch]))
    empty = encode_captions(text_encoder, tokenize(tokenizer, [""]), desc="encoding the empty prompt")
    has_alt = torch.tensor([c is not None for c in alt_captions])
    alt_states = encode_captions(text_encoder, tokenize(tokenizer, [c or "" for c in alt_captions]),
                                 desc="encoding alternative captions")
    torch.manual_seed(run.seed + stage.init_seed)
    unet = tinysd.expand_conv_in(parent, parent.config.in_channels + small_masks.shape[1] + m_mean.shape[1])
    train_text_conditioned_unet(stage, run, accelerator, unet, latents, scale,
                                alternative_or_empty(text_states, empty, alt_states, has_alt, stage.hole_captions),
                                extra_fn=extra, weight_fn=lambda idx: keep[idx], x0_fn=lambda idx: 1 - small_masks[idx],
                                x0_weight=stage.keep_x0_weight)
