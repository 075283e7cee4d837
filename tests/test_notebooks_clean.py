"""Lessons are stored without outputs and without widget state, and follow the lesson shape."""
import json
import pathlib

import pytest

NOTEBOOKS = sorted(pathlib.Path(__file__).resolve().parents[1].joinpath("notebooks").rglob("*.ipynb"))


def test_there_are_lessons():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_clean_and_shaped_like_a_lesson(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: strip outputs before committing"
            assert cell.get("execution_count") is None, f"{path.name}: clear execution counts"
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: strip widget state"
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert text.lstrip().startswith("# "), "a lesson starts with its title"
    if path.parent.name == "solutions":  # a solution answers a lesson's exercises, one section each
        assert path.name.replace("_solutions", "") in {p.name for p in NOTEBOOKS}, f"{path.name}: no such lesson"
        assert "## Exercise 1" in text or "## 1." in text or "Exercise 1" in text, f"{path.name}: one section per exercise"
    else:
        assert "## What you will be able to do" in text, f"{path.name}: state the lesson's objectives"
        assert "## Summary" in text and "## Exercises" in text
    assert any("assert " in "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"), \
        "a lesson checks its claims with asserts"
