"""The suite's services are listed in two places only: where each declares itself (its
`shop.services` entry point, shop_grpc.registry) and the chart's `services:` map.

Adding a service must not mean finding every other list of them: no hand-written code or
configuration outside `services/` may name all of them in one list. (Prose that describes the
suite, in Markdown, may.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from shop_grpc import registry

ROOT = Path(__file__).resolve().parents[2]
CHECKED = {".py", ".tpl", ".yaml", ".yml", ".json", ".toml", ".txt", ".cfg", ".sh"}
CHECKED_NAMES = {"Tiltfile", "Dockerfile", "run"}
SKIPPED_DIRS = {
    ".git",
    ".venv",
    ".tools",
    ".shop",
    ".hypothesis",
    "__pycache__",
    "node_modules",
}
# Generated, or the service's own: where a service is allowed to be named.
SKIPPED_PATHS = ("services", "libs/shop-protos", "protos", "deploy/k8s")
# The one deploy-side list.
CHART_MAP = "deploy/helm/shop/values.yaml"


def _checked_files() -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder)
        # Pruned in place, so the walk never enters environments or generated trees.
        dirs[:] = [
            d
            for d in dirs
            if d not in SKIPPED_DIRS
            and not (here / d).relative_to(ROOT).as_posix().startswith(SKIPPED_PATHS)
        ]
        found += [here / f for f in files if Path(f).suffix in CHECKED or f in CHECKED_NAMES]
    return found


def _lists_of_every_service(text: str) -> list[int]:
    """Lines where a list names every service: the names one after another, separated only by
    commas, bars, slashes, quotes, brackets, spaces or (as keys of a mapping) colons and
    numbers."""
    names = registry.names()
    name = "|".join(re.escape(n) for n in names)
    run = re.compile(
        rf"\b(?:{name})\b(?:[\s\"'`,|/\[\]():0-9]+\b(?:{name})\b){{{len(names) - 1},}}"
    )
    return [
        text[: match.start()].count("\n") + 1
        for match in run.finditer(text)
        if set(re.findall(rf"\b(?:{name})\b", match.group(0))) == set(names)
    ]


def test_no_code_outside_the_services_lists_every_service():
    assert len(registry.names()) > 1, "too few services for the check to mean anything"
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _checked_files()
        if path.relative_to(ROOT).as_posix() != CHART_MAP
        for line in _lists_of_every_service(path.read_text(errors="replace"))
    ]
    assert offenders == [], "read shop_grpc.registry or the chart's services: map instead"


def test_the_check_finds_a_list():
    names = registry.names()
    assert _lists_of_every_service(f"x = {list(names)!r}\n") == [1]
    assert _lists_of_every_service(f"x = {dict.fromkeys(names, 0)!r}\n") == [1]
    assert _lists_of_every_service(f"first = {names[0]!r}\n") == []
