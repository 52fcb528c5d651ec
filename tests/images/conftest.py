"""What the image tests stand on: podman, a base image, each service's image built once, and
the images running side by side as a pod would run them.

Not part of the default test run (the root pyproject.toml leaves tests/images out): CI runs it
with `python3 tasks.py images-test`, which installs podman, runc and debootstrap first when they
are missing (as root), or stops. Run as `pytest tests/images` without them, every test here is
skipped, saying which is missing.

Each image is deploy/Dockerfile with the service's name as SERVICE. No image registry is
reachable where this runs, so the base image is made here: a Debian bookworm root filesystem
with Python (debootstrap), imported into podman once and passed to every build as BASE_IMAGE.
podman keeps its images under .tools/images (vfs storage, its own containers.conf), so nothing
outside the work tree is touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shop_grpc import registry, tokens
from shop_grpc.config import TokenSettings
from shop_grpc.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".tools" / "images"
DOCKERFILE = "deploy/Dockerfile"
TAG = "test"
TOOLS = ("podman", "runc", "debootstrap")

# Bump when the base image's recipe changes: a cached base of another version is rebuilt.
BASE_RECIPE = "1 bookworm minbase python3,python3-venv,ca-certificates"
BASE_IMAGE = f"localhost/shop-base:bookworm-{hashlib.sha256(BASE_RECIPE.encode()).hexdigest()[:12]}"
# What podman needs on a machine without systemd or the right to raise ulimits, like CI's. Storage
# is vfs (see Podman.command): slower than overlay, but it works on any filesystem.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""

SHUTDOWN_BUDGET = {  # the service's own shutdown budget, 10 s in all: inside podman stop's grace
    "SHOP_SHUTDOWN_DRAIN_SECONDS": "1",
    "SHOP_SHUTDOWN_GRACE_SECONDS": "5",
    "SHOP_SHUTDOWN_BACKGROUND_SECONDS": "2",
    "SHOP_SHUTDOWN_FLUSH_SECONDS": "2",
}
START_TIMEOUT_SECONDS = 60

SUMMARY = pytest.StashKey[list[str]]()
"""Lines for the end of the run: how the base image came about, each image's build and size."""


TOKEN_KEYS_DIR = TokenSettings.keys_directory
"""Where a service looks for its token keys by default, as the chart mounts them."""


def image(svc: str) -> str:
    """The tag of the service's image under test."""
    return f"localhost/shop-{svc}:{TAG}"


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL)


def shop(*args: str | Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The development environment's `shop` command; never raises on its exit status."""
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "shop"), *map(str, args)],
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


# --- podman -----------------------------------------------------------------------------------


class Podman:
    """podman with its storage under `cache` and its own containers.conf; run from the
    repository root, which deploy/Dockerfile's paths are relative to."""

    def __init__(self, cache: Path) -> None:
        cache.mkdir(parents=True, exist_ok=True)
        conf = cache / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.cache = cache
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    @property
    def command(self) -> list[str]:
        # The run root holds sockets whose paths must stay short, so it lives in the temp dir.
        digest = hashlib.sha256(bytes(self.cache)).hexdigest()[:8]
        run_root = Path(tempfile.gettempdir()) / f"shop-podman-{digest}"
        return [
            "podman",
            "--storage-driver=vfs",
            f"--root={self.cache / 'storage'}",
            f"--runroot={run_root}",
        ]

    def __call__(
        self, *args: str | Path, capture: bool = False, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Runs `podman ARGS`; raises CalledProcessError on failure when `check`. With
        `capture`, stdout and stderr are kept on the result instead of shown."""
        return subprocess.run(
            [*self.command, *map(str, args)],
            text=True,
            check=check,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            cwd=ROOT,
            env=self.env,
        )

    def import_tree(self, rootfs: Path, tag: str) -> None:
        """Imports a root filesystem as the image `tag`."""
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [*self.command, "import", "--quiet", "-", tag],
            stdin=tar.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
            env=self.env,
        )
        assert tar.wait() == 0, "tar of the base root filesystem failed"


@pytest.fixture(scope="session")
def podman() -> Podman:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed (apt-get install {' '.join(TOOLS)}, or "
            "`python3 tasks.py images-test` as root)"
        )
    return Podman(CACHE)


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


def make_base(podman: Podman) -> None:
    """debootstraps BASE_RECIPE and imports it as BASE_IMAGE (about a minute)."""
    _, suite, variant, packages = BASE_RECIPE.split()
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(dir=podman.cache) as scratch:
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
        podman.import_tree(rootfs, BASE_IMAGE)


@pytest.fixture(scope="session")
def base_image(podman: Podman, pytestconfig: pytest.Config) -> str:
    """BASE_IMAGE, made on first use and kept in podman's storage for later runs."""
    began = time.monotonic()
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        how = "cached"
    else:
        make_base(podman)
        how = f"debootstrap, {time.monotonic() - began:.0f}s"
    pytestconfig.stash.setdefault(SUMMARY, []).append(f"base image {BASE_IMAGE}: {how}")
    return BASE_IMAGE


# --- builds -----------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Build:
    """One `podman build` of a service's image."""

    svc: str
    ok: bool
    seconds: float
    output: str
    """The end of podman's output when the build failed; empty otherwise."""


@dataclass
class Images:
    """Each service's image, built on first request and only once a session."""

    podman: Podman
    base: str
    summary: list[str]
    builds: dict[str, Build] = field(default_factory=dict)

    def build(self, svc: str) -> Build:
        if svc not in self.builds:
            self.builds[svc] = self._build(svc)
        return self.builds[svc]

    def tag(self, svc: str) -> str:
        """The service's image tag; skips the test when the image did not build."""
        if not self.build(svc).ok:
            pytest.skip(f"shop-{svc} did not build")
        return image(svc)

    def _build(self, svc: str) -> Build:
        cert = ca_cert()
        began = time.monotonic()
        result = self.podman(
            "build",
            "--network=host",
            f"--build-arg=BASE_IMAGE={self.base}",
            f"--build-arg=SERVICE={svc}",
            *([f"--secret=id=ca-cert,src={cert}"] if cert else []),
            f"--file={DOCKERFILE}",
            f"--tag={image(svc)}",
            ROOT,
            capture=True,
            check=False,
        )
        seconds = time.monotonic() - began
        if result.returncode != 0:
            self.summary.append(f"  {image(svc)}: build failed after {seconds:.0f}s")
            return Build(svc, False, seconds, result.stdout[-4000:] + result.stderr[-4000:])
        size = self.podman(
            "image", "inspect", "--format={{.Size}}", image(svc), capture=True
        ).stdout.strip()
        self.summary.append(f"  {image(svc)}: built in {seconds:.0f}s, {int(size) / 1e6:.0f} MB")
        return Build(svc, True, seconds, "")


@pytest.fixture(scope="session")
def images(podman: Podman, base_image: str, pytestconfig: pytest.Config) -> Images:
    return Images(podman, base_image, pytestconfig.stash.setdefault(SUMMARY, []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.write_sep("-", "images")
        for line in lines:
            terminalreporter.write_line(line)


# --- the images running -----------------------------------------------------------------------


@dataclass
class Container:
    svc: str
    name: str
    grpc_port: int
    probe_port: int
    metrics_port: int

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def probe(self) -> str:
        return f"127.0.0.1:{self.probe_port}"

    @property
    def metrics(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"


@dataclass
class Suite:
    """Every service's image running, each with host networking on ports of its own."""

    podman: Podman
    certs: Path
    """`shop certs init` output: one directory per identity, the client's included."""
    token_keys: Path
    """A first access token key pair: ``private/`` for the service that signs, ``public/``
    for the others, as the chart's Secrets hold them."""
    containers: dict[str, Container] = field(default_factory=dict)
    """By service, in the order they were started (each after those it calls)."""

    @property
    def targets(self) -> dict[str, str]:
        """Each service's mTLS address, by name."""
        return {svc: container.grpc for svc, container in self.containers.items()}

    def start(self, svc: str, image: str) -> Container:
        """Runs `image` as a cluster runs it: read-only root filesystem, /tmp the only writable
        place, the image's own user, certificates mounted read-only at /etc/shop/tls, and the
        services started before it as its dependencies' targets."""
        container = Container(
            svc, f"shop-{svc}-imagetest-{os.getpid()}", free_port(), free_port(), free_port()
        )
        env = {
            # Host networking, so each container gets ports of its own instead of 50051, 8081
            # and 9090.
            "SHOP_LISTEN_ADDRESS": container.grpc,
            "SHOP_PROBE_ADDRESS": container.probe,
            "SHOP_METRICS_ADDRESS": container.metrics,
            **SHUTDOWN_BUDGET,
            **{f"SHOP_{dep.upper()}_TARGET": target for dep, target in self.targets.items()},
        }
        self.containers[svc] = container
        self.podman(
            "run",
            "--detach",
            f"--name={container.name}",
            "--network=host",
            "--read-only",
            "--tmpfs=/tmp",
            f"--volume={self.certs / svc}:/etc/shop/tls:ro",
            f"--volume={self.token_keys / self.key_half(svc)}:{TOKEN_KEYS_DIR}:ro",
            *(f"--env={key}={value}" for key, value in env.items()),
            image,
            capture=True,
        )
        return container

    @staticmethod
    def key_half(svc: str) -> str:
        return "private" if registry.services()[svc].signs_tokens else "public"

    def state(self, container: Container) -> tuple[str, int]:
        """The container's status (running, exited, ...) and its exit code."""
        out = self.podman("inspect", "--format={{json .State}}", container.name, capture=True)
        fields = json.loads(out.stdout)
        return str(fields["Status"]), int(fields["ExitCode"])

    def wait_serving(self, container: Container) -> bool:
        """True once its probe port answers SERVING; False if it stops or START_TIMEOUT_SECONDS
        pass first."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if shop("probe", container.probe).returncode == 0:
                return True
            if self.state(container)[0] != "running":
                return False
            time.sleep(0.5)
        return False

    def probe_mtls(self, container: Container) -> subprocess.CompletedProcess[str]:
        """`shop probe` on its mTLS port, as the client identity, checking its service name."""
        client = self.certs / "client"
        return shop(
            "probe",
            "-tls",
            "-tls-ca-cert",
            client / "ca.crt",
            "-tls-client-cert",
            client / "tls.crt",
            "-tls-client-key",
            client / "tls.key",
            "-tls-server-name",
            container.svc,
            container.grpc,
        )

    def stop(self, container: Container, grace: float) -> tuple[int, float]:
        """`podman stop` with `grace` seconds before SIGKILL: its exit code, and the seconds the
        stop took."""
        began = time.monotonic()
        self.podman("stop", f"--time={grace:g}", container.name, capture=True)
        elapsed = time.monotonic() - began
        return self.state(container)[1], elapsed

    def logs_tail(self, container: Container) -> str:
        result = self.podman("logs", "--tail=20", container.name, capture=True, check=False)
        return result.stdout + result.stderr


def mount_certs(certs: Path) -> Path:
    """`shop certs init` output, readable by the image's user as a Secret volume would be."""
    made = shop("certs", "init", "--namespace", "default", "--out", certs)
    assert made.returncode == 0, made.stdout + made.stderr
    return readable_as_a_secret(certs)


def mount_token_keys(keys: Path) -> Path:
    """A first token key pair, as the chart's secrets Job makes it, readable by the image's
    user as a Secret volume would be."""
    tokens.write_new_key(keys / "private", keys / "public")
    return readable_as_a_secret(keys)


def readable_as_a_secret(tree: Path) -> Path:
    for path in tree.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    tree.chmod(0o555)
    return tree


@pytest.fixture(scope="session")
def suite(
    podman: Podman, images: Images, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Suite]:
    """Every image running side by side; removed at the end of the session."""
    tags = {svc: images.tag(svc) for svc in registry.start_order()}
    made = tmp_path_factory.mktemp("images")
    running = Suite(podman, mount_certs(made / "certs"), mount_token_keys(made / "token-keys"))
    try:
        # Each service is given the addresses of those it calls, so those start first.
        for svc, tag in tags.items():
            running.start(svc, tag)
        yield running
    finally:
        for container in running.containers.values():
            podman("rm", "--force", "--time=0", container.name, capture=True, check=False)
