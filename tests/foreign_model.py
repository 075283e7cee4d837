"""A small random Stable Diffusion folder that differs from TinySD in every way a lesson could assume.

Written with `save_pretrained`, as a real SD folder would be, and loaded through `sdlearn.load`. Against TinySD
(64x64 images, 8x8 latents, epsilon prediction, PNDM, 64-wide text states, a 2-level U-Net, a VAE scaling factor
measured after training) it has: 96x96 images (12x12 latents), v-prediction, an Euler scheduler, 48-wide text
states with 4 layers, a 3-level U-Net with cross-attention at two levels, SD's VAE scaling factor 0.18215. The depth
(5-channel) and inpainting (9-channel) variants are written the same way.

Run every lesson on it: `python tests/foreign_model.py runs/foreign` writes the three folders and prints the
environment variables to set.
"""
from __future__ import annotations

import pathlib
import sys

import torch

from tiny_models import write_index

FOREIGN_IMAGE_SIZE = 96
FOREIGN_TEXT_DIM = 48


def write_foreign_sd(folder: pathlib.Path, unet_in_channels: int = 4, with_depth: bool = False) -> pathlib.Path:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from sdlearn import tinysd

    folder = pathlib.Path(folder)
    torch.manual_seed(1)
    tinysd.build_tokenizer(save_to=folder / "tokenizer")
    d = FOREIGN_TEXT_DIM
    CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=4,
                                 num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406,
                                 eos_token_id=49407, pad_token_id=49407)).save_pretrained(folder / "text_encoder")
    AutoencoderKL(block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=8, layers_per_block=1,
                  sample_size=FOREIGN_IMAGE_SIZE, scaling_factor=0.18215).save_pretrained(folder / "vae")
    UNet2DConditionModel(sample_size=FOREIGN_IMAGE_SIZE // 8, in_channels=unet_in_channels, out_channels=4,
                         block_out_channels=(16, 32, 32),
                         down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
                         cross_attention_dim=d, attention_head_dim=4, norm_num_groups=8
                         ).save_pretrained(folder / "unet")
    EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                           prediction_type="v_prediction", timestep_spacing="leading", steps_offset=1
                           ).save_pretrained(folder / "scheduler")
    write_index(folder, unet_in_channels, with_depth, scheduler_class="EulerDiscreteScheduler")
    return folder


def write_foreign_family(root: pathlib.Path) -> dict[str, str]:
    """The plain, depth and inpainting folders under `root`; the environment that points every lesson at them."""
    root = pathlib.Path(root)
    return {"SDLEARN_MODEL": str(write_foreign_sd(root / "sd")),
            "SDLEARN_DEPTH_MODEL": str(write_foreign_sd(root / "sd-depth", unet_in_channels=5, with_depth=True)),
            "SDLEARN_INPAINT_MODEL": str(write_foreign_sd(root / "sd-inpaint", unet_in_channels=9))}


if __name__ == "__main__":
    env = write_foreign_family(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "runs/foreign"))
    print(" ".join(f"{k}={v}" for k, v in env.items()))
