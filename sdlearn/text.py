"""From prompt to the vectors the U-Net attends to: CLIP tokens, embeddings, `encode_prompt`.

The tokenizer splits text into byte-pair-encoding tokens; CLIP marks the last piece of each
word with `</w>` (end of word), so "dreambeach" is "dream" + "beach</w>" while "dream beach"
is "dream</w>" + "beach</w>". Every prompt becomes exactly 77 ids: a start token, at most 75
content tokens, an end token, then padding. The text encoder turns the ids into 77 vectors,
one per position, and those (not a single sentence vector) are what cross-attention reads.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

__all__ = ["TokenRow", "token_table", "dropped_words", "word_positions", "token_embeddings", "cosine_matrix", "encode_prompt",
           "clip_text_features"]


@dataclass
class TokenRow:
    position: int
    token: str
    id: int
    kind: str  # "start", "word", "end", "padding"
    kept: bool  # False for tokens cut off by the 77-token window


def token_table(prompt: str, tokenizer, warn: bool = True) -> list[TokenRow]:
    """Every token the model sees for `prompt`, plus the ones the 77-token window cuts off.

    Warns, naming them, when words are dropped.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}.")
    L = tokenizer.model_max_length
    full = tokenizer(prompt, truncation=False).input_ids  # start, all content tokens, end
    kept = tokenizer(prompt, padding="max_length", max_length=L, truncation=True).input_ids
    content = full[1:-1]
    room = L - 2
    rows = [TokenRow(0, tokenizer.convert_ids_to_tokens(kept[0]), kept[0], "start", True)]
    for i, tid in enumerate(content):
        rows.append(TokenRow(i + 1, tokenizer.convert_ids_to_tokens(tid), tid, "word", i < room))
    n_content = min(len(content), room)
    rows.append(TokenRow(n_content + 1, tokenizer.convert_ids_to_tokens(kept[n_content + 1]), kept[n_content + 1], "end", True))
    for p in range(n_content + 2, L):
        rows.append(TokenRow(p, tokenizer.convert_ids_to_tokens(kept[p]), kept[p], "padding", True))
    dropped = dropped_words(prompt, tokenizer)
    if warn and dropped:
        warnings.warn(f"The prompt is longer than {room} tokens; these words were dropped: {' '.join(dropped)}",
                      stacklevel=2)
    return rows


def dropped_words(prompt: str, tokenizer) -> list[str]:
    """The words (whole or partly) beyond the 75 content tokens the text encoder can see."""
    room = tokenizer.model_max_length - 2
    words = prompt.split()
    used, dropped = 0, []
    for w in words:
        n = len(tokenizer(w, add_special_tokens=False).input_ids)
        if used + n > room:
            dropped.append(w)
        used += n
    return dropped


def word_positions(prompt: str, tokenizer) -> list[tuple[str, list[int]]]:
    """Each word of the prompt with the token positions it occupies (position 0 is the start token).

    CLIP's tokenizer splits text into words before its byte-pair merges, so tokenizing word by word gives
    the same tokens as tokenizing the prompt (checked); words past the 77-token window are left out.
    """
    words = prompt.lower().split()
    pieces = [tokenizer.tokenize(w) for w in words]
    if sum(pieces, []) != tokenizer.tokenize(prompt.lower()):
        raise ValueError(f"cannot place the words of {prompt!r} on its tokens; use plain lowercase words.")
    out, pos = [], 1
    for word, p in zip(words, pieces):
        span = [i for i in range(pos, pos + len(p)) if i < tokenizer.model_max_length - 1]
        if span:
            out.append((word, span))
        pos += len(p)
    return out


def token_embeddings(words: list[str], tokenizer, text_encoder) -> torch.Tensor:
    """The input embedding (the row of the token-embedding table) of each single-token word, (N, D).

    These are looked up before any context is mixed in; a word made of several tokens raises
    an error naming its pieces.
    """
    table = text_encoder.get_input_embeddings().weight
    ids = []
    for w in words:
        toks = tokenizer(w, add_special_tokens=False).input_ids
        if len(toks) != 1:
            raise ValueError(f"{w!r} is {len(toks)} tokens {tokenizer.convert_ids_to_tokens(toks)}; pass single-token words.")
        ids.append(toks[0])
    return table[torch.tensor(ids)].detach()


def cosine_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """Pairwise cosine similarities of the rows of `vectors`."""
    v = torch.nn.functional.normalize(vectors.float(), dim=-1)
    return v @ v.T


@torch.no_grad()
def encode_prompt(prompt, tokenizer, text_encoder, negative_prompt=None, do_classifier_free_guidance: bool = True):
    """Prompt(s) -> (prompt_embeds, negative_prompt_embeds), each (B, 77, D), as diffusers' pipelines make them.

    The negative embedding is the encoding of `negative_prompt`, or of the empty prompt "" when
    none is given: the "unconditional" input of classifier-free guidance. It is None when
    guidance is off.
    """
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise TypeError("prompt must be a string or a non-empty list of strings.")
    device = text_encoder.device

    def encode(texts):
        ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids
        mask = None
        if getattr(text_encoder.config, "use_attention_mask", False):
            mask = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                             return_tensors="pt").attention_mask.to(device)
        return text_encoder(ids.to(device), attention_mask=mask)[0]

    prompt_embeds = encode(prompts)
    if not do_classifier_free_guidance:
        return prompt_embeds, None
    if negative_prompt is None:
        negatives = [""] * len(prompts)
    elif isinstance(negative_prompt, str):
        negatives = [negative_prompt] * len(prompts)
    else:
        negatives = list(negative_prompt)
        if len(negatives) != len(prompts):
            raise ValueError(f"{len(negatives)} negative prompts for {len(prompts)} prompts; give one per prompt or a single string.")
    return prompt_embeds, encode(negatives)


@torch.no_grad()
def clip_text_features(clip, input_ids: torch.Tensor) -> torch.Tensor:
    """CLIP's sentence embedding: the text tower's pooled output (the end token's state) through the
    text projection, the vector CLIP compares with image embeddings. (B, projection_dim)"""
    pooled = clip.text_model(input_ids=input_ids).pooler_output
    return clip.text_projection(pooled)
