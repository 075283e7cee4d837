"""Swapping the sampler: diffusers' DDPM, DDIM, Euler and DPM-Solver++ on the same trained model.

A scheduler only decides how to walk from noise to image given the noise predictions; the
U-Net is the same. All of them are built from the model's own scheduler config, so they share
its training noise schedule (for Stable Diffusion v1: scaled_linear, 0.00085 to 0.012).
"""
from __future__ import annotations

import diffusers

__all__ = ["SCHEDULERS", "make_scheduler", "swap_scheduler"]

SCHEDULERS = {
    "ddpm": "DDPMScheduler",
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "pndm": "PNDMScheduler",
}


def make_scheduler(name: str, config):
    """A diffusers scheduler of kind `name` (see SCHEDULERS) from another scheduler's config.

    Latents are not bounded to [-1, 1], so sample clipping is turned off (diffusers' Stable
    Diffusion pipelines do the same when they are handed a scheduler with it on).
    """
    key = name.lower()
    if key not in SCHEDULERS:
        raise ValueError(f"Unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}.")
    cls = getattr(diffusers, SCHEDULERS[key])
    extra = {}
    if key in ("ddpm", "ddim"):
        extra["clip_sample"] = False
    if key == "dpm++":
        extra["algorithm_type"] = "dpmsolver++"
    return cls.from_config(config, **extra)


def swap_scheduler(parts, name: str):
    """Replace `parts.scheduler` in place with a scheduler of kind `name`; returns parts."""
    parts.scheduler = make_scheduler(name, parts.scheduler.config)
    return parts
