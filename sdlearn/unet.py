"""The noise predictor: one U-Net call, and an anatomy summary of any UNet2DConditionModel.

Stable Diffusion's U-Net (Ronneberger et al. 2015, as adapted by Rombach et al. 2022)
takes noisy latents, the timestep and the text's hidden states, and returns the predicted
noise. Going down, ResNet blocks and (in most levels) transformer blocks with
self-attention and cross-attention halve the resolution level by level; going up, they
double it again, each level also reading the matching down level's output through a skip
connection. The timestep is turned into a sinusoidal embedding, passed through a small MLP
and added inside every ResNet block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers import UNet2DConditionModel

__all__ = ["timestep_embedding", "predict_noise", "BlockInfo", "anatomy", "format_anatomy", "real_unet_config", "real_unet", "count_params"]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """The transformer-style sinusoidal embedding of timesteps (Vaswani et al. 2017; Ho et al. 2020).

    emb(t) = [sin(t * f_0), ..., sin(t * f_{d/2-1}), cos(t * f_0), ...], f_k = 10000^(-k / (d/2)):
    each timestep becomes a distinct pattern of slow and fast waves. diffusers' `Timesteps` module does
    the same before the U-Net's time MLP (its ordering and shift options aside).

    Args:
        t: timesteps, shape (B,) (or (1,)).
        dim: the embedding width (even).
    Returns:
        A float tensor (B, dim).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float().reshape(-1, 1) * freqs[None]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


@torch.no_grad()
def predict_noise(unet, latents: torch.Tensor, t, prompt_embeds: torch.Tensor) -> torch.Tensor:
    """eps_theta(z_t, t, text): the U-Net's estimate of the noise in `latents` at step t."""
    if latents.shape[1] != unet.config.in_channels:
        raise ValueError(f"this U-Net takes {unet.config.in_channels} input channels, latents have {latents.shape[1]}.")
    return unet(latents, t, encoder_hidden_states=prompt_embeds).sample


def count_params(module) -> int:
    """The number of parameters (trainable or not) in a module."""
    return sum(p.numel() for p in module.parameters())


@dataclass
class BlockInfo:
    part: str  # "down 0", "mid", "up 1", ...
    kind: str  # the diffusers class name
    resolution: int  # side of the feature map inside the block (latent side = sample_size)
    in_channels: int
    out_channels: int
    resnets: int
    attention_layers: int  # transformer blocks (self-attention + cross-attention + MLP)
    cross_attention: bool
    params: int


def anatomy(unet) -> dict:
    """The U-Net's levels, with resolutions, channels, ResNets and attention layers, and parameter counts."""
    cfg = unet.config
    side = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
    blocks = []
    res = side
    for i, block in enumerate(unet.down_blocks):
        blocks.append(_block_info(f"down {i}", block, res))
        if block.downsamplers is not None:
            res //= 2
    blocks.append(_block_info("mid", unet.mid_block, res))
    for i, block in enumerate(unet.up_blocks):
        blocks.append(_block_info(f"up {i}", block, res))
        if block.upsamplers is not None:
            res *= 2
    return {
        "blocks": blocks,
        "latent": (cfg.in_channels, side, side),
        "cross_attention_dim": cfg.cross_attention_dim,
        "time_embedding": {
            "sinusoidal_dim": unet.time_proj.num_channels if hasattr(unet.time_proj, "num_channels") else cfg.block_out_channels[0],
            "mlp_out": unet.time_embedding.linear_2.out_features,
            "params": count_params(unet.time_embedding),
            "enters": "added to the features inside every ResNet block (time_emb_proj)",
        },
        "total_params": count_params(unet),
    }


def _block_info(part: str, block, resolution: int) -> BlockInfo:
    return BlockInfo(part, type(block).__name__, resolution, block.resnets[0].in_channels, block.resnets[-1].out_channels,
                     len(block.resnets), _transformer_layers(block), bool(getattr(block, "attentions", None)),
                     count_params(block))


def _transformer_layers(block) -> int:
    return sum(len(a.transformer_blocks) for a in (getattr(block, "attentions", None) or []))


def format_anatomy(info: dict) -> str:
    """A text table of `anatomy(unet)`."""
    lines = [f"latent input {info['latent']}, text states of width {info['cross_attention_dim']}",
             f"timestep: sinusoidal({info['time_embedding']['sinusoidal_dim']}) -> MLP -> "
             f"{info['time_embedding']['mlp_out']}, {info['time_embedding']['enters']}",
             f"{'part':7s} {'block':24s} {'res':>4s} {'in':>5s} {'out':>5s} {'resnets':>7s} {'attn':>4s} {'params':>12s}"]
    for b in info["blocks"]:
        lines.append(f"{b.part:7s} {b.kind:24s} {b.resolution:4d} {b.in_channels:5d} {b.out_channels:5d} "
                     f"{b.resnets:7d} {b.attention_layers:4d} {b.params:12,d}")
    lines.append(f"total parameters: {info['total_params']:,}")
    return "\n".join(lines)


# Published UNet2DConditionModel configs (the values in the models' unet/config.json).
_REAL = {
    "v1.5": dict(sample_size=64, cross_attention_dim=768, attention_head_dim=8),
    "v2.1": dict(sample_size=96, cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20],
                 use_linear_projection=True, upcast_attention=True),
}


def real_unet_config(version: str = "v1.5") -> dict:
    """The U-Net config of Stable Diffusion v1.5 or v2.1 (768 px), as published with the weights."""
    if version not in _REAL:
        raise ValueError(f"Unknown version {version!r}; choose one of {list(_REAL)}.")
    return dict(in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=[320, 640, 1280, 1280],
                down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, norm_num_groups=32, **_REAL[version])


def real_unet(version: str = "v1.5"):
    """The real architecture built on the meta device: all shapes and counts, no weights, no memory."""
    with torch.device("meta"):
        return UNet2DConditionModel(**real_unet_config(version))
