"""Rendering the kustomize overlays and validating each object offline.

Core kinds are validated with the Kubernetes JSON schemas that ship in the `kubernetes-validate` package;
custom resources (KEDA, Gateway API, Strimzi) with the `openAPIV3Schema` of their CRDs, which
scripts/ops-tools.sh fetched into .stack/cache/crds from package registries. Nothing here touches the
network: a missing tool or CRD is an install problem and fails the tests with the command that fixes it.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
CACHE = ROOT / ".stack" / "cache"
KUSTOMIZE = CACHE / "bin" / "kustomize"
CRD_DIR = CACHE / "crds"
KUBERNETES_VERSIONS = ("1.31", "1.37")
"""The oldest Kubernetes we support (native sidecar-era probes, preStop `sleep`) and the newest schemas."""

FIX = "run scripts/ops-tools.sh (scripts/install.sh runs it)"

Obj = dict[str, Any]


class ToolMissing(AssertionError):
    """The offline tools are not installed; the message says how to install them."""


@cache
def render(overlay: str) -> tuple[Obj, ...]:
    """`kustomize build` of one overlay, as parsed objects."""
    if not KUSTOMIZE.exists():
        raise ToolMissing(f"kustomize not found at {KUSTOMIZE}: {FIX}")
    out = subprocess.run(
        [str(KUSTOMIZE), "build", str(K8S / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


@dataclass(frozen=True)
class Rendered:
    """One rendered overlay with lookups by kind and name."""

    overlay: str
    objects: tuple[Obj, ...]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str) -> Obj:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.overlay}: expected one {kind} {name!r}, found {len(found)}"
        return found[0]

    def config_map(self, name: str) -> dict[str, str]:
        return dict(self.one("ConfigMap", name).get("data", {}))


def rendered(overlay: str) -> Rendered:
    return Rendered(overlay, render(overlay))


# --- schemas ----------------------------------------------------------------------------------------------


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI v3.0 structural schema → JSON Schema, made strict: unknown fields are errors.

    The API server silently prunes unknown fields of a custom resource; for a manifest in a repository that
    is a typo, so objects that list their properties get `additionalProperties: false` unless the CRD says
    to preserve unknown fields.
    """
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_schemas() -> dict[tuple[str, str], Obj]:
    """(apiVersion, kind) → JSON schema, for every served version of every CRD in the cache."""
    files = sorted(CRD_DIR.glob("*.yaml"))
    if not files:
        raise ToolMissing(f"no CRDs in {CRD_DIR}: {FIX}")
    schemas: dict[tuple[str, str], Obj] = {}
    for path in files:
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = _openapi_to_jsonschema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                # metadata is the API server's own ObjectMeta; the CRD leaves it open.
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                schema["properties"].setdefault("apiVersion", {"type": "string"})
                schema["properties"].setdefault("kind", {"type": "string"})
                schema["required"] = sorted({*schema.get("required", ()), "apiVersion", "kind", "metadata"})
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def validation_errors(obj: Obj) -> Iterator[str]:
    """Every schema problem of one object (empty when it is valid)."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    name = f"{key[1]} {obj.get('metadata', {}).get('name')!r} ({key[0]})"
    custom = crd_schemas()
    if key in custom:
        validator = jsonschema.Draft7Validator(custom[key])
        for error in validator.iter_errors(obj):
            path = "/".join(str(p) for p in error.absolute_path)
            yield f"{name}: {path}: {error.message}"
        return
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            yield f"{name}: no schema in kubernetes-validate {version} nor among the CRDs {sorted(custom)}"
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(p) for p in error.absolute_path)
            yield f"{name}: Kubernetes {version}: {path}: {error.message}"
