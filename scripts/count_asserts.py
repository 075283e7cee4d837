"""Count the asserts each lesson actually runs, on TinySD and on another model.

Each notebook is executed with nbclient after a first cell that registers an IPython AST transformer: every
`assert` statement in a cell gets a counter call in front of it, so an assert inside a skipped `if parts.is_tinysd:`
branch, or in a loop, counts as often as it really runs. Library code is not counted, only the lesson's own cells.

    python scripts/count_asserts.py                       # every lesson and solution on the current model
    SDLEARN_MODEL=runs/foreign/sd ... python scripts/count_asserts.py notebooks/07_cross_attention_maps.ipynb
    python scripts/count_asserts.py --foreign runs/foreign   # both: TinySD and the foreign family, one table
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]

COUNTER = '''
import ast as _ast
class _CountAsserts(_ast.NodeTransformer):
    def visit_Assert(self, node):
        call = _ast.Expr(_ast.Call(_ast.Name("_sdlearn_count_assert", _ast.Load()), [], []))
        return [_ast.copy_location(call, node), node]
_sdlearn_asserts = [0]
def _sdlearn_count_assert():
    _sdlearn_asserts[0] += 1
get_ipython().ast_transformers.append(_CountAsserts())
'''


def count(notebook: pathlib.Path, env: dict[str, str] | None = None) -> int:
    """Run `notebook` (with `env` added to the environment) and return how many asserts ran."""
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(COUNTER))
    nb.cells.append(nbformat.v4.new_code_cell("print('ASSERTS', _sdlearn_asserts[0])"))
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    return int(text.split()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--foreign", type=pathlib.Path, default=None,
                        help="also run on the foreign family written in this folder (tests/foreign_model.py)")
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").rglob("*.ipynb"))
    foreign = None
    if args.foreign is not None:
        sys.path.insert(0, str(ROOT / "tests"))
        from foreign_model import write_foreign_family
        foreign = write_foreign_family(args.foreign)
    print("| notebook | asserts run on TinySD |" + (" on the foreign model |" if foreign else ""))
    print("| --- | --- |" + (" --- |" if foreign else ""))
    for nb in notebooks:
        row = f"| {nb.relative_to(ROOT / 'notebooks')} | {count(nb)} |"
        if foreign:
            row += f" {count(nb, foreign)} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
