"""Every service's image, built from deploy/Dockerfile with podman, runs as a cluster runs it.

The images run side by side as a pod would run them (tests/images/conftest.py: read-only root
filesystem, /tmp the only writable place, the image's own non-root user, certificates from
`shop certs init` mounted read-only at /etc/shop/tls, and a token key pair at
/etc/shop/token-keys: the private half for the user service, the public one for the others),
and each one must:
  - build;
  - answer SERVING on its plaintext probe port, and over mTLS on its gRPC port;
  - serve its Prometheus metrics over plain HTTP on its metrics port;
  - run as UID 10001 with no compiler, no pip and no source file left uncompiled;
  - hold only packages uv.lock pins, each at the version it pins;
  - together with the others, confirm an order placed by `shop demo`;
  - exit 0 on `podman stop`, before the stop's grace period runs out.

The tests run in the order they are written: the order is placed while every image runs, and
the images are stopped last, each after those that call it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from shop_cli.targets import CLIENT_SERVICES
from shop_grpc import registry
from shop_grpc.testing import scrape

ROOT = Path(__file__).resolve().parents[2]
UID = 10001
STOP_TIMEOUT_SECONDS = 15  # podman stop's grace period, like terminationGracePeriodSeconds

# Runs inside each image, as its entrypoint's interpreter: what the final stage must not hold.
# Its argument: the versions uv.lock pins, by package name (the `pins` fixture).
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


@pytest.fixture(scope="module")
def pins() -> dict[str, list[str]]:
    """Every package the workspace pins (the root pyproject.toml) or holds, by its normalised
    name, with the version(s) allowed. Fails when uv.lock was not made from the pins."""
    pinned: dict[str, list[str]] = {}
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        pinned.setdefault(package["name"], []).append(package["version"])
    uv = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    for pin in uv["constraint-dependencies"]:
        name, version = pin.split("==", 1)
        if pinned.get(name) != [version]:
            pytest.fail(f"uv.lock is not made from the pins ({name}): run a task first")
    return pinned


@pytest.mark.parametrize("svc", registry.names())
def test_the_image_builds(images, svc):
    build = images.build(svc)
    assert build.ok, build.output


@pytest.mark.parametrize("svc", registry.start_order())
def test_it_serves_health_on_its_probe_port(suite, svc):
    container = suite.containers[svc]
    assert suite.wait_serving(container), suite.logs_tail(container)


@pytest.mark.parametrize("svc", registry.start_order())
def test_it_serves_health_over_mtls(suite, svc):
    probed = suite.probe_mtls(suite.containers[svc])
    assert probed.returncode == 0, (probed.stdout + probed.stderr).strip()


@pytest.mark.parametrize("svc", registry.start_order())
def test_it_serves_its_metrics_on_its_metrics_port(suite, svc):
    container = suite.containers[svc]
    content_type, body = scrape(container.metrics_port)
    assert content_type.startswith("text/plain")
    # The process's own series, and the served calls' family (declared before any call is
    # counted: the health checks so far are not).
    assert "process_resident_memory_bytes" in body
    assert "# TYPE grpc_server_handled_total counter" in body


@pytest.mark.parametrize("svc", registry.start_order())
def test_it_runs_as_10001_without_compiler_or_pip_compiled_and_at_the_pinned_versions(
    podman, images, pins, svc
):
    checked = podman(
        "run",
        "--rm",
        "--network=host",
        "--read-only",
        "--entrypoint=/opt/shop/bin/python",
        images.tag(svc),
        "-c",
        IMAGE_CHECK,
        json.dumps(pins),
        capture=True,
        check=False,
    )
    assert checked.returncode == 0, (checked.stdout + checked.stderr).strip()


@pytest.mark.parametrize("image", registry.names())
def test_the_images_confirm_an_order_placed_by_shop_demo_run_in_any_image(images, suite, image):
    # The chart's `helm test` pod runs it from one service's image (the first enabled one's):
    # every image holds the shop command.
    demo = suite.podman(
        "run",
        "--rm",
        "--network=host",
        "--read-only",
        "--volume",
        f"{suite.certs / 'client'}:/etc/shop/tls:ro",
        "--entrypoint=/opt/shop/bin/shop",
        images.tag(image),
        "demo",
        "--tls-dir",
        "/etc/shop/tls",
        # The services the demo calls, wherever they run; another service is not its business.
        *(
            arg
            for svc, target in suite.targets.items()
            if svc in CLIENT_SERVICES
            for arg in (f"--{svc}", target)
        ),
        capture=True,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]


@pytest.mark.parametrize("svc", registry.start_order()[::-1])
def test_it_exits_0_on_sigterm_within_the_grace_period(suite, svc):
    container = suite.containers[svc]
    code, elapsed = suite.stop(container, STOP_TIMEOUT_SECONDS)
    assert code == 0 and elapsed < STOP_TIMEOUT_SECONDS, (
        f"exit code {code} after {elapsed:.1f}s\n{suite.logs_tail(container)}"
    )
