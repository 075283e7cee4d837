"""Benchmark: how many procedural samples per second one CPU core generates.

Run: python scripts/bench_data.py [--size 64] [--n 5000]
"""
import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sdlearn.data import World  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    world = World(size=args.size, seed=0)
    world.batch(0, 200)  # warm up caches
    rates = []
    for rep in range(3):
        start = time.perf_counter()
        world.batch(rep * args.n, args.n)
        rates.append(args.n / (time.perf_counter() - start))
    print("| image size | samples | samples/s on one core (best of 3) | median |")
    print(f"| {args.size}x{args.size} | {args.n} | {max(rates):,.0f} | {sorted(rates)[1]:,.0f} |")


if __name__ == "__main__":
    main()
