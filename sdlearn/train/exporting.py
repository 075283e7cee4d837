"""Assemble a finished run into diffusers folders: TinySD, and TinySD-depth / TinySD-inpaint next to it; the
extra stages' VAE file and ControlNet too."""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil

from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from transformers import CLIPModel, CLIPTextModel, DPTForDepthEstimation

from .. import tinysd
from .loop import final_folder

__all__ = ["export", "export_variants", "export_vae_decoder", "export_controlnet", "unet_hash", "fresh_folder",
           "force_fp32_config"]


def export(out, folder, overwrite: bool = False):
    """Assemble the diffusers folder (model_index.json, tokenizer, text_encoder, vae, unet, scheduler, clip)."""
    folder = pathlib.Path(folder)
    fresh_folder(folder, overwrite)
    tinysd.build_tokenizer(save_to=folder / "tokenizer")
    clip = CLIPModel.from_pretrained(final_folder(out, "clip"))
    text = CLIPTextModel.from_pretrained(final_folder(out, "clip"))
    # fp16 on disk keeps the repo small; the configs say float32 so loading gives fp32 on the CPU.
    for model, sub in ((clip, "clip"), (text, "text_encoder")):
        model.half().save_pretrained(folder / sub)
        force_fp32_config(folder / sub)
    AutoencoderKL.from_pretrained(final_folder(out, "vae")).save_pretrained(folder / "vae")
    UNet2DConditionModel.from_pretrained(final_folder(out, "unet")).half().save_pretrained(folder / "unet")
    tinysd.shipped_scheduler().save_pretrained(folder / "scheduler")
    tinysd.write_model_index(folder)
    times = pathlib.Path(out, "times.json")
    if times.exists():
        shutil.copy(times, folder / "training_times.json")


def export_variants(out, folder, overwrite: bool = False):
    """Write tinysd-depth/ and tinysd-inpaint/ next to `folder`, sharing its VAE, tokenizer and
    text encoder through relative symlinks instead of copies. Returns the folders written."""
    folder = pathlib.Path(folder)
    made = []
    for name, stage, pipeline in (("tinysd-depth", "unet_depth", "StableDiffusionDepth2ImgPipeline"),
                                  ("tinysd-inpaint", "unet_inpaint", "StableDiffusionInpaintPipeline")):
        if not final_folder(out, stage).exists():
            continue
        target = folder.parent / name
        fresh_folder(target, overwrite)
        for part in ("vae", "text_encoder", "tokenizer"):
            os.symlink(os.path.join("..", folder.name, part), target / part)
        UNet2DConditionModel.from_pretrained(final_folder(out, stage)).half().save_pretrained(target / "unet")
        tinysd.shipped_scheduler().save_pretrained(target / "scheduler")
        parts = {}
        if stage == "unet_depth":
            DPTForDepthEstimation.from_pretrained(final_folder(out, "depth")).save_pretrained(target / "depth_estimator")
            # imported on use: transformers prints a torchvision warning whenever this class is imported
            from transformers import DPTImageProcessor

            DPTImageProcessor.from_pretrained(final_folder(out, "depth")).save_pretrained(target / "feature_extractor")
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


def export_vae_decoder(out, folder, overwrite: bool = False) -> list[pathlib.Path]:
    """Write the fine-tuned VAE (the extra vae_decoder stage) as tinysd-vae-ft/ next to `folder`, a folder
    `AutoencoderKL.from_pretrained` loads (and diffusers' pipelines take as `vae=`). Returns [it] or []."""
    if not final_folder(out, "vae_decoder").exists():
        return []
    target = pathlib.Path(folder).parent / "tinysd-vae-ft"
    fresh_folder(target, overwrite)
    AutoencoderKL.from_pretrained(final_folder(out, "vae_decoder")).save_pretrained(target)
    return [target]


def unet_hash(model_folder) -> str:
    """The sha256 of a model folder's U-Net weights file: which U-Net a ControlNet was trained to steer."""
    return hashlib.sha256(pathlib.Path(model_folder, "unet", "diffusion_pytorch_model.safetensors").read_bytes()).hexdigest()


def export_controlnet(out, folder, overwrite: bool = False, base=None) -> list[pathlib.Path]:
    """Write the ControlNet (the extra controlnet stage) as tinysd-controlnet-edges/ next to `folder`, a folder
    `ControlNetModel.from_pretrained` loads, and base.json with the sha256 of the U-Net it steers (that of
    the model folder `base`, default `folder`). Returns [it] or []."""
    if not final_folder(out, "controlnet").exists():
        return []
    target = pathlib.Path(folder).parent / "tinysd-controlnet-edges"
    fresh_folder(target, overwrite)
    # fp16 on disk keeps the repo small; diffusers loads it as float32 unless told otherwise
    ControlNetModel.from_pretrained(final_folder(out, "controlnet")).half().save_pretrained(target)
    base = pathlib.Path(base or folder)
    (target / "base.json").write_text(json.dumps({"base_unet_sha256": unet_hash(base)}, indent=2) + "\n")
    return [target]


def fresh_folder(folder: pathlib.Path, overwrite: bool):
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


def force_fp32_config(path):
    """Set a saved transformers model's config.json dtype to float32, so it loads as fp32 whatever it was saved in."""
    cfg_path = pathlib.Path(path, "config.json")
    cfg = json.loads(cfg_path.read_text())
    for key in ("torch_dtype", "dtype"):
        cfg[key] = "float32"
    cfg_path.write_text(json.dumps(cfg, indent=2))
