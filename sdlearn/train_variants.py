"""Train the depth estimator and TinySD's depth-to-image and inpainting U-Nets.

Stable Diffusion 2's depth model conditions its U-Net on a depth map that MiDaS (a DPT
network, Ranftl et al. 2021) estimates from the input image: one extra input channel. Its
inpainting model gets the mask and the VAE latents of the masked image: five extra
channels. Both start from the text-to-image U-Net, with zero weights on the new input
channels so that training begins from the parent model's behaviour. These stages run from
`python -m sdlearn.train` after the main ones (`--stages depth,unet_depth,unet_inpaint`).
"""
from __future__ import annotations

import pathlib
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import tinysd
from .data import World
from .data.world import describe

__all__ = ["make_depth_estimator", "make_depth_processor", "expand_conv_in", "random_masks", "hole_captions",
           "train_depth_estimator", "train_unet_depth", "train_unet_inpaint"]


def make_depth_estimator():
    """A small `DPTForDepthEstimation` (ViT backbone on 8x8 patches of 64x64 images, 0.5 M parameters).

    Like MiDaS it predicts *relative inverse depth*: larger values are nearer.
    """
    from transformers import DPTConfig, DPTForDepthEstimation

    cfg = DPTConfig(image_size=64, patch_size=8, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                    intermediate_size=256, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[16, 32, 48, 64],
                    reassemble_factors=[4, 2, 1, 0.5], fusion_hidden_size=32, use_batch_norm_in_fusion_residual=False)
    return DPTForDepthEstimation(cfg)


def make_depth_processor():
    """The `DPTImageProcessor` matching the estimator: resize to 64x64, scale to [-1, 1]."""
    from transformers import DPTImageProcessor

    return DPTImageProcessor(size={"height": 64, "width": 64}, keep_aspect_ratio=False, ensure_multiple_of=8,
                             do_normalize=True, image_mean=[0.5] * 3, image_std=[0.5] * 3)


def nearness(depth: np.ndarray) -> np.ndarray:
    """The world's depth (0 near .. 1 far, background 1) as MiDaS-style inverse depth: 1 - depth."""
    return 1.0 - depth


def expand_conv_in(unet, in_channels: int):
    """A copy of `unet` whose first convolution takes `in_channels`; the extra channels start at zero."""
    from diffusers import UNet2DConditionModel

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


def random_masks(scenes, generator: torch.Generator, size: int = 64) -> tuple[torch.Tensor, list[int]]:
    """Inpainting masks (B, 1, H, W), 1 = repaint: half the time an object's (dilated) mask, half a random box.

    Also returns, per scene, the index of the object whose mask it is (-1 for a box).
    """
    masks = torch.zeros(len(scenes), 1, size, size)
    which = [-1] * len(scenes)
    for i, s in enumerate(scenes):
        if torch.rand(1, generator=generator).item() < 0.5:
            k = int(torch.randint(0, len(s.objects), (1,), generator=generator))
            m = torch.from_numpy(s.masks[k]).float()[None, None]
            masks[i] = (F.max_pool2d(m, 9, stride=1, padding=4) > 0).float()[0]
            which[i] = k
        else:
            h, w = (int(v) for v in torch.randint(size // 4, size * 3 // 4, (2,), generator=generator))
            y, x = int(torch.randint(0, size - h + 1, (1,), generator=generator)), int(torch.randint(0, size - w + 1, (1,), generator=generator))
            masks[i, :, y : y + h, x : x + w] = 1
    return masks, which


def hole_captions(scenes, which, seed: int) -> list[str | None]:
    """For a scene whose mask is one object's, a caption naming only that object ("a big violet disc"),
    as people prompt an inpainting model: the text says what goes in the hole, not what is around it.
    None for box masks."""
    rng = random.Random(seed)
    return [None if k < 0 else describe(s.objects[k], rng, with_size=rng.random() < 0.5, with_position=False)
            for s, k in zip(scenes, which)]


def _scenes(n, seed):
    return World(seed=seed, split="train").batch(0, n)


def train_depth_estimator(args, accelerator, run_stage, log_time):
    scenes = _scenes(args.n_variant, args.seed + 30)
    images = np.stack([s.image for s in scenes])
    targets = torch.from_numpy(np.stack([nearness(s.depth) for s in scenes]))
    torch.manual_seed(args.seed)
    model = make_depth_estimator()
    g = torch.Generator().manual_seed(args.seed + 31 + accelerator.process_index)

    def step_fn(m, step):
        idx = torch.randint(0, len(images), (args.variant_batch,), generator=g)
        x = torch.from_numpy(images[idx.numpy()]).permute(0, 3, 1, 2).float() / 127.5 - 1
        pred = m(pixel_values=x).predicted_depth[:, None]
        pred = F.interpolate(pred, size=targets.shape[-2:], mode="area")[:, 0]
        loss = F.mse_loss(pred, targets[idx])
        return loss, loss.item()

    t0 = time.time()
    model, losses = run_stage("depth", accelerator, model, model.parameters(), step_fn, args.depth_steps, 2e-3,
                              args.out, args.ckpt_every, warmup=100)
    model.save_pretrained(pathlib.Path(args.out, "depth", "final"))
    make_depth_processor().save_pretrained(pathlib.Path(args.out, "depth", "final"))
    log_time(args.out, "depth", time.time() - t0, final_loss=float(np.mean(losses[-50:])) if losses else None)


def _frozen_parts(args):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    vae = AutoencoderKL.from_pretrained(pathlib.Path(args.out, "vae", "final")).eval()
    text_encoder = CLIPTextModel.from_pretrained(pathlib.Path(args.out, "clip", "final")).eval()
    unet = UNet2DConditionModel.from_pretrained(pathlib.Path(args.out, "unet", "final"))
    return vae, text_encoder, unet


def _encode_all(vae, pixels, desc):
    with torch.no_grad():
        dists = [vae.encode(pixels[i : i + 256]).latent_dist for i in tqdm(range(0, len(pixels), 256), desc=desc)]
    return torch.cat([d.mean for d in dists]), torch.cat([d.std for d in dists])


def _train_conditioned_unet(name, args, accelerator, run_stage, log_time, tokenizer, frozen, scenes, latents,
                            in_channels, extra_fn, seed_offset, weight_fn=None, alt_captions=None, alt_p=0.0,
                            x0_fn=None, x0_weight=0.0):
    """Shared loop for the variant U-Nets: `extra_fn(idx, g)` returns the extra input channels for a batch,
    `weight_fn(idx)` optional per-position loss weights and `x0_fn(idx)` the positions whose clean-latent
    error counts `x0_weight` more (see `unet_loss`). `alt_captions` (one per scene,
    None where there is none) replace the scene's caption in a share `alt_p` of the samples that have one.

    frozen: (vae, text_encoder, parent_unet); latents: (mean, std) of every scene's latent distribution.
    """
    from .train import EMA, encode_captions, tokenize, unet_loss

    vae, text_encoder, parent = frozen
    torch.manual_seed(args.seed)
    unet = expand_conv_in(parent, in_channels)
    ema = EMA(unet)
    text_states = encode_captions(text_encoder, tokenize(tokenizer, [s.caption for s in scenes]))
    empty = encode_captions(text_encoder, tokenize(tokenizer, [""]), desc="encoding the empty prompt")
    if alt_captions is not None:
        has_alt = torch.tensor([c is not None for c in alt_captions])
        alt_states = encode_captions(text_encoder, tokenize(tokenizer, [c or "" for c in alt_captions]),
                                     desc="encoding alternative captions")
    scale = vae.config.scaling_factor
    abar = tinysd.make_scheduler().alphas_cumprod
    mean, std = latents
    g = torch.Generator().manual_seed(args.seed + seed_offset + accelerator.process_index)

    def step_fn(m, step):
        idx = torch.randint(0, len(text_states), (args.unet_batch,), generator=g)
        latents = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * scale
        states = text_states[idx].clone()
        if alt_captions is not None:
            use = has_alt[idx] & (torch.rand(len(idx), generator=g) < alt_p)
            states[use] = alt_states[idx][use]
        states[torch.rand(len(idx), generator=g) < 0.1] = empty
        loss = unet_loss(m, latents, states, abar, g, extra=extra_fn(idx, g),
                         weight_map=None if weight_fn is None else weight_fn(idx),
                         x0_map=None if x0_fn is None else x0_fn(idx), x0_weight=x0_weight)
        if step > 0:
            ema.update(accelerator.unwrap_model(m), step)
        return loss, loss.item()

    t0 = time.time()
    unet, losses = run_stage(name, accelerator, unet, unet.parameters(), step_fn, args.variant_unet_steps, 5e-4,
                             args.out, args.ckpt_every, extra_state=(ema,), warmup=100)
    ema.update(unet, args.variant_unet_steps)
    ema.shadow.save_pretrained(pathlib.Path(args.out, name, "final"))
    log_time(args.out, name, time.time() - t0, final_loss=float(np.mean(losses[-100:])) if losses else None)


def _prepare_scenes(args, vae, seed_offset):
    """The stage's scenes, their pixels, and the (mean, std) of their latents, encoded once."""
    from .train import to_pixels

    scenes = _scenes(args.n_variant, args.seed + seed_offset)
    pixels = to_pixels(np.stack([s.image for s in scenes]))
    return scenes, pixels, _encode_all(vae, pixels, "encoding latents")


@torch.no_grad()
def _estimated_nearness(args, scenes) -> torch.Tensor:
    """The trained depth estimator's maps for `scenes`, (N, h, w), computed by the depth pipeline's own function."""
    from types import SimpleNamespace

    from transformers import DPTForDepthEstimation

    from .pipelines import estimate_depth

    parts = SimpleNamespace(depth_estimator=DPTForDepthEstimation.from_pretrained(pathlib.Path(args.out, "depth", "final")).eval(),
                            feature_extractor=make_depth_processor())
    return torch.cat([estimate_depth(parts, [s.image for s in scenes[i : i + 500]])
                      for i in tqdm(range(0, len(scenes), 500), desc="estimating depth")])


def train_unet_depth(args, accelerator, run_stage, log_time, tokenizer):
    """Like SD 2's depth model, conditioned on the *estimated* depth (MiDaS there, our DPT here), so that
    training sees the same blurred, imperfect maps the pipeline feeds it, not the world's exact ones."""
    from .pipelines import depth_condition

    frozen = _frozen_parts(args)
    scenes, _, latents = _prepare_scenes(args, frozen[0], 40)
    cond = depth_condition(_estimated_nearness(args, scenes), 64, 64, 8)  # (N, 1, 8, 8), as the pipeline makes it
    _train_conditioned_unet("unet_depth", args, accelerator, run_stage, log_time, tokenizer, frozen, scenes, latents,
                            5, lambda idx, g: cond[idx], 41)


def train_unet_inpaint(args, accelerator, run_stage, log_time, tokenizer):
    frozen = _frozen_parts(args)
    vae = frozen[0]
    scenes, pixels, latents = _prepare_scenes(args, vae, 50)
    g = torch.Generator().manual_seed(args.seed + 51)
    masks, which = random_masks(scenes, g)  # one fixed mask per scene
    masked = pixels * (masks < 0.5)  # as the pipeline does: masked pixels become 0 (mid-grey)
    m_mean, m_std = _encode_all(vae, masked, "encoding masked images")
    scale = vae.config.scaling_factor
    small_masks = F.interpolate(masks, size=(8, 8))  # nearest, as in the pipeline
    # Outside the hole the latents must come back as the image's: their noise error counts `args.keep_weight`
    # times as much, and their x0 error is added with weight `args.keep_x0_weight` (the noise error hides how
    # wrong the outside is at high noise). Measured at 1,300 steps (200 scenes, guidance 7.5): keep-weight alone
    # 20.9 -> 19.0 / 255 outside; with x0 weight 0.1 and hole captions 18.4, shape in the hole 61.5% -> 75.0%;
    # 1,800 steps then gave 14.0 and 78.0% (TinySD-inpaint's card). What stops it
    # going lower: the masked image's latents differ from the image's outside the hole by about 0.21 (latent std 1),
    # as TinySD's VAE encoder sees the whole picture, and the model's x0 error outside stays at about that.
    keep = 1 + (args.keep_weight - 1) * (1 - small_masks)

    def extra(idx, gen):
        masked_latents = (m_mean[idx] + m_std[idx] * torch.randn(m_mean[idx].shape, generator=gen)) * scale
        return torch.cat([small_masks[idx], masked_latents], dim=1)

    # Where the hole is one object, half the samples are captioned with that object alone, so the model
    # learns that the text says what to paint in the hole while the outside comes from the masked image.
    _train_conditioned_unet("unet_inpaint", args, accelerator, run_stage, log_time, tokenizer, frozen, scenes, latents,
                            9, extra, 52, weight_fn=lambda idx: keep[idx],
                            x0_fn=lambda idx: 1 - small_masks[idx], x0_weight=args.keep_x0_weight,
                            alt_captions=hole_captions(scenes, which, args.seed + 53), alt_p=args.hole_captions)
