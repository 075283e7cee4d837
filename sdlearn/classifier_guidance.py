"""Classifier guidance (Dhariwal & Nichol, "Diffusion Models Beat GANs on Image Synthesis", 2021).

Before classifier-free guidance, a conditional image came from an *unconditional* diffusion model
steered by a separate classifier p(y | x_t) trained on noisy inputs: at every step the noise estimate
is pushed along the gradient of log p(y | x_t),

    eps' = eps - scale * sqrt(1 - abar_t) * grad_{x_t} log p(y | x_t),

so each step moves towards images the classifier calls y. Lesson 09 trains such a classifier on
TinySD's latents and compares the result with classifier-free guidance, which needs no classifier.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .images import to_uint8
from .latents import decode_latents
from .noising import q_sample
from .text import encode_prompt
from .unet import timestep_embedding

__all__ = ["NoisyLatentClassifier", "train_latent_classifier", "classifier_guided_noise",
           "sample_with_classifier_guidance"]

class NoisyLatentClassifier(torch.nn.Module):
    """p(y | z_t, t): a small convolutional classifier that reads *noisy* latents.

    Classifier guidance needs a classifier that still works on noisy inputs, because it is
    asked at every step of sampling; so it is trained on latents noised to random steps.
    """

    def __init__(self, num_classes: int, in_channels: int = 4, width: int = 64, t_dim: int = 32):
        super().__init__()
        self.t_dim = t_dim
        self.conv = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, width, 3, padding=1), torch.nn.SiLU(),
            torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.SiLU(),
        )
        self.t_proj = torch.nn.Linear(t_dim, width)
        self.head = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(width, num_classes))

    def forward(self, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t_emb = timestep_embedding(t, self.t_dim).expand(z_t.shape[0], -1)  # (B, t_dim)
        h = self.conv(z_t).mean(dim=(2, 3)) + self.t_proj(t_emb)  # (B, width)
        return self.head(h)


def train_latent_classifier(latents: torch.Tensor, labels: torch.Tensor, num_classes: int, alphas_cumprod: torch.Tensor,
                            steps: int = 400, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                            progress: bool = True) -> NoisyLatentClassifier:
    """Train `NoisyLatentClassifier` on clean latents noised to uniformly random steps."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = NoisyLatentClassifier(num_classes, latents.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in tqdm(range(steps), desc="training the classifier", disable=not progress):
        idx = torch.randint(0, len(latents), (batch_size,), generator=g)
        t = torch.randint(0, len(alphas_cumprod), (batch_size,), generator=g)
        z_t = q_sample(latents[idx], torch.randn(latents[idx].shape, generator=g), t, alphas_cumprod)
        loss = F.cross_entropy(model(z_t, t), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def classifier_guided_noise(noise_pred: torch.Tensor, z_t: torch.Tensor, t, classifier, label: int,
                            scale: float, alphas_cumprod: torch.Tensor, prediction_type: str = "epsilon"
                            ) -> torch.Tensor:
    """eps' = eps - scale * sqrt(1 - abar_t) * grad_z log p(label | z_t): nudge the noise estimate so the
    step moves towards latents the classifier calls `label`.

    For a v-prediction U-Net (v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0, at fixed x_t) the same shift of eps is
    a shift of v by the shift / sqrt(abar_t); `prediction_type` is the scheduler's `config.prediction_type`.
    """
    if prediction_type not in ("epsilon", "v_prediction"):
        raise ValueError(f"classifier guidance is written for epsilon or v prediction, not {prediction_type!r}.")
    with torch.enable_grad():
        z = z_t.detach().requires_grad_(True)
        t_tensor = torch.as_tensor(t).reshape(1)
        log_p = torch.log_softmax(classifier(z, t_tensor), dim=-1)[:, label].sum()
        grad = torch.autograd.grad(log_p, z)[0]
    a = alphas_cumprod[int(t)]
    shift = scale * (1 - a).sqrt() * grad
    return noise_pred - (shift / a.sqrt() if prediction_type == "v_prediction" else shift)


@torch.no_grad()
def sample_with_classifier_guidance(parts, classifier, label: int, scale: float, n: int = 8, num_inference_steps: int = 25,
                                    seed: int = 0, progress: bool = True):
    """Generate with the *unconditional* U-Net (empty prompt) steered only by a noisy-latent classifier.

    Returns uint8 images (n, H, W, 3). The classifier reads x_t in the variance-preserving (DDPM) scale, so
    parts.scheduler must keep that scale (DDIM, DDPM, PNDM; not Euler's sigma-scaled latents).
    """
    if float(parts.scheduler.init_noise_sigma) != 1.0:
        raise ValueError(f"{type(parts.scheduler).__name__} scales the latents by sigma; the classifier was trained on "
                         "variance-preserving latents. Use swap_scheduler(parts, 'ddim').")
    empty, _ = encode_prompt([""] * n, parts.tokenizer, parts.text_encoder, do_classifier_free_guidance=False)
    side = parts.unet.config.sample_size
    latents = torch.randn((n, parts.unet.config.in_channels, side, side), generator=torch.Generator().manual_seed(seed))
    latents = latents * parts.scheduler.init_noise_sigma
    parts.scheduler.set_timesteps(num_inference_steps)
    abar = parts.scheduler.alphas_cumprod
    for t in tqdm(parts.scheduler.timesteps, desc="classifier guidance", disable=not progress):
        noise_pred = parts.unet(parts.scheduler.scale_model_input(latents, t), t, encoder_hidden_states=empty).sample
        if scale:
            noise_pred = classifier_guided_noise(noise_pred, latents, t, classifier, label, scale, abar,
                                                 parts.scheduler.config.prediction_type)
        latents = parts.scheduler.step(noise_pred, t, latents).prev_sample
    return to_uint8(decode_latents(parts.vae, latents))
