"""Every lesson and solution runs to the end on a Stable Diffusion folder that is not TinySD.

`foreign_model.write_foreign_family` writes, with `save_pretrained`, a small random-weights SD (96 px images,
v-prediction, an Euler scheduler, 48-wide text states, a 3-level U-Net, SD's VAE scaling factor) and its 5- and
9-channel variants. Each notebook then runs under nbval in a fresh pytest with `SDLEARN_MODEL`,
`SDLEARN_DEPTH_MODEL` and `SDLEARN_INPAINT_MODEL` pointing at them, exactly as a learner with another model would
run it. Claims only a trained TinySD can make skip with a printed reason; every other assert still runs.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from foreign_model import write_foreign_family

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = sorted(p.relative_to(NOTEBOOKS).as_posix() for p in NOTEBOOKS.rglob("*.ipynb")
                 if ".ipynb_checkpoints" not in p.parts)

pytestmark = pytest.mark.lessons


@pytest.fixture(scope="module")
def foreign_env(tmp_path_factory):
    env = dict(os.environ)
    env.update(write_foreign_family(tmp_path_factory.mktemp("foreign")))
    env["HF_HUB_OFFLINE"] = "1"
    env.pop("SDLEARN_EXECUTED_DIR", None)  # the site shows the TinySD run, not this one
    return env


def test_every_lesson_is_collected():
    assert len([n for n in LESSONS if "/" not in n]) >= 15, LESSONS


@pytest.mark.parametrize("notebook", LESSONS)
def test_lesson_runs_on_a_foreign_model(notebook, foreign_env):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                             "--nbval-current-env", str(NOTEBOOKS / notebook)],
                            cwd=NOTEBOOKS.parent, env=foreign_env, capture_output=True, text=True)
    assert result.returncode == 0, f"{notebook} failed on the foreign model:\n{result.stdout[-6000:]}"
