#!/usr/bin/env python3
"""Builds every service image with podman and checks that each one runs as a cluster runs it.

    python3 tasks.py images-test      # or: .venv/bin/python deploy/images.py

Each image is deploy/Dockerfile with the service's name as SERVICE. No image registry is
reachable where this runs, so the base image is made here: a Debian bookworm root filesystem
with Python (debootstrap), imported into podman once and passed to every build as BASE_IMAGE.
podman keeps its images under .tools/images (vfs storage, its own containers.conf), so nothing
outside the work tree is touched but the packages installed.

Then the four images run side by side as a pod would run them — read-only root filesystem,
/tmp the only writable place, the image's own non-root user, certificates from `shop certs
init` mounted read-only at /etc/shop/tls — and each one must:
  - answer SERVING on its plaintext probe port, and over mTLS on its gRPC port;
  - together with the other three, confirm an order placed by `shop demo`;
  - run as UID 10001 with no compiler, no pip and no source file left uncompiled;
  - hold only packages uv.lock pins, each at the version it pins;
  - exit 0 on `podman stop`, before the stop's grace period runs out.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shop_grpc import registry

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".tools" / "images"
SERVICES = registry.names()
DOCKERFILE = "deploy/Dockerfile"
UID = 10001
TAG = "test"

# Bump when the base image's recipe changes: a cached base of another version is rebuilt.
BASE_RECIPE = "1 bookworm minbase python3,python3-venv,ca-certificates"
BASE_IMAGE = f"localhost/shop-base:bookworm-{hashlib.sha256(BASE_RECIPE.encode()).hexdigest()[:12]}"
# What podman needs on a machine without systemd or the right to raise ulimits, like CI's. Storage
# is vfs (see podman_command): slower than overlay, but it works on any filesystem.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""

SHUTDOWN_BUDGET = {  # the service's own shutdown budget, 10 s in all
    "SHOP_SHUTDOWN_DRAIN_SECONDS": "1",
    "SHOP_SHUTDOWN_GRACE_SECONDS": "5",
    "SHOP_SHUTDOWN_BACKGROUND_SECONDS": "2",
    "SHOP_SHUTDOWN_FLUSH_SECONDS": "2",
}
STOP_TIMEOUT_SECONDS = 15  # podman stop's grace period, like terminationGracePeriodSeconds
START_TIMEOUT_SECONDS = 60

# Runs inside each image, as its entrypoint's interpreter: what the final stage must not hold.
# Its argument: the versions uv.lock pins, by package name (locked_versions()).
IMAGE_CHECK = f"""
import importlib.metadata, importlib.util, json, os, pathlib, re, shutil, sys
problems = []
if os.getuid() != {UID}:
    problems.append(f"runs as uid {{os.getuid()}}")
tools = [t for t in ("cc", "gcc", "g++", "c++", "clang", "make", "ld", "as") if shutil.which(t)]
if tools:
    problems.append(f"build tools on PATH: {{tools}}")
if importlib.util.find_spec("pip") is not None:
    problems.append("pip is installed")
site = pathlib.Path(sys.prefix, "lib")
stale = [p for p in site.rglob("*.py")
         if not pathlib.Path(importlib.util.cache_from_source(str(p))).exists()]
if stale:
    problems.append(f"{{len(stale)}} modules not byte-compiled, e.g. {{stale[0]}}")
locked = json.loads(sys.argv[1])
unlocked = sorted(
    f"{{name}} {{dist.version}}"
    for dist in importlib.metadata.distributions()
    for name in [re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()]
    if dist.version not in locked.get(name, [])
)
if unlocked:
    problems.append(f"not as uv.lock pins them: {{', '.join(unlocked)}}")
print("; ".join(problems) or "ok")
sys.exit(1 if problems else 0)
"""


def log(message: str) -> None:
    print(message, flush=True)


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL, env=env)


# --- tools ------------------------------------------------------------------------------------


def ensure_tools() -> None:
    """podman, runc and debootstrap from Debian's packages, installed on first use."""
    missing = [tool for tool in ("podman", "runc", "debootstrap") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(
            f"missing {', '.join(missing)}: install them (apt-get install podman runc debootstrap)"
        )
    log(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", "podman", "runc", "debootstrap", env=env)


def podman_command() -> list[str]:
    # The run root holds sockets whose paths must stay short, so it lives in the temp dir.
    run_root = (
        Path(tempfile.gettempdir()) / f"shop-podman-{hashlib.sha256(bytes(CACHE)).hexdigest()[:8]}"
    )
    return [
        "podman",
        "--storage-driver=vfs",
        f"--root={CACHE / 'storage'}",
        f"--runroot={run_root}",
    ]


def podman(
    *args: str | Path, capture: bool = False, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*podman_command(), *map(str, args)],
        text=True,
        check=check,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
    )


def configure_podman() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    os.environ["CONTAINERS_CONF"] = str(conf)


# --- base image -------------------------------------------------------------------------------


def debian_mirror() -> str | None:
    """The bookworm mirror apt uses on this machine (None: debootstrap's own default)."""
    for sources in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in sources.read_text().split("\n\n"):
            fields: dict[str, str] = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, re.MULTILINE))
            if "bookworm" in fields.get("Suites", "").split() and "URIs" in fields:
                return fields["URIs"].split()[0]
    listing = Path("/etc/apt/sources.list")
    if listing.exists():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == "bookworm":
                return parts[1]
    return None


def ensure_base() -> None:
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        log(f"base image {BASE_IMAGE}: cached")
        return
    log(f"base image {BASE_IMAGE}: debootstrap (about a minute)")
    _, suite, variant, packages = BASE_RECIPE.split()
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        rootfs = Path(scratch) / "rootfs"
        run(
            "debootstrap",
            f"--variant={variant}",
            f"--include={packages}",
            suite,
            rootfs,
            *([mirror] if mirror else []),
        )
        # Package caches and docs weigh a third of the tree and nothing in the image reads them.
        for leftover in (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/locale",
        ):
            shutil.rmtree(rootfs / leftover, ignore_errors=True)
        (rootfs / "etc/apt/sources.list").write_text("")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [*podman_command(), "import", "--quiet", "-", BASE_IMAGE],
            stdin=tar.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if tar.wait() != 0:
            sys.exit("tar of the base root filesystem failed")


# --- checks -----------------------------------------------------------------------------------


@dataclass
class Results:
    passed: int = 0
    failed: int = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        log(f"{'ok  ' if ok else 'FAIL'} {name}{f': {detail}' if detail else ''}")
        return ok


def locked_versions() -> dict[str, list[str]]:
    """Every package the workspace pins (the root pyproject.toml) or holds, by its normalised
    name, with the version(s) allowed."""
    pinned: dict[str, list[str]] = {}
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        pinned.setdefault(package["name"], []).append(package["version"])
    uv = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    for pin in uv["constraint-dependencies"]:
        name, version = pin.split("==", 1)
        if pinned.get(name) != [version]:
            raise SystemExit(f"uv.lock is not made from the pins ({name}): run a task first")
    return pinned


def ca_cert() -> str | None:
    """The CA bundle this machine trusts (pip's first), for networks that re-sign TLS."""
    for candidate in (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def image(svc: str) -> str:
    return f"localhost/shop-{svc}:{TAG}"


def build(svc: str) -> bool:
    cert = ca_cert()
    result = podman(
        "build",
        "--network=host",
        f"--build-arg=BASE_IMAGE={BASE_IMAGE}",
        f"--build-arg=SERVICE={svc}",
        *([f"--secret=id=ca-cert,src={cert}"] if cert else []),
        f"--file={DOCKERFILE}",
        f"--tag={image(svc)}",
        ROOT,
        capture=True,
        check=False,
    )
    if result.returncode != 0:
        log(result.stdout[-4000:] + result.stderr[-4000:])
    return result.returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Container:
    svc: str
    name: str
    grpc_port: int
    probe_port: int

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def probe(self) -> str:
        return f"127.0.0.1:{self.probe_port}"


def start(svc: str, tls_dir: Path, targets: dict[str, str]) -> Container:
    container = Container(svc, f"shop-{svc}-imagetest-{os.getpid()}", free_port(), free_port())
    env = {
        # Host networking, so each container gets ports of its own instead of 50051 and 8081.
        "SHOP_LISTEN_ADDRESS": container.grpc,
        "SHOP_PROBE_ADDRESS": container.probe,
        **SHUTDOWN_BUDGET,
        **{f"SHOP_{dep.upper()}_TARGET": target for dep, target in targets.items() if dep != svc},
    }
    podman(
        "run",
        "--detach",
        f"--name={container.name}",
        "--network=host",
        "--read-only",
        "--tmpfs=/tmp",
        f"--volume={tls_dir}:/etc/shop/tls:ro",
        *(f"--env={key}={value}" for key, value in env.items()),
        image(svc),
        capture=True,
    )
    return container


def shop(*args: str | Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "shop"), *map(str, args)],
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def wait_serving(container: Container) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if shop("probe", container.probe).returncode == 0:
            return True
        if state(container)[0] != "running":
            return False
        time.sleep(0.5)
    return False


def state(container: Container) -> tuple[str, int]:
    """The container's status (running, exited, ...) and its exit code."""
    out = podman("inspect", "--format={{json .State}}", container.name, capture=True).stdout
    fields = json.loads(out)
    return str(fields["Status"]), int(fields["ExitCode"])


def client_tls(certs: Path, server: str) -> list[str | Path]:
    client = certs / "client"
    return [
        "-tls",
        "-tls-ca-cert",
        client / "ca.crt",
        "-tls-client-cert",
        client / "tls.crt",
        "-tls-client-key",
        client / "tls.key",
        "-tls-server-name",
        server,
    ]


def stop(container: Container) -> tuple[int, float]:
    began = time.monotonic()
    podman("stop", f"--time={STOP_TIMEOUT_SECONDS}", container.name, capture=True)
    elapsed = time.monotonic() - began
    return state(container)[1], elapsed


def logs_tail(container: Container) -> str:
    result = podman("logs", "--tail=20", container.name, capture=True, check=False)
    return result.stdout + result.stderr


@contextmanager
def phase(name: str, timings: dict[str, float]) -> Iterator[None]:
    began = time.monotonic()
    yield
    timings[name] = time.monotonic() - began


@contextmanager
def containers() -> Iterator[list[Container]]:
    started: list[Container] = []
    try:
        yield started
    finally:
        for container in started:
            podman("rm", "--force", "--time=0", container.name, capture=True, check=False)


def mount_certs(scratch: Path) -> Path:
    """`shop certs init` output, readable by the image's user as a Secret volume would be."""
    certs = scratch / "certs"
    made = shop("certs", "init", "--namespace", "default", "--out", certs)
    if made.returncode != 0:
        sys.exit(made.stdout + made.stderr)
    for path in certs.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    certs.chmod(0o555)
    return certs


def run_images(results: Results, scratch: Path) -> None:
    certs = mount_certs(scratch)
    with containers() as started:
        # Each service is given the addresses of those it calls, so those start first.
        targets: dict[str, str] = {}
        for svc in registry.start_order():
            container = start(svc, certs / svc, targets)
            started.append(container)
            targets[svc] = container.grpc
        for container in started:
            serving = wait_serving(container)
            results.check(
                f"shop-{container.svc} serves health on its probe port",
                serving,
                "" if serving else logs_tail(container),
            )
            mtls = shop("probe", *client_tls(certs, container.svc), container.grpc)
            results.check(
                f"shop-{container.svc} serves health over mTLS",
                mtls.returncode == 0,
                (mtls.stdout + mtls.stderr).strip(),
            )
            checked = podman(
                "run",
                "--rm",
                "--network=host",
                "--read-only",
                "--entrypoint=/opt/shop/bin/python",
                image(container.svc),
                "-c",
                IMAGE_CHECK,
                json.dumps(locked_versions()),
                capture=True,
                check=False,
            )
            results.check(
                f"shop-{container.svc} runs as {UID}, no compiler, no pip, bytecode compiled, "
                "every package at the version uv.lock pins",
                checked.returncode == 0,
                (checked.stdout + checked.stderr).strip(),
            )
        # Run from the order image, as the chart's `helm test` pod runs it.
        demo = podman(
            "run",
            "--rm",
            "--network=host",
            "--read-only",
            "--volume",
            f"{certs / 'client'}:/etc/shop/tls:ro",
            "--entrypoint=/opt/shop/bin/shop",
            image("order"),
            "demo",
            "--tls-dir",
            "/etc/shop/tls",
            *(arg for svc, target in targets.items() for arg in (f"--{svc}", target)),
            capture=True,
            check=False,
        )
        results.check(
            "the four images confirm an order placed by `shop demo` run in the order image",
            demo.returncode == 0,
            "" if demo.returncode == 0 else demo.stdout[-2000:] + demo.stderr[-2000:],
        )
        for container in reversed(started):
            code, elapsed = stop(container)
            ok = code == 0 and elapsed < STOP_TIMEOUT_SECONDS
            results.check(
                f"shop-{container.svc} exits 0 on SIGTERM within the grace period",
                ok,
                f"exit code {code} after {elapsed:.1f}s"
                + ("" if ok else "\n" + logs_tail(container)),
            )


def report_sizes() -> None:
    for svc in SERVICES:
        size = podman(
            "image", "inspect", "--format={{.Size}}", image(svc), capture=True
        ).stdout.strip()
        log(f"  {image(svc)}: {int(size) / 1e6:.0f} MB")


def main() -> None:
    timings: dict[str, float] = {}
    results = Results()
    with phase("tools", timings):
        ensure_tools()
        configure_podman()
    with phase("base image", timings):
        ensure_base()
    with phase("builds", timings):
        for svc in SERVICES:
            began = time.monotonic()
            built = build(svc)
            results.check(f"shop-{svc} builds", built, f"{time.monotonic() - began:.0f}s")
    if results.failed == 0:
        report_sizes()
        with phase("runs", timings), tempfile.TemporaryDirectory() as scratch:
            run_images(results, Path(scratch))
    log("timings: " + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in timings.items()))
    log(f"images: {results.passed} passed, {results.failed} failed")
    sys.exit(1 if results.failed else 0)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
