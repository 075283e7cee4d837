"""Loading a Stable Diffusion: the shipped TinySD by default, or real weights by one setting.

`load()` returns the parts the hand-built pipelines use. The model is chosen by, in order:
the `model` argument, the environment variable `SDLEARN_MODEL`, and the shipped TinySD.
A model is one of the names "tinysd", "tinysd-depth", "tinysd-inpaint", a local folder in
diffusers' layout (e.g. one written by `save_pretrained`), or a Hugging Face hub id such as
"stable-diffusion-v1-5/stable-diffusion-v1-5". Hub ids go through exactly the same
`from_pretrained` calls as folders.
"""
from __future__ import annotations

import json
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import diffusers
import torch
from transformers import CLIPTextModel, CLIPTokenizer, DPTForDepthEstimation

from .tinysd import DEFAULT_FOLDER, RECOMMENDED_GUIDANCE, RECOMMENDED_STEPS

__all__ = ["Components", "ModelNotAvailableError", "load", "load_vae", "load_controlnet", "resolve_model", "SHIPPED",
           "SHIPPED_VAES", "SHIPPED_CONTROLNETS"]

SHIPPED = {
    "tinysd": DEFAULT_FOLDER,
    "tinysd-depth": DEFAULT_FOLDER.parent / "tinysd-depth",
    "tinysd-inpaint": DEFAULT_FOLDER.parent / "tinysd-inpaint",
}
# "VAE files": VAEs that fit a shipped model's latents (the same encoder, a fine-tuned decoder).
SHIPPED_VAES = {"tinysd-vae-ft": DEFAULT_FOLDER.parent / "tinysd-vae-ft"}
# ControlNets trained for a shipped model's U-Net.
SHIPPED_CONTROLNETS = {"tinysd-controlnet-edges": DEFAULT_FOLDER.parent / "tinysd-controlnet-edges"}


class ModelNotAvailableError(RuntimeError):
    """The requested weights are neither on disk nor reachable."""


@dataclass
class Components:
    """The parts of a Stable Diffusion, as the pipelines take them."""

    name: str
    tokenizer: Any
    text_encoder: Any
    vae: Any
    unet: Any
    scheduler: Any
    depth_estimator: Any = None
    feature_extractor: Any = None

    @property
    def vae_scale_factor(self) -> int:
        """How much smaller the latent is than the image on each side (8 for SD and TinySD)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def is_tinysd(self) -> bool:
        return self.name in SHIPPED or pathlib.Path(self.name).resolve() in {p.resolve() for p in SHIPPED.values()}

    @property
    def recommended_guidance(self) -> float:
        """The default guidance scale: TinySD's model card value for its folders, diffusers' 7.5 for other models."""
        return RECOMMENDED_GUIDANCE if self.is_tinysd else 7.5

    @property
    def recommended_steps(self) -> int:
        """The default number of denoising steps: TinySD's model card value, else diffusers' 50."""
        return RECOMMENDED_STEPS if self.is_tinysd else 50

    def as_kwargs(self) -> dict:
        """Keyword arguments for a diffusers pipeline's constructor (safety checker off)."""
        kw = dict(vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer, unet=self.unet,
                  scheduler=self.scheduler)
        if self.depth_estimator is not None:
            kw.update(depth_estimator=self.depth_estimator, feature_extractor=self.feature_extractor)
        return kw


def resolve_model(model: str | os.PathLike | None = None) -> str:
    """The model to load: the argument, else $SDLEARN_MODEL, else the shipped TinySD."""
    model = model if model is not None else os.environ.get("SDLEARN_MODEL") or "tinysd"
    model = str(model)
    if model in SHIPPED:
        folder = SHIPPED[model]
        if not (folder / "model_index.json").exists():
            raise ModelNotAvailableError(
                f"The shipped model {model!r} is missing from {folder}. Reinstall sdlearn from its repository "
                "(the weights are part of it), or retrain it with `python -m sdlearn.train --export "
                f"{DEFAULT_FOLDER}`.")
        return str(folder)
    return model


def _hint(model: str, error: Exception) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"Could not load {model!r}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}\n"
        "It is not a local folder, and the Hugging Face hub could not provide it (offline, gated, or a wrong id).\n"
        "To use real Stable Diffusion weights: on a machine with internet, run\n"
        f"    python -c \"from diffusers import DiffusionPipeline; DiffusionPipeline.from_pretrained('{model}').save_pretrained('sd-weights')\"\n"
        "copy the folder here and set SDLEARN_MODEL=/path/to/sd-weights. "
        "Without any download, the built-in tiny model works offline: unset SDLEARN_MODEL (or use model='tinysd').")


def _damaged(folder: str, error: Exception) -> ModelNotAvailableError:
    """The message for a local folder that is not a loadable model: missing parts or damaged files."""
    first = str(error).splitlines()[0] if str(error) else ""
    return ModelNotAvailableError(
        f"could not load the model folder {folder} ({type(error).__name__}: {first.strip()}); a file in it is "
        "missing, incomplete or damaged: copy the folder again, or write it anew with save_pretrained (a Stable "
        "Diffusion folder has model_index.json and tokenizer, text_encoder, vae, unet and scheduler subfolders).")


def load(model: str | os.PathLike | None = None, dtype: torch.dtype = torch.float32, device: str = "cpu") -> Components:
    """Load tokenizer, text encoder, VAE, U-Net and scheduler (plus the depth estimator when the
    folder has one), in eval mode.

    Args:
        model: "tinysd", "tinysd-depth", "tinysd-inpaint", a folder, or a hub id; None reads $SDLEARN_MODEL.
        dtype: torch.float32 (default). float16 is only for GPUs.
        device: "cpu" or e.g. "cuda".
    """
    if dtype == torch.float16 and str(device).startswith("cpu"):
        raise ValueError(
            "float16 was asked for on the CPU. Many CPU kernels have no float16 version and the VAE overflows to NaN "
            "in half precision, so sdlearn runs float32 on the CPU. Use dtype=torch.float32, or device='cuda' on a GPU.")
    name = resolve_model(model)
    is_dir = pathlib.Path(name).is_dir()
    try:
        if is_dir:
            index = json.loads(pathlib.Path(name, "model_index.json").read_text())
        else:
            from huggingface_hub import hf_hub_download  # only for hub ids, which need the internet

            index = json.loads(pathlib.Path(hf_hub_download(name, "model_index.json")).read_text())
        tokenizer = CLIPTokenizer.from_pretrained(name, subfolder="tokenizer")
        text_encoder = CLIPTextModel.from_pretrained(name, subfolder="text_encoder", dtype=dtype)
        vae = diffusers.AutoencoderKL.from_pretrained(name, subfolder="vae", torch_dtype=dtype)
        unet = diffusers.UNet2DConditionModel.from_pretrained(name, subfolder="unet", torch_dtype=dtype)
        # the scheduler class the folder names (PNDM for SD v1, DDIM or Euler for others)
        scheduler_config = diffusers.PNDMScheduler.load_config(name, subfolder="scheduler")
        scheduler = getattr(diffusers, scheduler_config["_class_name"]).from_config(scheduler_config)
        depth_estimator = feature_extractor = None
        if (index.get("depth_estimator") or [None])[0]:
            # imported on use: transformers prints a torchvision warning whenever this class is imported
            from transformers import DPTImageProcessor

            depth_estimator = DPTForDepthEstimation.from_pretrained(name, subfolder="depth_estimator", dtype=dtype)
            feature_extractor = DPTImageProcessor.from_pretrained(name, subfolder="feature_extractor")
    except Exception as e:  # noqa: BLE001 - every loader's failure becomes one message with the fix
        if is_dir:
            raise _damaged(name, e) from None
        if isinstance(e, (OSError, ValueError)):
            raise _hint(name, e) from None
        raise
    parts = Components(name, tokenizer, text_encoder, vae, unet, scheduler, depth_estimator, feature_extractor)
    for m in (text_encoder, vae, unet, depth_estimator):
        if m is not None:
            m.to(device).eval().requires_grad_(False)
    return parts


def _load_part(cls, folder: pathlib.Path, what: str, shipped: dict, extra: str = "", dtype=torch.float32):
    """`cls.from_pretrained(folder)` in eval mode without gradients; a missing or damaged folder becomes one
    message naming the shipped choices and what a folder must hold."""
    if not (folder / "config.json").exists():
        raise ModelNotAvailableError(
            f"No {what} at {folder}: give {', '.join(shipped)} or a folder with a {what}'s config.json and weights "
            f"(as {cls.__name__}.save_pretrained writes them{extra}).")
    try:
        model = cls.from_pretrained(folder, torch_dtype=dtype)
    except Exception as e:  # noqa: BLE001 - a damaged file becomes one message with the fix
        raise _damaged(str(folder), e) from None
    return model.eval().requires_grad_(False)


def load_vae(vae: str | os.PathLike, dtype: torch.dtype = torch.float32):
    """Load a VAE to swap into a pipeline (`vae=`): "tinysd-vae-ft" (TinySD's fine-tuned decoder) or a folder
    `AutoencoderKL.from_pretrained` reads (its config.json and weights, or a model folder with a vae/ in it)."""
    name = str(vae)
    folder = pathlib.Path(SHIPPED_VAES.get(name, name))
    if (folder / "vae" / "config.json").exists():
        folder = folder / "vae"
    return _load_part(diffusers.AutoencoderKL, folder, "VAE", SHIPPED_VAES, ", or a model folder with a vae/ subfolder",
                      dtype)


def load_controlnet(controlnet: str | os.PathLike = "tinysd-controlnet-edges", dtype: torch.dtype = torch.float32):
    """Load a ControlNet for `sdlearn.controlnet.controlnet_to_image` (or diffusers' pipeline, `controlnet=`):
    "tinysd-controlnet-edges" (TinySD's, for white outlines on black) or a folder `ControlNetModel.from_pretrained`
    reads (its config.json and weights)."""
    name = str(controlnet)
    folder = pathlib.Path(SHIPPED_CONTROLNETS.get(name, name))
    return _load_part(diffusers.ControlNetModel, folder, "ControlNet", SHIPPED_CONTROLNETS, dtype=dtype)
