"""Capture cross-attention maps: where in the image each word of the prompt is read.

In every cross-attention layer of the U-Net, each latent pixel (a query) takes a softmax
over the 77 text positions (the keys): a probability per token. Reshaped to the layer's
resolution, one token's column is a heatmap of where that token influences the image
(Hertz et al., "Prompt-to-Prompt", 2022; Tang et al., "DAAM", 2022).

The hook uses diffusers' public attention-processor API (`unet.attn_processors` /
`set_attn_processor`), not patched `forward` methods, so it survives diffusers upgrades.
`capture_attention` is a context manager: it restores the original processors on exit and
refuses to hook a U-Net twice.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

__all__ = ["AttentionStore", "AttentionMean", "StoringAttnProcessor", "capture_attention", "heatmaps"]


class AttentionStore:
    """Cross-attention probabilities per step and layer: maps[step][layer] = (B, heads, h, w, tokens).

    With classifier-free guidance the U-Net batch holds the unconditional half first; when
    `batch_size` (the number of prompts) is known, only the text-conditioned half is kept.
    """

    def __init__(self, keep_uncond: bool = False):
        self.maps: list[dict[str, torch.Tensor]] = []
        self.keep_uncond = keep_uncond
        self.batch_size: int | None = None  # prompts per call; set by the pipeline if known

    def add(self, layer: str, probs: torch.Tensor, heads: int):
        """probs: (B * heads, h * w, T) from one layer call."""
        if not self.maps or layer in self.maps[-1]:
            self.maps.append({})  # a layer seen again means a new U-Net call: a new step
        self.maps[-1][layer] = self.per_head(probs, heads)

    def per_head(self, probs: torch.Tensor, heads: int) -> torch.Tensor:
        """(B * heads, h * w, T) -> (B, heads, h, w, T), the text-conditioned half only (see the class)."""
        bh, hw, T = probs.shape
        b = bh // heads
        side = int(math.isqrt(hw))
        p = probs.detach().float().reshape(b, heads, hw, T)
        if not self.keep_uncond and self.batch_size is not None and b == 2 * self.batch_size:
            p = p[self.batch_size :]  # [uncond, text] halves, as the pipelines batch them
        h = side if side * side == hw else hw  # non-square latents: stored flat
        w = hw // h
        return p.reshape(p.shape[0], heads, h, w, T)

    @property
    def layers(self) -> list[str]:
        return list(self.maps[0]) if self.maps else []

    def __len__(self):
        return len(self.maps)


class AttentionMean(AttentionStore):
    """A store that keeps only the running mean over heads, layers and steps, at one size.

    What `heatmaps(store, size)` computes from a full `AttentionStore`, without keeping every step
    (a full store of 25 steps for a batch of 50 prompts holds gigabytes). Square latents only.
    """

    def __init__(self, size: tuple[int, int], keep_uncond: bool = False):
        super().__init__(keep_uncond)
        self.size = size
        self.total: torch.Tensor | None = None
        self.count = 0

    def add(self, layer: str, probs: torch.Tensor, heads: int):
        x = self.per_head(probs, heads).mean(1).permute(0, 3, 1, 2)  # (B, T, h, w)
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        self.total = x if self.total is None else self.total + x
        self.count += 1

    def mean(self) -> torch.Tensor:
        """(B, T, H, W): every captured map averaged, as `heatmaps` averages them."""
        if self.total is None:
            raise ValueError("nothing captured: run the U-Net inside `with capture_attention(unet, store):` first.")
        return self.total / self.count


class StoringAttnProcessor:
    """diffusers' plain attention computation, with the softmax probabilities handed to a store.

    Written with the explicit softmax (not fused scaled-dot-product attention) because the
    probabilities are what we want to see.
    """

    def __init__(self, store: AttentionStore, name: str):
        self.store, self.name = store, name

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)  # (B, hw, C)
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape)
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        is_cross = encoder_hidden_states is not None
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        query = attn.head_to_batch_dim(query)  # (B * heads, hw, d)
        key = attn.head_to_batch_dim(key)  # (B * heads, T, d)
        value = attn.head_to_batch_dim(value)
        probs = attn.get_attention_scores(query, key, attention_mask)  # (B * heads, hw, T), softmax over T
        if is_cross:
            self.store.add(self.name, probs, attn.heads)
        hidden_states = torch.bmm(probs, value)
        hidden_states = attn.batch_to_head_dim(hidden_states)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


@contextlib.contextmanager
def capture_attention(unet, store: AttentionStore | None = None, batch_size: int | None = None):
    """Record every cross-attention layer's probabilities while the block runs.

    Usage:
        with capture_attention(parts.unet) as store:
            text_to_image(parts, "a red circle")
        maps = heatmaps(store, size=(64, 64))
    """
    if getattr(unet, "_sdlearn_attention_hooked", False):
        raise RuntimeError("this U-Net is already being captured; leave the first `with capture_attention(...)` "
                           "block before starting another.")
    store = store if store is not None else AttentionStore()
    if batch_size is not None:
        store.batch_size = batch_size
    original = unet.attn_processors
    hooked = {name: (StoringAttnProcessor(store, name.rsplit(".processor", 1)[0]) if name.endswith("attn2.processor")
                     else proc) for name, proc in original.items()}
    if not any(isinstance(p, StoringAttnProcessor) for p in hooked.values()):
        raise ValueError("this U-Net has no cross-attention layers (attn2) to capture.")
    unet.set_attn_processor(hooked)
    unet._sdlearn_attention_hooked = True
    try:
        yield store
    finally:
        unet.set_attn_processor(original)
        unet._sdlearn_attention_hooked = False


def heatmaps(store: AttentionStore, size: tuple[int, int], steps=None, layers=None) -> torch.Tensor:
    """Average the captured maps over heads, the chosen layers and steps, at image resolution.

    Returns (B, T, H, W): for each prompt and each of the 77 token positions, a heatmap whose
    pixels sum over tokens to 1 (each pixel's attention is a distribution over tokens).
    """
    if not store.maps:
        raise ValueError("the store is empty: run the U-Net inside `with capture_attention(unet) as store:` first.")
    step_ids = range(len(store.maps)) if steps is None else steps
    total, count = None, 0
    for s in step_ids:
        for layer, m in store.maps[s].items():
            if layers is not None and layer not in layers:
                continue
            x = m.mean(1).permute(0, 3, 1, 2)  # (B, T, h, w)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            total = x if total is None else total + x
            count += 1
    if count == 0:
        raise ValueError(f"no maps matched layers={layers}; available: {store.layers}")
    return total / count
