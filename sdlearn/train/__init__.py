"""Train TinySD from scratch: CLIP, then the VAE, then the U-Net, as Stable Diffusion was built; then the
depth estimator and the depth-to-image and inpainting U-Nets of TinySD-depth and TinySD-inpaint.

    python -m sdlearn.train --out runs/tinysd            # all stages, resumable
    python -m sdlearn.train --out runs/tinysd --export sdlearn/weights/tinysd

Stages run in order and each is skipped once finished:

1. clip          a small CLIPModel trained contrastively on (image, caption) pairs with in-batch
                 negatives (Radford et al. 2021), plus one hard negative per image (its caption
                 with a shape or colour swapped). Its text tower becomes the frozen text encoder.
                 Optional (`identity_weight`, `attribute_weight`): word terms so that every word's output
                 state still names its word, and an object's words its colour and shape (the contrastive
                 loss reads only the end token's state).
2. vae           AutoencoderKL trained to reconstruct images through an 8x8x4 latent
                 (MSE weighted towards edges, so small shapes keep their corners, + a small
                 KL term, Rombach et al. 2022); then its scaling factor is measured so that
                 scaled latents have unit variance.
3. unet          UNet2DConditionModel trained to predict the noise in latents, cross-attending to
                 the frozen text encoder's hidden states (encoded once up front); 10% of captions
                 are replaced by the empty prompt so classifier-free guidance works, 20% leave out
                 one colour or shape word (see `drop_attribute`). Min-SNR loss weighting; an EMA
                 of its weights is kept. Optional (`grounding_weight`): the grounding term of
                 `grounding`, which teaches each object's pixels to attend to that object's words.
4. depth         a small DPTForDepthEstimation trained on the world's depths. Like MiDaS (Ranftl et al.
                 2021), which Stable Diffusion 2's depth model asks for a depth map, it predicts relative
                 inverse depth (larger = nearer).
5. unet_depth    the depth-to-image U-Net: the text-to-image U-Net with one extra input channel, the depth
                 map the trained estimator gives (resized to the latents and scaled to [-1, 1], as the
                 pipeline makes it), so that training sees the same imperfect maps the pipeline feeds it.
6. unet_inpaint  the inpainting U-Net: five extra input channels, the mask and the VAE latents of the
                 masked image; one fixed mask per scene (an object's outline or a box), the loss stressed
                 outside the hole, and object holes sometimes captioned with the object alone.

Both variant U-Nets start from the text-to-image U-Net with zero weights on the new input channels, so
that training begins from the parent model's behaviour, and keep an EMA as it does.

Every hyperparameter is in `sdlearn.train.config`, one dataclass per stage; the command line changes a few.
One file per job: `data` (scenes, token ids, encoded captions and latents), `captions` (captions made from
captions), `losses`, `grounding` (the cross-attention grounding term), `loop` (the training loop, checkpoints,
EMA), one file per stage (`clip`, `vae`, `unet`,
`depth_estimator`, `unet_depth`, `unet_inpaint`), `exporting` (the diffusers folders) and `cli`.

Built on Hugging Face Accelerate, so `accelerate launch -m sdlearn.train ...` runs the same
script on several GPUs or machines. Checkpoints are written every `--ckpt-every` steps into
`<out>/<stage>/checkpoint`; rerunning the same command resumes from them.
"""
from .captions import drop_attribute, hole_captions, swap_attribute, swap_colours
from .cli import main
from .data import encode_captions, make_dataset, make_scenes, random_masks, tokenize, with_colour_boost
from .exporting import export, export_variants
from .grounding import grounding_loss, object_words
from .losses import clip_loss, edge_weights, locality_gap, unet_loss, vae_loss, word_identity_loss

__all__ = ["make_scenes", "with_colour_boost", "make_dataset", "tokenize", "encode_captions", "random_masks", "clip_loss", "word_identity_loss",
           "grounding_loss", "object_words", "swap_attribute", "swap_colours",
           "drop_attribute", "hole_captions", "vae_loss", "locality_gap", "edge_weights", "unet_loss", "export",
           "export_variants", "main"]
