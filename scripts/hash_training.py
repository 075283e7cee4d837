"""Hash the weights of a short run of every training stage, to prove a refactor changed no arithmetic.

    python scripts/hash_training.py                 # print the hashes
    python scripts/hash_training.py --save FILE     # ... and write them to FILE (json)
    python scripts/hash_training.py --check FILE    # exit 1 if any hash differs from FILE

Runs `python -m sdlearn.train` through its command line (whose flags a restructure keeps) with a
handful of steps per stage, small batches and few scenes, fixed seeds, and a checkpoint every 2 steps
so that saving and resuming run too; then a second VAE run with the locality term on (the one stage
option that reaches into the inpainting stage's masks). Each stage's `final/` files are hashed
(sha256), the configs included (less the temporary path diffusers records in them). Takes a few minutes on 2 cores.

The hashes depend on the installed torch / diffusers / transformers / accelerate / numpy (their kernels and
the versions diffusers writes into configs), so a saved file records those versions and `--check` says so when
they differ. To compare two commits on a new machine, `--save` at the old commit and `--check` at the new one.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import tempfile

SHORT = ["--n-train", "96", "--n-variant", "64", "--clip-steps", "4", "--vae-steps", "4", "--unet-steps", "4",
         "--depth-steps", "4", "--variant-unet-steps", "4", "--clip-batch", "16", "--vae-batch", "4",
         "--unet-batch", "8", "--variant-batch", "4", "--ckpt-every", "2", "--seed", "3"]
STAGES = ("clip", "vae", "unet", "depth", "unet_depth", "unet_inpaint")
PACKAGES = ("torch", "diffusers", "transformers", "accelerate", "numpy")


def versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in PACKAGES}


def file_bytes(path: pathlib.Path) -> bytes:
    """The file's bytes; for a json config, without `_name_or_path` (the temporary folder it was loaded from)."""
    if path.suffix != ".json":
        return path.read_bytes()
    config = json.loads(path.read_text())
    config.pop("_name_or_path", None)
    return json.dumps(config, sort_keys=True).encode()


def hash_folder(folder: pathlib.Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(file_bytes(p)).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def run(out: pathlib.Path, extra: list[str]) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    subprocess.run([sys.executable, "-m", "sdlearn.train", "--out", str(out), *SHORT, *extra], check=True, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", default=None, help="write the hashes to this json file")
    parser.add_argument("--check", default=None, help="compare with the hashes in this json file")
    args = parser.parse_args()
    hashes = {}
    with tempfile.TemporaryDirectory() as tmp:
        main_run = pathlib.Path(tmp, "all")
        run(main_run, ["--stages", ",".join(STAGES)])
        for stage in STAGES:
            hashes[stage] = hash_folder(main_run / stage / "final")
        local = pathlib.Path(tmp, "vae_local")
        run(local, ["--stages", "vae", "--vae-local-weight", "0.1"])
        hashes["vae_local"] = hash_folder(local / "vae" / "final")
    for stage, files in hashes.items():
        for name, h in files.items():
            print(f"{stage:14s} {name:28s} {h[:16]}")
    if args.save:
        pathlib.Path(args.save).write_text(json.dumps({"_versions": versions(), **hashes}, indent=2) + "\n")
    if args.check:
        want = json.loads(pathlib.Path(args.check).read_text())
        saved_with = want.pop("_versions", None)
        if saved_with != versions():
            print(f"note: {args.check} was saved with {saved_with or 'unrecorded versions'}; installed: {versions()}."
                  " Different packages give different hashes: --save at the old commit to compare commits here.")
        bad = [f"{s}/{n}" for s in want for n in want[s] if hashes.get(s, {}).get(n) != want[s][n]]
        bad += [f"{s}/{n} (new)" for s in hashes for n in hashes[s] if n not in want.get(s, {})]
        if bad:
            print("DIFFERENT:", ", ".join(bad))
            return 1
        print("all hashes equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
