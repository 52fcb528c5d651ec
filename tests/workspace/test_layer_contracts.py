"""The layer contracts (pyproject.toml's [tool.importlinter], ARCHITECTURE.md "Layers") hold
for every service `tasks.py lint` finds in the tree, a new one included, without its name
being written anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from shop_grpc import registry

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_every_registered_service_is_checked(tasks: ModuleType) -> None:
    settings = tomllib.loads(tasks.import_contracts())["tool"]["importlinter"]
    services = {spec.main_module.split(".")[0] for spec in registry.services().values()}
    assert services, "no service is registered"
    assert services <= set(settings["root_packages"])


def tree_with_a_new_service(root: Path, tmp_path: Path, files: dict[str, str]) -> Path:
    """The workspace's tree (its folders linked) with one more service, `shop_scratch`, made
    of `files` (path in the package -> source); returns the folder that holds the package."""
    for folder in ("libs", "cli"):
        (tmp_path / folder).symlink_to(root / folder)
    (tmp_path / "services").mkdir()
    for service in (root / "services").iterdir():
        (tmp_path / "services" / service.name).symlink_to(service)
    package = tmp_path / "services" / "scratch" / "src" / "shop_scratch"
    package.mkdir(parents=True)
    (package / "py.typed").write_text("")
    (package / "__init__.py").write_text("")
    for name, source in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(source)
    return package.parent


@pytest.mark.parametrize(
    ("files", "broken"),
    [
        (
            {"domain/__init__.py": "import sqlalchemy\n"},
            "shop_scratch.domain -> sqlalchemy",
        ),
        (
            # A module of a name no contract knows: only the edges and the spec may.
            {"jobs.py": "from shop.payment.v1 import payment_pb2\n"},
            "shop_scratch.jobs -> shop.payment.v1.payment_pb2",
        ),
    ],
    ids=["domain imports SQL", "a new module imports generated messages"],
)
def test_a_new_service_that_breaks_a_layer_fails_the_check(
    tasks: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    broken: str,
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    source = tree_with_a_new_service(ROOT, tree, files)
    monkeypatch.setattr(tasks, "ROOT", tree)
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(tasks.import_contracts())
    env = {**os.environ, "PYTHONPATH": str(source)}
    checked = subprocess.run(
        [LINT_IMPORTS, "--no-logo", "--no-cache", contracts],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert broken in checked.stdout


def test_a_package_without_py_typed_stops_the_check(
    tasks: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree_with_a_new_service(ROOT, tmp_path, {})
    (tmp_path / "services" / "scratch" / "src" / "shop_scratch" / "py.typed").unlink()
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match=r"without py\.typed"):
        tasks.import_contracts()
