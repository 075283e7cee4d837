"""Train the small customising files TinySD ships for the classroom demo, the CLI and lesson 18.

    python scripts/make_addons.py                 # all of them, into sdlearn/weights/addons/
    python scripts/make_addons.py --only thing    # one of them

Each is trained by `sdlearn.finetune` with the recipe of the lesson that teaches it, for longer than a lesson can:
- thing.safetensors: a textual-inversion embedding for "<thing>", a large yellow triangle on black (lesson 15);
- wide-lora/: a cross-attention LoRA for the style "wide" (lesson 16);
- badge-dreambooth/ and badge-dreambooth-no-prior/: DreamBooth LoRAs binding "sks" to the badge, with and without
  prior preservation (lesson 18).
A file that exists is kept unless --overwrite is given. Seeded: the same command writes the same files.
"""
from __future__ import annotations

import argparse
import copy
import json
import pathlib
import time

import numpy as np
import torch

import sdlearn
from sdlearn.data.concepts import concept_images
from sdlearn.eval import image_size
from sdlearn.finetune import (add_lora, add_token, class_pictures, encode_concept, save_embedding, save_lora,
                              train_textual_inversion, train_unet)

OUT = pathlib.Path(__file__).resolve().parents[1] / "sdlearn" / "weights" / "addons"
THING = dict(colours=("yellow",), shapes=("triangle",), sizes=("large",), backgrounds=("black",))
DREAMBOOTH = dict(n_pictures=5, steps=400, lr=5e-3, batch_size=4, rank=4, targets="all", class_prompt="a circle",
                  n_prior=64, prior_steps=15, prior_guidance=7.5, prior_weight=1.0)


def thing(parts, out: pathlib.Path) -> dict:
    pictures = concept_images("filled", 32, seed=0, caption="a <thing>", size_px=image_size(parts)[0], **THING)
    token_id = add_token(parts, "<thing>", "triangle")
    fit = train_textual_inversion(parts, encode_concept(parts, pictures.images, pictures.captions), token_id,
                                  steps=600, lr=0.1, batch_size=4, seed=0)
    save_embedding(parts, "<thing>", out)
    return {"steps": 600, "lr": 0.1, "batch_size": 4, "pictures": 32, "trained": fit.trained, "seconds": fit.seconds}


def wide(parts, out: pathlib.Path) -> dict:
    size = image_size(parts)[0]
    wide_pics, plain = concept_images("wide", 64, seed=0, size_px=size), concept_images("filled", 64, seed=0, size_px=size)
    data = encode_concept(parts, np.concatenate([wide_pics.images, plain.images]), wide_pics.captions + plain.captions)
    params = add_lora(parts.unet, 4, "cross")
    fit = train_unet(parts, data, params, steps=1200, lr=2e-3, batch_size=8, seed=0)
    save_lora(parts.unet, out)
    return {"steps": 1200, "lr": 2e-3, "batch_size": 8, "rank": 4, "targets": "cross", "trained": fit.trained,
            "seconds": fit.seconds}


def dreambooth(parts, out: pathlib.Path, prior: bool) -> dict:
    c = DREAMBOOTH
    pictures = concept_images("badge", c["n_pictures"], seed=0, sizes=("large",), size_px=image_size(parts)[0])
    data = encode_concept(parts, pictures.images, pictures.captions)
    prior_batch = None
    if prior:
        prior_batch, _ = class_pictures(parts, c["class_prompt"], c["n_prior"], guidance_scale=c["prior_guidance"],
                                        steps=c["prior_steps"])
    params = add_lora(parts.unet, c["rank"], c["targets"])
    fit = train_unet(parts, data, params, steps=c["steps"], lr=c["lr"], batch_size=c["batch_size"], seed=0,
                     prior=prior_batch, prior_weight=c["prior_weight"])
    save_lora(parts.unet, out)
    return {**c, "prior": prior, "trained": fit.trained, "seconds": fit.seconds}


JOBS = {"thing": ("thing.safetensors", thing), "wide": ("wide-lora", wide),
        "badge": ("badge-dreambooth", lambda p, o: dreambooth(p, o, prior=True)),
        "badge-no-prior": ("badge-dreambooth-no-prior", lambda p, o: dreambooth(p, o, prior=False))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=list(JOBS), action="append", help="train only these (repeatable)")
    parser.add_argument("--overwrite", action="store_true", help="replace files that exist")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / "training.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {}
    for name in args.only or list(JOBS):
        file, job = JOBS[name]
        target = OUT / file
        if target.exists() and not args.overwrite:
            print(f"{target} exists; keeping it (--overwrite to replace)")
            continue
        torch.manual_seed(0)
        parts = sdlearn.load("tinysd")
        t0 = time.time()
        log[name] = {**job(parts, target), "file": file, "wall_seconds": round(time.time() - t0, 1),
                     "threads": torch.get_num_threads()}
        print(f"{name}: wrote {target} in {log[name]['wall_seconds']} s")
        log_path.write_text(json.dumps(log, indent=2) + "\n")


if __name__ == "__main__":
    main()
