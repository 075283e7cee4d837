"""Choose the recommended guidance and steps of a TinySD folder: the eval's single-object and two-object rows
at several guidance scales, step counts and schedulers (a benchmark for the model card, not a test).

    python scripts/probe_guidance.py runs/v1/export --n 200 --scales 2 3 4 5 --steps 25
    python scripts/probe_guidance.py runs/v1/export --schedulers DDIMScheduler EulerDiscreteScheduler ...
"""
from __future__ import annotations

import argparse
import copy
import time

import diffusers
from diffusers import StableDiffusionPipeline

from sdlearn.eval.judged import generate, judge_prompts
from sdlearn.eval.prompts import single_object_prompts, two_object_prompts
from sdlearn.eval.two_objects import two_object_metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--scales", type=float, nargs="+", default=[2.0, 3.0, 4.0, 5.0])
    parser.add_argument("--steps", type=int, nargs="+", default=[25])
    parser.add_argument("--schedulers", nargs="+", default=[None], help="class names (default: the folder's)")
    args = parser.parse_args()
    pipe = StableDiffusionPipeline.from_pretrained(args.folder)
    pipe.set_progress_bar_config(disable=True)
    single = single_object_prompts(args.n, seed=1001)
    pairs = two_object_prompts(args.n, seed=1004)
    print("| scheduler | steps | guidance | single colour | single shape | two: both | colours | shapes | all four "
          "| loc colour | loc shape | s |")
    print("| --- " * 12 + "|")
    for name in args.schedulers:
        p = copy.copy(pipe)
        if name:
            p.scheduler = getattr(diffusers, name).from_config(pipe.scheduler.config)
        for steps in args.steps:
            for g in args.scales:
                t0 = time.time()
                r = judge_prompts(generate(p, single, g, steps), single)
                m = two_object_metrics(p, pairs, g, steps, progress=False)
                cells = [type(p.scheduler).__name__, steps, g, r["colour"], r["shape"], m["both"], m["colours"],
                         m["shapes"], m["all"], m["loc_colour"], m["loc_shape"]]
                print("| " + " | ".join(f"{c:.1%}" if isinstance(c, float) and c <= 1 and not isinstance(c, bool)
                                        and i >= 3 else str(c) for i, c in enumerate(cells))
                      + f" | {time.time() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
