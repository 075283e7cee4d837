"""Assemble a finished run into diffusers folders: TinySD, and TinySD-depth / TinySD-inpaint next to it."""
from __future__ import annotations

import json
import os
import pathlib
import shutil

from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPModel, CLIPTextModel, DPTForDepthEstimation

from .. import tinysd
from .loop import final_folder

__all__ = ["export", "export_variants", "export_vae_decoder", "fresh_folder", "force_fp32_config"]


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
