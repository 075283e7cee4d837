"""Render the whole course as a static HTML site: an index with the lesson table, one page per lesson and per
solution notebook with its outputs and figures, and the README's figures.

    python scripts/build_site.py                 # -> site/index.html (what `make site` runs)

Each page comes from the executed copy that `make test` leaves in build/executed/ (nbval's own run of the lesson,
kept by notebooks/conftest.py) when that copy has the same code as the lesson; otherwise the lesson is executed
here with nbclient. Rendering uses nbconvert's "lab" template and works offline: the pages embed their images, and
MathJax (from the jupyter-server-mathjax package) is copied next to them, so the formulas render without a network.
Sliders and other widgets need a running kernel: on the site they appear as their text description.
"""
from __future__ import annotations

import argparse
import html
import pathlib
import re
import shutil
import sys

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def lessons() -> list[pathlib.Path]:
    """Every lesson and solution notebook, lessons first, in course order."""
    found = [p for p in sorted(NOTEBOOKS.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
    return sorted(found, key=lambda p: (p.parent != NOTEBOOKS, p.name))


def same_code(a, b) -> bool:
    code = lambda nb: [c.source for c in nb.cells]
    return code(a) == code(b)


def executed(path: pathlib.Path, cache: pathlib.Path, timeout: int = 600) -> tuple[nbformat.NotebookNode, str]:
    """The lesson with its outputs: the cached execution when it matches the lesson's code, else a fresh run."""
    nb = nbformat.read(path, as_version=4)
    copy = cache / path.relative_to(NOTEBOOKS)
    if copy.exists():
        done = nbformat.read(copy, as_version=4)
        if same_code(done, nb):
            return done, "from make test's run"
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb, "executed now"


def title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "untitled"


def objectives(nb) -> list[str]:
    """The bullets under the lesson's "What you will be able to do" heading."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "What you will be able to do" in cell.source:
            return [l[2:].strip() for l in cell.source.splitlines() if l.startswith("- ")]
    return []


def link_pages(body: str) -> str:
    """Links between lessons point at their pages, not at the .ipynb files."""
    return re.sub(r'href="([^"#:]+)\.ipynb', r'href="\1.html', body)


def readme_figures() -> list[tuple[str, str]]:
    """(figure file, caption) for every figure the README's table shows."""
    text = (ROOT / "README.md").read_text()
    rows = re.findall(r"\| !\[[^\]]*\]\((figures/[^)]+)\) \| (.+?) \|\n", text)
    return rows


MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"  # configs the packaged MathJax 2.7 ships


def copy_mathjax(out: pathlib.Path) -> pathlib.Path:
    """MathJax's files in out/mathjax, so pages need no CDN; clear error if the package is missing."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        sys.exit("build_site.py needs MathJax's files: pip install jupyter-server-mathjax (it is in requirements.txt)")
    shutil.copytree(pathlib.Path(jupyter_server_mathjax.__file__).parent / "static", out / "mathjax")
    return out / "mathjax"


def mathjax_url(rel: str) -> str:
    """The local MathJax, relative to a page at rel (lessons at the top, solutions one folder down)."""
    up = "../" * rel.count("/")
    return f"{up}mathjax/MathJax.js?config={MATHJAX_CONFIG}"


def render_index(pages: list[tuple[pathlib.Path, object, str]], exporter: HTMLExporter) -> str:
    readme = (ROOT / "README.md").read_text().split("\n\n")
    intro = next(p for p in readme if not p.startswith("#"))
    lines = ["# sdlearn: how Stable Diffusion works, run stage by stage", "", intro, "",
             "Every page below is a lesson as `make test` ran it on TinySD, with its outputs. To run the lessons "
             "yourself (and move the sliders), clone the repository and run `make lab`.", "",
             "## Lessons", "", "| lesson | what you will be able to do | solutions |", "| --- | --- | --- |"]
    solutions = {p.name.replace("_solutions", ""): rel for p, _, rel in pages if p.parent != NOTEBOOKS}
    for path, nb, rel in pages:
        if path.parent != NOTEBOOKS:
            continue
        goals = "<br>".join(html.escape(g) for g in objectives(nb)) or ""
        sol = f"[solutions]({solutions[path.name]})" if path.name in solutions else ""
        lines.append(f"| [{html.escape(title(nb))}]({rel}) | {goals} | {sol} |")
    lines += ["", "## Figures", ""]
    for fig, caption in readme_figures():
        lines += [f"![{fig}]({fig})", "", caption, ""]
    index = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("\n".join(lines))])
    body, _ = exporter.from_notebook_node(index, resources={"metadata": {"name": "sdlearn"}})
    return body


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "site")
    parser.add_argument("--executed", type=pathlib.Path, default=ROOT / "build" / "executed",
                        help="executed copies of the lessons (make test writes them)")
    args = parser.parse_args(argv)
    out = args.out
    marker = out / ".sdlearn-site"  # only a folder this script wrote is ever replaced
    if out.exists() and any(out.iterdir()):
        if not marker.exists():
            sys.exit(f"{out} exists and was not written by build_site.py; choose another --out or remove it yourself.")
        shutil.rmtree(out)
    (out / "solutions").mkdir(parents=True)
    marker.touch()
    copy_mathjax(out)
    exporter = HTMLExporter(template_name="lab")
    pages = []
    for path in lessons():
        nb, how = executed(path, args.executed)
        rel = path.relative_to(NOTEBOOKS).with_suffix(".html").as_posix()
        exporter.mathjax_url = mathjax_url(rel)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title(nb)}})
        (out / rel).write_text(link_pages(body))
        pages.append((path, nb, rel))
        print(f"{rel:55s} {how}", flush=True)
    shutil.copytree(ROOT / "figures", out / "figures")
    exporter.mathjax_url = mathjax_url("index.html")
    (out / "index.html").write_text(render_index(pages, exporter))
    print(f"site: {out / 'index.html'} ({len(pages)} pages)")


if __name__ == "__main__":
    sys.exit(main())
