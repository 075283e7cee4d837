"""Train TinySD from scratch: CLIP, then the VAE, then the U-Net, as Stable Diffusion was built.

    python -m sdlearn.train --out runs/tinysd            # all stages, resumable
    python -m sdlearn.train --out runs/tinysd --export sdlearn/weights/tinysd

Stages run in order and each is skipped once finished:

1. clip     a small CLIPModel trained contrastively on (image, caption) pairs with in-batch
            negatives (Radford et al. 2021), plus one hard negative per image (its caption
            with a shape or colour swapped). Its text tower becomes the frozen text encoder.
2. vae      AutoencoderKL trained to reconstruct images through an 8x8x4 latent
            (MSE weighted towards edges, so small shapes keep their corners, + a small
            KL term, Rombach et al. 2022); then its scaling factor is measured so that
            scaled latents have unit variance.
3. unet     UNet2DConditionModel trained to predict the noise in latents, cross-attending to
            the frozen text encoder's hidden states (encoded once up front); 10% of captions
            are replaced by the empty prompt so classifier-free guidance works, 20% leave out
            one colour or shape word (see `drop_attribute`). Min-SNR loss weighting; an EMA
            of its weights is kept.

Built on Hugging Face Accelerate, so `accelerate launch -m sdlearn.train ...` runs the same
script on several GPUs or machines. Checkpoints are written every `--ckpt-every` steps into
`<out>/<stage>/checkpoint`; rerunning the same command resumes from them.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import pathlib
import shutil
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import tinysd
from .data import World
from .data.world import COLOURS, SHAPES, SYNONYMS

__all__ = ["main", "make_dataset", "clip_loss", "swap_attribute", "drop_attribute", "vae_loss", "locality_gap", "edge_weights", "unet_loss",
           "encode_captions"]

STEPS = {"clip": 1200, "vae": 2000, "unet": 4000, "depth": 1000, "variant_unet": 1800}
ALL_STAGES = ("clip", "vae", "unet", "depth", "unet_depth", "unet_inpaint")


# ---------------------------------------------------------------- data

def make_dataset(n: int, seed: int, split: str = "train", size: int = 64):
    """n scenes from the procedural world as (uint8 images (n, H, W, 3), captions)."""
    world = World(size=size, seed=seed, split=split)
    scenes = world.batch(0, n)
    return np.stack([s.image for s in scenes]), [s.caption for s in scenes]


def to_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def tokenize(tokenizer, captions: list[str]) -> torch.Tensor:
    """Token ids padded to the full 77-token window, as Stable Diffusion's pipelines do."""
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids


@torch.no_grad()
def encode_captions(text_encoder, ids: torch.Tensor, batch: int = 500, desc: str = "encoding captions") -> torch.Tensor:
    """The frozen text encoder's hidden states for every caption, computed once before training.

    The text encoder never changes while a U-Net trains, so this gives the same states as
    encoding each batch again, and saves about a tenth of every step. Each distinct caption is
    encoded once (40,000 procedural captions hold about 22,000 distinct ones).
    """
    unique, inverse = torch.unique(ids, dim=0, return_inverse=True)
    states = torch.cat([text_encoder(unique[i : i + batch]).last_hidden_state
                        for i in tqdm(range(0, len(unique), batch), desc=desc)])
    return states[inverse]


# ---------------------------------------------------------------- losses

def clip_loss(model, pixels: torch.Tensor, input_ids: torch.Tensor, negative_ids: torch.Tensor | None = None):
    """Symmetric cross-entropy over the batch's image-text similarity matrix.

    Row i should pick caption i among all captions in the batch (the in-batch negatives), and
    column i image i. `negative_ids` are extra captions that match no image in the batch (hard
    negatives, see `swap_attribute`); each image must also rank its caption above all of them.
    """
    n = len(input_ids)
    texts = input_ids if negative_ids is None else torch.cat([input_ids, negative_ids])
    out = model(input_ids=texts, pixel_values=pixels)
    logits = out.logits_per_image  # (B, B + negatives), already multiplied by the learned temperature
    target = torch.arange(n)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits[:, :n].T, target)) / 2


_KIND_OF_WORD = {w: (kind, canon) for kind, names in (("shape", SHAPES), ("colour", tuple(COLOURS)))
                 for canon in names for w in SYNONYMS.get(canon, (canon,))}


def swap_attribute(caption: str, rng: np.random.Generator) -> str:
    """The caption with one shape or colour word replaced by a different shape or colour.

    "a red circle above a blue box" -> "a red triangle above a blue box". Such a caption is a
    hard negative: with random in-batch negatives alone, the tiny CLIP can tell most captions
    apart by colour and position and never needs to learn circles from squares.
    """
    words = caption.split()
    spots = [i for i, w in enumerate(words) if w in _KIND_OF_WORD]
    shape_spots = [i for i in spots if _KIND_OF_WORD[words[i]][0] == "shape"]
    # Shapes are the harder attribute, so they are swapped more often.
    pool = shape_spots if shape_spots and rng.random() < 0.6 else spots
    i = pool[rng.integers(len(pool))]
    kind, canon = _KIND_OF_WORD[words[i]]
    others = [w for w, (k, c) in _KIND_OF_WORD.items() if k == kind and c != canon]
    words[i] = others[rng.integers(len(others))]
    if i > 0 and words[i - 1] in ("a", "an"):
        words[i - 1] = "an" if words[i][0] in "aeiou" else "a"
    return " ".join(words)


def drop_attribute(caption: str, rng: np.random.Generator, kind: str = "colour") -> str:
    """The caption with one object's colour (or shape) word left out: "a big red circle" -> "a big circle".

    The U-Net sees some captions like that (see `train_unet`). A caption without a colour
    still shows a coloured shape, so the shape word alone cannot predict the colour, and the
    colour word becomes the only reliable carrier of colour. It is meant to help the model
    combine a colour and a shape it never saw together ("a green triangle"): held-out colour
    accuracy rose from 37.5% to 56% in TinySD v0.3, which also changed other things.
    """
    if kind not in ("colour", "shape"):
        raise ValueError(f"kind must be 'colour' or 'shape', got {kind!r}.")
    words = caption.split()
    spots = [i for i, w in enumerate(words) if _KIND_OF_WORD.get(w, ("",))[0] == kind]
    if not spots:
        return caption
    i = spots[rng.integers(len(spots))]
    del words[i]
    if 0 < i < len(words) and words[i - 1] in ("a", "an"):
        words[i - 1] = "an" if words[i][0] in "aeiou" else "a"
    return " ".join(words)


def edge_weights(pixels: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-pixel loss weights (B, 1, H, W): 1 + `strength` within a pixel or two of an edge of the target.

    In a 64x64 scene most pixels are flat background, so a plain mean squared error hardly
    notices when the corners of a small square come out round; weighting the few pixels at
    edges makes the outline count.
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
    outlines sharp. With `local_weight` > 0 and `holes` (B, 1, H, W, 1 = hole) it adds
    `local_weight` x `locality_gap`: how much cutting each hole out moves the latents outside it.
    Returns (loss to minimise, plain MSE to report).
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

    `latents` are the encoder's means for the whole `pixels`. An inpainting U-Net sees the outside
    only through the cut-out image's latents; the smaller this gap, the closer they are to the
    image's own, the ones it has to reproduce there.
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
    """
    noise = torch.randn(latents.shape, generator=generator)
    t = torch.randint(0, len(abar), (latents.shape[0],), generator=generator)
    a = abar[t].view(-1, 1, 1, 1)
    noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
    if extra is not None:
        noisy = torch.cat([noisy, extra], dim=1)
    pred = unet(noisy, t, encoder_hidden_states=text_states).sample
    err = F.mse_loss(pred, noise, reduction="none")
    x0_loss = 0.0
    if x0_map is not None:
        if x0_map.shape != (err.shape[0], 1, *err.shape[2:]):
            raise ValueError(f"x0_map must have shape {(err.shape[0], 1, *err.shape[2:])}, got {tuple(x0_map.shape)}.")
        snr_t = (abar[t] / (1 - abar[t])).view(-1, 1, 1, 1)
        x0_err = err / snr_t * x0_map
        x0_loss = x0_weight * x0_err.sum() / (x0_map.sum() * err.shape[1]).clamp(min=1)
    if weight_map is not None:
        if weight_map.shape != (err.shape[0], 1, *err.shape[2:]):
            raise ValueError(f"weight_map must have shape {(err.shape[0], 1, *err.shape[2:])} (batch, 1, latent "
                             f"height, latent width), got {tuple(weight_map.shape)}.")
        err = err * (weight_map / weight_map.mean(dim=(1, 2, 3), keepdim=True))
    per_sample = err.mean(dim=(1, 2, 3))
    if min_snr_gamma is None:
        return per_sample.mean() + x0_loss
    snr = abar[t] / (1 - abar[t])
    weight = snr.clamp(max=min_snr_gamma) / snr
    return (per_sample * weight).mean() + x0_loss


# ---------------------------------------------------------------- the training loop shared by stages

def run_stage(name, accelerator, model, params, step_fn, steps, lr, out, ckpt_every, extra_state=(), warmup=100):
    """AdamW with warmup and cosine decay; tqdm progress; checkpoint and resume through Accelerate."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    model, opt, sched = accelerator.prepare(model, opt, sched)
    for obj in extra_state:
        accelerator.register_for_checkpointing(obj)
    ckpt = pathlib.Path(out, name, "checkpoint")
    start = 0
    if (ckpt / "step.json").exists():
        accelerator.load_state(str(ckpt))
        start = json.loads((ckpt / "step.json").read_text())["step"]
        accelerator.print(f"[{name}] resuming at step {start}")
    losses = []
    bar = tqdm(range(start, steps), desc=name, initial=start, total=steps, disable=not accelerator.is_main_process)
    for step in bar:
        loss, shown = step_fn(model, step)
        opt.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(shown)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if (step + 1) % ckpt_every == 0 or step + 1 == steps:
            accelerator.save_state(str(ckpt))
            (ckpt / "step.json").write_text(json.dumps({"step": step + 1}))
    model = accelerator.unwrap_model(model)
    # Forget this stage's objects so the next stage's checkpoints hold only its own.
    accelerator.free_memory()
    accelerator._custom_objects.clear()
    return model, losses


def _done(out, name):
    return pathlib.Path(out, name, "final").exists()


def _log_time(out, name, seconds, **extra):
    path = pathlib.Path(out, "times.json")
    times = json.loads(path.read_text()) if path.exists() else {}
    times[name] = times.get(name, 0.0) + seconds
    times.update({f"{name}_{k}": v for k, v in extra.items()})
    path.write_text(json.dumps(times, indent=2))


# ---------------------------------------------------------------- stages

def train_clip(args, accelerator, tokenizer):
    images, captions = make_dataset(args.n_train, seed=args.seed)
    ids = tokenize(tokenizer, captions)
    rng = np.random.default_rng(args.seed)
    negative_ids = tokenize(tokenizer, [swap_attribute(c, rng) for c in captions])
    torch.manual_seed(args.seed)
    model = tinysd.make_clip()
    g = torch.Generator().manual_seed(args.seed + accelerator.process_index)

    def step_fn(m, step):
        idx = torch.randint(0, len(images), (args.clip_batch,), generator=g)
        loss = clip_loss(m, to_pixels(images[idx.numpy()]), ids[idx], negative_ids[idx])
        return loss, loss.item()

    t0 = time.time()
    model, losses = run_stage("clip", accelerator, model, model.parameters(), step_fn, args.clip_steps, 1e-3,
                              args.out, args.ckpt_every, warmup=100)
    model.save_pretrained(pathlib.Path(args.out, "clip", "final"))
    _log_time(args.out, "clip", time.time() - t0, final_loss=float(np.mean(losses[-50:])) if losses else None)


def train_vae(args, accelerator):
    images, _ = make_dataset(args.n_train, seed=args.seed + 1)
    holes = None
    if args.vae_local_weight > 0:
        from .train_variants import random_masks

        # One hole per scene, of the inpainting stage's kinds (an object's outline or a box); the
        # masks need the scenes themselves, drawn again (40,000 take about 10 s).
        scenes = World(seed=args.seed + 1, split="train").batch(0, args.n_train)
        holes = random_masks(scenes, torch.Generator().manual_seed(args.seed + 12))[0].to(torch.uint8)
        del scenes
    torch.manual_seed(args.seed)
    vae = tinysd.make_vae()
    g = torch.Generator().manual_seed(args.seed + 10 + accelerator.process_index)

    def step_fn(m, step):
        idx = torch.randint(0, len(images), (args.vae_batch,), generator=g)
        # bfloat16 autocast: measured 30% faster per step on a 2-core CPU with AVX-512 BF16.
        with torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=args.vae_bf16):
            loss, mse = vae_loss(m, to_pixels(images[idx.numpy()]), g, edge_weight=args.vae_edge_weight,
                                 holes=None if holes is None else holes[idx].float(), local_weight=args.vae_local_weight)
        return loss, mse.item()

    t0 = time.time()
    vae, losses = run_stage("vae", accelerator, vae, vae.parameters(), step_fn, args.vae_steps, 1e-3,
                            args.out, args.ckpt_every, warmup=100)
    # Measure the scaling factor: 1 / std of (sampled) latents, so scaled latents have unit variance.
    vae.eval()
    with torch.no_grad():
        z = torch.cat([vae.encode(to_pixels(images[i : i + 256])).latent_dist.sample(g) for i in range(0, min(len(images), 2048), 256)])
    vae.register_to_config(scaling_factor=float(1.0 / z.std()))
    vae.save_pretrained(pathlib.Path(args.out, "vae", "final"))
    _log_time(args.out, "vae", time.time() - t0, scaling_factor=vae.config.scaling_factor,
              final_mse=float(np.mean(losses[-50:])) if losses else None)


class EMA(torch.nn.Module):
    """An exponential moving average of a model's weights (the U-Net Stable Diffusion ships is one)."""

    def __init__(self, model, decay: float = 0.999):
        super().__init__()
        self.shadow = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model, step):
        d = min(self.decay, (1 + step) / (10 + step))
        for s, p in zip(self.shadow.parameters(), model.parameters()):
            s.lerp_(p.detach(), 1 - d)


def train_unet(args, accelerator, tokenizer):
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    images, captions = make_dataset(args.n_train, seed=args.seed + 2)
    vae = AutoencoderKL.from_pretrained(pathlib.Path(args.out, "vae", "final")).eval()
    text_encoder = CLIPTextModel.from_pretrained(pathlib.Path(args.out, "clip", "final")).eval()
    g = torch.Generator().manual_seed(args.seed + 20 + accelerator.process_index)
    # Encode every image once: the latent distribution's mean and std, sampled afresh each step.
    with torch.no_grad():
        dists = [vae.encode(to_pixels(images[i : i + 256])).latent_dist for i in
                 tqdm(range(0, len(images), 256), desc="encoding latents", disable=not accelerator.is_main_process)]
    mean = torch.cat([d.mean for d in dists])
    std = torch.cat([d.std for d in dists])
    text_states = encode_captions(text_encoder, tokenize(tokenizer, captions))
    # Every image also gets a caption with one attribute left out (colour 2/3, shape 1/3 of the time);
    # a step uses it for `args.partial_captions` of its samples.
    rng = np.random.default_rng(args.seed + 21)
    partial = [drop_attribute(c, rng, "colour" if rng.random() < 2 / 3 else "shape") for c in captions]
    partial_states = encode_captions(text_encoder, tokenize(tokenizer, partial), desc="encoding partial captions")
    empty = encode_captions(text_encoder, tokenize(tokenizer, [""]), desc="encoding the empty prompt")
    scale = vae.config.scaling_factor
    abar = tinysd.make_scheduler().alphas_cumprod
    torch.manual_seed(args.seed)
    unet = tinysd.make_unet()
    ema = EMA(unet)

    def step_fn(m, step):
        idx = torch.randint(0, len(images), (args.unet_batch,), generator=g)
        latents = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * scale
        u = torch.rand(len(idx), generator=g)
        states = torch.where((u < 0.1 + args.partial_captions).view(-1, 1, 1), partial_states[idx], text_states[idx])
        states[u < 0.1] = empty  # 10% empty prompts, for classifier-free guidance
        loss = unet_loss(m, latents, states, abar, g)
        if step > 0:
            ema.update(accelerator.unwrap_model(m), step)
        return loss, loss.item()

    t0 = time.time()
    unet, losses = run_stage("unet", accelerator, unet, unet.parameters(), step_fn, args.unet_steps, 1e-3,
                             args.out, args.ckpt_every, extra_state=(ema,), warmup=200)
    ema.update(unet, args.unet_steps)
    ema.shadow.save_pretrained(pathlib.Path(args.out, "unet", "final"))
    _log_time(args.out, "unet", time.time() - t0, final_loss=float(np.mean(losses[-100:])) if losses else None)


# ---------------------------------------------------------------- export

def export(out, folder, overwrite: bool = False):
    """Assemble the diffusers folder (model_index.json, tokenizer, text_encoder, vae, unet, scheduler, clip)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPModel, CLIPTextModel

    folder = pathlib.Path(folder)
    _fresh_folder(folder, overwrite)
    tinysd.build_tokenizer(save_to=folder / "tokenizer")
    clip = CLIPModel.from_pretrained(pathlib.Path(out, "clip", "final"))
    text = CLIPTextModel.from_pretrained(pathlib.Path(out, "clip", "final"))
    # fp16 on disk keeps the repo small; the configs say float32 so loading gives fp32 on the CPU.
    for model, sub in ((clip, "clip"), (text, "text_encoder")):
        model.half().save_pretrained(folder / sub)
        _force_fp32_config(folder / sub)
    AutoencoderKL.from_pretrained(pathlib.Path(out, "vae", "final")).save_pretrained(folder / "vae")
    UNet2DConditionModel.from_pretrained(pathlib.Path(out, "unet", "final")).half().save_pretrained(folder / "unet")
    tinysd.make_scheduler().save_pretrained(folder / "scheduler")
    tinysd.write_model_index(folder)
    times = pathlib.Path(out, "times.json")
    if times.exists():
        shutil.copy(times, folder / "training_times.json")


def export_variants(out, folder, overwrite: bool = False):
    """Write tinysd-depth/ and tinysd-inpaint/ next to `folder`, sharing its VAE, tokenizer and
    text encoder through relative symlinks instead of copies."""
    import os

    from diffusers import UNet2DConditionModel
    from transformers import DPTForDepthEstimation, DPTImageProcessor

    folder = pathlib.Path(folder)
    made = []
    for name, stage, pipeline in (("tinysd-depth", "unet_depth", "StableDiffusionDepth2ImgPipeline"),
                                  ("tinysd-inpaint", "unet_inpaint", "StableDiffusionInpaintPipeline")):
        if not pathlib.Path(out, stage, "final").exists():
            continue
        target = folder.parent / name
        _fresh_folder(target, overwrite)
        for part in ("vae", "text_encoder", "tokenizer"):
            os.symlink(os.path.join("..", folder.name, part), target / part)
        UNet2DConditionModel.from_pretrained(pathlib.Path(out, stage, "final")).half().save_pretrained(target / "unet")
        tinysd.make_scheduler().save_pretrained(target / "scheduler")
        parts = {}
        if stage == "unet_depth":
            DPTForDepthEstimation.from_pretrained(pathlib.Path(out, "depth", "final")).save_pretrained(target / "depth_estimator")
            DPTImageProcessor.from_pretrained(pathlib.Path(out, "depth", "final")).save_pretrained(target / "feature_extractor")
            parts = {"depth_estimator": ["transformers", "DPTForDepthEstimation"],
                     "feature_extractor": ["transformers", "DPTImageProcessor"]}
            tinysd.write_model_index(target, pipeline, **parts)
            index = json.loads((target / "model_index.json").read_text())
            for key in ("safety_checker", "requires_safety_checker"):
                index.pop(key, None)
            (target / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
        else:
            tinysd.write_model_index(target, pipeline)
        made.append(target)
    return made


def _fresh_folder(folder: pathlib.Path, overwrite: bool):
    """Make `folder` empty for an export; refuse to replace one with content unless told to.

    The model card (README.md) is written by people, so it survives an overwrite; update its numbers by hand.
    """
    card = None
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{folder} exists and is not empty; pass --overwrite to replace it.")
        card = (folder / "README.md").read_text() if (folder / "README.md").exists() else None
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if card is not None:
        (folder / "README.md").write_text(card)


def _force_fp32_config(path):
    cfg_path = pathlib.Path(path, "config.json")
    cfg = json.loads(cfg_path.read_text())
    for key in ("torch_dtype", "dtype"):
        cfg[key] = "float32"
    cfg_path.write_text(json.dumps(cfg, indent=2))


# ---------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description="Train TinySD from scratch (resumable).")
    parser.add_argument("--out", default="runs/tinysd", help="run folder for checkpoints and finished stages")
    parser.add_argument("--stages", default=",".join(ALL_STAGES), help=f"comma-separated subset of {','.join(ALL_STAGES)}")
    parser.add_argument("--export", default=None, help="write the diffusers folder here when all stages are done")
    parser.add_argument("--overwrite", action="store_true", help="allow --export to replace an existing folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=40000, help="procedural training scenes")
    parser.add_argument("--clip-steps", type=int, default=STEPS["clip"])
    parser.add_argument("--vae-steps", type=int, default=STEPS["vae"])
    parser.add_argument("--unet-steps", type=int, default=STEPS["unet"])
    parser.add_argument("--clip-batch", type=int, default=128)
    parser.add_argument("--vae-batch", type=int, default=16)
    parser.add_argument("--unet-batch", type=int, default=64)
    parser.add_argument("--depth-steps", type=int, default=STEPS["depth"])
    parser.add_argument("--variant-unet-steps", type=int, default=STEPS["variant_unet"])
    parser.add_argument("--n-variant", type=int, default=10000, help="scenes for the depth and inpaint stages")
    parser.add_argument("--variant-batch", type=int, default=16, help="batch size of the depth estimator")
    parser.add_argument("--keep-weight", type=float, default=5.0,
                        help="inpainting U-Net: weight of the loss outside the hole relative to inside")
    parser.add_argument("--keep-x0-weight", type=float, default=0.1,
                        help="inpainting U-Net: weight of the clean-latent (x0) error outside the hole")
    parser.add_argument("--hole-captions", type=float, default=0.5,
                        help="inpainting U-Net: share of object-shaped holes captioned with the hole's object alone")
    parser.add_argument("--ckpt-every", type=int, default=250)
    parser.add_argument("--partial-captions", type=float, default=0.2,
                        help="share of U-Net samples whose caption leaves out one colour or shape word")
    parser.add_argument("--vae-edge-weight", type=float, default=20.0,
                        help="extra weight of the VAE's squared error at edges (0: plain MSE)")
    parser.add_argument("--vae-local-weight", type=float, default=0.0,
                        help="weight of the VAE's locality term (how much cutting a hole out moves the latents "
                             "outside it; see locality_gap). Off for the shipped TinySD: at 0.1 (1,600 steps) it "
                             "cut that gap from 0.21 to 0.13 (latent std 1) but cost 2 dB PSNR, and the U-Net "
                             "trained on it lost held-out colour (79.5%% -> 44.5%%)")
    parser.add_argument("--vae-bf16", action=argparse.BooleanOptionalAction, default=True,
                        help="train the VAE under bfloat16 autocast (faster on CPUs with AVX-512 BF16)")
    args = parser.parse_args(argv)

    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    tokenizer = tinysd.build_tokenizer()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - set(ALL_STAGES)
    if unknown:
        parser.error(f"unknown stage(s) {sorted(unknown)}; choose from {', '.join(ALL_STAGES)}")
    from . import train_variants as tv

    for name, fn in (("clip", lambda: train_clip(args, accelerator, tokenizer)),
                     ("vae", lambda: train_vae(args, accelerator)),
                     ("unet", lambda: train_unet(args, accelerator, tokenizer)),
                     ("depth", lambda: tv.train_depth_estimator(args, accelerator, run_stage, _log_time)),
                     ("unet_depth", lambda: tv.train_unet_depth(args, accelerator, run_stage, _log_time, tokenizer)),
                     ("unet_inpaint", lambda: tv.train_unet_inpaint(args, accelerator, run_stage, _log_time, tokenizer))):
        if name not in stages:
            continue
        if _done(args.out, name):
            accelerator.print(f"[{name}] already finished in {args.out}/{name}/final, skipping")
            continue
        fn()
    if args.export and accelerator.is_main_process:
        export(args.out, args.export, args.overwrite)
        accelerator.print(f"exported TinySD to {args.export}")
        for path in export_variants(args.out, args.export, args.overwrite):
            accelerator.print(f"exported {path}")


if __name__ == "__main__":
    main()
