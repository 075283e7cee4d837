"""The library's import structure is the one sdlearn/README.md writes down: bottom-up, no cycles, no hidden imports."""
import ast
import importlib
import inspect
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "sdlearn"
MODULES = sorted(p for p in ROOT.rglob("*.py") if "weights" not in p.parts)


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top(name: str) -> str:
    """sdlearn.train.loop -> train; sdlearn -> sdlearn (the package itself)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "sdlearn"


def sdlearn_imports(path: pathlib.Path):
    """Every sdlearn module a file imports, anywhere in it: (target, line, inside a function?)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            if node.module:
                targets = [".".join(base + [node.module])]
            else:
                targets = [".".join(base + [a.name]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sdlearn":
            targets = [node.module]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.split(".")[0] == "sdlearn"]
        for t in targets:
            yield t, node.lineno, id(node) in in_function


def allowed_imports() -> dict[str, set[str]]:
    """The table in sdlearn/README.md: module -> the sdlearn modules it may import."""
    table = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.replace("\\|", "/").strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue
        module = re.match(r"`([\w.]+)`", cells[0]).group(1)
        table[module] = set(re.findall(r"`([\w.]+)`", cells[3]))
    return table


def test_the_readme_table_lists_every_module():
    table = allowed_imports()
    assert {top(module_name(p)) for p in MODULES} == set(table)


def test_every_import_is_one_the_table_allows():
    table = allowed_imports()
    bad = []
    for path in MODULES:
        src = top(module_name(path))
        for target, line, _ in sdlearn_imports(path):
            dst = top(target)
            if dst != src and dst not in table[src]:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {target} ({src} may import only "
                           f"{sorted(table[src]) or 'nothing from sdlearn'})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles_between_files():
    graph = {}
    for path in MODULES:
        graph.setdefault(module_name(path), set()).update(t for t, _, _ in sdlearn_imports(path))
    # a package's __init__ re-exporting its own files is not a cycle of the layout
    for name in graph:
        graph[name] = {t for t in graph[name] if not (t.startswith(name + ".") and (ROOT.parent / name.replace(".", "/")).is_dir())}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:  # `from . import x` where x is a name, not a file
                continue
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_allowed_imports_themselves_have_no_cycle():
    table = allowed_imports()
    order = []
    remaining = dict(table)
    while remaining:
        ready = [m for m, deps in remaining.items() if deps <= set(order)]
        assert ready, f"the README's table has a cycle among {sorted(remaining)}"
        order += ready
        for m in ready:
            del remaining[m]


def test_imports_inside_functions_are_third_party_and_explained():
    """No sdlearn import hides inside a function (it would hide a cycle); a third-party one needs a comment why."""
    bad = []
    for path in MODULES:
        lines = path.read_text().splitlines()
        for target, line, inside in sdlearn_imports(path):
            if inside and path != ROOT / "__init__.py":  # the package's lazy `sdlearn.load` is listed in the README
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {target} inside a function")
        tree = ast.parse("\n".join(lines))
        for f in ast.walk(tree):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(f):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        here, above = lines[node.lineno - 1], lines[node.lineno - 2].strip()
                        if "#" not in here and not above.startswith("#"):
                            bad.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} imports inside a function "
                                       "without a comment saying why")
    assert not bad, "\n".join(sorted(set(bad)))


@pytest.mark.parametrize("path", [p for p in MODULES if p.name not in ("__main__.py",)],
                         ids=lambda p: module_name(p))
def test_all_lists_every_public_function_and_class(path):
    module = importlib.import_module(module_name(path))
    assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
    defined = {n for n, v in vars(module).items() if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
               and v.__module__ == module.__name__}
    missing = defined - set(module.__all__)
    assert not missing, f"{module.__name__}.__all__ lacks {sorted(missing)}"
    assert all(hasattr(module, n) for n in module.__all__)


def test_no_private_name_is_imported_across_modules():
    bad = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("sdlearn")):
                bad += [f"{path.relative_to(ROOT.parent)}:{node.lineno} imports {a.name}" for a in node.names
                        if a.name.startswith("_") and a.name != "__version__"]
    assert not bad, "\n".join(bad)
