"""Imports point down only: core `newsletter` <- `subscribers` <- `jobs` <- the faces
(`newsletter.cli`, `subscribers.web`)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
# package -> packages it must never import
FORBIDDEN = {
    "newsletter": ("subscribers", "jobs", "newsletter.cli"),
    "subscribers": ("jobs", "newsletter.cli"),
    "jobs": ("newsletter.cli", "subscribers.web"),
}
FACES = ("newsletter/cli/", "newsletter/__main__.py", "subscribers/web/")


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", list(FORBIDDEN))
def test_imports_point_down(package):
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(FACES) or "/migrations/" in relative:
            continue
        for name in imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package]):
                wrong.append(f"{relative} imports {name}")
    assert wrong == []
