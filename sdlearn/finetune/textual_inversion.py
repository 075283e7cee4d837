"""Textual inversion (Gal et al., 2022): teach the model a new word by training only that word's embedding.

A new token, say "<star>", gets one new row in the text encoder's embedding table. Everything else is frozen:
the text encoder's layers, the U-Net, the VAE. Gradient descent on the usual noise loss, through the frozen U-Net
and text encoder, moves only that row, so the result is one vector (64 numbers for TinySD, 768 for SD 1.5).
Because nothing that draws is changed, the vector can only steer the frozen U-Net towards something it can
already draw: the technique finds a word for an existing concept, it does not teach a new one.

The saved file is what diffusers' `pipe.load_textual_inversion(path)` reads: a safetensors file holding one
tensor under the token's name.
"""
from __future__ import annotations

import pathlib

import torch
from safetensors.torch import load_file, save_file

from .core import ConceptBatch, FitResult, fit, noise_loss

__all__ = ["add_token", "train_textual_inversion", "save_embedding", "load_embedding", "nearest_words"]


def add_token(parts, token: str, init_word: str) -> int:
    """Add `token` to the tokenizer and a row for it to the text encoder, started at `init_word`'s embedding.

    Returns:
        The new token's id.
    """
    tokenizer, text_encoder = parts.tokenizer, parts.text_encoder
    if not token or any(c.isspace() for c in token):
        raise ValueError(f"the token must be one word without spaces, got {token!r}; e.g. '<star>'.")
    if token in tokenizer.get_vocab() or len(tokenizer(token, add_special_tokens=False).input_ids) == 1:
        raise ValueError(f"{token!r} is already in the tokenizer's vocabulary, so training it would change a word "
                         "the model already uses; pick a new token such as '<my-concept>'.")
    init_ids = tokenizer(init_word, add_special_tokens=False).input_ids
    if len(init_ids) != 1:
        raise ValueError(f"init_word {init_word!r} is {len(init_ids)} tokens; choose a word that is a single token "
                         "(e.g. 'circle').")
    if tokenizer.add_tokens(token) != 1:
        raise ValueError(f"{token!r} could not be added as a new token (it is already known); pick another one.")
    token_id = tokenizer.convert_tokens_to_ids(token)
    text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    table = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        table[token_id] = table[init_ids[0]]
    return token_id


def train_textual_inversion(parts, data: ConceptBatch, token_id: int, steps: int = 200, lr: float = 5e-2,
                            batch_size: int = 8, seed: int = 0, progress: bool = True) -> FitResult:
    """Train only the embedding row `token_id` on `data` (captions that contain the token).

    The whole embedding table needs a gradient to reach one row; after every step every other row is put back,
    so exactly one vector changes (the count in the result is that vector's size).
    """
    table = parts.text_encoder.get_input_embeddings().weight
    if not (data.input_ids == token_id).any(dim=1).all():
        raise ValueError("every training caption must contain the new token; write captions like 'a red <star>'.")
    parts.unet.requires_grad_(False)
    parts.vae.requires_grad_(False)
    parts.text_encoder.requires_grad_(False)
    table.requires_grad_(True)
    keep = table.detach().clone()
    others = torch.ones(len(table), dtype=torch.bool)
    others[token_id] = False
    g = torch.Generator().manual_seed(seed)

    def loss_fn(step):
        idx = torch.randint(0, len(data), (batch_size,), generator=g)
        states = parts.text_encoder(data.input_ids[idx])[0]
        return noise_loss(parts, data.latents[idx], states, g)

    def restore():
        with torch.no_grad():
            table[others] = keep[others]

    parts.text_encoder.train()
    try:
        result = fit([table], loss_fn, steps, lr, desc="textual inversion", progress=progress, after_step=restore)
    finally:
        parts.text_encoder.eval()
        table.requires_grad_(False)
    result.trained = table.shape[1]  # one row of the table
    return result


def save_embedding(parts, token: str, path) -> pathlib.Path:
    """Write the token's vector as diffusers' `load_textual_inversion` reads it: {token: (D,)} in safetensors."""
    path = pathlib.Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"save the embedding as a .safetensors file, got {path.name!r}.")
    token_id = parts.tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == parts.tokenizer.unk_token_id and token != parts.tokenizer.unk_token:
        raise ValueError(f"{token!r} is not in the tokenizer; add and train it first (add_token).")
    vector = parts.text_encoder.get_input_embeddings().weight[token_id].detach().clone()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({token: vector}, str(path))
    return path


def load_embedding(parts, path, token: str | None = None) -> int:
    """Load an embedding file into `parts` (diffusers' format, one vector under the token's name); returns its id.

    The checks diffusers makes, with the fix in the message: the vector's width must be the text encoder's, and
    the token must be new.
    """
    state = load_file(str(path))
    if len(state) != 1:
        raise ValueError(f"{path} holds {len(state)} tensors; a textual-inversion file holds one, under its token.")
    (name, vector), = state.items()
    token = token or name
    width = parts.text_encoder.get_input_embeddings().weight.shape[1]
    if vector.ndim != 1 or vector.shape[0] != width:
        raise ValueError(f"{path} holds a vector of shape {tuple(vector.shape)}, but this text encoder's embeddings are "
                         f"{width} wide: the file was trained for another model. Load an embedding trained for this one.")
    if token in parts.tokenizer.get_vocab() or len(parts.tokenizer(token, add_special_tokens=False).input_ids) == 1:
        raise ValueError(f"{token!r} is already in the tokenizer; load the file under another name with token='<...>'.")
    parts.tokenizer.add_tokens(token)
    token_id = parts.tokenizer.convert_tokens_to_ids(token)
    parts.text_encoder.resize_token_embeddings(len(parts.tokenizer), mean_resizing=False)
    with torch.no_grad():
        parts.text_encoder.get_input_embeddings().weight[token_id] = vector
    return token_id


def nearest_words(parts, token_id: int, words: list[str], k: int = 5) -> list[tuple[str, float]]:
    """The `k` words among `words` whose embeddings are closest (cosine) to the token's vector."""
    table = parts.text_encoder.get_input_embeddings().weight.detach()
    ids = [parts.tokenizer(w, add_special_tokens=False).input_ids for w in words]
    single = [(w, i[0]) for w, i in zip(words, ids) if len(i) == 1]
    if not single:
        raise ValueError("none of the words is a single token; give words like 'circle', 'red'.")
    vecs = torch.stack([table[i] for _, i in single])
    sims = torch.nn.functional.cosine_similarity(vecs, table[token_id][None], dim=1)
    order = sims.argsort(descending=True)[:k]
    return [(single[i][0], float(sims[i])) for i in order]
