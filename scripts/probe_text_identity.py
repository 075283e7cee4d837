"""Probe: does TinySD's text encoder keep each word in that word's state? Fine-tune it so it does.

    python scripts/probe_text_identity.py --measure sdlearn/weights/tinysd/text_encoder
    python scripts/probe_text_identity.py --out runs/probe_te --steps 500 --weight 1.0

Measure: for "a C1 S1 to the left of a C2 S2" (all 30 x 9 prompts), how well the second colour C2 can be read
back (leave-one-out nearest centroid, chance 1/6) from the text encoder's output state at the C2 word itself, at
S2 and at the end token. CLIP's contrastive loss reads only the end token's state, so nothing asks the other
positions to say which word stands there.

Fine-tune: CLIP's loss (with the hard negatives TinySD trains with) plus `--weight` times a word-identity term:
a linear head reads every word's output state and must name the word (cross-entropy over the world's words).
Writes `<out>/clip` (a CLIPModel folder; `CLIPTextModel.from_pretrained` reads its text tower).
"""
from __future__ import annotations

import argparse
import itertools
import os
import pathlib
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPModel, CLIPTextModel

from sdlearn import tinysd
from sdlearn.data import COLOURS, SHAPES, World
from sdlearn.images import to_pixels
from sdlearn.train.captions import swap_attribute
from sdlearn.train.data import tokenize
from sdlearn.train.grounding import object_words
from sdlearn.train.losses import clip_loss


@torch.no_grad()
def measure(text_encoder, tok) -> dict[str, float]:
    cols = list(COLOURS)
    states, labels = {"C2": [], "S2": [], "end": []}, []
    for c1, c2 in itertools.permutations(cols, 2):
        for s1, s2 in itertools.product(SHAPES, SHAPES):
            words = f"a {c1} {s1} to the left of a {c2} {s2}"
            ids = tok(words, padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
            st = text_encoder(ids)[0][0]
            n = len(tok(words).input_ids)  # start ... end
            states["C2"].append(st[n - 3]), states["S2"].append(st[n - 2]), states["end"].append(st[n - 1])
            labels.append(cols.index(c2))
    y = torch.tensor(labels)
    out = {}
    for k, v in states.items():
        v = torch.stack(v)
        hits = 0
        for i in range(len(y)):
            keep = torch.ones(len(y), dtype=torch.bool)
            keep[i] = False
            centroids = torch.stack([v[keep & (y == c)].mean(0) for c in range(len(cols))])
            hits += int(torch.cosine_similarity(centroids, v[i : i + 1]).argmax() == y[i])
        out[k] = hits / len(y)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--measure", default=None, help="only measure this text encoder folder")
    ap.add_argument("--out", default=None)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--from-scratch", action="store_true")
    ap.add_argument("--attributes", type=float, default=0.0,
                    help="weight of a second term: every word of an object must also name that object's colour and shape")
    args = ap.parse_args()
    tok = tinysd.build_tokenizer()
    if args.measure:
        print(measure(CLIPTextModel.from_pretrained(args.measure).eval(), tok))
        return
    scenes = World(seed=91).batch(0, args.n)
    images = np.stack([s.image for s in scenes])
    captions = [s.caption for s in scenes]
    ids = tokenize(tok, captions)
    rng = np.random.default_rng(0)
    negative_ids = tokenize(tok, [swap_attribute(c, rng) for c in captions])
    vocab = sorted(set(ids.flatten().tolist()) - {tok.bos_token_id, tok.eos_token_id})
    index = torch.full((len(tok),), -100, dtype=torch.long)
    index[vocab] = torch.arange(len(vocab))
    # per position: the colour and shape of the object the word describes (-100 elsewhere)
    colour_of = torch.full(ids.shape, -100, dtype=torch.long)
    shape_of = torch.full(ids.shape, -100, dtype=torch.long)
    for i, s in enumerate(scenes):
        for obj, positions in zip(s.objects, object_words(s.caption, s.objects, s.relation, tok)):
            colour_of[i, positions] = list(COLOURS).index(obj.colour)
            shape_of[i, positions] = SHAPES.index(obj.shape)
    if args.from_scratch:
        torch.manual_seed(0)
        model = tinysd.make_clip()
    else:
        model = CLIPModel.from_pretrained(os.path.join(tinysd.DEFAULT_FOLDER, "clip"))
    model.train()
    width = model.config.text_config.hidden_size
    head = torch.nn.Linear(width, len(vocab))
    attr_head = torch.nn.Linear(width, len(COLOURS) + len(SHAPES))
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()) + list(attr_head.parameters()),
                            lr=args.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    t0 = time.time()
    for step in range(args.steps):
        idx = torch.randint(0, args.n, (args.batch,), generator=g)
        contrast = clip_loss(model, to_pixels(images[idx.numpy()]), ids[idx], negative_ids[idx])
        states = model.text_model(input_ids=ids[idx]).last_hidden_state  # (B, 77, D)
        target = index[ids[idx]]  # -100 at the start, end and padding positions
        ident = F.cross_entropy(head(states).flatten(0, 1), target.flatten(), ignore_index=-100)
        loss = contrast + args.weight * ident
        if args.attributes > 0:
            a = attr_head(states)
            attr = (F.cross_entropy(a[..., : len(COLOURS)].flatten(0, 1), colour_of[idx].flatten(), ignore_index=-100)
                    + F.cross_entropy(a[..., len(COLOURS) :].flatten(0, 1), shape_of[idx].flatten(), ignore_index=-100))
            loss = loss + args.attributes * attr
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == args.steps - 1:
            extra = f" attributes {attr.item():.3f}" if args.attributes > 0 else ""
            print(f"step {step} clip {contrast.item():.3f} identity {ident.item():.3f}{extra} {time.time() - t0:.0f}s",
                  flush=True)
    out = pathlib.Path(args.out)
    model.save_pretrained(out / "clip")
    model.eval()
    print("after:", measure(CLIPTextModel.from_pretrained(out / "clip").eval(), tok), f"{time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
