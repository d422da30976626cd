"""The package reads in screens: no function longer than ``MAX_FUNCTION_LINES``, no module longer than ``MAX_MODULE_LINES``.

Lengths count every line from a function's ``def`` (its decorators included)
to its last line, docstring and comments included, as a reader scrolls them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workflow" / "mnist_large_scale"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500

#: Functions allowed past the limit, as "module path:function": none.
LONG_FUNCTIONS: set[str] = set()
#: Modules allowed past the limit, relative to the package: none.
LONG_MODULES: set[str] = set()


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def function_lengths(path: Path, root: Path = PACKAGE) -> dict[str, int]:
    """Lines of every function and method of a module, by ``path:qualified name`` (the path relative to ``root``)."""
    lengths = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    first = min([child.lineno] + [decorator.lineno for decorator in child.decorator_list])
                    lengths[f"{path.relative_to(root)}:{name}"] = child.end_lineno - first + 1
                visit(child, f"{name}.")

    visit(ast.parse(path.read_text(), filename=str(path)), "")
    return lengths


def test_the_package_is_found():
    assert (PACKAGE / "__init__.py").is_file() and len(modules()) > 20


def test_no_function_is_longer_than_a_screen():
    lengths = {name: n for path in modules() for name, n in function_lengths(path).items()}
    long = sorted(f"{name} ({n} lines)" for name, n in lengths.items() if n > MAX_FUNCTION_LINES and name not in LONG_FUNCTIONS)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: split them into named steps: {', '.join(long)}"


def test_no_module_is_longer_than_its_limit():
    sizes = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in modules()}
    long = sorted(f"{name} ({n} lines)" for name, n in sizes.items() if n > MAX_MODULE_LINES and name not in LONG_MODULES)
    assert not long, f"modules over {MAX_MODULE_LINES} lines: split them along their seams: {', '.join(long)}"


@pytest.mark.parametrize("names", [LONG_FUNCTIONS, LONG_MODULES], ids=["functions", "modules"])
def test_every_exception_is_still_needed(names):
    """An exception that no longer applies is removed, so that the list only shrinks."""
    functions = {name: n for path in modules() for name, n in function_lengths(path).items()}
    sizes = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in modules()}
    stale = sorted(
        name
        for name in names
        if functions.get(name, 0) <= MAX_FUNCTION_LINES and sizes.get(name, 0) <= MAX_MODULE_LINES
    )
    assert not stale, f"no longer past the limit, remove from the exceptions: {', '.join(stale)}"


def test_the_measure_counts_what_it_says(tmp_path):
    """A method of 81 lines is listed at 81 by its class, decorators included; a short function by its name."""
    body = "\n".join(f"        x{i} = {i}" for i in range(79))
    (tmp_path / "sample.py").write_text(f"class Outer:\n    @staticmethod\n    def long():\n{body}\n\n\ndef short():\n    return 1\n")
    assert function_lengths(tmp_path / "sample.py", tmp_path) == {"sample.py:Outer.long": 81, "sample.py:short": 2}
