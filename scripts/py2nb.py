"""Convert a percent-format .py (# %% and # %% [markdown]) into a clean .ipynb."""
import sys, nbformat
src = "\n" + open(sys.argv[1]).read()
cells = []
for block in src.split("\n# %%")[1:]:
    header, _, body = block.partition("\n")
    body = body.strip("\n")
    if header.strip().startswith("[markdown]"):
        lines = [l[2:] if l.startswith("# ") else l.lstrip("#") for l in body.split("\n")]
        cells.append(nbformat.v4.new_markdown_cell("\n".join(lines)))
    else:
        cells.append(nbformat.v4.new_code_cell(body))
nb = nbformat.v4.new_notebook(cells=cells)
nb.metadata = {"kernelspec": {"display_name": "Python (sdlearn)", "language": "python", "name": "sdlearn"},
               "language_info": {"name": "python"}}
nbformat.write(nb, sys.argv[2], version=4)
