"""Each package imports only what its own pyproject.toml declares.

In the shared development environment every package is installed, so an
undeclared import would work here and break an image built from one package.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(
    p.parent
    for p in ROOT.glob("*/*/pyproject.toml")
    if "src" in {c.name for c in p.parent.iterdir()}
)
PACKAGES += [ROOT / "cli"]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(package: Path) -> set[str]:
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    names = {_normalise(project["name"])}
    extras = [r for group in project.get("optional-dependencies", {}).values() for r in group]
    for requirement in [*project.get("dependencies", []), *extras]:
        names.add(_normalise(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]))
    return names


def _imported(package: Path) -> set[str]:
    found: set[str] = set()
    for source in (package / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"__future__"}


def _providers() -> dict[str, list[str]]:
    """Top-level module -> distributions, counting the workspace's editable packages too."""
    providers = {k: list(v) for k, v in packages_distributions().items()}
    for package in PACKAGES:
        name = tomllib.loads((package / "pyproject.toml").read_text())["project"]["name"]
        for module in (package / "src").iterdir():
            if module.is_dir() and not module.name.startswith((".", "_")):
                providers.setdefault(module.name, []).append(name)
    return providers


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_import_is_declared(package: Path):
    providers = _providers()
    declared = _declared(package)
    undeclared = {
        module: providers.get(module, ["?"])
        for module in _imported(package)
        if not {_normalise(d) for d in providers.get(module, [])} & declared
    }
    assert not undeclared, f"{package.name} imports without declaring: {undeclared}"
