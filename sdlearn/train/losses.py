"""The training objectives: CLIP's contrastive loss, the VAE's reconstruction loss, the U-Net's noise loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..noising import q_sample, snr

__all__ = ["clip_loss", "word_identity_loss", "edge_weights", "vae_loss", "locality_gap", "unet_loss", "controlnet_loss"]


def clip_loss(model, pixels: torch.Tensor, input_ids: torch.Tensor, negative_ids: torch.Tensor | None = None,
              return_text_states: bool = False):
    """Symmetric cross-entropy over the batch's image-text similarity matrix.

    Row i should pick caption i among all captions in the batch (the in-batch negatives), and
    column i image i. `negative_ids` are extra captions that match no image in the batch (hard
    negatives, see `swap_attribute`); each image must also rank its caption above all of them.

    Args:
        model: a `CLIPModel`.
        pixels: images (B, 3, H, W) in [-1, 1].
        input_ids: their captions' token ids (B, 77).
        negative_ids: optional extra captions' token ids (K, 77).
        return_text_states: also return the text tower's output states of the B captions (B, 77, D).
    Returns:
        The loss, a scalar tensor (and the states).
    """
    n = len(input_ids)
    texts = input_ids if negative_ids is None else torch.cat([input_ids, negative_ids])
    out = model(input_ids=texts, pixel_values=pixels)
    logits = out.logits_per_image  # (B, B + negatives), already multiplied by the learned temperature
    target = torch.arange(n)
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits[:, :n].T, target)) / 2
    if return_text_states:
        return loss, out.text_model_output.last_hidden_state[:n]
    return loss


def word_identity_loss(states: torch.Tensor, input_ids: torch.Tensor, head: torch.nn.Module,
                       word_index: torch.Tensor) -> torch.Tensor:
    """Every word's output state must name its word: cross-entropy of a linear `head` over the known words.

    CLIP's contrastive loss reads only the end token's state, so nothing asks the other positions' states to
    keep the word that stands there; a small text encoder then loses it (TinySD v0.4: the second object's
    colour could be read back from its own word's state about as often as by chance). Stable Diffusion's
    U-Net reads exactly those states, so this term keeps them.

    Args:
        states: the text tower's output states (B, 77, D), as the U-Net receives them.
        input_ids: their token ids (B, 77).
        head: a linear layer D -> number of known words.
        word_index: (vocabulary size,) each token id's class, -100 for tokens left out (start, end, padding).
    Returns:
        The loss, a scalar tensor.
    """
    return F.cross_entropy(head(states).flatten(0, 1), word_index[input_ids].flatten(), ignore_index=-100)


def edge_weights(pixels: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-pixel loss weights: 1 + `strength` within a pixel or two of an edge of the target.

    In a 64x64 scene most pixels are flat background, so a plain mean squared error hardly
    notices when the corners of a small square come out round; weighting the few pixels at
    edges makes the outline count.

    Args:
        pixels: target images (B, 3, H, W) in [-1, 1].
        strength: the extra weight at edges, >= 0.
    Returns:
        Weights (B, 1, H, W).
    """
    if strength < 0:
        raise ValueError(f"strength is an extra weight and must be >= 0 (0 turns it off), got {strength}.")
    dx = (pixels[..., :, 1:] - pixels[..., :, :-1]).abs().amax(1, keepdim=True)
    dy = (pixels[..., 1:, :] - pixels[..., :-1, :]).abs().amax(1, keepdim=True)
    grad = F.pad(dx, (0, 1)) + F.pad(dx, (1, 0)) + F.pad(dy, (0, 0, 0, 1)) + F.pad(dy, (0, 0, 1, 0))
    edge = F.max_pool2d((grad > 0.1).float(), 3, stride=1, padding=1)
    return 1 + strength * edge


def vae_loss(vae, pixels: torch.Tensor, generator: torch.Generator, kl_weight: float = 1e-6, edge_weight: float = 0.0,
             holes: torch.Tensor | None = None, local_weight: float = 0.0):
    """Reconstruction MSE plus a tiny KL pull towards N(0, I), as in Stable Diffusion's KL-f8 VAE.

    With `edge_weight` > 0 the squared error is weighted towards edges (see `edge_weights`), a
    cheap stand-in for the perceptual loss Stable Diffusion's VAE was trained with, which keeps
    outlines sharp. With `local_weight` > 0 and `holes` it adds `local_weight` x `locality_gap`:
    how much cutting each hole out moves the latents outside it.

    Args:
        vae: an `AutoencoderKL`.
        pixels: images (B, 3, H, W) in [-1, 1].
        generator: draws the latent sample from the encoder's distribution.
        kl_weight: weight of the KL term (per pixel value).
        edge_weight: extra weight of the squared error at edges (0: plain MSE).
        holes: masks (B, 1, H, W), 1 = hole; needed when `local_weight` > 0.
        local_weight: weight of the locality term (0: off).
    Returns:
        (loss to minimise, plain MSE to report), scalar tensors.
    """
    posterior = vae.encode(pixels).latent_dist
    z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
    recon = vae.decode(z).sample
    err = (recon.float() - pixels) ** 2
    mse = err.mean()
    rec = mse
    if edge_weight > 0:
        w = edge_weights(pixels, edge_weight)
        rec = (err * w).mean() / w.mean()
    kl = posterior.kl().mean() / pixels[0].numel()
    loss = rec + kl_weight * kl
    if local_weight > 0:
        if holes is None:
            raise ValueError("local_weight > 0 needs `holes`, masks (B, 1, H, W) with 1 where the hole is.")
        loss = loss + local_weight * locality_gap(vae, pixels, holes, posterior.mean.detach())
    return loss, mse


def locality_gap(vae, pixels: torch.Tensor, holes: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """Mean squared change of the latents outside the holes when the holes are cut out (grey, as
    diffusers' inpainting pipeline cuts them), relative to the latents' mean square.

    An inpainting U-Net sees the outside only through the cut-out image's latents; the smaller this gap,
    the closer they are to the image's own, the ones it has to reproduce there.

    Args:
        vae: an `AutoencoderKL`.
        pixels: images (B, 3, H, W) in [-1, 1].
        holes: masks (B, 1, H, W), 1 = hole.
        latents: the encoder's means for the whole `pixels` (B, C, h, w).
    Returns:
        The relative gap, a scalar tensor.
    """
    cut = vae.encode(pixels * (holes < 0.5)).latent_dist.mean.float()
    latents = latents.float()
    keep = 1 - F.interpolate(holes, size=latents.shape[-2:])
    gap = ((cut - latents) ** 2 * keep).sum() / (keep.sum() * latents.shape[1]).clamp_min(1.0)
    return gap / latents.pow(2).mean()


def unet_loss(unet, latents, text_states, abar, generator, extra=None, min_snr_gamma: float | None = 5.0,
              weight_map: torch.Tensor | None = None, x0_map: torch.Tensor | None = None, x0_weight: float = 0.0):
    """The epsilon-prediction objective on latents: || eps - eps_theta(z_t, t, text) ||^2.

    `extra` holds conditioning channels appended to the noisy latents (depth, or mask and
    masked-image latents for inpainting), in the order diffusers' pipelines append them.

    With `min_snr_gamma` each sample's loss is weighted by min(SNR, gamma) / SNR, where
    SNR = abar / (1 - abar) (Min-SNR weighting, Hang et al. 2023). Nearly clean latents
    (high SNR) then count less, and the noisy steps where layout and colour are decided
    count fully; the paper reports faster convergence (not measured separately here). None
    gives the plain mean.

    `weight_map` (B, 1, h, w), if given, weights the squared error of each latent position
    (normalised to mean 1 per sample), e.g. to stress the region an inpainting model must keep.

    `x0_map` (B, 1, h, w) of 0/1 and `x0_weight` add `x0_weight` times the squared error of the
    clean latents the prediction implies, x0 = (z_t - sqrt(1 - abar) eps) / sqrt(abar), over the
    positions marked 1. That error is the noise error / sqrt(SNR): at high noise a tiny noise
    error is a large x0 error, which the epsilon loss barely sees. An inpainting model should copy
    the outside of the hole from the very first, noisiest step; its training adds this term there.

    Args:
        unet: a `UNet2DConditionModel`.
        latents: clean (scaled) latents (B, 4, h, w).
        text_states: the text encoder's hidden states (B, 77, D).
        abar: the schedule's alphas_cumprod (T,).
        generator: draws the noise, then the timesteps.
        extra, min_snr_gamma, weight_map, x0_map, x0_weight: see above.
    Returns:
        The loss, a scalar tensor.
    """
    noise = torch.randn(latents.shape, generator=generator)
    t = torch.randint(0, len(abar), (latents.shape[0],), generator=generator)
    noisy = q_sample(latents, noise, t, abar)
    if extra is not None:
        noisy = torch.cat([noisy, extra], dim=1)
    pred = unet(noisy, t, encoder_hidden_states=text_states).sample
    err = F.mse_loss(pred, noise, reduction="none")
    snr_t = snr(abar[t])
    x0_loss = 0.0
    if x0_map is not None:
        if x0_map.shape != (err.shape[0], 1, *err.shape[2:]):
            raise ValueError(f"x0_map must have shape {(err.shape[0], 1, *err.shape[2:])}, got {tuple(x0_map.shape)}.")
        x0_err = err / snr_t.view(-1, 1, 1, 1) * x0_map
        x0_loss = x0_weight * x0_err.sum() / (x0_map.sum() * err.shape[1]).clamp(min=1)
    if weight_map is not None:
        if weight_map.shape != (err.shape[0], 1, *err.shape[2:]):
            raise ValueError(f"weight_map must have shape {(err.shape[0], 1, *err.shape[2:])} (batch, 1, latent "
                             f"height, latent width), got {tuple(weight_map.shape)}.")
        err = err * (weight_map / weight_map.mean(dim=(1, 2, 3), keepdim=True))
    per_sample = err.mean(dim=(1, 2, 3))
    if min_snr_gamma is None:
        return per_sample.mean() + x0_loss
    weight = snr_t.clamp(max=min_snr_gamma) / snr_t
    return (per_sample * weight).mean() + x0_loss


def controlnet_loss(controlnet, unet, latents: torch.Tensor, text_states: torch.Tensor, condition: torch.Tensor,
                    abar: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The ControlNet's objective: the frozen U-Net's noise error when the ControlNet's residuals are added.

    The same noise prediction loss as `unet_loss`, but the ControlNet reads the noisy latents, the timestep, the
    text and the condition picture and returns one residual per skip connection of the U-Net's encoder and one
    for its middle block; the U-Net adds them and predicts the noise. Gradients flow through the frozen U-Net
    into the ControlNet only.

    Args:
        controlnet: a `ControlNetModel`.
        unet: the frozen `UNet2DConditionModel` it controls.
        latents: clean (scaled) latents (B, 4, h, w).
        text_states: the text encoder's hidden states (B, 77, D).
        condition: the condition pictures (B, 3, H, W) in [0, 1], H = h times the VAE factor.
        abar: the schedule's alphas_cumprod (T,).
        generator: draws the noise, then the timesteps.
    Returns:
        The loss, a scalar tensor.
    """
    noise = torch.randn(latents.shape, generator=generator)
    t = torch.randint(0, len(abar), (latents.shape[0],), generator=generator)
    noisy = q_sample(latents, noise, t, abar)
    down, mid = controlnet(noisy, t, encoder_hidden_states=text_states, controlnet_cond=condition, return_dict=False)
    pred = unet(noisy, t, encoder_hidden_states=text_states, down_block_additional_residuals=down,
                mid_block_additional_residual=mid).sample
    return F.mse_loss(pred, noise)
