"""Hypernetworks, as NovelAI and AUTOMATIC1111's web UI used them: small networks that rewrite what
cross-attention reads.

Cross-attention computes keys and values from the text states c: K = W_k c, V = W_v c. A hypernetwork leaves
every weight of the model alone and inserts two small residual MLPs in front of those projections:
K = W_k (c + f_k(c)), V = W_v (c + f_v(c)). As in the web UI, one pair serves every cross-attention layer that
reads states of the same width (TinySD: one pair; SD 1.5: one pair for its 768-wide states). The MLPs' last
layers start at zero, so training starts from the unchanged model. The module is written as a diffusers
attention processor (the public `set_attn_processor` API), and removing it restores the model exactly.

There is no diffusers loader for this format; `save_hypernetwork` / `load_hypernetwork` write and read it as
safetensors.
"""
from __future__ import annotations

import pathlib

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor2_0
from safetensors.torch import load_file, save_file

__all__ = ["Hypernetwork", "HypernetworkProcessor", "add_hypernetwork", "remove_hypernetwork", "save_hypernetwork",
           "load_hypernetwork"]


class Hypernetwork(torch.nn.Module):
    """A residual MLP pair (for keys and values) per text-state width: c -> c + f(c), f = Linear-ReLU-Linear."""

    def __init__(self, widths: list[int], multiplier: int = 2):
        super().__init__()
        self.layers = torch.nn.ModuleDict()
        for d in sorted(set(widths)):
            pair = torch.nn.ModuleList([self._mlp(d, multiplier * d) for _ in range(2)])
            self.layers[str(d)] = pair
        self.strength = 1.0  # scales f, like the web UI's hypernetwork strength

    @staticmethod
    def _mlp(d: int, hidden: int) -> torch.nn.Sequential:
        mlp = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, d))
        torch.nn.init.zeros_(mlp[2].weight)
        torch.nn.init.zeros_(mlp[2].bias)
        return mlp

    def forward(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Text states (B, T, D) -> (states for the keys, states for the values)."""
        key = str(context.shape[-1])
        if key not in self.layers:
            raise ValueError(f"this hypernetwork was made for text states of width {list(self.layers)}, not {key}.")
        f_k, f_v = self.layers[key]
        return context + self.strength * f_k(context), context + self.strength * f_v(context)


class HypernetworkProcessor:
    """Cross-attention with the hypernetwork in front of the key and value projections."""

    def __init__(self, hypernetwork: Hypernetwork):
        self.hypernetwork = hypernetwork

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        if encoder_hidden_states is None:
            raise ValueError("the hypernetwork processor belongs on cross-attention (attn2) layers only.")
        b, n, _ = hidden_states.shape  # (B, hw, C): the U-Net's transformer blocks pass tokens, not maps
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        ctx_k, ctx_v = self.hypernetwork(encoder_hidden_states)
        heads = attn.heads
        q = attn.to_q(hidden_states).view(b, n, heads, -1).transpose(1, 2)  # (B, heads, hw, d)
        k = attn.to_k(ctx_k).view(b, ctx_k.shape[1], heads, -1).transpose(1, 2)  # (B, heads, T, d)
        v = attn.to_v(ctx_v).view(b, ctx_v.shape[1], heads, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
        out = out.transpose(1, 2).reshape(b, n, -1)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def _cross_widths(unet) -> list[int]:
    return [m.to_k.in_features for name, m in unet.named_modules() if name.endswith("attn2")]


def add_hypernetwork(unet, multiplier: int = 2, hypernetwork: Hypernetwork | None = None,
                     seed: int = 0) -> Hypernetwork:
    """Freeze the U-Net and put a hypernetwork in front of every cross-attention layer; returns it (trainable)."""
    widths = _cross_widths(unet)
    if not widths:
        raise ValueError("this U-Net has no cross-attention layers for a hypernetwork to act on.")
    unet.requires_grad_(False)
    if hypernetwork is None:
        torch.manual_seed(seed)
        hypernetwork = Hypernetwork(widths, multiplier)
    processor = HypernetworkProcessor(hypernetwork)
    unet.set_attn_processor({name: processor if name.endswith("attn2.processor") else proc
                             for name, proc in unet.attn_processors.items()})
    return hypernetwork


def remove_hypernetwork(unet) -> None:
    """Give every cross-attention layer diffusers' default processor back: the model exactly as it was."""
    unet.set_attn_processor({name: AttnProcessor2_0() if isinstance(proc, HypernetworkProcessor) else proc
                             for name, proc in unet.attn_processors.items()})


def save_hypernetwork(hypernetwork: Hypernetwork, path) -> pathlib.Path:
    """Write the hypernetwork's weights as safetensors (with its widths in the names)."""
    path = pathlib.Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"save the hypernetwork as a .safetensors file, got {path.name!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in hypernetwork.state_dict().items()}, str(path))
    return path


def load_hypernetwork(unet, path) -> Hypernetwork:
    """Read a saved hypernetwork and attach it to `unet`; a clear error if it was made for other text widths."""
    state = load_file(str(path))
    saved = sorted({int(k.split(".")[1]) for k in state})
    widths = sorted(set(_cross_widths(unet)))
    if saved != widths:
        raise ValueError(f"{pathlib.Path(path).name} was trained for text states {saved} wide, but this U-Net reads "
                         f"{widths}: it belongs to another model.")
    hidden = state[f"layers.{saved[0]}.0.0.weight"].shape[0] // saved[0]
    hypernetwork = Hypernetwork(widths, hidden)
    hypernetwork.load_state_dict(state)
    return add_hypernetwork(unet, hypernetwork=hypernetwork)
