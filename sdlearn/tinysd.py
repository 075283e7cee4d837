"""TinySD: a small Stable Diffusion built from the same classes as the real one.

Stable Diffusion v1 is five parts: the CLIP tokenizer, a CLIP text encoder, a VAE
(`AutoencoderKL`) that maps pixels to latents 8 times smaller on each side, a U-Net
(`UNet2DConditionModel`) that predicts noise in latent space with cross-attention on the
text, and a scheduler. TinySD keeps every class and every interface and shrinks the sizes,
so diffusers' own `StableDiffusionPipeline` loads it and every line of course code runs on
real weights unchanged. This module defines the parts (and the depth estimator of TinySD-depth); `sdlearn.train` trains them.
"""
from __future__ import annotations

import functools
import gzip
import json
import pathlib
import shutil
import tempfile

import diffusers
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import (CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTokenizer, CLIPVisionConfig, DPTConfig,
                          DPTForDepthEstimation)

__all__ = [
    "BPE_PATH",
    "DEFAULT_FOLDER",
    "build_tokenizer",
    "clip_config",
    "make_clip",
    "make_vae",
    "make_unet",
    "SCHEDULER_CONFIG",
    "SHIPPED_SCHEDULER",
    "RECOMMENDED_GUIDANCE",
    "RECOMMENDED_STEPS",
    "shipped_scheduler",
    "make_depth_estimator",
    "make_depth_processor",
    "expand_conv_in",
    "write_model_index",
]

BPE_PATH = pathlib.Path(__file__).parent / "assets" / "clip_bpe" / "bpe_simple_vocab_16e6.txt.gz"
DEFAULT_FOLDER = pathlib.Path(__file__).parent / "weights" / "tinysd"

# Sizes. The latent has 4 channels and the VAE downsamples 8x, as in Stable Diffusion.
TEXT_DIM = 64
IMAGE_SIZE = 64


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@functools.lru_cache(maxsize=1)
def _vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """Rebuild CLIP's vocabulary exactly as OpenAI's tokenizer does from the merges file."""
    lines = gzip.open(BPE_PATH).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]  # the first line is a version header
    vocab = list(_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def build_tokenizer(save_to: str | pathlib.Path | None = None):
    """The real CLIP BPE tokenizer (49,408 tokens, 77-token context) as `transformers.CLIPTokenizer`.

    Built from the vendored merges file, so no download is needed; ids equal Stable
    Diffusion v1's ("a" -> 320, start 49406, end 49407, padding with the end token).
    """

    vocab, merges = _vocab_and_merges()
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file, merges_file = pathlib.Path(tmp, "vocab.json"), pathlib.Path(tmp, "merges.txt")
        vocab_file.write_text(json.dumps(vocab, ensure_ascii=False))
        merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        tok = CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77,
                            pad_token="<|endoftext|>", bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                            unk_token="<|endoftext|>")
        if save_to is not None:
            tok.save_pretrained(str(save_to))
            # also the two classic files, which older transformers' (slow) CLIPTokenizer reads
            shutil.copy(vocab_file, pathlib.Path(save_to, "vocab.json"))
            shutil.copy(merges_file, pathlib.Path(save_to, "merges.txt"))
    return tok


def clip_config():
    """A small CLIP: text tower 64-wide, 3 layers; image tower on 64x64 pixels in 8x8 patches."""

    text = CLIPTextConfig(vocab_size=49408, hidden_size=TEXT_DIM, intermediate_size=4 * TEXT_DIM, num_hidden_layers=3,
                          num_attention_heads=4, max_position_embeddings=77, projection_dim=TEXT_DIM,
                          bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    vision = CLIPVisionConfig(hidden_size=96, intermediate_size=384, num_hidden_layers=3, num_attention_heads=4,
                              image_size=IMAGE_SIZE, patch_size=8, projection_dim=TEXT_DIM)
    return CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=TEXT_DIM)


def make_clip():
    """A freshly initialised `CLIPModel` (text and image towers) with TinySD's sizes."""

    return CLIPModel(clip_config())


def make_vae():
    """`AutoencoderKL` with 4 levels (downsampling 8x) and 4 latent channels: 64x64x3 -> 8x8x4."""

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32, 64, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=IMAGE_SIZE,
        scaling_factor=1.0,  # measured after training, see sdlearn.train
    )


def make_unet():
    """`UNet2DConditionModel` on 8x8x4 latents with cross-attention on 64-wide text states."""

    return UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(64, 128),
        layers_per_block=1,
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=16,
    )


# The scheduler config TinySD's folders ship: Stable Diffusion v1's noise schedule, with every key SD's own
# scheduler configs set. `clip_sample: false` matters: `DDIMScheduler.from_config(pipe.scheduler.config)`, the
# swap every tutorial teaches, would otherwise clip the latents to [-1, 1] (they are not bounded) and ruin the
# images. Keys a class does not use are kept in its config and passed on to the next `from_config`.
SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "trained_betas": None,
    "prediction_type": "epsilon",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
}
# The class a folder names, so diffusers' pipelines use it by default: DDIM, with which TinySD does best (measured
# by scripts/probe_guidance.py: PNDM, SD v1's default, overshoots at guidance 7.5; see the model card).
SHIPPED_SCHEDULER = "DDIMScheduler"
# What the model card recommends (measured by `python -m sdlearn.eval`); the library's pipelines default to them.
RECOMMENDED_GUIDANCE = 3.0
RECOMMENDED_STEPS = 25


def shipped_scheduler(class_name: str = SHIPPED_SCHEDULER):
    """The scheduler TinySD's folders ship: `SCHEDULER_CONFIG` as an instance of `class_name`."""
    return getattr(diffusers, class_name).from_config(SCHEDULER_CONFIG)


def make_depth_estimator():
    """A small `DPTForDepthEstimation` (ViT backbone on 8x8 patches of 64x64 images, 0.5 M parameters).

    Like MiDaS it predicts *relative inverse depth*: larger values are nearer.
    """

    cfg = DPTConfig(image_size=IMAGE_SIZE, patch_size=8, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                    intermediate_size=256, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[16, 32, 48, 64],
                    reassemble_factors=[4, 2, 1, 0.5], fusion_hidden_size=32, use_batch_norm_in_fusion_residual=False)
    return DPTForDepthEstimation(cfg)


def make_depth_processor():
    """The `DPTImageProcessor` matching the estimator: resize to 64x64, scale to [-1, 1]."""
    # imported on use: transformers prints a torchvision warning whenever this class is imported
    from transformers import DPTImageProcessor


    return DPTImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, keep_aspect_ratio=False,
                             ensure_multiple_of=8, do_normalize=True, image_mean=[0.5] * 3, image_std=[0.5] * 3)


def expand_conv_in(unet, in_channels: int):
    """A copy of `unet` whose first convolution takes `in_channels`; the extra channels start at zero.

    How SD 2's depth and inpainting U-Nets were started from the text-to-image one: with zero weights on
    the new inputs the copy begins by doing exactly what its parent did.
    """
    config = dict(unet.config)
    config["in_channels"] = in_channels
    new = UNet2DConditionModel.from_config(config)
    state = unet.state_dict()
    w = state["conv_in.weight"]  # (C_out, 4, 3, 3)
    wide = torch.zeros(w.shape[0], in_channels, *w.shape[2:])
    wide[:, : w.shape[1]] = w
    state["conv_in.weight"] = wide
    new.load_state_dict(state)
    return new


def write_model_index(folder: str | pathlib.Path, pipeline: str = "StableDiffusionPipeline", **parts) -> None:
    """diffusers' model_index.json for a folder; the safety checker and feature extractor are absent."""
    index = {
        "_class_name": pipeline,
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", SHIPPED_SCHEDULER],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    index.update(parts)
    pathlib.Path(folder, "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
