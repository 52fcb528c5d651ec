"""The committed lock (requirements.lock) is what the workspace runs on.

`tasks.py lock` writes the pins into the root pyproject.toml and, from the lock they make, the
file hashes into requirements.lock; every task refuses a uv.lock that exports to anything else.
These tests keep the three in step: a pin moved by hand, a package missing its hashes, or an
environment that holds another version fails here.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
HASHED_LOCK = ROOT / "requirements.lock"


def entries(tasks: ModuleType) -> list[tuple[str, str, str | None, set[str]]]:
    """requirements.lock as (name, version, marker or None, sha256 hashes), one per package."""
    text = HASHED_LOCK.read_text()
    hashes = tasks.hashes_in(text)
    return [
        (name, version, rest.split("--hash")[0].strip(" ;") or None, hashes[name])
        for name, version, rest in tasks.requirements_in(text)
    ]


def test_the_committed_lock_holds_exactly_the_pinned_versions(tasks: ModuleType) -> None:
    locked = {name: version for name, version, _, _ in entries(tasks)}
    assert locked == tasks.pins()
    assert locked == tasks.versions_in(HASHED_LOCK.read_text())


def test_every_locked_package_has_the_hashes_of_its_files_and_no_address(tasks: ModuleType) -> None:
    unhashed = [
        name
        for name, _, _, hashes in entries(tasks)
        if not any(h.startswith("sha256:") for h in hashes)
    ]
    assert entries(tasks) and not unhashed, f"packages without sha256 hashes: {unhashed}"
    assert "://" not in HASHED_LOCK.read_text()


def test_the_environment_the_tests_run_in_holds_the_locked_versions(tasks: ModuleType) -> None:
    applicable = [
        (name, version) for name, version, marker, _ in entries(tasks)
        if marker is None or Marker(marker).evaluate()
    ]  # fmt: skip
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
    }
    differing = {
        name: installed.get(canonicalize_name(name))
        for name, version in applicable
        if installed.get(canonicalize_name(name)) != version
    }
    assert len(applicable) > 50
    assert not differing, f"installed here, not as requirements.lock pins them: {differing}"


def test_the_image_build_checks_uv_lock_with_the_export_the_tasks_use(tasks: ModuleType) -> None:
    # deploy/Dockerfile cannot run tasks.py: it repeats the export, and must repeat it exactly,
    # or every image build refuses a lock the tasks accept.
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text().replace("\\\n", " ")
    [command] = re.findall(r"uv (export [^;]*);", dockerfile)
    assert command.split() == list(tasks.EXPORT)
    header_lines = tasks.HASHED_LOCK_HEADER.count("\n")
    assert f"head -n {header_lines} requirements.lock" in dockerfile


def test_files_the_index_added_after_the_pin_are_left_out_of_the_machines_lock(
    tasks: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tested, added = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    committed = tmp_path / "requirements.lock"
    committed.write_text(f"grpcio==1.0 \\\n    --hash={tested}\n")
    lock = tmp_path / "uv.lock"
    lock.write_text(
        '[[package]]\nname = "grpcio"\nversion = "1.0"\n'
        f'sdist = {{ url = "s", hash = "{tested}" }}\n'
        "wheels = [\n"
        f'    {{ url = "w1", hash = "{added}", size = 1 }},\n'
        "]\n"
    )
    monkeypatch.setattr(tasks, "HASHED_LOCK", committed)
    monkeypatch.setattr(tasks, "LOCK", lock)

    tasks.drop_unlisted_files()

    kept = tomllib.loads(lock.read_text())["package"][0]
    assert kept["sdist"]["hash"] == tested
    assert kept["wheels"] == []
