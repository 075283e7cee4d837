"""`python -m sdlearn.train`: the command line, which runs the chosen stages in order and skips finished ones."""
from __future__ import annotations

import argparse
import dataclasses
import pathlib

import torch
from accelerate import Accelerator

from .. import tinysd
from ..data import COLOURS
from .clip import train_clip
from .controlnet import train_controlnet
from .config import (ALL_STAGES, EXTRA_STAGES, ClipStage, ControlNetStage, DepthStage, DepthUNetStage,
                     InpaintUNetStage, Run, Stage, UNetStage, VaeDecoderStage, VaeStage)
from .depth_estimator import train_depth_estimator
from .exporting import export, export_controlnet, export_vae_decoder, export_variants
from .loop import stage_done
from .unet import train_unet
from .unet_depth import train_unet_depth
from .unet_inpaint import train_unet_inpaint
from .vae import train_vae
from .vae_decoder import train_vae_decoder

__all__ = ["main", "make_parser", "stages_from_args", "new_accelerator"]

# Each stage's trainer, called as trainer(run, stage config, accelerator, tokenizer).
TRAINERS = {
    "clip": train_clip,
    "vae": lambda run, stage, accelerator, tokenizer: train_vae(run, stage, accelerator),
    "unet": train_unet,
    "depth": lambda run, stage, accelerator, tokenizer: train_depth_estimator(run, stage, accelerator),
    "unet_depth": train_unet_depth,
    "unet_inpaint": train_unet_inpaint,
    "vae_decoder": lambda run, stage, accelerator, tokenizer: train_vae_decoder(run, stage, accelerator),
    "controlnet": train_controlnet,
}


def make_parser() -> argparse.ArgumentParser:
    """The command line's flags; their defaults are the stage configs' (see `sdlearn.train.config`)."""
    run, clip, vae, unet = Run(), ClipStage(), VaeStage(), UNetStage()
    depth, unet_depth, inpaint = DepthStage(), DepthUNetStage(), InpaintUNetStage()
    vae_decoder, controlnet = VaeDecoderStage(), ControlNetStage()
    parser = argparse.ArgumentParser(description="Train TinySD from scratch (resumable).")
    parser.add_argument("--out", default=run.out, help="run folder for checkpoints and finished stages")
    parser.add_argument("--stages", default=",".join(ALL_STAGES), help=f"comma-separated subset of {','.join(ALL_STAGES)} (all by default), or the "
                             f"extra stage(s) {','.join(EXTRA_STAGES)} (only when named)")
    parser.add_argument("--export", default=None, help="write the diffusers folder here when all stages are done")
    parser.add_argument("--overwrite", action="store_true", help="allow --export to replace an existing folder")
    parser.add_argument("--seed", type=int, default=run.seed)
    parser.add_argument("--n-train", type=int, default=clip.n_scenes, help="procedural training scenes")
    parser.add_argument("--clip-steps", type=int, default=clip.steps)
    parser.add_argument("--vae-steps", type=int, default=vae.steps)
    parser.add_argument("--unet-steps", type=int, default=unet.steps)
    parser.add_argument("--clip-batch", type=int, default=clip.batch)
    parser.add_argument("--vae-batch", type=int, default=vae.batch)
    parser.add_argument("--unet-batch", type=int, default=unet.batch)
    parser.add_argument("--depth-steps", type=int, default=depth.steps)
    parser.add_argument("--variant-unet-steps", type=int, default=None,
                        help=f"steps of both variant U-Nets (default: each its own, depth {unet_depth.steps}, "
                             f"inpainting {inpaint.steps})")
    parser.add_argument("--n-variant", type=int, default=depth.n_scenes, help="scenes for the depth and inpaint stages")
    parser.add_argument("--variant-batch", type=int, default=depth.batch, help="batch size of the depth estimator")
    parser.add_argument("--keep-weight", type=float, default=inpaint.keep_weight,
                        help="inpainting U-Net: weight of the loss outside the hole relative to inside")
    parser.add_argument("--keep-x0-weight", type=float, default=inpaint.keep_x0_weight,
                        help="inpainting U-Net: weight of the clean-latent (x0) error outside the hole")
    parser.add_argument("--hole-captions", type=float, default=inpaint.hole_captions,
                        help="inpainting U-Net: share of object-shaped holes captioned with the hole's object alone")
    parser.add_argument("--vae-decoder-steps", type=int, default=vae_decoder.steps,
                        help="the extra vae_decoder stage (a fine-tuned decoder, a 'VAE file'): its steps")
    parser.add_argument("--vae-decoder-lr", type=float, default=vae_decoder.lr)
    parser.add_argument("--vae-decoder-init", default=None,
                        help="the VAE folder the vae_decoder stage starts from (default: the run's vae stage)")
    parser.add_argument("--controlnet-steps", type=int, default=controlnet.steps,
                        help="the extra controlnet stage (a ControlNet for outlines): its steps")
    parser.add_argument("--controlnet-batch", type=int, default=controlnet.batch)
    parser.add_argument("--controlnet-lr", type=float, default=controlnet.lr)
    parser.add_argument("--controlnet-base", default=None,
                        help="the model folder whose frozen U-Net the controlnet stage steers (default: the run's "
                             "unet, vae and clip stages), e.g. sdlearn/weights/tinysd")
    parser.add_argument("--ckpt-every", type=int, default=run.ckpt_every)
    parser.add_argument("--partial-captions", type=float, default=unet.partial_captions,
                        help="share of U-Net samples whose caption leaves out one colour or shape word")
    parser.add_argument("--p-two", type=float, default=unet.p_two,
                        help="share of two-object scenes in the U-Net's training data")
    parser.add_argument("--p-two-end", type=float, default=unet.p_two_end,
                        help="a curriculum: the share of two-object samples moves linearly from --p-two at the first "
                             "U-Net step to this at the last (set it to --p-two's value to keep the share constant)")
    parser.add_argument("--grounding-weight-end", type=float, default=unet.grounding_weight_end,
                        help="a curriculum: the grounding weight moves linearly from --grounding-weight at the first "
                             "U-Net step to this at the last (set both to 0 to train without the grounding term)")
    parser.add_argument("--ramp-fraction", type=float, default=unet.ramp_fraction,
                        help="the curriculum reaches its end values after this share of the U-Net steps and holds "
                             "them to the last step (default 1: at the last step)")
    parser.add_argument("--unet-lr", type=float, default=unet.lr, help="the U-Net's peak learning rate")
    parser.add_argument("--unet-init", default=None,
                        help="start the U-Net stage from this saved U-Net folder (a second training phase) "
                             "instead of random weights")
    parser.add_argument("--boost-share", type=float, default=unet.boost_share,
                        help="share of the U-Net's training scenes replaced by scenes holding a --boost-colour "
                             "object (0: off)")
    parser.add_argument("--boost-colour", default=unet.boost_colour, choices=list(COLOURS),
                        help="the colour --boost-share adds more of (orange: TinySD v0.6 drew it least precisely)")
    parser.add_argument("--grounding-weight", type=float, default=unet.grounding_weight,
                        help="weight of the U-Net's grounding term: each object's pixels attend to its words "
                             "(0: off, as real Stable Diffusion)")
    parser.add_argument("--identity-weight", type=float, default=clip.identity_weight,
                        help="weight of CLIP's word-identity term: each word's output state names its word (0: off)")
    parser.add_argument("--attribute-weight", type=float, default=clip.attribute_weight,
                        help="weight of CLIP's attribute term: each object word's state names its object's colour "
                             "and shape (0: off)")
    parser.add_argument("--colour-swap", type=float, default=clip.colour_swap,
                        help="CLIP: share of two-colour captions whose hard negative exchanges the two objects' "
                             "colours instead of changing one word (0: off)")
    parser.add_argument("--vae-edge-weight", type=float, default=vae.edge_weight,
                        help="extra weight of the VAE's squared error at edges (0: plain MSE)")
    parser.add_argument("--vae-local-weight", type=float, default=vae.local_weight,
                        help="weight of the VAE's locality term (how much cutting a hole out moves the latents "
                             "outside it; see locality_gap). Off for the shipped TinySD: at 0.1 (1,600 steps) it "
                             "cut that gap from 0.21 to 0.13 (latent std 1) but cost 2 dB PSNR, and the U-Net "
                             "trained on it lost held-out colour (79.5%% -> 44.5%%)")
    parser.add_argument("--vae-bf16", action=argparse.BooleanOptionalAction, default=vae.bf16,
                        help="train the VAE under bfloat16 autocast (faster on CPUs with AVX-512 BF16)")
    return parser


def stages_from_args(args: argparse.Namespace) -> dict[str, Stage]:
    """Every stage's config: the defaults with the command line's values in.

    Some flags set several stages: --n-train the first three, --n-variant the last three, --unet-batch all three
    U-Nets, --variant-unet-steps (when given) both variant U-Nets.
    """
    replace = dataclasses.replace
    variant_steps = {} if args.variant_unet_steps is None else {"steps": args.variant_unet_steps}
    return {
        "clip": replace(ClipStage(), steps=args.clip_steps, batch=args.clip_batch, n_scenes=args.n_train,
                        identity_weight=args.identity_weight, attribute_weight=args.attribute_weight,
                        colour_swap=args.colour_swap),
        "vae": replace(VaeStage(), steps=args.vae_steps, batch=args.vae_batch, n_scenes=args.n_train,
                       edge_weight=args.vae_edge_weight, local_weight=args.vae_local_weight, bf16=args.vae_bf16),
        "unet": replace(UNetStage(), steps=args.unet_steps, batch=args.unet_batch, n_scenes=args.n_train,
                        partial_captions=args.partial_captions, p_two=args.p_two,
                        grounding_weight=args.grounding_weight, lr=args.unet_lr, init=args.unet_init,
                        p_two_end=args.p_two_end, grounding_weight_end=args.grounding_weight_end,
                        ramp_fraction=args.ramp_fraction, boost_colour=args.boost_colour, boost_share=args.boost_share),
        "depth": replace(DepthStage(), steps=args.depth_steps, batch=args.variant_batch, n_scenes=args.n_variant),
        "unet_depth": replace(DepthUNetStage(), **variant_steps, batch=args.unet_batch,
                              n_scenes=args.n_variant),
        "unet_inpaint": replace(InpaintUNetStage(), **variant_steps, batch=args.unet_batch,
                                n_scenes=args.n_variant, keep_weight=args.keep_weight,
                                keep_x0_weight=args.keep_x0_weight, hole_captions=args.hole_captions),
        "vae_decoder": replace(VaeDecoderStage(), steps=args.vae_decoder_steps, lr=args.vae_decoder_lr,
                               init=args.vae_decoder_init),
        "controlnet": replace(ControlNetStage(), steps=args.controlnet_steps, batch=args.controlnet_batch,
                              lr=args.controlnet_lr, base=args.controlnet_base),
    }


def new_accelerator() -> Accelerator:
    """An Accelerator for one stage. Each stage gets its own, so the objects one stage registers for
    checkpointing (its EMA) are not saved into, or expected in, the next stage's checkpoints."""
    return Accelerator(cpu=not torch.cuda.is_available())


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    if not 0.0 <= args.boost_share <= 1.0:  # checked before minutes of scene making, not after
        parser.error(f"--boost-share is a share of the scenes, between 0 and 1; got {args.boost_share}")
    accelerator = new_accelerator()
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    tokenizer = tinysd.build_tokenizer()
    chosen = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(chosen) - set(ALL_STAGES + EXTRA_STAGES)
    if unknown:
        parser.error(f"unknown stage(s) {sorted(unknown)}; choose from {', '.join(ALL_STAGES + EXTRA_STAGES)}")
    run = Run(out=args.out, seed=args.seed, ckpt_every=args.ckpt_every)
    configs = stages_from_args(args)
    for name in ALL_STAGES + EXTRA_STAGES:
        if name not in chosen:
            continue
        if stage_done(args.out, name):
            accelerator.print(f"[{name}] already finished in {args.out}/{name}/final, skipping")
            continue
        TRAINERS[name](run, configs[name], new_accelerator(), tokenizer)
    if args.export and accelerator.is_main_process:
        if set(chosen) <= set(EXTRA_STAGES):  # only add-ons were trained: export them, not TinySD
            made = []
        else:
            export(args.out, args.export, args.overwrite)
            accelerator.print(f"exported TinySD to {args.export}")
            made = export_variants(args.out, args.export, args.overwrite)
        made += export_vae_decoder(args.out, args.export, args.overwrite)
        made += export_controlnet(args.out, args.export, args.overwrite, base=args.controlnet_base)
        for path in made:
            accelerator.print(f"exported {path}")
