#!/usr/bin/env python3
"""The project's task runner; needs only Python >= 3.11.

    python3 tasks.py up       # run the whole suite locally (`shop up`)
    python3 tasks.py test     # run the tests (all but tests/images: images-test)
    python3 tasks.py lint     # ruff, ruff format --check, mypy, the layer contracts, buf lint
    python3 tasks.py lock     # re-resolve and re-pin after a pyproject.toml change (--upgrade: all)
    python3 tasks.py lock-check     # fail if the pins no longer match the pyproject.toml ranges
    python3 tasks.py protos   # regenerate libs/shop-protos from protos/
    python3 tasks.py ci       # what CI runs (.ci/run): every check below, then test and images-test
    python3 tasks.py k8s-check      # helm lint/template, kubernetes-validate, kustomize
    python3 tasks.py manifests      # deploy/k8s, the schema's service variables (-check: drift)
    python3 tasks.py tools          # helm and kubectl into .tools/k8s/bin
    python3 tasks.py images-test    # tests/images: build every image with podman, run and stop each
    python3 tasks.py metrics-tools  # Debian's prometheus and promtool, which the metrics tests use

Every task first makes sure `.venv` holds the workspace at exactly the versions
pinned in the root pyproject.toml, with the file hashes of the committed
requirements.lock, and stops when the pins no longer match the ranges in the
pyproject.toml files. uv is installed into `.tools/uv` the first time, from
the package registry, at the version the root pyproject.toml requires, so nothing
but Python has to be on the machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import venv
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools" / "uv"
UV = TOOLS / "bin" / "uv"
VENV_BIN = ROOT / ".venv" / "bin"
# One uv for every machine and every image (deploy/Dockerfile reads the same pin): another
# version may write the lock differently, and uv itself refuses to run here under another.
UV_VERSION = (
    tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["required-version"]
).removeprefix("==")
STALE_LOCK = (
    "the pins in pyproject.toml do not match the pyproject.toml ranges: run "
    "`python3 tasks.py lock`, then commit pyproject.toml with the change that needed it"
)
# Every third-party version the workspace installs, written by `tasks.py lock` into the root
# pyproject.toml as uv's constraint-dependencies. uv.lock itself stays local: it records the
# package index's addresses, which this repository does not name. With every version pinned, a
# lock made on any machine resolves to the same versions; the images install from it.
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "uv.lock"
# The committed lock: uv.lock exported without addresses (`uv export`, requirements format),
# every third-party package at its pinned version with the sha256 of each of its files, and
# nothing about the workspace's own packages (a new member leaves it as it is). A
# machine's uv.lock must export to exactly this, so a file the index serves under a pinned
# version but with other bytes stops every task; uv then checks each download against it.
HASHED_LOCK = ROOT / "requirements.lock"
EXPORT = (
    "export", "--frozen", "--all-packages", "--no-emit-workspace", "--no-header", "--no-annotate",
    "--format", "requirements.txt", "--quiet",
)  # fmt: skip
HASHED_LOCK_HEADER = (
    "# Written by `python3 tasks.py lock`: every third-party package, its pinned version and the\n"
    "# sha256 of each of its files. Checked against uv.lock by every task; do not edit by hand.\n"
)
ALTERED_FILES = (
    "uv.lock holds the pinned versions, but files requirements.lock holds are missing from it "
    "or have another sha256: the package index serves other bytes than those tested"
)
# In the layer contracts (pyproject.toml), every service's package.
SERVICES = "{services}"
# One file of a package in uv.lock: a wheel's line, or the sdist's.
FILE_HASH = re.compile(r'\bhash = "(sha256:[0-9a-f]{64})"')
STALE_HASHED_LOCK = (
    "requirements.lock is out of date (the same files, written differently): run "
    "`python3 tasks.py lock`, then commit it"
)
UNPINNED_HASHES = (
    "requirements.lock does not hold the versions pinned in pyproject.toml: run "
    "`python3 tasks.py lock`, then commit both files"
)
PINS_BEGIN = "# Pins: written by `python3 tasks.py lock` from the resolution; do not edit by hand."
PINS_END = "# End of pins."
PROTO_ROOT = ROOT / "protos"
PROTO_OUT = ROOT / "libs" / "shop-protos" / "src"
# shop's API, and protovalidate's rule definitions that it imports (protos/buf/validate).
GENERATED_PACKAGES = ("shop", "buf")
# Commands from Debian's packages, by package: what tests/images needs (`images-test` installs
# them as root), and the real Prometheus server and promtool that the metrics tests run
# (`metrics-tools`; without them those tests skip, saying so).
IMAGE_TOOLS = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
METRICS_TOOLS = {"prometheus": "prometheus", "promtool": "prometheus"}


def run(*args: str | Path, cwd: Path = ROOT) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=cwd)


def installed_uv() -> str | None:
    """The version of the uv in .tools/uv (`uv 0.13.9 (...)`), None when there is none."""
    if not UV.exists():
        return None
    words = subprocess.run([UV, "--version"], capture_output=True, text=True).stdout.split()
    return words[1] if len(words) > 1 else None


def ensure_uv() -> None:
    if installed_uv() == UV_VERSION:
        return
    # Absent, or left there under another pin: replaced as a whole.
    shutil.rmtree(TOOLS, ignore_errors=True)
    requirement = f"uv=={UV_VERSION}"
    try:
        venv.create(TOOLS, with_pip=True)
        run(TOOLS / "bin" / "python", "-m", "pip", "install", "--quiet", requirement)
    except (OSError, subprocess.CalledProcessError):
        # Some distributions ship Python without ensurepip; pip alone can still unpack uv.
        shutil.rmtree(TOOLS, ignore_errors=True)
        run(sys.executable, "-m", "pip", "install", "--quiet", "--target", TOOLS, requirement)


def lock_is_current() -> bool:
    """uv.lock still satisfies every range in the pyproject.toml files."""
    check = subprocess.run([UV, "lock", "--check", "--quiet"], cwd=ROOT, capture_output=True)
    return check.returncode == 0


def pins() -> dict[str, str]:
    """The versions pinned in the root pyproject.toml: name -> version."""
    uv = tomllib.loads(PYPROJECT.read_text())["tool"]["uv"]
    return dict(pin.split("==", 1) for pin in uv.get("constraint-dependencies", []))


def locked() -> dict[str, str]:
    """The third-party versions uv.lock holds: name -> version."""
    packages = tomllib.loads(LOCK.read_text())["package"]
    return {p["name"]: p["version"] for p in packages if "registry" in p.get("source", {})}


def write_pins(versions: dict[str, str]) -> None:
    text = PYPROJECT.read_text()
    start, end = text.index(PINS_BEGIN), text.index(PINS_END)
    lines = "".join(f'  "{name}=={version}",\n' for name, version in sorted(versions.items()))
    block = f"{PINS_BEGIN}\nconstraint-dependencies = [\n{lines}]\n"
    PYPROJECT.write_text(text[:start] + block + text[end:])


def exported_lock() -> str:
    """uv.lock as requirements.lock holds it: versions and file hashes, no addresses."""
    export = subprocess.run([UV, *EXPORT], cwd=ROOT, check=True, capture_output=True, text=True)
    return HASHED_LOCK_HEADER + export.stdout


def lock_is_pinned() -> bool:
    """uv.lock matches the pyproject ranges and holds exactly the pinned versions.

    uv.lock is this machine's: when missing, or made before the pins or a workspace member's
    dependencies changed, it is made again from the pins, which leave the resolution one
    choice; if they no longer satisfy the ranges, the lock made differs from them.
    """
    if LOCK.exists() and locked() == pins() and lock_is_current():
        return True
    LOCK.unlink(missing_ok=True)
    subprocess.run([UV, "lock", "--quiet"], cwd=ROOT, check=False)
    if LOCK.exists() and HASHED_LOCK.exists():
        drop_unlisted_files()
    return LOCK.exists() and lock_is_current() and locked() == pins()


def drop_unlisted_files() -> None:
    """Leaves out of uv.lock every file whose sha256 requirements.lock does not hold.

    A package index may add files to a release after it was pinned (a wheel for a new
    platform or Python version); a uv.lock made afterwards lists them, and uv could install
    one. Without them, only the files that were tested can be installed, and the export
    matches requirements.lock again. A file requirements.lock holds that the index no longer
    serves is still refused (ALTERED_FILES).
    """
    committed = {h for hashes in hashes_in(HASHED_LOCK.read_text()).values() for h in hashes}
    lines = LOCK.read_text().splitlines(keepends=True)
    kept = [
        line
        for line in lines
        if not ((file := FILE_HASH.search(line)) and file[1] not in committed)
    ]
    if len(kept) != len(lines):
        print(f"uv.lock: left out {len(lines) - len(kept)} files requirements.lock does not hold")
        LOCK.write_text("".join(kept))


def check_lock() -> None:
    """Stops the task unless uv.lock holds exactly the pins and the committed file hashes."""
    if not lock_is_pinned():
        sys.exit(STALE_LOCK)
    committed = HASHED_LOCK.read_text() if HASHED_LOCK.exists() else ""
    if versions_in(committed) != pins():
        sys.exit(UNPINNED_HASHES)
    exported = exported_lock()
    if hashes_in(exported) != hashes_in(committed):
        sys.exit(ALTERED_FILES)
    if exported != committed:
        sys.exit(STALE_HASHED_LOCK)


def requirements_in(text: str) -> list[tuple[str, str, str]]:
    """A requirements file's entries as (name, version, the rest of the entry: its marker and
    hashes), its comments left out."""
    joined = text.replace("\\\n", " ")
    found = (re.match(r"([A-Za-z0-9._-]+)==([^ ;\\]+)(.*)", line) for line in joined.splitlines())
    return [(match[1], match[2], match[3]) for match in found if match]


def versions_in(requirements: str) -> dict[str, str]:
    """The `name==version` entries of a requirements file: name -> version."""
    return {name: version for name, version, _ in requirements_in(requirements)}


def hashes_in(requirements: str) -> dict[str, set[str]]:
    """Each entry's `--hash` values: name -> hashes."""
    return {
        name: set(re.findall(r"--hash=(\S+)", rest))
        for name, _, rest in requirements_in(requirements)
    }


def sync() -> None:
    """.venv becomes exactly the pinned versions; never a fresh resolution."""
    ensure_uv()
    check_lock()
    run(UV, "sync", "--all-packages", "--locked", "--quiet")


def tool(name: str) -> Path:
    return VENV_BIN / name


def task_up(args: list[str]) -> None:
    sync()
    os.execv(tool("shop"), ["shop", "up", *args])


def task_test(args: list[str]) -> None:
    sync()
    result = subprocess.run([str(tool("pytest")), *args], cwd=ROOT)
    sys.exit(result.returncode)


def generate_protos(out: Path) -> None:
    """Messages (_pb2), stubs (_pb2_grpc) and typed .pyi for both, into `out`."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    run(
        tool("python"),
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--plugin=protoc-gen-mypy={tool('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={tool('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    )
    for top in GENERATED_PACKAGES:
        for folder in [out / top, *(p for p in (out / top).rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()
        (out / top / "py.typed").touch()


def task_protos(_: list[str]) -> None:
    sync()
    for top in GENERATED_PACKAGES:
        shutil.rmtree(PROTO_OUT / top, ignore_errors=True)
    generate_protos(PROTO_OUT)


def task_protos_check(_: list[str]) -> None:
    """Fails when the committed generated code differs from a fresh generation."""
    sync()
    with tempfile.TemporaryDirectory() as tmp:
        generate_protos(Path(tmp))
        diffs = [
            subprocess.run(
                ["diff", "-r", "-q", str(Path(tmp) / top), str(PROTO_OUT / top)],
                capture_output=True,
                text=True,
            ).stdout
            for top in GENERATED_PACKAGES
        ]
    stale = [line for d in diffs for line in d.splitlines() if "__pycache__" not in line]
    if stale:
        print("generated code is stale; run `python3 tasks.py protos`:", *stale, sep="\n  ")
        sys.exit(1)
    print("generated code is up to date")


def workspace_packages(folder: str = "*") -> list[str]:
    """Every package the workspace holds under `folder` (libs, services; the CLI with "*"), by
    import name, found in the tree, so no list of services is kept here or in the checkers'
    settings. Each must ship py.typed: one that does not would be checked by neither mypy nor
    the layer contracts, so it stops the task."""
    found = [*ROOT.glob(f"{folder}/*/src/shop_*")]
    if folder == "*":
        found += [*(ROOT / "cli" / "src").glob("shop_*")]
    untyped = [str(p.relative_to(ROOT)) for p in found if not (p / "py.typed").exists()]
    if untyped:
        sys.exit(f"packages without py.typed, so neither typed nor checked: {untyped}")
    return sorted(p.name for p in found)


def toml_value(value: object) -> str:
    # Strings, booleans and lists of strings: what import-linter's settings hold. JSON writes
    # each of them as TOML reads it.
    return json.dumps(value)


def import_contracts() -> str:
    """pyproject.toml's [tool.importlinter] with its root packages: every workspace package and
    the generated messages (``shop``), so a new service is checked as soon as it exists. In a
    contract, ``{services}`` stands for every service's package."""
    settings = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    contracts = settings.pop("contracts")
    settings["root_packages"] = [*workspace_packages(), "shop"]
    services = workspace_packages("services")

    def expanded(value: object) -> object:
        if isinstance(value, list):
            return [m for v in value for m in (services if v == SERVICES else [v])]
        return value

    lines = ["[tool.importlinter]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in settings.items()]
    for contract in contracts:
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{key} = {toml_value(expanded(value))}" for key, value in contract.items()]
    return "\n".join(lines) + "\n"


def task_lint(_: list[str]) -> None:
    sync()
    run(tool("ruff"), "check", ".")
    run(tool("ruff"), "format", "--check", ".")
    packages = workspace_packages()
    run(tool("mypy"), *(arg for package in packages for arg in ("-p", package)))
    # Which layer may import what (ARCHITECTURE.md, "Layers").
    with tempfile.TemporaryDirectory() as scratch:
        contracts = Path(scratch) / "importlinter.toml"
        contracts.write_text(import_contracts())
        run(tool("lint-imports"), "--no-logo", contracts)
    run(tool("buf"), "lint", cwd=PROTO_ROOT)


def task_lock(args: list[str]) -> None:
    """Resolves anew within the ranges (uv keeps every version the ranges still allow unless
    told otherwise, e.g. `--upgrade-package NAME`), then writes the result as the pins."""
    ensure_uv()
    write_pins({})
    run(UV, "lock", *args)
    write_pins(locked())
    run(UV, "lock", "--quiet")
    HASHED_LOCK.write_text(exported_lock())
    print(f"pinned {len(pins())} packages in pyproject.toml and requirements.lock")


def task_lock_check(_: list[str]) -> None:
    ensure_uv()
    check_lock()
    print(f"the {len(pins())} pins in pyproject.toml and their files' hashes are current")


def task_ci(_: list[str]) -> None:
    """Exactly what CI runs: .ci/run."""
    os.execvp("bash", ["bash", str(ROOT / ".ci" / "run")])


def deploy_task(name: str) -> Callable[[list[str]], None]:
    """A task of deploy/tools.py (the Kubernetes checks), run after the workspace sync."""

    def task(_: list[str]) -> None:
        sync()
        run(tool("python"), ROOT / "deploy" / "tools.py", name)

    return task


def ensure_debian_tools(commands: dict[str, str]) -> None:
    """`commands` (command -> the Debian package holding it) on PATH, the missing ones'
    packages installed on first use (as root)."""
    packages = sorted({pkg for name, pkg in commands.items() if shutil.which(name) is None})
    if not packages:
        return
    if os.geteuid() != 0:
        sys.exit(
            f"missing {', '.join(packages)}: install them (apt-get install {' '.join(packages)})"
        )
    print(f"installing {' '.join(packages)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["update", "-qq"], ["install", "-y", "-qq", *packages]):
        subprocess.run(["apt-get", *command], check=True, stdout=subprocess.DEVNULL, env=env)


def task_metrics_tools(_: list[str]) -> None:
    """Debian's prometheus package (the server and promtool), for the metrics tests."""
    ensure_debian_tools(METRICS_TOOLS)


def task_images_test(args: list[str]) -> None:
    """tests/images, which the default test run leaves out: needs root the first time (it
    installs podman, runc and debootstrap), where tests/images alone would skip without them."""
    sync()
    ensure_debian_tools(IMAGE_TOOLS)
    result = subprocess.run([str(tool("pytest")), "-v", "tests/images", *args], cwd=ROOT)
    sys.exit(result.returncode)


TASKS = {
    "up": task_up,
    "test": task_test,
    "protos": task_protos,
    "protos-check": task_protos_check,
    "lint": task_lint,
    "lock": task_lock,
    "lock-check": task_lock_check,
    "ci": task_ci,
    "tools": deploy_task("tools"),
    "manifests": deploy_task("manifests"),
    "manifests-check": deploy_task("manifests-check"),
    "k8s-check": deploy_task("k8s-check"),
    "images-test": task_images_test,
    "metrics-tools": task_metrics_tools,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        print(__doc__)
        sys.exit(2)
    TASKS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
