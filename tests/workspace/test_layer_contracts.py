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


@pytest.fixture
def tree_with_a_new_service(
    tasks: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The workspace's tree (its folders linked) with one more service, `shop_scratch`, whose
    domain imports SQLAlchemy; tasks.py looks at this tree instead of the real one."""
    for folder in ("libs", "cli"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    (tmp_path / "services").mkdir()
    for service in (ROOT / "services").iterdir():
        (tmp_path / "services" / service.name).symlink_to(service)
    package = tmp_path / "services" / "scratch" / "src" / "shop_scratch"
    (package / "domain").mkdir(parents=True)
    (package / "py.typed").write_text("")
    (package / "__init__.py").write_text("")
    (package / "domain" / "__init__.py").write_text("import sqlalchemy\n")
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    return package.parent


def test_a_new_service_that_breaks_a_layer_fails_the_check(
    tasks: ModuleType, tree_with_a_new_service: Path, tmp_path: Path
) -> None:
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(tasks.import_contracts())
    env = {**os.environ, "PYTHONPATH": str(tree_with_a_new_service)}
    checked = subprocess.run(
        [LINT_IMPORTS, "--no-logo", "--no-cache", contracts],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "shop_scratch.domain -> sqlalchemy" in checked.stdout
