"""Command line: generate with the hand-built pipelines.

    python -m sdlearn generate "a red circle" --steps 25 --guidance 3 --seed 0 -o out.png
    python -m sdlearn img2img "a blue square" --image sketch.png --strength 0.7 -o out.png
    python -m sdlearn inpaint "a green circle" --image scene.png --mask mask.png -o out.png
    python -m sdlearn depth "blue squares" --image scene.png -o out.png
    python -m sdlearn controlnet "a red circle" --edges outline.png -o out.png
    python -m sdlearn controlnet "a yellow square" --edges photo.png --canny --scale 0.8 -o out.png

An outline for `controlnet` is white lines on black, the model's image size (64x64 for TinySD); --canny takes
the edges of a picture (a photo, a drawing on white paper) first.

The model is TinySD unless --model or $SDLEARN_MODEL says otherwise; steps and guidance default to
the model card's recommended values for TinySD and to diffusers' for other models. The same seed gives
the same image, run after run. An existing output file is not overwritten without --force.

Files from the customising lessons change the model first: --embedding (a textual-inversion file; its token
can then be used in the prompt), --lora (a LoRA folder or file, at --lora-scale) and --vae (a VAE folder, or
tinysd-vae-ft):

    python -m sdlearn generate "a <thing>" --embedding thing.safetensors --guidance 7.5 -o thing.png
    python -m sdlearn generate "a wide red circle" --lora wide-lora/ --lora-scale 0.8 -o wide.png
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import torch
from PIL import Image

import numpy as np

from . import pipelines
from .controlnet import controlnet_to_image
from .edges import canny_edges, edge_condition
from .finetune import load_embedding, load_lora
from .loading import ModelNotAvailableError, load, load_controlnet, load_vae
from .schedulers import swap_scheduler

__all__ = ["main"]


def _parser():
    p = argparse.ArgumentParser(prog="python -m sdlearn", description="Stable Diffusion, stage by stage (sdlearn).")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, default_model):
        sp.add_argument("prompt")
        sp.add_argument("--negative-prompt", default=None)
        sp.add_argument("--steps", type=int, default=None,
                        help="denoising steps (default: the model card's for TinySD, else diffusers' 50)")
        sp.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance scale (default: the model card's for TinySD, else 7.5)")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--scheduler", default=None, help="ddpm, ddim, euler, dpm++ or pndm (default: the model's)")
        sp.add_argument("--model", default=default_model, help="tinysd (default), a folder, or a hub id")
        sp.add_argument("-o", "--output", default="out.png")
        sp.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
        sp.add_argument("--embedding", default=None,
                        help="a textual-inversion file (.safetensors) to load first; use its token in the prompt")
        sp.add_argument("--lora", default=None, help="a LoRA folder or pytorch_lora_weights.safetensors to load first")
        sp.add_argument("--lora-scale", type=float, default=1.0, help="0: the base model, 1: the full LoRA")
        sp.add_argument("--vae", default=None, help="a VAE folder to paint with instead (a 'VAE file'), or tinysd-vae-ft")

    g = sub.add_parser("generate", help="text to image")
    common(g, None)
    g.add_argument("--height", type=int, default=None)
    g.add_argument("--width", type=int, default=None)
    for name, default_model, help_ in (("img2img", None, "image to image (SDEdit)"),
                                       ("inpaint", "tinysd-inpaint", "repaint the white part of a mask"),
                                       ("depth", "tinysd-depth", "depth to image")):
        sp = sub.add_parser(name, help=help_)
        common(sp, default_model)
        sp.add_argument("--image", required=True)
        if name != "inpaint":
            sp.add_argument("--strength", type=float, default=0.8)
        else:
            sp.add_argument("--mask", required=True)
            sp.add_argument("--strength", type=float, default=1.0)
            sp.add_argument("--guidance-outside", type=float, default=None,
                            help="guidance scale outside the mask (default: --guidance everywhere, as diffusers; "
                                 "1.0 keeps the outside closer to the input; not in diffusers)")
            sp.add_argument("--paste-back", action="store_true",
                            help="put the input's pixels back outside the mask after decoding (as diffusers' "
                                 "apply_overlay and most inpainting UIs); off: the outside is the model's own")
    c = sub.add_parser("controlnet", help="text to image steered by an outline (a ControlNet)")
    common(c, None)
    c.add_argument("--edges", required=True, help="the outline: white lines on black, the model's image size")
    c.add_argument("--canny", action="store_true", help="the --edges file is a picture (any size): resize it to the model's size and take its Canny edges")
    c.add_argument("--controlnet", default="tinysd-controlnet-edges",
                   help="the ControlNet: tinysd-controlnet-edges (default) or a ControlNet folder")
    c.add_argument("--scale", type=float, default=1.0,
                   help="ControlNet conditioning scale, 0-2 (0: the outline is ignored, 1: as trained)")
    return p


def open_image(path: str, flag: str) -> Image.Image:
    """The image at `path`, loaded; a ValueError that says what to give if it is not one."""
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise ValueError(f"{flag} {path}: no such file; check the path.") from None
    except (IsADirectoryError, PermissionError) as e:
        raise ValueError(f"{flag} {path}: cannot read it ({e.strerror}); give an image file.") from None
    except (Image.UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{flag} {path} is not an image PIL can read ({type(e).__name__}); give a PNG or JPEG "
                         "file.") from None
    return image


def _exists(path: str, flag: str) -> None:
    if not pathlib.Path(path).exists():
        raise ValueError(f"{flag} {path}: no such file or folder; check the path (the lessons save theirs in the "
                         "folder they print).")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    out = pathlib.Path(args.output)
    if out.exists() and not args.force:
        print(f"error: {out} already exists; choose another --output or pass --force to overwrite it.", file=sys.stderr)
        return 2
    if not out.parent.is_dir():
        print(f"error: the folder {out.parent} does not exist; create it first (mkdir -p {out.parent}) or choose "
              "another --output.", file=sys.stderr)
        return 2
    if out.suffix.lower() not in Image.registered_extensions():
        print(f"error: {out} has no image file extension PIL can write; end it in .png or .jpg.", file=sys.stderr)
        return 2
    try:
        parts = load(args.model)
        if args.scheduler:
            swap_scheduler(parts, args.scheduler)
        if args.embedding:
            _exists(args.embedding, "--embedding")
            token_id = load_embedding(parts, args.embedding)
            print(f"loaded the embedding for {parts.tokenizer.convert_ids_to_tokens(token_id)!r}")
        if args.lora:
            _exists(args.lora, "--lora")
            load_lora(parts.unet, args.lora, scale=args.lora_scale)
        if args.vae:
            parts.vae = load_vae(args.vae)
        steps = parts.recommended_steps if args.steps is None else args.steps
        guidance = parts.recommended_guidance if args.guidance is None else args.guidance
        kw = dict(num_inference_steps=steps, guidance_scale=guidance, negative_prompt=args.negative_prompt,
                  generator=torch.Generator().manual_seed(args.seed))
        if args.command == "generate":
            result = pipelines.text_to_image(parts, args.prompt, height=args.height, width=args.width, **kw)
        elif args.command == "controlnet":
            controlnet = load_controlnet(args.controlnet)
            edges = open_image(args.edges, "--edges")
            if args.canny:  # the picture's edges, at the size the model draws
                side = parts.unet.config.sample_size * parts.vae_scale_factor
                edges = edge_condition(canny_edges(np.asarray(edges.convert("RGB").resize((side, side)))))
            try:
                result = controlnet_to_image(parts, controlnet, args.prompt, edges,
                                             controlnet_conditioning_scale=args.scale, **kw)
            except ValueError as e:
                hint = " Or pass --canny to use the picture's edges." if "mostly light" in str(e) else ""
                raise ValueError(f"{e}{hint}") from None
        else:
            image = open_image(args.image, "--image")
            if args.command == "img2img":
                result = pipelines.image_to_image(parts, args.prompt, image, strength=args.strength, **kw)
            elif args.command == "inpaint":
                result = pipelines.inpaint(parts, args.prompt, image, open_image(args.mask, "--mask"), strength=args.strength,
                                           guidance_outside=args.guidance_outside, paste_back=args.paste_back,
                                           **kw)
            else:
                result = pipelines.depth_to_image(parts, args.prompt, image, strength=args.strength, **kw)
    except (ValueError, TypeError, FileNotFoundError, ModelNotAvailableError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        result.pil[0].save(out)
    except OSError as e:
        print(f"error: could not write {out} ({e.strerror or e}); choose another --output.", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
