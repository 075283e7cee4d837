"""Classifier-free guidance (Ho & Salimans, 2022), written out.

The U-Net predicts the noise twice per step: once without the prompt (the empty prompt "",
or a negative prompt) and once with it. Guidance extrapolates from the first towards and
past the second:

    eps = eps_uncond + guidance_scale * (eps_text - eps_uncond)

guidance_scale = 0 gives the unconditional prediction (the prompt is ignored), 1 the plain
text-conditioned prediction, and larger values push harder towards what the prompt
describes. Note that diffusers' pipelines skip the formula whenever guidance_scale <= 1 and
then use the text-conditioned prediction alone, so their "guidance 0" behaves like 1.
"""
from __future__ import annotations

import torch

__all__ = ["classifier_free_guidance", "guided_predictions", "guidance_sweep", "NoisyLatentClassifier", "train_latent_classifier",
           "classifier_guided_noise", "sample_with_classifier_guidance"]


def classifier_free_guidance(noise_uncond: torch.Tensor, noise_text: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """eps_uncond + guidance_scale * (eps_text - eps_uncond)."""
    return noise_uncond + guidance_scale * (noise_text - noise_uncond)


@torch.no_grad()
def guided_predictions(parts, latents: torch.Tensor, t, prompt, guidance_scale: float = 7.5, negative_prompt=None):
    """At one denoising step, the clean latents (x0) that each noise prediction implies.

    x0 = (z_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) is linear in eps, so guidance acts on the
    predicted pictures exactly as on the noise: x0_guided = x0_uncond + s (x0_text - x0_uncond).
    What guidance adds is s - 1 times the *difference* between the picture the prompt asks for
    and the picture the model expects without it (lesson 09 shows what that does to a square).

    Returns a dict of (B, 4, h, w) latents: "uncond", "text" and "guided".
    """
    from .pipelines import x0_from_noise
    from .text import encode_prompt
    from .unet import predict_noise

    if float(parts.scheduler.init_noise_sigma) != 1.0:
        raise ValueError(f"{type(parts.scheduler).__name__} keeps latents as x0 + sigma * eps, not in the variance-preserving "
                         "form this x0 formula needs; swap in DDIM first: sdlearn.schedulers.swap_scheduler(parts, 'ddim').")
    prompt_embeds, negative_embeds = encode_prompt(prompt, parts.tokenizer, parts.text_encoder, negative_prompt)
    if prompt_embeds.shape[0] != latents.shape[0]:
        raise ValueError(f"{prompt_embeds.shape[0]} prompt(s) for {latents.shape[0]} latents; give one prompt per latent.")
    latent_in = parts.scheduler.scale_model_input(torch.cat([latents] * 2), t)
    noise_uncond, noise_text = predict_noise(parts.unet, latent_in, t, torch.cat([negative_embeds, prompt_embeds])).chunk(2)
    x0 = lambda eps: x0_from_noise(parts.scheduler, latents, eps, t)
    return {"uncond": x0(noise_uncond), "text": x0(noise_text),
            "guided": x0(classifier_free_guidance(noise_uncond, noise_text, guidance_scale))}


def guidance_sweep(parts, prompt: str, scales=(1.0, 3.0, 7.5, 12.0), seeds=(0, 1, 2), num_inference_steps: int = 25,
                   progress: bool = True):
    """Generate `prompt` at every guidance scale for every seed and let the judge score each image.

    Returns (images, scores): images is a (len(scales), len(seeds), H, W, 3) uint8 grid and scores a
    dict scale -> {"colour": fraction right, "shape": ..., "position": ...} for what the prompt asks.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from .judge import judge, parse_prompt
    from .pipelines import text_to_image

    want = parse_prompt(prompt)
    rows, scores = [], {}
    for scale in tqdm(scales, desc="guidance sweep", disable=not progress):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        result = text_to_image(parts, [prompt] * len(seeds), num_inference_steps=num_inference_steps,
                               guidance_scale=scale, generator=gens, progress=False)
        images = (result.images * 255).round().astype(np.uint8)
        rows.append(images)
        verdicts = [judge(im) for im in images]
        scores[scale] = {k: float(np.mean([getattr(v, k) == want[k] for v in verdicts]))
                         for k in want if want[k] is not None}
    return np.stack(rows), scores


# ---------------------------------------------------------------- classifier guidance (Dhariwal & Nichol, 2021)

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
        import math

        half = self.t_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=z_t.device) / half)
        angles = t.float().reshape(-1, 1) * freqs  # (B, half)
        t_emb = torch.cat([angles.sin(), angles.cos()], dim=1).expand(z_t.shape[0], -1)
        h = self.conv(z_t).mean(dim=(2, 3)) + self.t_proj(t_emb)  # (B, width)
        return self.head(h)


def train_latent_classifier(latents: torch.Tensor, labels: torch.Tensor, num_classes: int, alphas_cumprod: torch.Tensor,
                            steps: int = 400, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                            progress: bool = True) -> NoisyLatentClassifier:
    """Train `NoisyLatentClassifier` on clean latents noised to uniformly random steps."""
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from .noising import q_sample

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
                            scale: float, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """eps' = eps - scale * sqrt(1 - abar_t) * grad_z log p(label | z_t): nudge the noise estimate so the
    step moves towards latents the classifier calls `label`."""
    with torch.enable_grad():
        z = z_t.detach().requires_grad_(True)
        t_tensor = torch.as_tensor(t).reshape(1)
        log_p = torch.log_softmax(classifier(z, t_tensor), dim=-1)[:, label].sum()
        grad = torch.autograd.grad(log_p, z)[0]
    return noise_pred - scale * (1 - alphas_cumprod[int(t)]).sqrt() * grad


@torch.no_grad()
def sample_with_classifier_guidance(parts, classifier, label: int, scale: float, n: int = 8, num_inference_steps: int = 25,
                                    seed: int = 0, progress: bool = True):
    """Generate with the *unconditional* U-Net (empty prompt) steered only by a noisy-latent classifier.

    Returns uint8 images (n, H, W, 3). parts.scheduler should be DDIM (it uses x_t in the DDPM scale).
    """
    import numpy as np
    from tqdm.auto import tqdm

    from .pipelines import decode_latents
    from .text import encode_prompt

    empty, _ = encode_prompt([""] * n, parts.tokenizer, parts.text_encoder, do_classifier_free_guidance=False)
    side = parts.unet.config.sample_size
    latents = torch.randn((n, parts.unet.config.in_channels, side, side), generator=torch.Generator().manual_seed(seed))
    latents = latents * parts.scheduler.init_noise_sigma
    parts.scheduler.set_timesteps(num_inference_steps)
    abar = parts.scheduler.alphas_cumprod
    for t in tqdm(parts.scheduler.timesteps, desc="classifier guidance", disable=not progress):
        noise_pred = parts.unet(parts.scheduler.scale_model_input(latents, t), t, encoder_hidden_states=empty).sample
        if scale:
            noise_pred = classifier_guided_noise(noise_pred, latents, t, classifier, label, scale, abar)
        latents = parts.scheduler.step(noise_pred, t, latents).prev_sample
    return (decode_latents(parts.vae, latents) * 255).round().astype(np.uint8)
