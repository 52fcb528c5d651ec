"""The Tiltfile, evaluated by a Starlark interpreter against strict stand-ins for Tilt.

Each stand-in has the parameter names of the Tilt built-in it replaces, so a misspelt argument
fails here as it would under `tilt up`; a built-in without a stand-in is an undefined name.
What the Tiltfile asks for is recorded and checked against the repository and against what the
chart renders with the values the Tiltfile passes to helm().
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import starlark
import yaml

ROOT = Path(__file__).resolve().parents[2]
TILTFILE = ROOT / "Tiltfile"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SERVICES = list(yaml.safe_load((ROOT / "deploy/helm/shop/values.yaml").read_text())["services"])
"""The chart's `services:` map, which the Tiltfile reads too."""
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
TRIGGER_MODE_AUTO, TRIGGER_MODE_MANUAL = 1, 2


class TiltfileFailed(Exception):
    """The Tiltfile called fail()."""


@dataclass
class Tilt:
    """Stand-ins for the Tilt built-ins the Tiltfile uses, recording every call."""

    files: dict[str, Any] = field(default_factory=dict)
    """Files that exist only for this evaluation (settings files), by path."""
    tools: set[str] = field(default_factory=lambda: {"helm", "kubectl"})
    builds: list[dict[str, Any]] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    applied: list[Any] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    local_resources: list[dict[str, Any]] = field(default_factory=list)
    watched: list[str] = field(default_factory=list)
    allowed_contexts: list[str] = field(default_factory=list)

    # Images and deployments.
    def docker_build(
        self,
        ref: str,
        context: str,
        build_args: dict[str, str] | None = None,
        dockerfile: str = "Dockerfile",
        dockerfile_contents: str = "",
        live_update: list[dict[str, Any]] | None = None,
        match_in_env_vars: bool = False,
        ignore: list[str] | None = None,
        only: list[str] | None = None,
        entrypoint: list[str] | None = None,
        target: str = "",
        ssh: str = "",
        network: str = "",
        secret: str = "",
        extra_tag: str = "",
        container_args: list[str] | None = None,
        cache_from: list[str] | None = None,
        pull: bool = False,
        platform: str = "",
        extra_hosts: list[str] | None = None,
    ) -> None:
        self.builds.append(
            {
                "ref": ref,
                "context": context,
                "build_args": build_args or {},
                "dockerfile": None if dockerfile_contents else dockerfile,
                "dockerfile_contents": dockerfile_contents,
                "live_update": live_update or [],
                "only": only or [],
            }
        )

    def helm(
        self,
        paths: str,
        name: str = "",
        namespace: str = "",
        values: list[str] | None = None,
        set: list[str] | None = None,
        kube_version: str = "",
        skip_crds: bool = False,
    ) -> dict[str, Any]:
        chart = {"paths": paths, "name": name, "namespace": namespace}
        chart |= {"values": list(values or []), "set": list(set or [])}
        self.charts.append(chart)
        return {"blob": "helm", "index": len(self.charts) - 1}

    def k8s_yaml(self, yaml: Any, allow_duplicates: bool = False) -> None:
        self.applied.append(yaml)

    def k8s_resource(
        self,
        workload: str = "",
        new_name: str = "",
        port_forwards: list[dict[str, Any]] | None = None,
        extra_pod_selectors: list[dict[str, str]] | None = None,
        trigger_mode: int = TRIGGER_MODE_AUTO,
        resource_deps: list[str] | None = None,
        objects: list[str] | None = None,
        auto_init: bool = True,
        pod_readiness: str = "",
        links: list[dict[str, str]] | None = None,
        labels: list[str] | None = None,
        discovery_strategy: str = "",
    ) -> None:
        self.resources.append(
            {
                "workload": workload,
                "name": new_name or workload,
                "port_forwards": port_forwards or [],
                "resource_deps": resource_deps or [],
                "links": links or [],
                "labels": labels or [],
            }
        )

    def local_resource(
        self,
        name: str,
        cmd: str = "",
        deps: list[str] | None = None,
        trigger_mode: int = TRIGGER_MODE_AUTO,
        resource_deps: list[str] | None = None,
        ignore: list[str] | None = None,
        auto_init: bool = True,
        serve_cmd: str = "",
        cmd_bat: str = "",
        serve_cmd_bat: str = "",
        allow_parallel: bool = False,
        links: list[dict[str, str]] | None = None,
        tags: list[str] | None = None,
        env: dict[str, str] | None = None,
        serve_env: dict[str, str] | None = None,
        readiness_probe: Any = None,
        dir: str = "",
        serve_dir: str = "",
        labels: list[str] | None = None,
    ) -> None:
        self.local_resources.append(
            {
                "name": name,
                "cmd": cmd,
                "deps": deps or [],
                "trigger_mode": trigger_mode,
                "auto_init": auto_init,
                "resource_deps": resource_deps or [],
                "env": env or {},
                "labels": labels or [],
            }
        )

    # Live update steps and links.
    def sync(self, local_path: str, remote_path: str) -> dict[str, Any]:
        return {"step": "sync", "local_path": local_path, "remote_path": remote_path}

    def run(
        self, cmd: str, trigger: list[str] | None = None, echo_off: bool = False
    ) -> dict[str, Any]:
        return {"step": "run", "cmd": cmd, "trigger": trigger or []}

    def fall_back_on(self, files: list[str]) -> dict[str, Any]:
        return {"step": "fall_back_on", "files": list(files)}

    def port_forward(
        self,
        local_port: int,
        container_port: int | None = None,
        name: str | None = None,
        link_path: str | None = None,
        host: str | None = None,
    ) -> dict[str, Any]:
        return {"local_port": local_port, "container_port": container_port, "name": name}

    def link(self, url: str, name: str = "") -> dict[str, str]:
        return {"url": url, "name": name}

    # Files, commands and the cluster.
    def os_path_exists(self, path: str) -> bool:
        return path in self.files or (ROOT / path).exists()

    def read_yaml(self, path: str, default: Any = None) -> Any:
        # Like Tilt's: the file as it is on disk, unless the test put a version in its place.
        self.watched.append(path)
        if path in self.files:
            return self.files[path]
        on_disk = ROOT / path
        return yaml.safe_load(on_disk.read_text()) if on_disk.is_file() else default

    def read_json(self, path: str, default: Any = None) -> Any:
        self.watched.append(path)
        return self.files.get(path, default)

    def watch_file(self, file_path: str) -> None:
        self.watched.append(file_path)

    def encode_json(self, obj: Any) -> str:
        return json.dumps(obj)

    def local(
        self,
        command: str,
        quiet: bool = False,
        command_bat: str = "",
        echo_off: bool = False,
        env: dict[str, str] | None = None,
        dir: str = "",
        stdin: str | None = None,
    ) -> str:
        # Only tool look-ups: anything else would run on every `tilt up` load.
        found = re.fullmatch(r"command -v (\S+) \|\| true", command)
        assert found, f"unexpected local() command: {command!r}"
        return f"/usr/bin/{found[1]}\n" if found[1] in self.tools else ""

    def allow_k8s_contexts(self, contexts: Any) -> None:
        self.allowed_contexts.extend([contexts] if isinstance(contexts, str) else contexts)

    def k8s_context(self) -> str:
        return "kind-shop"

    def k8s_namespace(self) -> str:
        return "default"

    def fail(self, msg: str) -> None:
        raise TiltfileFailed(msg)

    def evaluate(self) -> Tilt:
        module = starlark.Module()
        for name, function in self.builtins().items():
            module.add_callable(name, function)
        module["TRIGGER_MODE_AUTO"] = TRIGGER_MODE_AUTO
        module["TRIGGER_MODE_MANUAL"] = TRIGGER_MODE_MANUAL
        dialect = starlark.Dialect.extended()
        dialect.enable_top_level_stmt = True  # Tilt allows if/for at the top level
        globals_ = starlark.Globals.extended_by([starlark.LibraryExtension.StructType])
        # Tilt's `os` module, as far as the Tiltfile may use it.
        prelude = "os = struct(path = struct(exists = _os_path_exists))"
        starlark.eval(module, starlark.parse("prelude", prelude, dialect), globals_)
        ast = starlark.parse("Tiltfile", TILTFILE.read_text(), dialect)
        try:
            starlark.eval(module, ast, globals_)
        except starlark.StarlarkError as error:
            failed = re.search(r"TiltfileFailed: (.*)", str(error))
            if failed:
                raise TiltfileFailed(failed[1]) from error
            raise
        return self

    def builtins(self) -> dict[str, Callable[..., Any]]:
        names = [
            "docker_build", "helm", "k8s_yaml", "k8s_resource", "local_resource", "sync", "run",
            "fall_back_on", "port_forward", "link", "read_yaml", "read_json", "watch_file",
            "encode_json", "local", "allow_k8s_contexts", "k8s_context", "k8s_namespace", "fail",
        ]  # fmt: skip
        return {"_os_path_exists": self.os_path_exists} | {n: getattr(self, n) for n in names}

    def refs(self) -> list[str]:
        return [build["ref"] for build in self.builds]


def evaluate(settings: dict[str, Any] | None = None, file: str = "tilt-settings.yaml") -> Tilt:
    return Tilt(files={file: settings} if settings is not None else {}).evaluate()


def helm_binary() -> str | None:
    fetched = ROOT / ".tools" / "k8s" / "bin" / "helm"
    return str(fetched) if fetched.exists() else shutil.which("helm")


def render(chart: dict[str, Any]) -> list[dict[str, Any]]:
    """What helm() gives Tilt: `helm template` with the same release, values and flags."""
    helm = helm_binary()
    if helm is None:
        pytest.skip(
            "helm not found: `python3 deploy/tools.py tools` fetches it into .tools/k8s/bin"
        )
    command = [helm, "template", chart["name"], chart["paths"]]
    command += ["--namespace", chart["namespace"]] if chart["namespace"] else []
    for path in chart["values"]:
        command += ["--values", path]
    for flag in chart["set"]:
        command += ["--set", flag]
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def image_name(image: str) -> str:
    """`registry/shop-order:0.1.0` -> `registry/shop-order`, as Tilt matches images."""
    return re.sub(r"(@sha256)?:[^/:]+$", "", image)


@pytest.fixture(scope="module")
def default() -> Tilt:
    return evaluate()


@pytest.fixture(scope="module")
def workloads(default: Tilt) -> dict[str, dict[str, Any]]:
    (chart,) = default.charts
    return {o["metadata"]["name"]: o for o in render(chart) if o["kind"] in WORKLOAD_KINDS}


def test_every_path_the_tiltfile_names_exists(default: Tilt) -> None:
    named = [path for chart in default.charts for path in [chart["paths"], *chart["values"]]]
    for build in default.builds:
        named += [build["context"], *build["only"]]
        named += [build["dockerfile"]] if build["dockerfile"] else []
        for step in build["live_update"]:
            named += [step["local_path"]] if step["step"] == "sync" else step.get("files", [])
    named += [dep for resource in default.local_resources for dep in resource["deps"]]
    missing = [path for path in named if not (ROOT / path).exists()]
    assert not missing, f"the Tiltfile names paths that do not exist: {missing}"
    assert len(named) > 20


def copied_from_context(svc: str) -> list[str]:
    """The paths deploy/Dockerfile copies from the build context when SERVICE is `svc`."""
    sources = []
    for line in DOCKERFILE.read_text().replace("\\\n", " ").splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w.replace("${SERVICE}", svc) for w in words[1:-1]]
    return sources


def test_each_service_image_is_built_from_the_one_dockerfile_with_all_it_copies(
    default: Tilt,
) -> None:
    by_ref = {build["ref"]: build for build in default.builds}
    for svc in SERVICES:
        release = by_ref[f"shop-{svc}-release"]
        assert release["dockerfile"] == "deploy/Dockerfile"
        assert release["build_args"]["SERVICE"] == svc
        assert release["context"] == "."
        copied = copied_from_context(svc)
        assert {"uv.lock", "requirements.lock", f"services/{svc}"} <= set(copied)
        # Tilt sends only these paths: copying anything else fails the build.
        outside = [
            path
            for path in copied
            if not any(path == kept or path.startswith(kept + "/") for kept in release["only"])
        ]
        assert not outside, f"shop-{svc}: the Dockerfile copies what Tilt does not send: {outside}"


def test_every_k8s_resource_names_a_workload_the_chart_renders(
    default: Tilt, workloads: dict[str, dict[str, Any]]
) -> None:
    named = [resource["workload"] for resource in default.resources]
    assert sorted(named) == sorted(set(named)), "a workload is claimed twice"
    assert set(named) <= set(workloads), f"not rendered: {set(named) - set(workloads)}"
    assert {f"shop-{svc}" for svc in SERVICES} | {"shop-jaeger"} <= set(named)


def test_every_built_image_runs_in_a_rendered_workload_or_is_the_base_of_one(
    default: Tilt, workloads: dict[str, dict[str, Any]]
) -> None:
    used = {image_name(c["image"]) for obj in workloads.values() for c in containers(obj)}
    bases = {
        line.split()[1]
        for build in default.builds
        for line in build["dockerfile_contents"].splitlines()
        if line.startswith("FROM ")
    }
    assert bases <= set(default.refs()), "a dev layer starts from an image nothing builds"
    unused = set(default.refs()) - used - bases
    assert not unused, f"built but never run: {unused}"
    assert {f"shop-{svc}" for svc in SERVICES} <= used


def test_port_forwards_reach_ports_the_pods_expose_without_clashing_locally(
    default: Tilt, workloads: dict[str, dict[str, Any]]
) -> None:
    local_ports = []
    for resource in default.resources:
        exposed = {
            port["containerPort"]
            for c in containers(workloads[resource["workload"]])
            for port in c.get("ports", [])
        }
        for forward in resource["port_forwards"]:
            assert forward["container_port"] in exposed, (resource["name"], forward)
            local_ports.append(forward["local_port"])
    assert len(local_ports) == len(set(local_ports))
    services = {r["workload"]: r for r in default.resources if "services" in r["labels"]}
    for svc in SERVICES:
        forwarded = {f["container_port"] for f in services[f"shop-{svc}"]["port_forwards"]}
        assert forwarded == {50051, 8081, 9090}, svc


def test_jaeger_ui_is_forwarded_and_linked(default: Tilt) -> None:
    (jaeger,) = [r for r in default.resources if r["workload"] == "shop-jaeger"]
    (forward,) = jaeger["port_forwards"]
    assert forward["container_port"] == 16686
    assert jaeger["links"] == [
        {"url": f"http://localhost:{forward['local_port']}", "name": "Jaeger UI"}
    ]


def test_chart_is_deployed_once_with_its_dev_values(default: Tilt) -> None:
    (chart,) = default.charts
    assert chart["paths"] == "deploy/helm/shop"
    assert chart["values"][0] == "deploy/helm/shop/values-dev.yaml"
    assert "jaeger.enabled=true" in chart["set"]
    assert default.applied == [{"blob": "helm", "index": 0}]


def test_live_update_syncs_each_package_into_the_dev_supervisors_import_path(default: Tilt) -> None:
    by_ref = {build["ref"]: build for build in default.builds}
    for svc in SERVICES:
        steps = by_ref[f"shop-{svc}"]["live_update"]
        assert steps[0]["step"] == "fall_back_on"
        assert steps[-1]["step"] == "run"
        synced = {s["local_path"]: s["remote_path"] for s in steps if s["step"] == "sync"}
        for local, remote in synced.items():
            assert (ROOT / local / "__init__.py").exists(), f"{local} is not a package"
            assert remote == f"/tmp/shop-live/{Path(local).name}"
        assert f"services/{svc}/src/shop_{svc}" in synced


def test_dev_layer_runs_the_images_own_command_under_the_supervisor(default: Tilt) -> None:
    by_ref = {build["ref"]: build for build in default.builds}
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.*)$", DOCKERFILE.read_text(), re.MULTILINE)
    for svc in SERVICES:
        layer = by_ref[f"shop-{svc}"]["dockerfile_contents"]
        (wrapped,) = re.findall(r"^ENTRYPOINT (.*)$", layer, re.MULTILINE)
        command = json.loads(wrapped)
        assert command[:2] == ["/bin/sh", "-c"]
        assert command[5:] == json.loads(entrypoint), "the supervisor must run what ships"
        # The package it copies for live updates is the one the image's command runs: the
        # Dockerfile starts the console script shop-<svc>.
        pyproject = tomllib.loads((ROOT / f"services/{svc}/pyproject.toml").read_text())
        script = pyproject["project"]["scripts"][f"shop-{svc}"]
        assert script.split(".")[0] == command[4] == f"shop_{svc}"


def test_supervisor_restarts_the_process_on_the_synced_code(default: Tilt, tmp_path: Path) -> None:
    """The supervisor script itself, run by sh with a stand-in for the image's Python."""
    (build,) = [b for b in default.builds if b["ref"] == "shop-order"]
    (wrapped,) = re.findall(r"^ENTRYPOINT (.*)$", build["dockerfile_contents"], re.MULTILINE)
    live = tmp_path / "live"
    script = json.loads(wrapped)[2].replace("/tmp/shop-live", str(live))
    (restart,) = [s["cmd"] for s in build["live_update"] if s["step"] == "run"]
    site, out = tmp_path / "site", tmp_path / "out"
    for package in ["shop", "shop_grpc", "shop_order"]:
        (site / package).mkdir(parents=True)
    (site / "shop_order" / "version.py").write_text("VERSION = 1\n")
    (site / "shop_order" / "__main__.py").write_text(
        "import signal, sys, time\n"
        "from shop_order.version import VERSION\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        f"open({str(out)!r}, 'a').write(f'boot {{VERSION}}\\n')\n"
        "time.sleep(60)\n"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # The image's venv: its Python answers the supervisor's purelib question and otherwise runs
    # the real interpreter; its entrypoint runs the service's module with that Python.
    (bin_dir / "python").write_text(
        f'#!/bin/sh\ncase "$2" in *sysconfig*) echo {site};; *) exec python3 "$@";; esac\n'
    )
    (bin_dir / "shop-service").write_text(
        '#!/bin/sh\nexec "$(dirname "$0")/python" -m shop_order "$@"\n'
    )
    for stand_in in bin_dir.iterdir():
        stand_in.chmod(0o755)
    entrypoint = str(bin_dir / "shop-service")
    supervisor = subprocess.Popen(["sh", "-c", script, "shop-dev", "shop_order", entrypoint])
    try:
        wait_for(lambda: out.exists() and out.read_text() == "boot 1\n")
        (live / "shop_order" / "version.py").write_text("VERSION = 2\n")  # what sync() does
        subprocess.run(["sh", "-c", restart.split("'")[1].replace("/tmp/shop-live", str(live))])
        wait_for(lambda: out.read_text() == "boot 1\nboot 2\n")
        supervisor.terminate()
        assert supervisor.wait(timeout=10) == 0, "SIGTERM must reach Python and end the pod cleanly"
    finally:
        supervisor.kill()
    assert (site / "shop_order" / "version.py").read_text() == "VERSION = 1\n"


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_settings_file_chooses_which_services_are_built() -> None:
    tilt = evaluate({"services": ["order", "inventory"]})
    assert {"shop-order", "shop-inventory"} == {r for r in tilt.refs() if "-release" not in r}
    # Services not built still run (the chart's image) and keep their port-forwards.
    assert {f"shop-{svc}" for svc in SERVICES} <= {r["workload"] for r in tilt.resources}
    assert "tilt-settings.yaml" in tilt.watched


def test_settings_file_may_be_json_and_turns_jaeger_and_live_update_off() -> None:
    tilt = evaluate({"jaeger": False, "live_update": False}, file="tilt-settings.json")
    assert "jaeger.enabled=false" in tilt.charts[0]["set"]
    assert "shop-jaeger" not in {r["workload"] for r in tilt.resources}
    assert sorted(tilt.refs()) == sorted(f"shop-{svc}" for svc in SERVICES)
    assert all(not b["live_update"] and b["dockerfile"] for b in tilt.builds)


def test_settings_file_adds_values_files_after_the_dev_values() -> None:
    tilt = evaluate({"extra_values": ["my-values.yaml"], "base_image": "localhost/base:1"})
    assert tilt.charts[0]["values"] == ["deploy/helm/shop/values-dev.yaml", "my-values.yaml"]
    assert {b["build_args"].get("BASE_IMAGE") for b in tilt.builds if b["dockerfile"]} == {
        "localhost/base:1"
    }


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"services": ["order", "shipping"]}, 'unknown service "shipping"'),
        ({"servcies": ["order"]}, 'unknown setting "servcies"'),
    ],
)
def test_settings_file_mistakes_fail_the_load(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(TiltfileFailed, match=message):
        evaluate(settings)


def test_a_fresh_clone_without_its_uv_lock_fails_saying_how_to_make_it(monkeypatch) -> None:
    real = Tilt.os_path_exists
    monkeypatch.setattr(Tilt, "os_path_exists", lambda self, p: p != "uv.lock" and real(self, p))
    tilt = Tilt()
    with pytest.raises(TiltfileFailed, match=r"uv\.lock is missing.*tasks\.py lock-check"):
        tilt.evaluate()
    assert not tilt.builds


@pytest.mark.parametrize("tool", ["helm", "kubectl"])
def test_missing_tools_fail_before_anything_is_built(tool: str) -> None:
    tilt = Tilt(tools={"helm", "kubectl"} - {tool})
    with pytest.raises(TiltfileFailed, match=f"{tool} is not on PATH"):
        tilt.evaluate()
    assert not tilt.builds


def test_protos_and_e2e_resources(default: Tilt) -> None:
    by_name = {r["name"]: r for r in default.local_resources}
    assert by_name["protos"]["cmd"] == "python3 tasks.py protos"
    assert by_name["protos"]["deps"] == ["protos"]
    e2e = by_name["e2e"]
    assert e2e["trigger_mode"] == TRIGGER_MODE_MANUAL and not e2e["auto_init"]
    assert e2e["cmd"].split()[1] == "tests/e2e"
    assert e2e["env"]["SHOP_E2E_KUBE_CONTEXT"] == "kind-shop"
    assert set(e2e["resource_deps"]) <= {r["name"] for r in default.resources}


def test_strict_stand_ins_reject_unknown_arguments() -> None:
    """The harness itself: a wrong keyword is an error, as it is in Tilt."""
    with pytest.raises(TypeError):
        Tilt().docker_build("x", ".", dockerfle="Dockerfile")  # type: ignore[call-arg]
