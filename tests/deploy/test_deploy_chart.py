"""Policy checks over what the Helm chart renders, with the real helm (deploy/tools.py)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from grpc_health.v1 import health_pb2

from shop_grpc import registry
from shop_grpc.config import Env, shutdown_settings
from shop_grpc.probe import LIVENESS, ProbeServer
from shop_grpc.testing import free_port, postgres_server_url

ROOT = Path(__file__).resolve().parents[2]
CHART_VALUES = yaml.safe_load((ROOT / "deploy/helm/shop/values.yaml").read_text())
SERVICES = tuple(CHART_VALUES["services"])
"""The chart's `services:` map: the one list of what is deployed."""
CALL_GRAPH = {spec.name: set(spec.depends_on) for spec in registry.services().values()}
"""Who calls whom, as the services declare it (shop_grpc.registry)."""
CONFIG_SOURCES = [
    ROOT / "libs/shop-grpc/src/shop_grpc/config.py",
    *sorted(ROOT.glob("services/*/src/shop_*/config.py")),
]
NOT_SET_BY_DEFAULT = {
    "SHOP_INSECURE": "debugging only: plaintext would defeat the identity checks",
    "SHOP_FAULTS": "test-only fault injection",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "OTEL_EXPORTER_OTLP_ENDPOINT covers it",
}


LONGEST_RELEASE = "shop-payments-platform-production-eu-west-1-green-b2x"
"""53 characters, the most Helm accepts."""
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
"""What a Service's name must be: a DNS label that starts with a letter."""
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
REVISION_HASH_LENGTH = 10
"""Most characters of the hash a StatefulSet's controller appends to its name in the
controller-revision-hash label of its pods."""


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tools = _load("shop_deploy_tools", ROOT / "deploy/tools.py")


@pytest.fixture(scope="session", autouse=True)
def helm_available() -> None:
    try:
        tools.fetch()
    except (OSError, subprocess.CalledProcessError, StopIteration) as error:
        pytest.skip(f"helm could not be fetched ({error}); the chart is not checked")


def render(
    case: str = "default", *extra: str, release: str = tools.RELEASE
) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(tools.render(case, *extra, release=release)) if doc]


@pytest.fixture(scope="module", params=list(tools.CASES))
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]
        elif doc["kind"] == "Pod":
            yield f"Pod/{doc['metadata']['name']}", doc["spec"]


def service_deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["labels"]["app.kubernetes.io/component"]: doc
        for doc in of_kind(docs, "Deployment")
        if doc["metadata"]["labels"]["app.kubernetes.io/component"] in SERVICES
    }


def env_of(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item for item in container["env"]}


def test_the_chart_deploys_every_service_there_is_as_it_declares_itself():
    assert set(SERVICES) == set(registry.names())
    for name, service in CHART_VALUES["services"].items():
        assert set(service.get("dependencies", [])) == CALL_GRAPH[name], name
        assert service["localPort"] == registry.services()[name].default_port, name


def test_every_container_runs_restricted(rendered: list[dict[str, Any]]) -> None:
    for where, spec in pod_specs(rendered):
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, where
        assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}, where
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["runAsNonRoot"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert container["resources"]["requests"] and container["resources"]["limits"], where


def test_long_running_containers_have_probes(rendered: list[dict[str, Any]]) -> None:
    for where, spec in pod_specs(rendered):
        if where.split("/")[0] in {"Job", "Pod"}:
            continue
        for container in spec["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, f"{where}: no {probe}"


def test_services_probe_the_plaintext_port(
    rendered: list[dict[str, Any]],
) -> None:
    deployments = service_deployments(rendered)
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        spec = deployment["spec"]["template"]["spec"]
        container = spec["containers"][0]
        # Ready only when the process says the server is SERVING; restarted only when it
        # does not answer for itself (a database that is away is not a reason).
        assert container["readinessProbe"]["grpc"] == {"port": 8081}, name
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": 8081, "service": LIVENESS}, name
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["automountServiceAccountToken"] is False
        assert spec["topologySpreadConstraints"]


SHUTDOWN_PARTS = {
    "SHOP_SHUTDOWN_DRAIN_SECONDS": "drainSeconds",
    "SHOP_SHUTDOWN_GRACE_SECONDS": "graceSeconds",
    "SHOP_SHUTDOWN_BACKGROUND_SECONDS": "backgroundSeconds",
    "SHOP_SHUTDOWN_FLUSH_SECONDS": "flushSeconds",
}
"""The process's parts of the shutdown budget: its variable -> the chart's value."""


def section_of(case: str, key: str) -> dict[str, Any]:
    """The values under `key` a case renders with: values.yaml, then its files in order, each
    replacing the keys it sets one level down."""
    merged: dict[str, Any] = {}
    for name in ["values.yaml", *tools.CASES[case][0]]:
        merged.update((yaml.safe_load((tools.CHART / name).read_text()) or {}).get(key, {}))
    return merged


@pytest.mark.parametrize("case", ["default", "dev", "production"])
def test_a_pod_is_given_the_shutdown_budget_its_process_keeps_to(case: str) -> None:
    values = section_of(case, "shutdown")
    for name, deployment in service_deployments(render(case)).items():
        spec = deployment["spec"]["template"]["spec"]
        pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        env = {var: item["value"] for var, item in env_of(deployment).items() if "value" in item}
        assert {var: float(env[var]) for var in SHUTDOWN_PARTS} == {
            var: values[key] for var, key in SHUTDOWN_PARTS.items()
        }, name
        # What the process itself makes of its variables, plus preStop, plus a margin.
        budget = shutdown_settings(Env(env)).total_seconds
        assert pre_stop == values["preStopSleepSeconds"]
        assert values["marginSeconds"] >= 1
        assert spec["terminationGracePeriodSeconds"] == pre_stop + budget + values["marginSeconds"]


def test_the_pod_budget_follows_every_part() -> None:
    parts = {
        "preStopSleepSeconds": 3,
        "drainSeconds": 4,
        "graceSeconds": 7,
        "backgroundSeconds": 2,
        "flushSeconds": 1,
        "marginSeconds": 6,
    }
    flags = [arg for key, value in parts.items() for arg in ("--set", f"shutdown.{key}={value}")]
    for deployment in service_deployments(render("default", *flags)).values():
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 23


def test_every_service_has_a_headless_service(rendered: list[dict[str, Any]]) -> None:
    services = {doc["metadata"]["name"]: doc["spec"] for doc in of_kind(rendered, "Service")}
    for name in SERVICES:
        headless = services[f"shop-{name}-headless"]
        assert headless["clusterIP"] == "None"
        assert headless["publishNotReadyAddresses"] is False
        for spec in (headless, services[f"shop-{name}"]):
            for port in spec["ports"]:
                # gRPC ports say so (meshes and gateways read it); the metrics port is HTTP.
                expected = "http" if port["name"] == "metrics" else "grpc"
                assert port["appProtocol"] == expected, port["name"]


def variables_the_code_reads() -> set[str]:
    names: set[str] = set()
    for path in CONFIG_SOURCES:
        names |= set(tools.READS.findall(path.read_text()))
    return names


def test_every_variable_the_code_reads_is_set(rendered: list[dict[str, Any]]) -> None:
    read = variables_the_code_reads()
    assert {"SHOP_LISTEN_ADDRESS", "SHOP_ORDER_LEASE_SECONDS", "OTEL_SDK_DISABLED"} <= read
    deployments = service_deployments(rendered)
    for name, deployment in deployments.items():
        env = env_of(deployment)
        own = f"services/{name}/"
        wanted = {
            var
            for path in CONFIG_SOURCES
            if "shop-grpc" in str(path) or own in str(path)
            for var in tools.READS.findall(path.read_text())
        } - set(NOT_SET_BY_DEFAULT)
        wanted |= {f"SHOP_{dep.upper()}_TARGET" for dep in CALL_GRAPH.get(name, ())}
        assert wanted <= set(env), f"{name} misses {sorted(wanted - set(env))}"
        assert env["SHOP_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        attributes = env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
        for attribute in ("k8s.pod.name", "k8s.namespace.name", "k8s.node.name"):
            assert f"{attribute}=$(" in attributes


def test_variables_left_unset_can_be_set() -> None:
    schema = json.loads((tools.CHART / "values.schema.json").read_text())
    settable = set(schema["properties"]["env"]["properties"])
    pattern = next(iter(schema["properties"]["env"]["patternProperties"]))
    for name in NOT_SET_BY_DEFAULT:
        assert name in settable or re.match(pattern, name), name
    docs = render("default", "--set", "env.SHOP_FAULTS=x=delay:1ms")
    for deployment in service_deployments(docs).values():
        assert env_of(deployment)["SHOP_FAULTS"]["value"] == "x=delay:1ms"


def dialed_hosts(docs: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Service -> every host name a client's target names, plus the name it verifies."""
    hosts: dict[str, set[str]] = {name: {name} for name in SERVICES}
    containers = [c for _, spec in pod_specs(docs) for c in spec["containers"]]
    for container in containers:
        for item in container.get("env", []):
            match = re.fullmatch(r"SHOP_([A-Z]+)_TARGET", item["name"])
            if match:
                host = re.sub(r"^dns:///", "", item["value"]).rsplit(":", 1)[0]
                hosts[match.group(1).lower()].add(host)
    return hosts


def certificate_names(docs: list[dict[str, Any]]) -> dict[str, tuple[set[str], list[str]]]:
    """Identity -> (DNS names, URIs) the chart asks for, in whichever mode it renders."""
    names: dict[str, tuple[set[str], list[str]]] = {}
    for doc in of_kind(docs, "Certificate"):
        identity = doc["spec"].get("commonName", "")
        if not doc["spec"].get("isCA"):
            names[identity] = (set(doc["spec"].get("dnsNames", [])), doc["spec"]["uris"])
    for doc in of_kind(docs, "ConfigMap"):
        if "spec.json" in doc.get("data", {}):
            spec = json.loads(doc["data"]["spec.json"])
            for identity, wanted in spec.get("tls", {}).get("identities", {}).items():
                names[identity] = (set(wanted["dnsNames"]), [wanted["spiffeId"]])
    return names


@pytest.mark.parametrize("release", [tools.RELEASE, LONGEST_RELEASE])
@pytest.mark.parametrize("case", ["default", "cert-manager"])
def test_certificates_cover_every_dialed_name(case: str, release: str) -> None:
    docs = render(case, release=release)
    names = certificate_names(docs)
    assert set(names) == {*SERVICES, "client"}
    for identity, (_dns, uris) in names.items():
        assert uris == [f"spiffe://shop/ns/shop/sa/{identity}"]
    for service, hosts in dialed_hosts(docs).items():
        assert len(hosts) > 1, f"nothing dials {service}"
        assert hosts <= names[service][0], f"{service}: {sorted(hosts - names[service][0])}"
        for host in names[service][0]:
            assert all(len(label) <= 63 for label in host.split(".")), host
        for service_object in of_kind(docs, "Service"):
            if service_object["metadata"]["labels"]["app.kubernetes.io/component"] == service:
                assert f"{service_object['metadata']['name']}.shop.svc" in names[service][0]


def allowed_peers(rule_peers: list[dict[str, Any]]) -> set[str]:
    found = set()
    for peer in rule_peers:
        labels = peer.get("podSelector", {}).get("matchLabels", {})
        if "app.kubernetes.io/component" in labels and "namespaceSelector" not in peer:
            found.add(labels["app.kubernetes.io/component"])
    return found


@pytest.mark.parametrize("case", list(tools.CASES))
def test_network_policies_allow_exactly_the_call_graph(case: str) -> None:
    policies = {
        doc["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]: doc["spec"]
        for doc in of_kind(render(case), "NetworkPolicy")
    }
    callers = {name: {c for c, deps in CALL_GRAPH.items() if name in deps} for name in SERVICES}
    for name in SERVICES:
        policy = policies[name]
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        grpc_in = [
            r for r in policy["ingress"] if {"port": "grpc", "protocol": "TCP"} in r["ports"]
        ]
        assert len(grpc_in) == 1
        assert allowed_peers(grpc_in[0]["from"]) == callers[name] | {"client"}, name
        others = [r for r in policy["ingress"] if r not in grpc_in]
        probe_in = {"ports": [{"port": "grpc-probe", "protocol": "TCP"}]}
        metrics_in = {"ports": [{"port": "metrics", "protocol": "TCP"}]}
        if scrapers := section_of(case, "metrics")["scrapeFrom"]:
            metrics_in["from"] = scrapers
        assert others == [probe_in, metrics_in], name
        service_out = {
            peer
            for rule in policy["egress"]
            for peer in allowed_peers(rule.get("to", []))
            if peer in SERVICES
        }
        assert service_out == CALL_GRAPH.get(name, set()), name
        egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
        assert {53, 5432} <= egress_ports, name


def test_a_services_extra_ingress_peers_reach_its_grpc_port_and_no_other_service() -> None:
    first, *others = SERVICES
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}
    docs = render(
        "default",
        "--set-json",
        f"services.{first}.extraIngressFrom={json.dumps([peer])}",
    )
    grpc_from = {
        doc["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]: rule["from"]
        for doc in of_kind(docs, "NetworkPolicy")
        for rule in doc["spec"]["ingress"]
        if {"port": "grpc", "protocol": "TCP"} in rule["ports"]
    }
    assert peer in grpc_from[first]
    assert all(peer not in grpc_from[name] for name in others)


def hook_of(doc: dict[str, Any]) -> str:
    """The Helm hook an object belongs to ("" for the release's own objects)."""
    return str(doc["metadata"].get("annotations", {}).get("helm.sh/hook", ""))


def test_hook_objects_are_deleted_once_their_hook_has_run(rendered: list[dict[str, Any]]) -> None:
    hooks = [doc for doc in rendered if hook_of(doc)]
    assert hooks
    for doc in hooks:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        policy = set(doc["metadata"]["annotations"]["helm.sh/hook-delete-policy"].split(","))
        # Hook objects are not part of the release: whatever Helm does not delete outlives it.
        assert {"before-hook-creation", "hook-succeeded"} <= policy, where
        if hook_of(doc) == "test":
            assert "hook-failed" in policy, where


def test_api_access_exists_only_while_the_secrets_hook_runs(rendered: list[dict[str, Any]]) -> None:
    for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
        for doc in of_kind(rendered, kind):
            assert hook_of(doc) == "pre-install,pre-upgrade", f"{kind}/{doc['metadata']['name']}"
    for where, spec in pod_specs(rendered):
        if spec.get("automountServiceAccountToken") is not False:
            account = ("ServiceAccount", spec["serviceAccountName"])
            owners = [d for d in rendered if (d["kind"], d["metadata"]["name"]) == account]
            assert where.startswith("Job/") and all(hook_of(d) for d in owners), where


def uninstall_selector() -> dict[str, str]:
    """The labels README's command selects to remove what `helm uninstall` keeps."""
    command = re.search(
        r"kubectl -n shop delete pvc,secret -l (\S+)", (ROOT / "README.md").read_text()
    )
    assert command, "README does not say how to remove what uninstall keeps"
    return dict(pair.split("=", 1) for pair in command.group(1).split(","))


@pytest.mark.parametrize("case", ["default", "cert-manager"])
def test_what_uninstall_keeps_is_kept_and_the_documented_command_finds_it(case: str) -> None:
    docs = render(case)
    selector = uninstall_selector().items()
    (database,) = of_kind(docs, "StatefulSet")
    assert database["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    for claim in database["spec"]["volumeClaimTemplates"]:
        assert selector <= claim["metadata"]["labels"].items()
    made_by_the_job = [
        json.loads(doc["data"]["spec.json"])["labels"]
        for doc in of_kind(docs, "ConfigMap")
        if "spec.json" in doc.get("data", {})
    ]
    made_by_cert_manager = [
        doc["spec"]["secretTemplate"]["labels"] for doc in of_kind(docs, "Certificate")
    ]
    assert made_by_the_job and (case != "cert-manager" or made_by_cert_manager)
    for labels in [*made_by_the_job, *made_by_cert_manager]:
        assert selector <= labels.items()
    # Nothing the release still owns matches: the command removes only what uninstall left.
    assert not [d for d in docs if d["kind"] in {"Secret", "PersistentVolumeClaim"}]


def dns_peers(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Service -> the peers of its egress rule for DNS (port 53)."""
    return {
        doc["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]: rule["to"]
        for doc in of_kind(docs, "NetworkPolicy")
        for rule in doc["spec"]["egress"]
        if {"port": 53, "protocol": "UDP"} in rule.get("ports", [])
    }


def test_dns_egress_can_admit_a_node_local_resolver() -> None:
    cache = {"cidr": "169.254.20.10/32"}
    flags = ["--set-json", f"networkPolicy.dns.ipBlocks=[{json.dumps(cache)}]"]
    defaults, with_cache = dns_peers(render()), dns_peers(render("default", *flags))
    assert set(with_cache) == set(defaults) >= set(SERVICES)
    for service, peers in with_cache.items():
        # The cluster DNS pods as before, and the node-local address beside them.
        assert peers == [*defaults[service], {"ipBlock": cache}], service
        assert not any("ipBlock" in peer for peer in defaults[service])


def test_a_pre_stop_sleep_the_schema_allows_is_one_every_supported_api_server_accepts() -> None:
    chart = yaml.safe_load((tools.CHART / "Chart.yaml").read_text())
    oldest = tuple(int(n) for n in re.findall(r"\d+", chart["kubeVersion"])[:2])
    schema = json.loads((tools.CHART / "values.schema.json").read_text())
    lowest = schema["properties"]["shutdown"]["properties"]["preStopSleepSeconds"]["minimum"]
    assert oldest < (1, 33) and lowest == 0  # a sleep of 0 is accepted from 1.33 only
    docs = render("default", "--set", f"shutdown.preStopSleepSeconds={lowest}")
    for name, deployment in service_deployments(docs).items():
        spec = deployment["spec"]["template"]["spec"]
        assert "lifecycle" not in spec["containers"][0], name
        budget = section_of("default", "shutdown")
        assert (
            spec["terminationGracePeriodSeconds"]
            == sum(budget.values()) - budget["preStopSleepSeconds"]
        )
    for deployment in service_deployments(
        render("default", "--set", "shutdown.preStopSleepSeconds=1")
    ).values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 1}}


def helm_test_script(docs: list[dict[str, Any]]) -> str:
    (pod,) = of_kind(docs, "Pod")
    assert hook_of(pod) == "test"
    command = pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["sh", "-ec"]
    return str(command[2])


async def run_checks(script: str, address: str) -> asyncio.subprocess.Process:
    """The helm test pod's own waiting and check function, run here against `address`."""
    prelude, calls = script.split("\ncheck -", 1)
    assert "shop demo" in calls  # the order is placed only after every check passed
    # A release's test signs up a customer of its own, whose password nobody knows: never
    # the shared demo customer, whose password the README shows.
    assert "shop demo --fresh-customer" in calls
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the real `shop`
    return await asyncio.create_subprocess_exec(
        "sh",
        "-ec",
        f"{prelude}\ncheck -addr={address}\n",
        env={**os.environ, "PATH": path},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_the_helm_test_pod_waits_for_a_service_still_starting() -> None:
    probe = ProbeServer(f"127.0.0.1:{free_port()}")
    await probe.start()  # up, but NOT_SERVING: its database is not there yet
    checks = await run_checks(helm_test_script(render()), probe.address)
    assert checks.stdout is not None
    try:
        async with asyncio.timeout(30):
            seen = b""
            while b"NOT_SERVING" not in seen:
                seen += await checks.stdout.readline()
            await probe.health.set("", health_pb2.HealthCheckResponse.SERVING)
            output = seen + await checks.stdout.read()
            assert await checks.wait() == 0, output.decode()
    finally:
        await probe.stop(0)
    assert output.decode().rstrip().endswith("status: SERVING")


async def test_the_helm_test_pod_gives_up_after_its_wait() -> None:
    script = helm_test_script(render("default", "--set", "tests.waitSeconds=1"))
    probe = ProbeServer(f"127.0.0.1:{free_port()}")
    await probe.start()  # and never SERVING
    try:
        began = time.monotonic()
        checks = await run_checks(script, probe.address)
        output, _ = await asyncio.wait_for(checks.communicate(), 30)
    finally:
        await probe.stop(0)
    assert checks.returncode == 1
    assert f"not SERVING within 1 s: shop probe -addr={probe.address}" in output.decode()
    assert time.monotonic() - began < 10


def test_dev_sends_traces_to_jaeger_and_production_does_not() -> None:
    dev = render("dev")
    production = render("production")
    assert any(d["metadata"]["name"] == "shop-jaeger" for d in of_kind(dev, "Deployment"))
    assert not any(
        d["metadata"]["name"] == "shop-jaeger" for d in of_kind(production, "Deployment")
    )
    endpoint = env_of(service_deployments(dev)["order"])["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"]
    assert endpoint == "http://shop-jaeger.shop.svc.cluster.local:4317"
    assert of_kind(production, "HorizontalPodAutoscaler")
    assert not of_kind(production, "StatefulSet")


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--set", "services.order.replica=3"], "replica"),
        (["--set", "env.SHOP_LOG_LEVLE=debug"], "SHOP_LOG_LEVLE"),
        (["--set", "tls.mode=genca"], "tls"),
        (["--set", "database.mode=external"], "database.externalSecret"),
        (["--set", "services.order.dependencies={user,shipping}"], "shipping"),
        (["--set", "jaeger.enabled=true", "--set", "tracing.endpoint=http://x:4317"], "either"),
    ],
)
def test_bad_values_fail_the_render(flags: list[str], says: str) -> None:
    with pytest.raises(SystemExit, match=re.escape(says)):
        tools.render("default", *flags)


def label_maps(doc: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Every set of labels an object carries or gives what it creates."""
    yield doc["metadata"].get("labels", {})
    spec = doc.get("spec", {})
    yield spec.get("selector", {}).get("matchLabels", {}) if isinstance(spec, dict) else {}
    yield spec.get("template", {}).get("metadata", {}).get("labels", {})
    for claim in spec.get("volumeClaimTemplates", []):
        yield claim["metadata"].get("labels", {})
    yield spec.get("secretTemplate", {}).get("labels", {})


def test_the_longest_release_name_is_one_helm_accepts() -> None:
    assert len(LONGEST_RELEASE) == 53
    assert len(render(release=LONGEST_RELEASE)) > 0
    with pytest.raises(SystemExit, match="length must not be longer than 53"):
        tools.render("default", release=LONGEST_RELEASE + "x")


@pytest.mark.parametrize("case", list(tools.CASES))
def test_every_name_and_label_fits_with_the_longest_release_name(case: str) -> None:
    docs = render(case, release=LONGEST_RELEASE)
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        where = f"{kind}/{name}"
        assert (kind, name) not in seen, f"{where} is rendered twice"
        seen.add((kind, name))
        assert len(name) <= 63 and DNS_LABEL.fullmatch(name), where
        if kind == "Service":
            assert DNS_1035_LABEL.fullmatch(name), where
        if kind == "StatefulSet":
            # Its pods' controller-revision-hash label is `<name>-<hash>`, a label value.
            assert len(name) + 1 + REVISION_HASH_LENGTH <= 63, where
        for labels in label_maps(doc):
            for key, value in labels.items():
                assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), f"{where}: {key}"
    kinds = {kind for kind, _ in seen}
    assert {"Deployment", "Service", "NetworkPolicy"} <= kinds


@pytest.mark.parametrize("case", ["default", "production", "autoscaling"])
def test_what_objects_refer_to_is_named_alike_with_the_longest_release_name(case: str) -> None:
    docs = render(case, release=LONGEST_RELEASE)
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    made_secrets = {doc["spec"]["secretName"] for doc in of_kind(docs, "Certificate")}
    for doc in of_kind(docs, "ConfigMap"):
        if "spec.json" in doc.get("data", {}):
            spec = json.loads(doc["data"]["spec.json"])
            made_secrets |= {
                w["secret"] for w in spec.get("tls", {}).get("identities", {}).values()
            }
            made_secrets |= {
                spec.get("tls", {}).get("caSecret"),
                spec.get("database", {}).get("secret"),
                *spec.get("tokens", {}).values(),
            }
    external = {ref["name"] for ref in production_external_secrets(case)}
    for where, spec in pod_specs(docs):
        if spec.get("serviceAccountName"):
            assert ("ServiceAccount", spec["serviceAccountName"]) in names, where
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in made_secrets, where
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names, where
        for container in spec["containers"]:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in made_secrets | external, f"{where}: {item['name']}"
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        assert ("Deployment", hpa["spec"]["scaleTargetRef"]["name"]) in names
    for sts in of_kind(docs, "StatefulSet"):
        assert ("Service", sts["spec"]["serviceName"]) in names
    for hosts in dialed_hosts(docs).values():
        for host in hosts - set(SERVICES):
            assert ("Service", host.split(".")[0]) in names, host


def production_external_secrets(case: str) -> list[dict[str, str]]:
    if case != "production":
        return []
    values = yaml.safe_load((tools.CHART / "ci/production-values.yaml").read_text())
    secret = values["database"]["externalSecret"]
    return [{"name": secret, "key": f"{name}-url"} for name in SERVICES]


def object_names(docs: list[dict[str, Any]]) -> set[str]:
    return {doc["metadata"]["name"] for doc in docs}


def test_long_release_names_that_begin_alike_name_different_objects() -> None:
    first = object_names(render(release=LONGEST_RELEASE[:-1] + "a"))
    second = object_names(render(release=LONGEST_RELEASE[:-1] + "b"))
    assert first and second and not first & second


def test_a_release_name_that_fits_is_every_name_s_prefix_unchanged() -> None:
    release = "shop-payments-platform-production-eu-west"  # 41 characters: the most that fits
    assert len(release) == 41
    names = object_names(render(release=release))
    assert {f"{release}-order", f"{release}-order-headless", f"{release}-postgresql"} <= names
    assert "a-b-order-headless" in object_names(render(release="a.b"))


@pytest.mark.parametrize(
    ("release", "flags", "says"),
    [
        ("2024-shop", [], "starts with a digit"),
        (
            LONGEST_RELEASE,
            ["--set", "services.notificationseuw.replicas=1"],
            '-notificationseuw-headless" has 67 characters, more than the 63',
        ),
    ],
)
def test_a_name_kubernetes_would_refuse_fails_the_render(
    release: str, flags: list[str], says: str
) -> None:
    with pytest.raises(SystemExit, match=re.escape(says)):
        tools.render("default", *flags, release=release)


# What the chart renders for a release that is already running.
#
# `helm template --dry-run=server` renders as `helm install` and `helm upgrade` do, answering
# the templates' `lookup` calls from the API server. Here that server is a small stand-in on
# loopback: discovery for the kinds the chart renders, and the Deployments of a running
# release, owned by it as Helm requires, with the replica counts a test gives them.
# Everything else is not found.


@dataclass
class Cluster:
    """The API server's state: which kinds it serves and the release's live Deployments."""

    kinds: set[tuple[str, str]] = field(default_factory=set)
    """(apiVersion, kind) pairs served by discovery."""
    replicas: dict[str, int] = field(default_factory=dict)
    """Live Deployment name -> spec.replicas."""

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            # What Helm checks before it takes over an object on upgrade.
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {
                    "meta.helm.sh/release-name": tools.RELEASE,
                    "meta.helm.sh/release-namespace": namespace,
                },
            },
            "spec": {"replicas": self.replicas[name]},
        }

    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        if path == "/version":
            return 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()}
        listing = re.fullmatch(r"/api/(v1)|/apis/([^/]+/[^/]+)", path)
        if listing:
            return 200, self._resources(listing.group(1) or listing.group(2))
        live = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)", path)
        if live and live.group(2) in self.replicas:
            return 200, self.deployment(live.group(1), live.group(2))
        return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}

    def _groups(self) -> list[dict[str, Any]]:
        versions = sorted({version for version, _ in self.kinds if "/" in version})
        return [
            {
                "name": version.split("/")[0],
                "versions": [{"groupVersion": version, "version": version.split("/")[1]}],
                "preferredVersion": {"groupVersion": version, "version": version.split("/")[1]},
            }
            for version in versions
        ]

    def _resources(self, group_version: str) -> dict[str, Any]:
        def plural(kind: str) -> str:
            lower = kind.lower()
            return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"

        resources = [
            {"name": plural(kind), "singularName": kind.lower(), "namespaced": True, "kind": kind}
            | {"verbs": ["get", "list", "create", "update", "patch", "delete"]}
            for version, kind in sorted(self.kinds)
            if version == group_version
        ]
        return {"kind": "APIResourceList", "groupVersion": group_version, "resources": resources}


class ApiServer(ThreadingHTTPServer):
    # Clients read discovery over many connections at once; the default backlog of 5 makes
    # the rest retry their connection a second later.
    request_queue_size = 64


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Cluster, Path]]:
    """A running stand-in API server and a kubeconfig that points at it."""
    state = Cluster()
    # Where helm keeps what discovery found: here, not in the home directory.
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "kube-cache"))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, body = state.answer(self.path.split("?")[0])
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a failing test shows helm's own error."""

    server = ApiServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": f"http://{server.server_address[0]}:{server.server_address[1]}"
                        },
                    }
                ],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    try:
        yield state, kubeconfig
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def replicas(docs: list[dict[str, Any]]) -> dict[str, int]:
    """Service -> the replicas its Deployment asks for."""
    return {
        doc["metadata"]["labels"]["app.kubernetes.io/component"]: doc["spec"].get("replicas")
        for doc in docs
        if doc["kind"] == "Deployment"
        and doc["metadata"]["labels"]["app.kubernetes.io/component"] in SERVICES
    }


def render_against(
    cluster: tuple[Cluster, Path], case: str, live: dict[str, int], *flags: str
) -> list[dict[str, Any]]:
    """The chart as an upgrade of a release whose service Deployments run `live` pods."""
    state, kubeconfig = cluster
    state.kinds = {(doc["apiVersion"], doc["kind"]) for doc in render(case)}
    state.replicas = {f"{tools.RELEASE}-{svc}": count for svc, count in live.items()}
    server = ("--dry-run=server", "--disable-openapi-validation", "--kubeconfig", str(kubeconfig))
    # helm checks every object it would create; unthrottled, that takes milliseconds here.
    server = (*server, "--qps", "1000", "--burst-limit", "1000")
    return render(case, *server, *flags)


def every(count: int) -> dict[str, int]:
    return dict.fromkeys(SERVICES, count)


def test_turning_autoscaling_on_keeps_the_pods_that_run(cluster: tuple[Cluster, Path]) -> None:
    # The defaults ran 2 pods per service; the upgrade turns autoscaling on (minReplicas 2).
    docs = render_against(cluster, "autoscaling", every(2))
    assert replicas(docs) == every(2)
    assert {
        doc["spec"]["minReplicas"] for doc in docs if doc["kind"] == "HorizontalPodAutoscaler"
    } == {2}
    # Scaled out by hand before autoscaling took over: those pods stay too.
    assert replicas(render_against(cluster, "autoscaling", every(4))) == every(4)


def test_an_upgrade_keeps_what_the_autoscaler_scaled_to_and_never_goes_below_its_minimum(
    cluster: tuple[Cluster, Path],
) -> None:
    # The production case's minimum is 3: order scaled out to 10, user was cut to 1 by hand.
    live = {**every(3), "order": 10, "user": 1}
    docs = render_against(cluster, "production", live)
    assert replicas(docs) == {**every(3), "order": 10, "user": 3}


def test_an_install_with_autoscaling_starts_at_its_minimum(cluster: tuple[Cluster, Path]) -> None:
    assert replicas(render_against(cluster, "production", {})) == every(3)
    minimum = ("--set", "serviceDefaults.autoscaling.minReplicas=4")
    assert replicas(render_against(cluster, "autoscaling", {}, *minimum)) == every(4)
    # `helm template` looks nothing up: minReplicas, or replicas when that is more.
    assert replicas(render("production")) == every(3)
    more = ("--set", "services.order.replicas=5")
    assert replicas(render("autoscaling", *more))["order"] == 5


def test_without_autoscaling_the_configured_count_is_rendered_whatever_runs(
    cluster: tuple[Cluster, Path],
) -> None:
    assert replicas(render_against(cluster, "default", every(5))) == every(2)


def test_rendered_manifests_are_current() -> None:
    assert tools.RENDERED.read_text() == tools.rendered_manifests()


def test_the_schema_names_the_variables_the_services_read_and_no_other() -> None:
    assert tools.SCHEMA.read_text() == tools.schema_with_service_variables()
    variables = json.loads(tools.SCHEMA.read_text())["$defs"]["env"]["properties"]
    assert "SHOP_ORDER_LEASE_SECONDS" in variables


def test_a_new_services_own_setting_is_written_into_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "services" / "freight" / "src" / "shop_freight" / "config.py"
    config.parent.mkdir(parents=True)
    config.write_text('def load(env):\n    return env.seconds("SHOP_FREIGHT_PICKUP_SECONDS", 60)\n')
    monkeypatch.setattr(tools, "ROOT", tmp_path)

    schema = json.loads(tools.schema_with_service_variables())

    variables = schema["$defs"]["env"]["properties"]
    assert "shop_freight" in variables["SHOP_FREIGHT_PICKUP_SECONDS"]["$comment"]
    # The runtime's variables are kept; the other services' (not in this tree) are not.
    assert "SHOP_LOG_LEVEL" in variables
    assert "SHOP_ORDER_LEASE_SECONDS" not in variables


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ("services.order.replicass=2", "/services/order"),
        ("serviceDefaults.resources.limits.gpu=1", "/serviceDefaults/resources/limits"),
        ("services.user.resources.requests.gpu=1", "/services/user/resources/requests"),
        ("services.inventory.env.SHOP_NOPE=1", "/services/inventory/env"),
    ],
)
def test_the_schema_refuses_a_typo_wherever_its_shared_definitions_are_used(
    setting: str, where: str
) -> None:
    # A service's settings, resources and env are defined once ($defs) and used for every
    # service and for serviceDefaults: a typo is caught in each place alike.
    with pytest.raises(SystemExit) as caught:
        tools.render("default", "--set", setting)
    assert where in str(caught.value)
    assert "not allowed" in str(caught.value)


@pytest.mark.parametrize("name", ["order_v2", "order-v2", "Order"])
def test_a_service_name_its_package_variables_or_kubernetes_names_cannot_hold_is_refused(
    name: str,
) -> None:
    # shop_<name> allows no "-", SHOP_<NAME>_TARGET no "-" either, Kubernetes names no "_".
    with pytest.raises(SystemExit) as caught:
        tools.render("default", "--set", f"services.{name}.localPort=50099")
    assert f"invalid propertyName '{name}'" in str(caught.value)


def bundled_database_script(*extra: str) -> str:
    [config] = [
        doc
        for doc in of_kind(render("default", *extra), "ConfigMap")
        if "create-databases.sh" in doc.get("data", {})
    ]
    return str(config["data"]["create-databases.sh"])


def test_the_bundled_database_is_made_ready_for_every_service_at_every_start() -> None:
    [postgresql] = [d for d in render("default") if d["kind"] == "StatefulSet"]
    container = postgresql["spec"]["template"]["spec"]["containers"][0]
    started = " ".join(container["lifecycle"]["postStart"]["exec"]["command"])
    assert "sh /docker-entrypoint-initdb.d/create-databases.sh" in started
    script = bundled_database_script()
    for svc in SERVICES:
        assert f'ensure shop_{svc} "$SHOP_{svc.upper()}_PASSWORD"' in script


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_the_bundled_database_script_makes_a_new_service_its_own_and_repeats_safely(
    tmp_path: Path,
) -> None:
    # Run as the postStart hook runs it, against a real server: twice, as at the next start.
    server = urlsplit(postgres_server_url())
    name = f"t{uuid.uuid4().hex[:12]}"
    database = f"shop_{name}"
    others_off = [arg for svc in SERVICES for arg in ("--set", f"services.{svc}.enabled=false")]
    script = tmp_path / "create-databases.sh"
    script.write_text(
        bundled_database_script(*others_off, "--set", f"services.{name}.localPort=50099")
    )
    env = {
        **os.environ,
        "PGHOST": server.hostname or "127.0.0.1",
        "PGPORT": str(server.port or 5432),
        f"SHOP_{name.upper()}_PASSWORD": "letters0and0digits",
    }

    def psql(sql: str) -> str:
        done = subprocess.run(
            ["psql", "-U", "postgres", "-d", "postgres", "-tAc", sql],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return done.stdout.strip()

    try:
        for _ in range(2):
            ran = subprocess.run(
                ["sh", str(script)], env=env, capture_output=True, text=True, timeout=60
            )
            assert ran.returncode == 0, ran.stderr
        owner = psql(f"SELECT datdba::regrole FROM pg_database WHERE datname = '{database}'")
        assert owner == database
        assert psql(f"SELECT has_database_privilege('public', '{database}', 'CONNECT')") == "f"
    finally:
        psql(f"DROP DATABASE IF EXISTS {database}")
        psql(f"DROP ROLE IF EXISTS {database}")


def test_an_external_database_url_is_found_by_convention_or_where_a_service_says() -> None:
    docs = render(
        "default",
        "--set",
        "database.mode=external",
        "--set",
        "database.externalSecret=dbs",
        "--set",
        "database.externalSecrets.user.name=user-db",
        "--set",
        "database.externalSecrets.user.key=url",
    )
    for name, deployment in service_deployments(docs).items():
        ref = env_of(deployment)["SHOP_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        wanted = (
            {"name": "user-db", "key": "url"}
            if name == "user"
            else {
                "name": "dbs",
                "key": f"{name}-url",
            }
        )
        assert ref == wanted, name


# -- metrics: the port, the scrape, the alert rules and the dashboard ---------------------------


def test_every_service_serves_metrics_where_prometheus_looks(
    rendered: list[dict[str, Any]],
) -> None:
    port = CHART_VALUES["ports"]["metrics"]
    for name, deployment in service_deployments(rendered).items():
        template = deployment["spec"]["template"]
        container = template["spec"]["containers"][0]
        assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
        assert env_of(deployment)["SHOP_METRICS_ADDRESS"]["value"] == f"[::]:{port}", name
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"
    for service in of_kind(rendered, "Service"):
        if service["metadata"]["labels"]["app.kubernetes.io/component"] not in SERVICES:
            continue
        names = {p["name"] for p in service["spec"]["ports"]}
        # The headless Service leaves it out, so a ServiceMonitor finds each pod once.
        assert ("metrics" in names) is (service["spec"].get("clusterIP") != "None")


def test_scrape_objects_and_alerts_are_rendered_only_when_asked() -> None:
    default = render("default")
    assert not of_kind(default, "ServiceMonitor") and not of_kind(default, "PrometheusRule")
    production = render("production")
    [monitor] = of_kind(production, "ServiceMonitor")
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/component"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchExpressions"][0]["values"] == sorted(SERVICES)
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert len(of_kind(production, "PrometheusRule")) == 1
    dashboards = [d for d in of_kind(default, "ConfigMap") if "shop.json" in d.get("data", {})]
    assert [d["metadata"]["labels"]["grafana_dashboard"] for d in dashboards] == ["1"]


def test_asking_for_scrape_objects_without_the_operator_fails_the_render() -> None:
    with pytest.raises(SystemExit, match=r"monitoring\.coreos\.com/v1"):
        tools.render("default", "--set", "metrics.serviceMonitor.enabled=true")


def test_metrics_off_leaves_no_port_open_and_nothing_to_scrape() -> None:
    docs = render("default", "--set", "metrics.enabled=false")
    for name, deployment in service_deployments(docs).items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert "metrics" not in {p["name"] for p in container["ports"]}, name
        assert env_of(deployment)["SHOP_METRICS_ADDRESS"]["value"] == "off"
        assert "annotations" not in deployment["spec"]["template"]["metadata"]
    assert not [d for d in of_kind(docs, "ConfigMap") if "shop.json" in d.get("data", {})]
    for policy in of_kind(docs, "NetworkPolicy"):
        ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
        assert "metrics" not in ports


def test_the_latency_slo_threshold_is_one_of_the_histograms_buckets() -> None:
    from shop_grpc.metrics.rpc import BUCKETS

    schema = json.loads((tools.CHART / "values.schema.json").read_text())
    allowed = schema["properties"]["metrics"]["properties"]["slo"]["properties"]["latencySeconds"]
    assert sorted(float(v) for v in allowed["enum"]) == sorted(BUCKETS)
    assert float(CHART_VALUES["metrics"]["slo"]["latencySeconds"]) in BUCKETS


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed: `python3 tasks.py metrics-tools`"
)


def alert_rules() -> dict[str, Any]:
    """The PrometheusRule's spec as the production values render it (namespace shop)."""
    [rule] = of_kind(render("production"), "PrometheusRule")
    return dict(rule["spec"])


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True)


@needs_promtool
def test_the_alert_rules_are_valid_and_fire_when_their_unit_tests_say(tmp_path: Path) -> None:
    spec = alert_rules()
    (tmp_path / "as-rendered.yaml").write_text(yaml.safe_dump(spec))
    checked = promtool("check", "rules", tmp_path / "as-rendered.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The unit tests compare labels only; the annotations' templates were parsed just above.
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    cases = yaml.safe_load((ROOT / "tests/deploy/alerts_test.yaml").read_text())
    (tmp_path / "alerts_test.yaml").write_text(yaml.safe_dump(with_the_other_services_up(cases)))
    tested = promtool("test", "rules", tmp_path / "alerts_test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def with_the_other_services_up(cases: dict[str, Any]) -> dict[str, Any]:
    """alerts_test.yaml's cases with, in each that checks for services not scraped at all, every
    service of the chart the case does not name scraped without trouble: a case names only the
    services it is about, so a new service needs no line there."""
    for case in cases["tests"]:
        checks = case.get("alert_rule_test", [])
        absent = [check for check in checks if check["alertname"] == "ShopMetricsAbsent"]
        if not absent:
            continue
        expected = {alert["exp_labels"]["job"] for check in absent for alert in check["exp_alerts"]}
        series = " ".join(s["series"] for s in case["input_series"])
        named = set(re.findall(r'up\{namespace="shop",job="([a-z0-9]+)"', series))
        for number, svc in enumerate(sorted(set(SERVICES) - named - expected), start=1):
            case["input_series"].append(
                {
                    "series": f'up{{namespace="shop",job="{svc}",instance="10.9.0.{number}:9090"}}',
                    "values": "1x60",
                }
            )
    return cases


def dashboard() -> dict[str, Any]:
    return dict(json.loads((tools.CHART / "files/dashboard.json").read_text()))


def dashboard_queries() -> list[str]:
    return [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])
    ]


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": "shop", "$job": "order"}
PROMQL_WORDS = {
    "sum", "max", "min", "rate", "increase", "histogram_quantile", "absent", "by", "and",
    "or", "on", "without", "le", "humanizePercentage",
}  # fmt: skip


def metric_names(expression: str) -> set[str]:
    """The series names an expression selects (label matchers, ranges, groupings removed)."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|by \([^)]*\)", " ", expression)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare))
    return {w for w in words if w not in PROMQL_WORDS and ":" not in w}


def exported_sample_names() -> set[str]:
    """Every sample name the services' processes expose: the runtime's families and each
    installed service's own (its service_layer.metrics), the client library's process ones."""
    import importlib

    from prometheus_client import REGISTRY

    import shop_grpc.metrics.database
    import shop_grpc.metrics.rpc  # noqa: F401

    for name in registry.names():
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"shop_{name}.service_layer.metrics")
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in suffixes.get(family.type, [""])
    }


def test_every_metric_the_dashboard_and_the_alerts_use_is_one_the_services_export() -> None:
    rules = [rule["expr"] for group in alert_rules()["groups"] for rule in group["rules"]]
    used = set().union(*(metric_names(e) for e in [*rules, *dashboard_queries()]))
    assert used - exported_sample_names() == {"up"}  # `up` is Prometheus's own, per target
    assert {"grpc_server_handled_total", "shop_orders_finished_total"} <= used


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    queries = dashboard_queries()
    for variable, value in GRAFANA_VARIABLES.items():
        queries = [q.replace(variable, value) for q in queries]
    rules = [{"record": f"dashboard:query:{i}", "expr": q} for i, q in enumerate(queries)]
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    checked = promtool("check", "rules", tmp_path / "queries.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(queries) >= 15


def test_only_the_services_that_sign_tokens_mount_the_signing_keys(
    rendered: list[dict[str, Any]],
) -> None:
    for name, deployment in service_deployments(rendered).items():
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        secret = volumes["token-keys"]["secret"]["secretName"]
        spec = registry.spec(name)
        assert spec is not None
        wanted = "token-signing" if spec.signs_tokens else "token-verifying"
        assert secret.endswith(wanted), f"{name} mounts {secret}"
        assert env_of(deployment)["SHOP_TOKEN_KEYS_DIR"]["value"] == "/etc/shop/token-keys"
