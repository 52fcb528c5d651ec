"""The suite's services are listed in two places only: where each declares itself (its
`shop.services` entry point, shop_grpc.registry) and the chart's `services:` map.

Adding a service must not mean finding every other list of them: no hand-written file outside
`services/` may name all of them in one list. (Prose that describes the suite, in Markdown or
in a sentence, may.) A list is found in any of the forms below, each with a test:

- in Python (and the Tiltfile's Starlark): a list, tuple, set or dict literal, or a class body
  (an Enum), holding every name — as strings, through module constants, inside calls
  (``[Svc("order", 50051), …]``) or with a suffix (``"order:50051"``); or a string of the names
  alone (``"order inventory …".split()``);
- in YAML, JSON and TOML: a mapping whose keys, or a list whose items (or its items' values,
  ``- name: order``), are every name;
- in any other text: the names one after another with only punctuation between them, each
  starting one of a few lines in a row, or each quoted within a few lines;
- anywhere but in imports: a few lines alike but for the name they hold (``start order``,
  ``start user``, …).

A name counts as itself, its package or distribution (``shop_order``, ``shop-order``) and a
value it starts (``order:50051``, ``shop.order.v1``).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import tomllib
from collections import defaultdict
from pathlib import Path

import yaml

from shop_grpc import registry

ROOT = Path(__file__).resolve().parents[2]
# Generated, or the service's own: where a service is allowed to be named.
SKIPPED_PATHS = ("services/", "libs/shop-protos/", "protos/")
GENERATED = {"deploy/k8s/shop.yaml"}
PROSE = {".md"}
# The one deploy-side list: this document path of this file.
CHART_VALUES = "deploy/helm/shop/values.yaml"
CHART_MAP = "/services"
# Files that name every service without listing the suite, and why.
NOT_LISTS: dict[str, str] = {}


def _checked_files() -> list[Path]:
    """The tree's files as git sees them, committed or new, without what it ignores (caches,
    environments, local data), the generated ones and prose."""
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
        and name not in GENERATED
        and name not in NOT_LISTS
        and Path(name).suffix not in PROSE
        and (ROOT / name).is_file()
    ]


def _name_pattern(names: tuple[str, ...]) -> str:
    return "|".join(re.escape(n) for n in names)


def _named(value: object, names: tuple[str, ...]) -> str | None:
    """The service `value` stands for: ``order`` for ``order``, ``shop_order``, ``shop-order``,
    ``order:50051`` or ``shop.order.v1.OrderService``; else None."""
    if not isinstance(value, str):
        return None
    match = re.fullmatch(rf"(?:shop[-_.])?({_name_pattern(names)})(?:[:@./].*)?", value, re.S)
    return match[1] if match else None


def _covers(values: list[object], names: tuple[str, ...]) -> bool:
    return {_named(v, names) for v in values} >= set(names)


def _names_alone(value: object, names: tuple[str, ...]) -> bool:
    """A string of every name and nothing else, ``"order inventory payment user"``."""
    if not isinstance(value, str):
        return False
    words = [w for w in re.split(r"[\s,;|]+", value.strip()) if w]
    return all(_named(w, names) for w in words) and _covers(list(words), names)


def _python_lists(text: str, names: tuple[str, ...]) -> list[int]:
    """Lines of literals or class bodies holding every name; the innermost one counts."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    constants = {
        target.id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def held(node: ast.AST) -> list[object]:
        if isinstance(node, ast.ClassDef):
            statements = [s.value for s in node.body if isinstance(s, ast.Assign)]
            return [s.value for s in statements if isinstance(s, ast.Constant)]
        return [
            c.value if isinstance(c, ast.Constant) else constants.get(c.id)
            for c in ast.walk(node)
            if isinstance(c, (ast.Constant, ast.Name))
        ]

    containers = (ast.List, ast.Tuple, ast.Set, ast.Dict, ast.ClassDef)
    found = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and _names_alone(node.value, names)
    ]
    for node in ast.walk(tree):
        if not isinstance(node, containers) or not _covers(held(node), names):
            continue
        inner = [c for c in ast.walk(node) if c is not node and isinstance(c, containers)]
        if not any(_covers(held(i), names) for i in inner):
            found.append(node.lineno)
    return found


def _data_lists(text: str, names: tuple[str, ...]) -> list[str] | None:
    """Paths of mappings or lists of every name in YAML (JSON is YAML too) or TOML; None when
    the text is neither (a template, say)."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        try:
            documents = [tomllib.loads(text)]
        except tomllib.TOMLDecodeError:
            return None
    found = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            if _covers(list(node), names):
                found.append(path or "/")
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            values = [
                v for item in node for v in (item.values() if isinstance(item, dict) else [item])
            ]
            if _covers(values, names):
                found.append(path or "/")
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")
        elif _names_alone(node, names):
            found.append(path or "/")

    for document in documents:
        walk(document, "")
    return found


def _text_lists(text: str, names: tuple[str, ...]) -> list[int]:
    """Lines where the names follow one another with only punctuation between them, or where
    each starts, or is quoted on, one of a few lines in a row."""
    name = _name_pattern(names)
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
            near = {m.group(1) for other in lines[first : first + window] if (m := pattern(other))}
            if near == set(names) and pattern(line):
                found.append(first + 1)
                break
    return found


IMPORT = re.compile(r"\s*(?:from\s+\S+\s+)?import\s")


def _lines_alike(text: str, names: tuple[str, ...]) -> list[int]:
    """First lines of runs of lines that are the same but for the one name each holds
    (``start order``, ``start inventory``, …), within a few lines of each other."""
    name = re.compile(rf"(?<![A-Za-z0-9])(?:shop[-_])?({_name_pattern(names)})(?![A-Za-z0-9])")
    by_shape: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for number, line in enumerate(text.splitlines(), start=1):
        held = {m[1] for m in name.finditer(line)}
        # Importing each service's generated messages is using their APIs, not listing them.
        if len(held) == 1 and line.strip() and not IMPORT.match(line):
            by_shape[name.sub("{}", line).strip()].append((number, held.pop()))
    window = len(names) * 4
    found = []
    for entries in by_shape.values():
        for number, _ in entries:
            near = {n for other, n in entries if number <= other < number + window}
            if near == set(names):
                found.append(number)
                break
    return found


def _lists_of_every_service(path: Path, text: str) -> list[str]:
    names = registry.names()
    found: list[int | str] = []
    if (
        path.suffix in {".yaml", ".yml", ".json", ".toml"}
        and (data := _data_lists(text, names)) is not None
    ):
        # Read as data, a file's structure says what is a list; its lines need no guessing.
        found += [p for p in data if (path.as_posix(), p) != (CHART_VALUES, CHART_MAP)]
    elif path.suffix == ".py" or path.name == "Tiltfile":
        found += [*_python_lists(text, names), *_lines_alike(text, names)]
    else:
        found += [*_text_lists(text, names), *_lines_alike(text, names)]
    return sorted({str(f) for f in found})


def test_no_file_outside_the_services_lists_every_service():
    assert len(registry.names()) > 1, "too few services for the check to mean anything"
    offenders = [
        f"{path.relative_to(ROOT)}:{where}"
        for path in _checked_files()
        if b"\0" not in (raw := path.read_bytes())
        for where in _lists_of_every_service(path.relative_to(ROOT), raw.decode(errors="replace"))
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
    assert _finds("a.py", f"x = {' '.join(names)!r}.split()\n") == ["1"]
    assert _finds("a.py", f"x = {[f'{n}:{i}' for i, n in enumerate(names)]!r}\n") == ["1"]
    constants = "".join(f"{n.upper()} = {n!r}\n" for n in names)
    together = ", ".join(n.upper() for n in names)
    assert _finds("a.py", f"{constants}x = ({together})\n") == [str(len(names) + 1)]
    members = "".join(f"    {n.upper()} = {n!r}\n" for n in names)
    assert _finds("a.py", f"class Service(Enum):\n{members}") == ["1"]


def test_the_check_finds_a_list_in_configuration():
    names = registry.names()
    per_line = "".join(f"  {n}: {{replicas: 1}}\n" for n in names)
    assert _finds("values-dev.yaml", f"services:\n{per_line}") == ["/services"]
    assert _finds("a.json", json.dumps({"pods": list(names)})) == ["/pods"]
    assert _finds("a.json", json.dumps([{"name": n} for n in names])) == ["/"]
    objects = "".join(f"  - name: {n}\n    port: {i}\n" for i, n in enumerate(names))
    assert _finds("ci.yml", f"matrix:\n{objects}") == ["/matrix"]
    distributions = ", ".join(f'"shop-{n}"' for n in names)
    assert _finds("pyproject.toml", f"[project]\ndependencies = [{distributions}]\n") == [
        "/project/dependencies"
    ]
    template = "".join(f"{{{{- if eq .svc {n!r} }}}}\n" for n in names)
    assert _finds("a.tpl", template) == ["1"]


def test_the_check_finds_a_list_in_scripts():
    names = registry.names()
    assert _finds("run", f"for s in {' '.join(names)}; do echo $s; done\n") == ["1"]
    assert _finds("start", "".join(f"start {n} &\n" for n in names)) == ["1"]
    databases = "".join(f"CREATE DATABASE shop_{n};\n" for n in names)
    assert _finds("init.sql", f"-- one per service\n{databases}") == ["2"]


def test_the_check_leaves_one_name_and_prose_alone():
    names = registry.names()
    assert _finds("a.py", f"first = {names[0]!r}\n") == []
    assert _finds("a.py", f'"""The suite: {", ".join(names)}."""\n') == []
    assert _finds("a.yaml", f"service: {names[0]}\n") == []
    assert _finds("a.sh", f"# {names[0]} calls the others\nstart {names[0]}\n") == []


def test_the_chart_map_is_the_one_list_the_chart_values_may_hold():
    names = registry.names()
    second = "".join(f"  {n}: 1\n" for n in names)
    values = f"services:\n{second}other:\n{second}"
    assert _finds(CHART_VALUES, values) == ["/other"]
