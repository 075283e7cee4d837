"""The forward diffusion process: beta schedules and the closed-form jump q(x_t | x_0).

Ho et al., "Denoising Diffusion Probabilistic Models" (2020). One step of the forward
process adds a little Gaussian noise,

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) * x_{t-1}, beta_t * I),

and because Gaussians compose, any step can be reached from the clean image in one jump,

    q(x_t | x_0) = N(sqrt(abar_t) * x_0, (1 - abar_t) * I),   abar_t = prod_{s<=t} (1 - beta_s).

The names follow diffusers (`alphas_cumprod`, `add_noise`) and the paper (`q_sample`) so a
learner can move straight on to either. Timesteps are 0-based, as in diffusers: t = 0 is the
first noising step and t = T - 1 the last.
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "SCHEDULES",
    "make_betas",
    "alphas_cumprod",
    "rescale_zero_terminal_snr",
    "q_sample",
    "add_noise",
    "q_step",
    "snr",
    "signal_coefficient",
    "x0_from_noise",
    "training_target",
]

SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


def make_betas(
    schedule: str = "scaled_linear",
    num_train_timesteps: int = 1000,
    beta_start: float = 0.00085,
    beta_end: float = 0.012,
) -> torch.Tensor:
    """The per-step noise variances beta_t, as float32, for one of three schedules.

    - "linear": evenly spaced from beta_start to beta_end (DDPM used 1e-4 to 0.02).
    - "scaled_linear": evenly spaced in sqrt(beta), then squared. With 0.00085 to 0.012
      over 1000 steps this is exactly Stable Diffusion v1's schedule.
    - "squaredcos_cap_v2": the cosine schedule of Nichol & Dhariwal (2021), defined through
      abar(t) = cos^2(((t / T) + 0.008) / 1.008 * pi / 2), each beta capped at 0.999.
      beta_start and beta_end are ignored.

    Args:
        schedule: one of `SCHEDULES` ("cosine" is accepted as a name for the cosine one).
        num_train_timesteps: T, the number of forward steps.
        beta_start, beta_end: the first and last beta for the two linear schedules.
    """
    if schedule == "cosine":
        schedule = "squaredcos_cap_v2"
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown schedule {schedule!r}; choose one of {SCHEDULES} (or 'cosine').")
    if num_train_timesteps < 1:
        raise ValueError(f"num_train_timesteps must be at least 1, got {num_train_timesteps}.")
    T = num_train_timesteps
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float32)
    if schedule == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float32) ** 2

    def abar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)]
    return torch.tensor(betas, dtype=torch.float32)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """abar_t = prod_{s<=t} (1 - beta_s): the fraction of the signal's variance left at step t."""
    return torch.cumprod(1.0 - betas, dim=0)


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Rescale a schedule so that its last step keeps exactly zero signal.

    Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed" (2023), Algorithm 1:
    shift and scale sqrt(abar) so that it keeps its first value and ends at 0.
    """
    sqrt_abar = alphas_cumprod(betas).sqrt()
    first, last = sqrt_abar[0].clone(), sqrt_abar[-1].clone()
    sqrt_abar = (sqrt_abar - last) * first / (first - last)
    abar = sqrt_abar**2
    alphas = torch.cat([abar[:1], abar[1:] / abar[:-1]])
    return 1 - alphas


def _expand(coef: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample coefficient (B,) so it broadcasts against x (B, ...)."""
    return coef.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def _as_timesteps(t, n: int) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=torch.long)
    if t.ndim == 0:
        t = t.expand(n)
    return t


def q_sample(x0: torch.Tensor, noise: torch.Tensor, t, abar: torch.Tensor) -> torch.Tensor:
    """Jump straight to step t: x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise.

    Args:
        x0: clean samples, (B, ...).
        noise: standard Gaussian noise of the same shape.
        t: an int or a (B,) tensor of 0-based timesteps.
        abar: `alphas_cumprod(betas)`, shape (T,).
    """
    if x0.shape != noise.shape:
        raise ValueError(f"x0 {tuple(x0.shape)} and noise {tuple(noise.shape)} must have the same shape.")
    t = _as_timesteps(t, x0.shape[0])
    if int(t.min()) < 0 or int(t.max()) >= len(abar):
        raise ValueError(f"Timesteps must lie in [0, {len(abar) - 1}], got {t.min().item()}..{t.max().item()}.")
    a = abar.to(x0.device)[t.to(x0.device)]
    return _expand(a.sqrt(), x0) * x0 + _expand((1 - a).sqrt(), x0) * noise


def add_noise(original_samples: torch.Tensor, noise: torch.Tensor, timesteps, abar: torch.Tensor) -> torch.Tensor:
    """`q_sample` under diffusers' name and argument order (`scheduler.add_noise`)."""
    return q_sample(original_samples, noise, timesteps, abar)


def q_step(x_prev: torch.Tensor, t: int, betas: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One forward step: x_t = sqrt(1 - beta_t) * x_{t-1} + sqrt(beta_t) * fresh noise."""
    beta = betas[t].item()
    noise = torch.randn(x_prev.shape, generator=generator, dtype=x_prev.dtype)
    return math.sqrt(1 - beta) * x_prev + math.sqrt(beta) * noise


def snr(abar: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio per step, abar_t / (1 - abar_t)."""
    return abar / (1 - abar)


def signal_coefficient(abar: torch.Tensor) -> torch.Tensor:
    """sqrt(abar_t): how much of the original image is still in x_t.

    For unit-variance data this is also the correlation between x_0 and x_t.
    """
    return abar.sqrt()


def x0_from_noise(scheduler, latents: torch.Tensor, noise_pred: torch.Tensor, t) -> torch.Tensor:
    """The clean sample a U-Net output implies, read with the scheduler's `prediction_type`.

    epsilon: x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), `q_sample` solved for x0 (Ho et al. eq. 15;
    lucidrains' `predict_start_from_noise`). v_prediction (SD 2.x-768): v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0,
    so x0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v (Salimans & Ho 2022). sample: the output is x0. It holds for
    variance-preserving latents, as DDIM, DDPM and PNDM keep them; `scheduler` is any diffusers scheduler with
    `alphas_cumprod`.
    """
    a = scheduler.alphas_cumprod[int(t)].to(latents.dtype)
    kind = getattr(scheduler.config, "prediction_type", "epsilon")
    if kind == "epsilon":
        return (latents - (1 - a).sqrt() * noise_pred) / a.sqrt()
    if kind == "v_prediction":
        return a.sqrt() * latents - (1 - a).sqrt() * noise_pred
    if kind == "sample":
        return noise_pred
    raise ValueError(f"unknown prediction_type {kind!r}; expected epsilon, v_prediction or sample.")


def training_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
    """What the U-Net is trained to output for x_t = q_sample(latents, noise, t), by `prediction_type`.

    epsilon (SD 1.x, SD 2.x-base): the noise itself. v_prediction (SD 2.x-768): v = sqrt(abar_t) eps -
    sqrt(1 - abar_t) x0 (diffusers' `scheduler.get_velocity`). sample: x0. The training loss is the mean squared
    error between this target and the U-Net's output.
    """
    kind = getattr(scheduler.config, "prediction_type", "epsilon")
    if kind == "epsilon":
        return noise
    if kind == "sample":
        return latents
    if kind == "v_prediction":
        a = scheduler.alphas_cumprod.to(latents.device)[_as_timesteps(t, latents.shape[0])]
        return _expand(a.sqrt(), latents) * noise - _expand((1 - a).sqrt(), latents) * latents
    raise ValueError(f"unknown prediction_type {kind!r}; expected epsilon, v_prediction or sample.")
