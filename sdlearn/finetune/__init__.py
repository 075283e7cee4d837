"""Customising a Stable Diffusion: textual inversion, LoRA, hypernetworks, DreamBooth, VAE files.

Each technique trains a different, small set of numbers on the same denoising objective (`core`), and saves a
file where users load such files: diffusers' `load_textual_inversion`, `load_lora_weights`, and
`AutoencoderKL.from_pretrained(...)` passed as `vae=`.
"""
from .core import ConceptBatch, FitResult, count_trainable, encode_concept, fit, noise_loss, token_ids
from .dreambooth import class_pictures
from .hypernetwork import (Hypernetwork, HypernetworkProcessor, add_hypernetwork, load_hypernetwork,
                           remove_hypernetwork, save_hypernetwork)
from .lora import (LORA_FILE, LORA_TARGETS, add_lora, check_lora_file, full_fine_tune, load_lora, lora_scale, save_lora,
                   train_unet)
from .textual_inversion import add_token, load_embedding, nearest_words, save_embedding, train_textual_inversion
from .vae_decoder import decoder_fine_tune, decoder_parameters, train_decoder

__all__ = [
    "ConceptBatch", "FitResult", "count_trainable", "encode_concept", "fit", "noise_loss", "token_ids",
    "class_pictures",
    "Hypernetwork", "HypernetworkProcessor", "add_hypernetwork", "load_hypernetwork", "remove_hypernetwork",
    "save_hypernetwork",
    "LORA_FILE", "LORA_TARGETS", "add_lora", "check_lora_file", "full_fine_tune", "load_lora", "lora_scale", "save_lora", "train_unet",
    "add_token", "load_embedding", "nearest_words", "save_embedding", "train_textual_inversion",
    "decoder_fine_tune", "decoder_parameters", "train_decoder",
]
