"""LoRA (Hu et al., 2021) on the U-Net, and the full fine-tune it is measured against.

LoRA freezes a weight matrix W and learns a low-rank change to it: W' = W + (alpha / r) B A, with A (r x in) and
B (out x r), B started at zero so training starts from the unchanged model. For Stable Diffusion the matrices
are the attention projections (to_q, to_k, to_v, to_out); the source texts point at cross-attention alone.
`peft` injects the layers (the ecosystem's standard; diffusers' `add_adapter` is built on it), and the saved
file is what diffusers' `pipe.load_lora_weights(folder)` reads, so `fuse_lora`, `unfuse_lora` and the scale
(`cross_attention_kwargs={"scale": s}`) work on it as on any LoRA from the hub.
"""
from __future__ import annotations

import copy
import pathlib

import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file

from .core import ConceptBatch, FitResult, fit, noise_loss

__all__ = ["LORA_TARGETS", "add_lora", "train_unet", "lora_scale", "save_lora", "check_lora_file", "load_lora",
           "full_fine_tune", "LORA_FILE"]

PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
LORA_TARGETS = {
    "cross": tuple(f"attn2.{p}" for p in PROJECTIONS),  # cross-attention: where the text is read
    "all": tuple(f"attn{i}.{p}" for i in (1, 2) for p in PROJECTIONS),  # self- and cross-attention
}
LORA_FILE = "pytorch_lora_weights.safetensors"  # the name diffusers writes and looks for
ADAPTER = "default"


def add_lora(unet, rank: int = 4, targets: str = "cross", seed: int = 0) -> list[torch.nn.Parameter]:
    """Freeze the U-Net and add LoRA layers (alpha = rank, so scale 1) to the `targets` projections.

    Returns:
        The new trainable parameters (A and B of every adapted projection).
    """
    if targets not in LORA_TARGETS:
        raise ValueError(f"targets must be one of {tuple(LORA_TARGETS)}, got {targets!r}.")
    if rank < 1:
        raise ValueError(f"rank must be at least 1, got {rank}.")
    unet.requires_grad_(False)
    torch.manual_seed(seed)  # peft draws A at random
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=list(LORA_TARGETS[targets])), adapter_name=ADAPTER)
    return [p for p in unet.parameters() if p.requires_grad]


def train_unet(parts, data: ConceptBatch, params: list[torch.nn.Parameter], steps: int = 200, lr: float = 1e-3,
               batch_size: int = 8, seed: int = 0, prior: ConceptBatch | None = None, prior_weight: float = 1.0,
               desc: str = "fine-tuning the U-Net", progress: bool = True) -> FitResult:
    """Train `params` of the U-Net (LoRA layers, a hypernetwork, or all weights) on the noise loss over `data`.

    With `prior` (DreamBooth's prior preservation), each step adds `prior_weight` times the same loss on a batch
    of those pictures: what the model drew for the class before training, so that it keeps drawing it.
    """
    parts.vae.requires_grad_(False)
    parts.text_encoder.requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        states = parts.text_encoder(data.input_ids)[0]
        prior_states = None if prior is None else parts.text_encoder(prior.input_ids)[0]

    def loss_fn(step):
        idx = torch.randint(0, len(data), (batch_size,), generator=g)
        loss = noise_loss(parts, data.latents[idx], states[idx], g)
        if prior is not None:
            jdx = torch.randint(0, len(prior), (batch_size,), generator=g)
            loss = loss + prior_weight * noise_loss(parts, prior.latents[jdx], prior_states[jdx], g)
        return loss

    parts.unet.train()
    try:
        return fit(params, loss_fn, steps, lr, desc=desc, progress=progress)
    finally:
        parts.unet.eval()


def lora_scale(unet, scale: float) -> None:
    """Scale the LoRA's change: 0 is the base model, 1 the trained LoRA, in between a blend (the UI "weight")."""
    unet.set_adapters([ADAPTER], weights=[scale])


def save_lora(unet, folder) -> pathlib.Path:
    """Write the U-Net's LoRA layers where `pipe.load_lora_weights(folder)` finds them; returns the file."""
    if ADAPTER not in (getattr(unet, "peft_config", None) or {}):
        raise ValueError("this U-Net has no LoRA layers to save; add and train them first (add_lora).")
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=ADAPTER))
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=state, safe_serialization=True)
    return folder / LORA_FILE


def check_lora_file(path, unet) -> None:
    """Raise a clear error if a LoRA file was not made for this U-Net (diffusers' own message is a key dump).

    Every `lora_A` / `lora_B` matrix must belong to a projection this U-Net has, with matching sizes.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / LORA_FILE
    if not path.exists():
        raise FileNotFoundError(f"no LoRA file at {path}; save one with save_lora(unet, folder).")
    state = load_file(str(path))
    modules = dict(unet.named_modules())
    for key, tensor in state.items():
        name, kind = key.removeprefix("unet."), None
        for suffix, which in ((".lora_A.weight", "in"), (".lora.down.weight", "in"), (".lora_B.weight", "out"),
                              (".lora.up.weight", "out")):
            if name.endswith(suffix):
                name, kind = name[: -len(suffix)], which
                break
        if kind is None:
            continue  # alphas and other metadata
        layer = modules.get(name)
        layer = getattr(layer, "base_layer", layer)  # a U-Net that already holds LoRA layers
        if layer is None or not isinstance(layer, torch.nn.Linear):
            raise ValueError(f"{path.name} changes {name!r}, which this U-Net does not have: the LoRA was trained for "
                             "another model. Use a LoRA trained on this model (or this model's family).")
        size = tensor.shape[1] if kind == "in" else tensor.shape[0]
        if size != (layer.in_features if kind == "in" else layer.out_features):
            raise ValueError(f"{path.name} was trained for a {name!r} of another size ({tuple(tensor.shape)} does not fit "
                             f"{layer.out_features}x{layer.in_features}): it belongs to another model.")


def load_lora(unet, path, scale: float = 1.0) -> None:
    """Load a LoRA file (or a folder holding `pytorch_lora_weights.safetensors`) into the U-Net, at `scale`.

    The same file `pipe.load_lora_weights` reads, for the hand-built pipelines (and the command line's --lora).
    A file made for another model gets `check_lora_file`'s clear error instead of diffusers' key dump.
    """
    path = pathlib.Path(path)
    check_lora_file(path, unet)
    if ADAPTER in (getattr(unet, "peft_config", None) or {}):
        raise ValueError("this U-Net already holds a LoRA; load the model again to use another one.")
    file = path / LORA_FILE if path.is_dir() else path
    unet.load_lora_adapter(load_file(str(file)), prefix="unet", adapter_name=ADAPTER)
    lora_scale(unet, scale)


def full_fine_tune(unet) -> tuple[torch.nn.Module, list[torch.nn.Parameter]]:
    """A trainable copy of the whole U-Net (the base stays as it was), and its parameters: the comparison for LoRA."""
    tuned = copy.deepcopy(unet)
    tuned.requires_grad_(True)
    return tuned, list(tuned.parameters())
