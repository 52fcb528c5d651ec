"""The suite's services are listed in two places only: where each declares itself (its
`shop.services` entry point, shop_grpc.registry) and the chart's `services:` map.

Adding a service must not mean finding every other list of them: no hand-written code or
configuration outside `services/` may name all of them in one list. (Prose that describes the
suite, in Markdown, may.)
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

from shop_grpc import registry

ROOT = Path(__file__).resolve().parents[2]
CHECKED = {".py", ".tpl", ".yaml", ".yml", ".json", ".toml", ".txt", ".cfg", ".sh"}
CHECKED_NAMES = {"Tiltfile", "Dockerfile", "run"}
# Generated, or the service's own: where a service is allowed to be named.
SKIPPED_PATHS = ("services/", "libs/shop-protos/", "protos/", "deploy/k8s/")
# The one deploy-side list.
CHART_MAP = "deploy/helm/shop/values.yaml"
# Files that name every service without listing the suite, and why.
NOT_LISTS = {
    "tests/deploy/alerts_test.yaml": "sample series for the alert rules' tests, one per job",
}


def _checked_files() -> list[Path]:
    """The tree's files as git sees them, committed or new, without what it ignores (caches,
    environments, local data)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [
        ROOT / name
        for name in listed
        if not name.startswith(SKIPPED_PATHS)
        and name not in NOT_LISTS
        and name != CHART_MAP
        and (Path(name).suffix in CHECKED or Path(name).name in CHECKED_NAMES)
        and (ROOT / name).is_file()
    ]


def _is_service(value: object, names: tuple[str, ...]) -> bool:
    """A service's name, or its package or distribution name (``shop_order``, ``shop-order``)."""
    return isinstance(value, str) and re.sub(r"^shop[-_]", "", value) in names


def _covers(values: list[object], names: tuple[str, ...]) -> bool:
    held = {re.sub(r"^shop[-_]", "", v) for v in values if isinstance(v, str)}
    return held >= set(names)


def _python_lists(text: str, names: tuple[str, ...]) -> list[int]:
    """Lines of list, tuple, set or dict literals holding every service's name, directly or in
    what they hold (``[Svc("order", 50051), …]``); the innermost such literal counts."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    containers = (ast.List, ast.Tuple, ast.Set, ast.Dict)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, containers):
            continue
        held = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant)]
        inner = [c for c in ast.walk(node) if c is not node and isinstance(c, containers)]
        inner_covers = any(
            _covers([c.value for c in ast.walk(i) if isinstance(c, ast.Constant)], names)
            for i in inner
        )
        if _covers(held, names) and not inner_covers:
            found.append(node.lineno)
    return found


def _data_lists(text: str, names: tuple[str, ...]) -> list[str]:
    """Mappings whose keys, or lists whose items, are every service's name, in YAML (JSON is
    YAML too) or TOML; paths of them in the document."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        try:
            documents = [tomllib.loads(text)]
        except tomllib.TOMLDecodeError:
            return []
    found = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            if _covers(list(node), names):
                found.append(path or "/")
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            if _covers(node, names):
                found.append(path or "/")
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")

    for document in documents:
        walk(document, "")
    return found


def _text_lists(text: str, names: tuple[str, ...]) -> list[int]:
    """Lines where the names follow one another, separated only by punctuation, numbers or
    line breaks (a shell array, a template's list, YAML keys one per line), or where every
    name starts one of a few lines in a row."""
    name = "|".join(re.escape(n) for n in names)
    run = re.compile(
        rf"\b(?:{name})\b(?:[\s\"'`,|/\[\]():=0-9{{}}-]+\b(?:{name})\b){{{len(names) - 1},}}"
    )
    found = [
        text[: match.start()].count("\n") + 1
        for match in run.finditer(text)
        if set(re.findall(rf"\b(?:{name})\b", match.group(0))) == set(names)
    ]
    lines = text.splitlines()
    leading = re.compile(rf"^\s*(?:-\s*)?[\"']?({name})\b")
    quoted = re.compile(rf"[\"']({name})[\"']")
    window = len(names) * 3
    for pattern in (leading.match, quoted.search):
        for first, line in enumerate(lines):
            held = {m.group(1) for near in lines[first : first + window] if (m := pattern(near))}
            if held == set(names) and pattern(line):
                found.append(first + 1)
                break
    return sorted(set(found))


def _lists_of_every_service(path: Path, text: str) -> list[str]:
    names = registry.names()
    if path.suffix == ".py" or path.name == "Tiltfile":
        return [str(line) for line in _python_lists(text, names)]
    if path.suffix in {".yaml", ".yml", ".json", ".toml"}:
        structured = _data_lists(text, names)
        if structured:
            return structured
    return [str(line) for line in _text_lists(text, names)]


def test_no_code_outside_the_services_lists_every_service():
    assert len(registry.names()) > 1, "too few services for the check to mean anything"
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _checked_files()
        for line in _lists_of_every_service(path, path.read_text(errors="replace"))
    ]
    assert offenders == [], "read shop_grpc.registry or the chart's services: map instead"


def _finds(name: str, text: str) -> list[str]:
    return _lists_of_every_service(Path(name), text)


def test_the_check_finds_a_list_in_code():
    names = registry.names()
    assert _finds("a.py", f"x = {list(names)!r}\n") == ["1"]
    assert _finds("a.py", f"x = {dict.fromkeys(names, 0)!r}\n") == ["1"]
    calls = ",\n".join(f"    Svc({n!r}, {port})" for port, n in enumerate(names))
    assert _finds("a.py", f"SERVICES = (\n{calls},\n)\n") == ["1"]
    packages = [f"shop_{n}" for n in names]
    assert _finds("Tiltfile", f"load(x)\nroots = {packages!r}\n") == ["2"]


def test_the_check_finds_a_list_in_configuration():
    names = registry.names()
    per_line = "".join(f"  {n}: {{replicas: 1}}\n" for n in names)
    assert _finds("values-dev.yaml", f"services:\n{per_line}") == ["/services"]
    assert _finds("a.json", json.dumps({"pods": list(names)})) == ["/pods"]
    distributions = ", ".join(f'"shop-{n}"' for n in names)
    assert _finds("pyproject.toml", f"[project]\ndependencies = [{distributions}]\n") == [
        "/project/dependencies"
    ]
    assert _finds("run", f"for s in {' '.join(names)}; do echo $s; done\n") == ["1"]
    template = "".join(f"{{{{- if eq .svc {n!r} }}}}\n" for n in names)
    assert _finds("a.tpl", template) == ["1"]


def test_the_check_leaves_one_name_and_prose_alone():
    names = registry.names()
    assert _finds("a.py", f"first = {names[0]!r}\n") == []
    assert _finds("a.py", f'"""The suite: {", ".join(names)}."""\n') == []
    assert _finds("a.yaml", f"service: {names[0]}\n") == []
