"""Stage 3: the text-to-image U-Net; and the loop all three U-Nets (text-to-image, depth, inpainting) train with."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from transformers import CLIPTextModel

from .. import tinysd
from .captions import drop_attribute
from .config import EMPTY_CAPTION_RATE, Run, UNetStage
from .data import encode_captions, encode_latents, make_scenes, tokenize, with_colour_boost
from .grounding import GroundingStore, grounding_loss, grounding_processors, object_coverage, word_indicators
from .loop import EMA, final_folder, final_loss, log_time, run_stage
from .losses import unet_loss

__all__ = ["train_unet", "train_text_conditioned_unet", "ramp", "schedule", "curriculum_draw", "frozen_encoders", "partial_or_empty", "alternative_or_empty",
           "CAPTION", "ALTERNATIVE", "EMPTY"]

# picks each sample's text states: (indices of the batch's scenes, generator) -> (states (B, 77, D), which (B,)),
# where `which` says what each sample got: CAPTION, ALTERNATIVE (partial or hole caption) or EMPTY.
PickStates = Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
CAPTION, ALTERNATIVE, EMPTY = 0, 1, 2


def frozen_encoders(out) -> tuple[AutoencoderKL, CLIPTextModel]:
    """The run's trained VAE and CLIP text encoder, in eval mode: they stay frozen while a U-Net trains."""
    vae = AutoencoderKL.from_pretrained(final_folder(out, "vae")).eval()
    text_encoder = CLIPTextModel.from_pretrained(final_folder(out, "clip")).eval()
    return vae, text_encoder


def partial_or_empty(text_states, partial_states, empty, partial_rate: float) -> PickStates:
    """Each sample gets the empty prompt with probability EMPTY_CAPTION_RATE (for classifier-free guidance), its
    partial caption (one attribute left out) with probability `partial_rate`, else its caption. One uniform draw
    per sample decides both."""

    def pick(idx, g):
        u = torch.rand(len(idx), generator=g)
        partial = u < EMPTY_CAPTION_RATE + partial_rate
        states = torch.where(partial.view(-1, 1, 1), partial_states[idx], text_states[idx])
        states[u < EMPTY_CAPTION_RATE] = empty
        which = torch.where(u < EMPTY_CAPTION_RATE, EMPTY, torch.where(partial, ALTERNATIVE, CAPTION))
        return states, which

    return pick


def alternative_or_empty(text_states, empty, alt_states=None, has_alt=None, alt_rate: float = 0.0) -> PickStates:
    """Each sample gets its caption; if it has an alternative one (`has_alt`), that instead with probability
    `alt_rate` (one draw per sample, only when `alt_states` is given); then, whatever it got, the empty prompt
    with probability EMPTY_CAPTION_RATE (a second draw)."""

    def pick(idx, g):
        states = text_states[idx].clone()
        which = torch.full((len(idx),), CAPTION)
        if alt_states is not None:
            use = has_alt[idx] & (torch.rand(len(idx), generator=g) < alt_rate)
            states[use] = alt_states[idx][use]
            which[use] = ALTERNATIVE
        empty_now = torch.rand(len(idx), generator=g) < EMPTY_CAPTION_RATE
        states[empty_now] = empty
        which[empty_now] = EMPTY
        return states, which

    return pick


def ramp(start: float, end: float, steps: int) -> Callable[[int], float]:
    """step -> the value on the straight line from `start` at step 0 to `end` at the last step."""
    return lambda step: start + (end - start) * min(step, steps - 1) / max(1, steps - 1)


def schedule(start: float, end: float | None, steps: int) -> float | Callable[[int], float]:
    """A stage value with an optional curriculum: `start` itself when there is none (`end` None or equal to it),
    else `ramp(start, end, steps)`."""
    return start if end is None or end == start else ramp(start, end, steps)


def curriculum_draw(is_two: list[bool], batch: int, p_two: Callable[[int], float]):
    """draw(step, g) -> a batch of scene indices, each from the two-object scenes with probability p_two(step),
    else from the one-object scenes (uniform within each pool)."""
    is_two = torch.tensor(is_two)
    two, one = torch.nonzero(is_two).flatten(), torch.nonzero(~is_two).flatten()
    if len(two) == 0 or len(one) == 0:
        raise ValueError("a two-object curriculum needs both one- and two-object scenes; check --p-two and --p-two-end.")

    def draw(step, g):
        from_two = torch.rand(batch, generator=g) < p_two(step)
        return torch.where(from_two, two[torch.randint(len(two), (batch,), generator=g)],
                           one[torch.randint(len(one), (batch,), generator=g)])

    return draw


def train_text_conditioned_unet(stage, run: Run, accelerator, unet, latents, scale: float, pick_states: PickStates,
                                extra_fn=None, weight_fn=None, x0_fn=None, x0_weight: float = 0.0,
                                grounding=None, draw_indices=None) -> None:
    """Train `unet` (its initial weights) with `unet_loss` and keep an EMA of its weights, saved as the stage's model.

    Each step draws, from one generator and in this order: the batch's scene indices `idx`; the latent
    noise (latents are sampled afresh from each scene's distribution); whatever `pick_states(idx, g)`
    draws to choose the text states; whatever `extra_fn(idx, g)` draws; then `unet_loss`'s noise and timesteps.

    Args:
        stage: the stage's config (`UNetStage`, `DepthUNetStage` or `InpaintUNetStage`).
        run: the run's config.
        accelerator: this stage's `accelerate.Accelerator`.
        unet: the initial U-Net, its input channels = latent channels + extra channels.
        latents: (mean, std) of every scene's latent distribution (N, 4, h, w), see `encode_latents`.
        scale: the VAE's scaling factor.
        pick_states: see `partial_or_empty` and `alternative_or_empty`.
        extra_fn: `extra_fn(idx, g)` -> the extra input channels of the batch (B, C, h, w), or None.
        weight_fn: `weight_fn(idx)` -> per-position loss weights (B, 1, h, w), or None (see `unet_loss`).
        x0_fn: `x0_fn(idx)` -> positions (B, 1, h, w) whose clean-latent error counts `x0_weight`, or None.
        grounding: None, or (weight, coverage (N, 2, h, w), words (N, 2 captions, 2 objects, 77)): adds
            `weight` times `grounding_loss` on the cross-attention maps (words of the caption, or of the
            alternative caption, each sample was given; none for the empty prompt). `weight` may be a function
            of the step (a curriculum).
        draw_indices: `draw_indices(step, g)` -> the batch's scene indices (B,), or None: uniform over the scenes.
    """
    mean, std = latents
    abar = tinysd.shipped_scheduler().alphas_cumprod
    ema = EMA(unet, stage.ema_decay)
    g = torch.Generator().manual_seed(run.seed + stage.generator_seed + accelerator.process_index)
    store = None
    if grounding is not None:
        store = GroundingStore()
        unet.set_attn_processor(grounding_processors(unet, store))

    def step_fn(m, step):
        if draw_indices is None:
            idx = torch.randint(0, len(mean), (stage.batch,), generator=g)
        else:
            idx = draw_indices(step, g)
        latents = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * scale
        states, which = pick_states(idx, g)
        if store is not None:
            store.clear()
        loss = unet_loss(m, latents, states, abar, g, extra=None if extra_fn is None else extra_fn(idx, g),
                         weight_map=None if weight_fn is None else weight_fn(idx),
                         x0_map=None if x0_fn is None else x0_fn(idx), x0_weight=x0_weight)
        shown = loss.item()
        if store is not None:
            weight, coverage, words = grounding
            weight = weight(step) if callable(weight) else weight
            given = words[idx, which.clamp(max=ALTERNATIVE)]  # (B, 2, 77): the words of the caption each got
            loss = loss + weight * grounding_loss(store, coverage[idx], given, (which != EMPTY).float())
        if step > 0:
            ema.update(accelerator.unwrap_model(m), step)
        return loss, shown

    t0 = time.time()
    unet, losses = run_stage(stage, run, accelerator, unet, step_fn, extra_state=(ema,))
    ema.update(unet, stage.steps)
    if store is not None:
        ema.shadow.set_attn_processor(AttnProcessor2_0())  # diffusers' default, as the U-Net is loaded
    ema.shadow.save_pretrained(final_folder(run.out, stage.name))
    log_time(run.out, stage.name, time.time() - t0, final_loss=final_loss(losses, stage.loss_window))


def train_unet(run: Run, stage: UNetStage, accelerator, tokenizer) -> None:
    """Train TinySD's text-to-image U-Net on the frozen VAE's latents and text encoder's states; save its EMA
    to `<out>/unet/final`."""
    # With a two-object curriculum the scenes are made at the larger share and each step draws from the two pools.
    p_two = stage.p_two if stage.p_two_end is None else max(stage.p_two, stage.p_two_end)
    if not 0 < stage.ramp_fraction <= 1:
        raise ValueError(f"--ramp-fraction must be in (0, 1], got {stage.ramp_fraction}.")
    ramp_steps = max(1, round(stage.steps * stage.ramp_fraction))  # then the end values hold to the last step
    scenes = make_scenes(stage.n_scenes, seed=run.seed + stage.data_seed, p_two=p_two)
    scenes = with_colour_boost(scenes, stage.boost_colour, stage.boost_share, run.seed + stage.data_seed, p_two)
    # Without a curriculum (end values None or equal to the start) the constant code path runs, as before one existed.
    share = schedule(stage.p_two, stage.p_two_end, ramp_steps)
    draw_indices = curriculum_draw([len(s.objects) == 2 for s in scenes], stage.batch, share) if callable(share) else None
    images, captions = np.stack([s.image for s in scenes]), [s.caption for s in scenes]
    vae, text_encoder = frozen_encoders(run.out)
    # Encode every image once: the latent distribution's mean and std, sampled afresh each step.
    latents = encode_latents(vae, images, disable=not accelerator.is_main_process)
    text_states = encode_captions(text_encoder, tokenize(tokenizer, captions))
    # Every image also gets a caption with one attribute left out (colour 2/3, shape 1/3 of the time);
    # a step uses it for `stage.partial_captions` of its samples.
    rng = np.random.default_rng(run.seed + stage.partial_seed)
    partial = [drop_attribute(c, rng, "colour" if rng.random() < stage.partial_colour_rate else "shape") for c in captions]
    partial_states = encode_captions(text_encoder, tokenize(tokenizer, partial), desc="encoding partial captions")
    empty = encode_captions(text_encoder, tokenize(tokenizer, [""]), desc="encoding the empty prompt")
    grounding = None
    if stage.grounding_weight > 0 or (stage.grounding_weight_end or 0) > 0:
        words = torch.stack([word_indicators(scenes, captions, tokenizer), word_indicators(scenes, partial, tokenizer)], 1)
        weight = schedule(stage.grounding_weight, stage.grounding_weight_end, ramp_steps)
        grounding = (weight, object_coverage(scenes, latents[0].shape[-1]), words)
    del scenes
    torch.manual_seed(run.seed + stage.init_seed)
    unet = tinysd.make_unet() if stage.init is None else UNet2DConditionModel.from_pretrained(stage.init)
    train_text_conditioned_unet(stage, run, accelerator, unet, latents, vae.config.scaling_factor,
                                partial_or_empty(text_states, partial_states, empty, stage.partial_captions),
                                grounding=grounding, draw_indices=draw_indices)
