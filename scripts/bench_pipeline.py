"""Benchmark the hand-built text-to-image loop against diffusers' StableDiffusionPipeline on TinySD.

Run: python scripts/bench_pipeline.py [--runs 15] [--steps 25]
Prints a table: median seconds per 64x64 image with CFG, the ratio to diffusers, the same
with attention capture on, and the process's peak memory.
"""
import argparse
import os
import resource
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from diffusers import StableDiffusionPipeline  # noqa: E402

import sdlearn  # noqa: E402
from sdlearn import pipelines  # noqa: E402
from sdlearn.schedulers import swap_scheduler  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    parts = swap_scheduler(sdlearn.load(args.model), "ddim")
    pipe = StableDiffusionPipeline(**parts.as_kwargs(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    prompt = "a red circle on the left"
    kw = dict(num_inference_steps=args.steps, guidance_scale=7.5)
    runs = {
        "diffusers StableDiffusionPipeline": lambda g: pipe(prompt, output_type="np", generator=g, **kw),
        "sdlearn text_to_image": lambda g: pipelines.text_to_image(parts, prompt, generator=g, progress=False, **kw),
        "sdlearn text_to_image + attention capture":
            lambda g: pipelines.text_to_image(parts, prompt, generator=g, progress=False, record_attention=True, **kw),
    }
    times = {name: [] for name in runs}
    with torch.no_grad():
        for name, fn in runs.items():  # warm up
            fn(torch.Generator().manual_seed(0))
        for r in range(args.runs):  # interleaved, so drifts in machine load hit all three alike
            for name, fn in runs.items():
                t0 = time.perf_counter()
                fn(torch.Generator().manual_seed(r))
                times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["diffusers StableDiffusionPipeline"])
    print(f"TinySD, {args.steps} DDIM steps, guidance 7.5, 64x64, {torch.get_num_threads()} threads, "
          f"median of {args.runs} runs\n")
    print("| pipeline | median s / image | ratio to diffusers | target |")
    print("| --- | --- | --- | --- |")
    targets = {"sdlearn text_to_image": "<= 1.05", "sdlearn text_to_image + attention capture": "<= 1.3"}
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.3f} | {m / base:.3f} | {targets.get(name, '-')} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
