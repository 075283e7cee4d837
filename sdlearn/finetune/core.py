"""What every customising technique shares: a few captioned pictures as latents, the noise loss, one loop.

Textual inversion, LoRA, hypernetworks, DreamBooth and a full fine-tune all minimise the same objective Stable
Diffusion was trained with, || target - unet(z_t, t, text) ||^2 on the pictures' latents; they differ only in
which numbers they let the gradient change. So this module holds that objective and the loop, and each
technique's module says what is trainable.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..eval.judged import image_size
from ..latents import encode
from ..noising import q_sample, training_target

__all__ = ["ConceptBatch", "encode_concept", "token_ids", "noise_loss", "FitResult", "fit", "count_trainable"]


@dataclass
class ConceptBatch:
    """Training pictures as the U-Net sees them: latents (N, C, h, w) and their captions' token ids (N, 77)."""

    latents: torch.Tensor
    input_ids: torch.Tensor
    captions: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.latents)


def token_ids(tokenizer, captions: list[str]) -> torch.Tensor:
    """Captions -> token ids (N, 77), padded as Stable Diffusion pads them."""
    return tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def encode_concept(parts, images: np.ndarray, captions: list[str]) -> ConceptBatch:
    """uint8 pictures (N, H, W, 3) and their captions -> a ConceptBatch (the VAE's mean latents, scaled)."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} pictures but {len(captions)} captions; give one caption per picture.")
    side = image_size(parts)
    if images.shape[1:3] != side:
        raise ValueError(f"the pictures are {images.shape[1]}x{images.shape[2]} but this model works at {side[0]}x{side[1]}; "
                         f"draw them with size_px={side[0]}.")
    latents = torch.cat([encode(parts.vae, images[i : i + 32]) for i in range(0, len(images), 32)])
    return ConceptBatch(latents, token_ids(parts.tokenizer, captions), list(captions))


def noise_loss(parts, latents: torch.Tensor, text_states: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The denoising objective on a batch: mean squared error between the U-Net's output and its target.

    z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps with t uniform over the training schedule; the target is eps,
    v or z_0 as the model's `prediction_type` says (`noising.training_target`).
    """
    abar = parts.scheduler.alphas_cumprod
    noise = torch.randn(latents.shape, generator=generator)
    t = torch.randint(0, len(abar), (latents.shape[0],), generator=generator)
    pred = parts.unet(q_sample(latents, noise, t, abar), t, encoder_hidden_states=text_states).sample
    return F.mse_loss(pred, training_target(parts.scheduler, latents, noise, t))


@dataclass
class FitResult:
    """What a fine-tune did: its loss per step, the seconds it took and the number of numbers it trained."""

    losses: list[float]
    seconds: float
    trained: int

    def loss_drop(self, window: int = 20) -> tuple[float, float]:
        """Mean loss over the first and the last `window` steps."""
        return float(np.mean(self.losses[:window])), float(np.mean(self.losses[-window:]))


def count_trainable(params) -> int:
    """How many numbers the optimiser may change."""
    return sum(p.numel() for p in params)


def fit(params: list[torch.Tensor], loss_fn, steps: int, lr: float, desc: str = "fine-tuning",
        progress: bool = True, after_step=None, weight_decay: float = 0.0) -> FitResult:
    """The loop every technique shares: AdamW on `params`, `steps` times `loss_fn(step)`, gradient clipping at 1.

    Args:
        params: the tensors to train (everything else should have requires_grad False, which makes it cheaper).
        loss_fn: step -> scalar loss tensor.
        steps: optimiser steps.
        lr: the learning rate (constant: the runs are short).
        desc: the progress bar's label.
        progress: show a progress bar.
        after_step: optional callable run after each optimiser step (textual inversion puts back the rows of
            the embedding table that must not move).
    Returns:
        A FitResult.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    if not params:
        raise ValueError("nothing to train: no parameter was given.")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    losses = []
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if after_step is not None:
            after_step()
        losses.append(float(loss.detach()))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    return FitResult(losses, time.perf_counter() - start, count_trainable(params))
