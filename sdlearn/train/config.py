"""Every hyperparameter of every training stage, in one place.

One frozen dataclass per stage; the command line (`python -m sdlearn.train --help`) takes its defaults from
these and changes a few fields with `dataclasses.replace`. Every `*_seed` is an offset added to the run's
`--seed`, so that each stage draws its own scenes and its own random numbers and one `--seed` changes them all.
`process_index` (0 on one machine) is added to each stage's `generator_seed`, so that processes under
`accelerate launch` draw different batches.

The defaults are TinySD v1.0's recipe (run F4 in docs/notes/tinysd-v1-probes.md: about 80 min on 2 cores):
`python -m sdlearn.train --out runs/tinysd` trains it from scratch.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EMPTY_CAPTION_RATE", "ALL_STAGES", "Run", "Stage", "ClipStage", "VaeStage", "UNetStage", "DepthStage",
           "DepthUNetStage", "InpaintUNetStage", "VaeDecoderStage", "ControlNetStage", "EXTRA_STAGES"]

ALL_STAGES = ("clip", "vae", "unet", "depth", "unet_depth", "unet_inpaint")
# Stages that make add-ons (a VAE file, a ControlNet) for the later lessons, not TinySD itself: run only when named in --stages.
EXTRA_STAGES = ("vae_decoder", "controlnet")

# Share of U-Net training samples whose caption is replaced by the empty prompt, so that the U-Net also learns
# the unconditional prediction classifier-free guidance needs (Ho & Salimans 2022 used 10-20%).
EMPTY_CAPTION_RATE = 0.1


@dataclass(frozen=True)
class Run:
    """What all stages of one run share: where it writes, its base seed, how often it checkpoints."""

    out: str = "runs/tinysd"
    seed: int = 0
    ckpt_every: int = 250


@dataclass(frozen=True)
class Stage:
    """The fields every stage has (each stage below gives them its own values).

    name: the stage's folder in the run (`<out>/<name>/checkpoint`, `<out>/<name>/final`).
    steps, batch, lr, warmup: optimiser steps, samples per step, AdamW's peak learning rate and the number of
        steps it ramps up over linearly (then it decays to 0 along a cosine).
    weight_decay, grad_clip: AdamW's weight decay; the largest gradient norm (larger ones are scaled down).
    n_scenes: procedural scenes the stage trains on.
    data_seed: seed offset of those scenes; init_seed: of the initial weights (`torch.manual_seed`);
        generator_seed: of the generator that draws batches and noise.
    loss_window: the final loss logged to times.json is the mean of this many last steps.
    """

    name: str
    steps: int
    batch: int
    lr: float
    warmup: int
    weight_decay: float
    grad_clip: float
    n_scenes: int
    data_seed: int
    init_seed: int
    generator_seed: int
    loss_window: int


@dataclass(frozen=True)
class ClipStage(Stage):
    """CLIP: contrastive loss with in-batch negatives and one hard negative per image."""

    name: str = "clip"
    steps: int = 1800
    batch: int = 128
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    n_scenes: int = 40000
    data_seed: int = 0
    init_seed: int = 0
    generator_seed: int = 0
    loss_window: int = 50
    negatives_seed: int = 0  # numpy generator that picks the word each hard negative swaps
    identity_weight: float = 1.0  # weight of the word-identity term: every word's output state must name its word
    attribute_weight: float = 1.0  # weight of the attribute term: every object word's state names its object's colour, shape
    colour_swap: float = 0.0  # share of two-colour captions whose hard negative swaps the colours (see swap_colours)


@dataclass(frozen=True)
class VaeStage(Stage):
    """The VAE: edge-weighted reconstruction + tiny KL, optionally a locality term; then its scaling factor."""

    name: str = "vae"
    steps: int = 2000
    batch: int = 16
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    n_scenes: int = 40000
    data_seed: int = 1
    init_seed: int = 0
    generator_seed: int = 10
    loss_window: int = 50
    kl_weight: float = 1e-6
    edge_weight: float = 20.0  # extra weight of the squared error at edges (0: plain MSE)
    local_weight: float = 0.0  # weight of the locality term (0: off, as for the shipped TinySD)
    masks_seed: int = 12  # generator of the holes the locality term cuts (only drawn when local_weight > 0)
    bf16: bool = True  # bfloat16 autocast
    scale_images: int = 2048  # the scaling factor is measured on the latents of this many first images
    scale_batch: int = 256  # ... encoded this many at a time


@dataclass(frozen=True)
class UNetStage(Stage):
    """The text-to-image U-Net on the frozen VAE's latents and the frozen text encoder's states."""

    name: str = "unet"
    steps: int = 10000
    batch: int = 64
    lr: float = 1e-3
    warmup: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    n_scenes: int = 40000
    data_seed: int = 2
    init_seed: int = 0
    generator_seed: int = 20
    loss_window: int = 100
    ema_decay: float = 0.999
    partial_captions: float = 0.2  # share of samples whose caption leaves out one colour or shape word
    partial_seed: int = 21  # numpy generator that picks the word each partial caption leaves out
    partial_colour_rate: float = 2 / 3  # a partial caption leaves out a colour this often, a shape otherwise
    p_two: float = 0.5  # share of two-object scenes in its training data (at the first step, with a curriculum)
    grounding_weight: float = 0.2  # weight of the grounding term on its cross-attention maps (train/grounding.py)
    init: str | None = None  # a saved U-Net folder to start from (a second phase of training), or None: random
    boost_colour: str = "orange"  # the colour whose scenes `boost_share` adds (train/data.py: with_colour_boost)
    boost_share: float = 0.2  # share of the training scenes replaced by scenes holding a `boost_colour` object
    # A curriculum inside one run: the share of two-object samples and the grounding weight move linearly from
    # `p_two` / `grounding_weight` at the first step to these values at the last step (None, or equal to the start
    # value: constant).
    p_two_end: float | None = 0.9
    grounding_weight_end: float | None = 0.8
    ramp_fraction: float = 1.0  # the curriculum reaches its end values after this share of the steps, then holds them


@dataclass(frozen=True)
class DepthStage(Stage):
    """The depth estimator (a small DPT), trained on the world's exact depths."""

    name: str = "depth"
    steps: int = 1000
    batch: int = 16
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    n_scenes: int = 10000
    data_seed: int = 30
    init_seed: int = 0
    generator_seed: int = 31
    loss_window: int = 50


@dataclass(frozen=True)
class DepthUNetStage(Stage):
    """The depth-to-image U-Net: 4 latent channels + 1 estimated-depth channel, started from the U-Net."""

    name: str = "unet_depth"
    steps: int = 1800
    batch: int = 64
    lr: float = 5e-4
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    n_scenes: int = 10000
    data_seed: int = 40
    init_seed: int = 0
    generator_seed: int = 41
    loss_window: int = 100
    ema_decay: float = 0.999


@dataclass(frozen=True)
class InpaintUNetStage(Stage):
    """The inpainting U-Net: 4 latent channels + mask + 4 masked-image latent channels, started from the U-Net."""

    name: str = "unet_inpaint"
    steps: int = 3600  # v1.0: twice v0.9's 1,800, which on v1.0's base left the outside far worse (its card)
    batch: int = 64
    lr: float = 5e-4
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    n_scenes: int = 10000
    data_seed: int = 50
    init_seed: int = 0
    generator_seed: int = 52
    loss_window: int = 100
    ema_decay: float = 0.999
    masks_seed: int = 51  # generator of the one fixed mask per scene
    keep_weight: float = 5.0  # weight of the noise error outside the hole relative to inside
    keep_x0_weight: float = 0.1  # weight of the clean-latent (x0) error outside the hole
    hole_captions: float = 0.5  # share of object-shaped holes captioned with the hole's object alone
    hole_captions_seed: int = 53  # Python generator that words those captions


@dataclass(frozen=True)
class VaeDecoderStage(Stage):
    """A "VAE file": the VAE's decoder fine-tuned (encoder frozen) to paint the customising concepts' detail.

    Trained on the concepts TinySD's decoder paints worst (stars, outlines, the badge, stripes) mixed with the
    world's own scenes, which it must keep painting as well as before. Starts from the run's VAE, or `init`.
    """

    name: str = "vae_decoder"
    steps: int = 600
    batch: int = 16
    lr: float = 1e-4
    warmup: int = 50
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    n_scenes: int = 1024  # world scenes in the mix
    data_seed: int = 60
    init_seed: int = 0
    generator_seed: int = 61
    loss_window: int = 50
    concepts: tuple[str, ...] = ("star", "outlined", "badge", "striped")
    n_per_concept: int = 128
    concept_seed: int = 62
    init: str | None = None  # a VAE folder to start from instead of the run's `vae` stage


@dataclass(frozen=True)
class ControlNetStage(Stage):
    """A ControlNet for outlines: a trainable copy of the frozen U-Net's encoder, fed white-on-black edges.

    Conditions are the Canny edges of each scene (`sdlearn.edges.canny_edges`) or, for `outline_rate` of the
    samples, the scene's wobbly hand-drawn outline (`sdlearn.data.render_outline`, random wobble and width), so
    that a drawn outline works as well as a detected one. As in the ControlNet paper (Zhang et al. 2023), a
    large share of captions (`empty_prompt_rate`) is replaced by the empty prompt, so that the ControlNet
    learns to read the outline itself and not lean on the words. The U-Net, VAE and text encoder stay frozen:
    those of the run's stages, or of the model folder `base`.
    """

    name: str = "controlnet"
    steps: int = 3000
    batch: int = 32
    lr: float = 5e-4
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    n_scenes: int = 10000
    data_seed: int = 70
    init_seed: int = 0
    generator_seed: int = 71
    loss_window: int = 100
    p_two: float = 0.5  # share of two-object scenes: more outlines per picture
    outline_rate: float = 0.3  # share of samples conditioned on the hand-drawn outline instead of Canny edges
    outline_seed: int = 72  # numpy generator of each scene's outline wobble and width
    max_wobble: float = 0.2  # outline wobble drawn uniformly in [0, max_wobble] (a fraction of the radius)
    max_width: float = 2.5  # outline width drawn uniformly in [1, max_width] pixels
    empty_prompt_rate: float = 0.5
    base: str | None = None  # a model folder (unet/, vae/, text_encoder/) to control, or None: the run's stages
