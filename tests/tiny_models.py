"""Tiny randomly initialised Stable Diffusion folders, written with save_pretrained, for fast parity tests.

Parity of the hand-built pipelines with diffusers' holds for any weights, so these tests do
not need the trained TinySD. Writing them to disk and loading them back through
`sdlearn.load` also tests the code path used for real Stable Diffusion folders.
"""
import pathlib

import torch


def write_tiny_sd(folder: pathlib.Path, unet_in_channels: int = 4, with_depth: bool = False) -> pathlib.Path:
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from sdlearn import tinysd

    torch.manual_seed(0)
    tinysd.build_tokenizer(save_to=folder / "tokenizer")
    text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406,
                                        eos_token_id=49407, pad_token_id=49407))
    text.save_pretrained(folder / "text_encoder")
    AutoencoderKL(block_out_channels=(8, 8, 8, 8), down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4, layers_per_block=1,
                  sample_size=32, scaling_factor=0.7).save_pretrained(folder / "vae")
    UNet2DConditionModel(sample_size=4, in_channels=unet_in_channels, out_channels=4, block_out_channels=(16, 32),
                         down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
                         cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8).save_pretrained(folder / "unet")
    PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                  set_alpha_to_one=False, steps_offset=1).save_pretrained(folder / "scheduler")
    write_index(folder, unet_in_channels, with_depth)
    return folder


def write_index(folder: pathlib.Path, unet_in_channels: int, with_depth: bool, scheduler_class: str | None = None):
    """The depth estimator (when asked) and model_index.json of a test folder; `scheduler_class` as the folder's."""
    import json

    from sdlearn import tinysd

    pipeline = {4: "StableDiffusionPipeline", 9: "StableDiffusionInpaintPipeline", 5: "StableDiffusionDepth2ImgPipeline"}
    parts = {}
    if with_depth:
        tinysd.make_depth_estimator().save_pretrained(folder / "depth_estimator")
        tinysd.make_depth_processor().save_pretrained(folder / "feature_extractor")
        parts = {"depth_estimator": ["transformers", "DPTForDepthEstimation"],
                 "feature_extractor": ["transformers", "DPTImageProcessor"]}
    tinysd.write_model_index(folder, pipeline[unet_in_channels], **parts)
    if scheduler_class:
        index = json.loads((folder / "model_index.json").read_text())
        index["scheduler"] = ["diffusers", scheduler_class]
        (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
