"""Imports point down only (docs/ARCHITECTURE.md, the layering rule).

The floors, bottom to top; a module may import its own floor and those below it, never one
above. `subscribers` and `jobs` stand side by side, and only the faces (the CLI and the web
app) may import them. Every module is checked: no exemption.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
FLOORS = [
    ("newsletter.errors", "newsletter.settings", "newsletter.backoff", "newsletter.__init__"),
    ("newsletter.store", "newsletter.ops"),
    ("newsletter.stories",),
    ("newsletter.render",),
    ("newsletter.mail",),
    ("newsletter.providers",),
    ("newsletter.delivery", "newsletter.bounces", "newsletter.ops.health"),
    ("subscribers", "jobs"),
    ("newsletter.cli", "newsletter.__main__", "subscribers.web"),
]
FACES = FLOORS[-1]
ONLY_FOR_FACES = ("subscribers", "jobs")  # imported by themselves and the faces alone


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def floor(name: str) -> int:
    """The floor of a module: the longest package prefix that names one."""
    best, level = "", -1
    for number, packages in enumerate(FLOORS):
        for package in packages:
            if within(name, package) and len(package) > len(best):
                best, level = package, number
    return level


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if floor(n) >= 0}


def ours() -> list[Path]:
    return sorted(p for top in ("newsletter", "subscribers", "jobs")
                  for p in (ROOT / top).rglob("*.py"))


@pytest.mark.parametrize("path", ours(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_imports_point_down(path):
    here = module_name(path)
    wrong = [name for name in imports(path) if floor(name) > floor(here)]
    assert wrong == [], f"{here} imports a floor above it"


@pytest.mark.parametrize("path", ours(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_only_the_faces_import_subscribers_and_jobs(path):
    here = module_name(path)
    if any(within(here, face) for face in FACES):
        return
    wrong = [name for name in imports(path) for package in ONLY_FOR_FACES
             if within(name, package) and not within(here, package)]
    assert wrong == []


def test_every_module_has_a_floor():
    assert [module_name(p) for p in ours() if floor(module_name(p)) < 0] == []


def test_every_package_says_what_it_may_import():
    packages = [p.parent for p in ours() if p.name == "__init__.py"
                and p.parent.name in ("store", "stories", "render", "mail", "providers",
                                      "delivery")]
    assert len(packages) == 6
    for package in packages:
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
        assert doc and "May import" in doc, package


def test_the_ledger_does_not_load_rendering():
    """Bookkeeping (status, housekeeping) must not pull in Jinja, MJML or premailer."""
    code = ("import sys, newsletter.delivery.ledger; "
            "print(sorted(m for m in ('jinja2', 'mjml', 'premailer') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
