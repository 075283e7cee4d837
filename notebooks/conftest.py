"""Keep what nbval's run of each lesson printed and drew, for the course site (`make site`).

nbval executes every code cell of a lesson in a kernel and holds the cell's outputs (`item.test_outputs`). When
`SDLEARN_EXECUTED_DIR` is set (`make test` sets it), each lesson whose cells all passed is written there with those
outputs, and `scripts/build_site.py` renders the site from these copies instead of running the lessons again.
The lessons in `notebooks/` themselves are never written.
"""
from __future__ import annotations

import os
import pathlib

import nbformat
import pytest

OUT = os.environ.get("SDLEARN_EXECUTED_DIR")
ROOT = pathlib.Path(__file__).resolve().parent
_failed: set[str] = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if OUT and report.failed and hasattr(item, "cell_num"):
        _failed.add(str(item.fspath))


def pytest_runtest_teardown(item, nextitem):
    if not OUT or not hasattr(item, "test_outputs") or item.test_outputs is None:
        return
    item.cell.outputs = list(item.test_outputs)
    item.cell.execution_count = item.cell_num + 1
    last = nextitem is None or getattr(nextitem, "parent", None) is not item.parent
    if last and str(item.fspath) not in _failed:
        target = pathlib.Path(OUT) / pathlib.Path(str(item.fspath)).resolve().relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(item.parent.nb, target)
