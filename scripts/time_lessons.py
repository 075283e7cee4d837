"""Time every lesson and measure its kernel's peak memory (a benchmark, not a test).

    python scripts/time_lessons.py                 # all lessons in notebooks/
    python scripts/time_lessons.py 08 09           # only these
    python scripts/time_lessons.py --solutions 09  # the reference solutions instead

Each lesson runs in a fresh `jupyter nbconvert --execute` process (kernel start included, outputs
discarded); the peak resident memory is the largest of that process and its children (the kernel),
as the operating system reports it. Budget per lesson: 60 s on 2 cores.
"""
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(notebook: pathlib.Path) -> tuple[float, float, int]:
    """(wall seconds, peak MB of the kernel and converter, return code) for one lesson, run in its own process."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.time()\n"
        "rc = subprocess.call([sys.executable, '-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute',\n"
        "                      '--ExecutePreprocessor.timeout=600', '--output-dir', sys.argv[2], sys.argv[1]],\n"
        "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(time.time() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc)\n"
    )
    with tempfile.TemporaryDirectory() as out:
        res = subprocess.run([sys.executable, "-c", code, str(notebook), out], capture_output=True, text=True,
                             env=dict(os.environ, HF_HUB_OFFLINE="1"), cwd=notebook.parent)
    wall, mb, rc = res.stdout.split()
    return float(wall), float(mb), int(rc)


def main(argv):
    folder = ROOT / "notebooks"
    if "--solutions" in argv:
        argv = [a for a in argv if a != "--solutions"]
        folder = folder / "solutions"
    lessons = sorted(folder.glob("[0-9][0-9]*_*.ipynb"))
    if argv:
        lessons = [p for p in lessons if p.name[:2] in argv]
    print("| lesson | wall time | peak memory | ok |")
    print("| --- | --- | --- | --- |")
    total = 0.0
    for nb in lessons:
        wall, mb, rc = run(nb)
        total += wall
        print(f"| {nb.stem} | {wall:.0f} s | {mb:.0f} MB | {'yes' if rc == 0 else 'FAILED'} |", flush=True)
    print(f"| total | {total / 60:.1f} min | | |")


if __name__ == "__main__":
    main(sys.argv[1:])
