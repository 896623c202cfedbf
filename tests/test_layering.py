"""Layering of the packages, checked on their source:

* carton_format is pure Python: it imports and works without torch installed, and it never
  imports carton_runtime or carton_conformance (the layers built on it).
* carton_runtime and carton_conformance use only the format layer's public API: none of their
  modules imports a private module or name of carton_format (``carton_format._zip``,
  ``from carton_format._schema import ...``, ``from carton_format import _paths``).

Imports are read with ``ast`` (every Import / ImportFrom node, also inside functions and
``if TYPE_CHECKING:`` blocks, relative imports resolved), never with a regex; a failure lists
every offending ``file:line``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORMAT = "carton_format"
CONSUMERS = ("carton_runtime", "carton_conformance")


def package_modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def imported_names(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, dotted name) for everything the module imports: ``import a.b`` gives ``a.b``;
    ``from a.b import c, d`` gives ``a.b``, ``a.b.c`` and ``a.b.d`` (c may be a module or a name);
    relative imports are resolved against the module's package (its path under ``root``)."""
    package = list(path.relative_to(root).parts[:-1])  # a/b/mod.py and a/b/__init__.py: package a.b
    tree = ast.parse(path.read_bytes(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level <= len(package) else []
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{module}.{alias.name}"


def _is_private(component: str) -> bool:
    return component.startswith("_") and not (component.startswith("__") and component.endswith("__"))


def private_format_part(name: str) -> str | None:
    """``carton_format._zip`` for ``carton_format._zip.reader``; None for a public name."""
    parts = name.split(".")
    if parts[0] != FORMAT:
        return None
    for i, component in enumerate(parts[1:], start=1):
        if _is_private(component):
            return ".".join(parts[: i + 1])
    return None


def offending_imports(paths: list[Path], judge, root: Path = ROOT) -> list[str]:
    """``file:line: statement (why)`` for every import that ``judge(name)`` objects to (a reason or None)."""
    found: dict[tuple[Path, int], set[str]] = {}
    for path in paths:
        try:
            names = list(imported_names(path, root))
        except SyntaxError as exc:
            found.setdefault((path, exc.lineno or 0), set()).add(f"cannot parse: {exc.msg}")
            continue
        for line, name in names:
            reason = judge(name)
            if reason:
                found.setdefault((path, line), set()).add(reason)
    out = []
    for (path, line), reasons in sorted(found.items()):
        source = path.read_text("utf-8", errors="replace").splitlines()
        statement = source[line - 1].strip() if 0 < line <= len(source) else ""
        out.append(f"{path.relative_to(root).as_posix()}:{line}: {statement}  ({', '.join(sorted(reasons))})")
    return out


# -- carton_format stands alone ---------------------------------------------------------------------------


def test_format_layer_imports_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "import carton_format as cf, carton_format.cli\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        f"above = sorted(m for m in sys.modules if m.split('.')[0] in {CONSUMERS!r})\n"
        "assert not above, above\n"
        f"print(cf.validate({str(ROOT / 'tests/data/original/test.carton')!r}).ok)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


@pytest.mark.parametrize("above", CONSUMERS)
def test_format_layer_never_imports_the_layers_above(above: str) -> None:
    paths = package_modules(FORMAT)
    assert len(paths) >= 20
    offending = offending_imports(paths, lambda name: f"imports {above}" if name.split(".")[0] == above else None)
    assert not offending, f"{FORMAT} imports {above} ({len(offending)}):\n" + "\n".join(offending)


# -- the layers above use only the format layer's public API ---------------------------------------------


@pytest.mark.parametrize("package", CONSUMERS)
def test_no_private_format_imports(package: str) -> None:
    paths = package_modules(package)
    assert paths
    offending = offending_imports(
        paths, lambda name: f"private: {part}" if (part := private_format_part(name)) else None
    )
    assert not offending, (
        f"{package} imports private parts of {FORMAT} ({len(offending)}); use its public API:\n" + "\n".join(offending)
    )


# -- the checker itself -----------------------------------------------------------------------------------


def _names(tmp_path: Path, source: str, module: str = "carton_runtime/sub/mod.py") -> set[str]:
    path = tmp_path / module
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return {name for _, name in imported_names(path, root=tmp_path)}


@pytest.mark.parametrize(
    ("source", "private"),
    [
        ("import carton_format._zip.reader\n", "carton_format._zip"),
        ("import carton_format._paths as p\n", "carton_format._paths"),
        ("from carton_format._schema import check\n", "carton_format._schema"),
        ("from carton_format import _toml\n", "carton_format._toml"),
        ("from carton_format import errors, _atomic\n", "carton_format._atomic"),
        ("from carton_format.reader import _helper\n", "carton_format.reader._helper"),
        ("def f():\n    if True:\n        from carton_format._zip import reader\n", "carton_format._zip"),
        ("try:\n    pass\nexcept ImportError:\n    import carton_format._directory\n", "carton_format._directory"),
        ("class C:\n    def m(self):\n        import carton_format._model_dir\n", "carton_format._model_dir"),
    ],
)
def test_checker_finds_private_imports(tmp_path: Path, source: str, private: str) -> None:
    found = {part for name in _names(tmp_path, source) if (part := private_format_part(name))}
    assert found == {private}


@pytest.mark.parametrize(
    "source",
    [
        "import carton_format as cf\nfrom carton_format import CartonInfo, __version__\n",
        "from carton_format.errors import CartonFormatError\nfrom carton_format.integrity import check_sha256\n",
        "from . import _private_of_the_runtime\nfrom ._own import x\n",  # the runtime's own private modules
        "import carton_formatting._x\nx = 'import carton_format._zip'\n# from carton_format import _zip\n",
    ],
)
def test_checker_allows_public_imports(tmp_path: Path, source: str) -> None:
    assert not [name for name in _names(tmp_path, source) if private_format_part(name)]


def test_checker_resolves_relative_imports(tmp_path: Path) -> None:
    names = _names(tmp_path, "from . import a\nfrom .. import b\nfrom ..c import d\nfrom .e import *\n")
    assert {"carton_runtime.sub", "carton_runtime.sub.a", "carton_runtime", "carton_runtime.b", "carton_runtime.c",
            "carton_runtime.c.d", "carton_runtime.sub.e"} == names
    init = _names(tmp_path, "from . import _zip\nfrom ._paths import x\n", module="carton_format/__init__.py")
    assert {"carton_format._zip", "carton_format._paths", "carton_format._paths.x"} <= init


def test_report_names_every_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "carton_runtime").mkdir()
    a, b = tmp_path / "carton_runtime" / "a.py", tmp_path / "carton_runtime" / "b.py"
    a.write_text("import os\ndef f():\n    from carton_format import _zip, errors\n    import carton_format._paths\n")
    b.write_text("from carton_format._schema import check\n")
    judge = lambda name: f"private: {part}" if (part := private_format_part(name)) else None
    assert offending_imports([a, b], judge, root=tmp_path) == [
        "carton_runtime/a.py:3: from carton_format import _zip, errors  (private: carton_format._zip)",
        "carton_runtime/a.py:4: import carton_format._paths  (private: carton_format._paths)",
        "carton_runtime/b.py:1: from carton_format._schema import check  (private: carton_format._schema)",
    ]
