"""Training a noise predictor from scratch, and running the reverse process with it.

Ho et al. (2020): pick a clean sample x0, a step t and noise eps; jump to
x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps; teach a network eps_theta(x_t, t) to say
which noise was added, with the loss || eps - eps_theta(x_t, t) ||^2. Reverse diffusion
then starts from pure noise and removes a little predicted noise per step.

Two noise predictors live here: a small pixel-space `UNet2DModel` (lesson 02 trains it on
32x32 procedural shapes) and a tiny MLP for 2-D points, where the whole distribution fits in
one scatter plot.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import UNet2DModel
from tqdm.auto import tqdm

from . import noising
from .unet import timestep_embedding

__all__ = [
    "make_pixel_unet",
    "train_noise_predictor",
    "training_target",
    "p_sample",
    "reverse_diffusion",
    "two_modes",
    "PointDenoiser",
]


def make_pixel_unet(image_size: int = 32, channels: tuple[int, ...] = (16, 32, 64)):
    """A small diffusers `UNet2DModel` that predicts the noise in RGB images (about 0.6 M parameters)."""
    return UNet2DModel(
        sample_size=image_size,
        in_channels=3,
        out_channels=3,
        block_out_channels=channels,
        layers_per_block=1,
        down_block_types=("DownBlock2D",) * len(channels),
        up_block_types=("UpBlock2D",) * len(channels),
        norm_num_groups=8,
    )


def train_noise_predictor(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    params,
    data: torch.Tensor,
    abar: torch.Tensor,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
    prediction_type: str = "epsilon",
) -> list[float]:
    """The DDPM training loop: noise a batch to random steps, predict the noise, regress.

    prediction_type="v_prediction" regresses v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0 instead
    (Salimans & Ho, 2022), the objective of Stable Diffusion 2's 768-pixel model.

    Args:
        model: called as model(x_t, t) -> predicted noise, same shape as x_t.
        params: the parameters to optimise.
        data: the training set, (N, ...) already scaled to the model's range.
        abar: `noising.alphas_cumprod(betas)`.
        steps, batch_size, lr: optimisation settings (AdamW with a one-cycle learning rate).
    Returns:
        The loss of every step.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    if prediction_type not in ("epsilon", "v_prediction"):
        raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {prediction_type!r}.")
    g = torch.Generator().manual_seed(seed)
    params = list(params)
    opt = torch.optim.AdamW(params, lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    losses = []
    for _ in tqdm(range(steps), desc="training", disable=not progress):
        idx = torch.randint(0, len(data), (batch_size,), generator=g)
        x0 = data[idx]
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, len(abar), (batch_size,), generator=g)
        x_t = noising.q_sample(x0, noise, t, abar)
        loss = F.mse_loss(model(x_t, t), training_target(x0, noise, t, abar, prediction_type))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def training_target(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, abar: torch.Tensor,
                    prediction_type: str = "epsilon") -> torch.Tensor:
    """What the network is trained to output: the noise itself, or v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0."""
    if prediction_type == "epsilon":
        return noise
    a = abar[t].reshape(-1, *([1] * (x0.ndim - 1)))
    return a.sqrt() * noise - (1 - a).sqrt() * x0


def p_sample(x_t: torch.Tensor, eps: torch.Tensor, t: int, betas: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """One reverse step of DDPM (Ho et al. 2020, Algorithm 2):

        x_{t-1} = 1/sqrt(alpha_t) * (x_t - beta_t / sqrt(1 - abar_t) * eps) + sigma_t * z,

    with sigma_t^2 the posterior variance beta_t (1 - abar_{t-1}) / (1 - abar_t) and no noise
    added at the last step. The first term is the drift towards the data, the second the
    random motion.
    """
    abar = noising.alphas_cumprod(betas)
    beta, a_t = betas[t].item(), abar[t].item()
    a_prev = abar[t - 1].item() if t > 0 else 1.0
    mean = (x_t - beta / math.sqrt(1 - a_t) * eps) / math.sqrt(1 - beta)
    if t == 0:
        return mean
    sigma = math.sqrt(beta * (1 - a_prev) / (1 - a_t))
    return mean + sigma * noise


@torch.no_grad()
def reverse_diffusion(model, shape, betas: torch.Tensor, generator: torch.Generator | None = None,
                      record_every: int = 0, progress: bool = True):
    """Start from pure noise and apply `p_sample` for t = T-1, ..., 0.

    Returns the final samples and, if record_every > 0, a list of (t, x_t) snapshots.
    """
    x = torch.randn(shape, generator=generator)
    trail = []
    for t in tqdm(range(len(betas) - 1, -1, -1), desc="sampling", disable=not progress):
        if record_every and t % record_every == 0:
            trail.append((t, x.clone()))
        eps = model(x, torch.full((shape[0],), t, dtype=torch.long))
        x = p_sample(x, eps, t, betas, torch.randn(shape, generator=generator))
    return x, trail


def two_modes(n: int, seed: int = 0, centers=(-2.0, 2.0), std: float = 0.25) -> torch.Tensor:
    """2-D points from two well-separated blobs: the "cats" (left) and the "dogs" (right)."""
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(0, 2, (n,), generator=g)
    xs = torch.tensor(centers)[which]
    return torch.stack([xs, torch.zeros(n)], dim=1) + std * torch.randn(n, 2, generator=g)


class PointDenoiser(nn.Module):
    """eps_theta(x_t, t) for 2-D points: an MLP fed the point and a sinusoidal embedding of t."""

    def __init__(self, hidden: int = 128, t_dim: int = 32, num_train_timesteps: int = 1000):
        super().__init__()
        self.t_dim, self.T = t_dim, num_train_timesteps
        self.net = nn.Sequential(
            nn.Linear(2 + t_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """The transformer-style sinusoidal embedding that U-Nets also use for t (`unet.timestep_embedding`)."""
        return timestep_embedding(t, self.t_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.time_embedding(t)], dim=1))
