"""Every overlay renders, every object validates against its schema, and the manifests say what the code
reads: images, ports, probe paths, env vars, topics, consumer groups and partition-bound replica counts."""

from __future__ import annotations

import copy
import importlib
import os
import re
from typing import Any
from unittest import mock

import opentelemetry.sdk.environment_variables as otel_sdk_env
import pytest
from fastapi import FastAPI

from shared.http import install_common_routes
from shared.settings import InfraSettings
from shared.topics import CALL_REQUEST_PARTITIONS, WORKSPACE_PARTITIONS, Topic
from tests.unit.deploy.manifests import OVERLAYS, ROOT, Obj, Rendered, rendered, validation_errors

pytestmark = pytest.mark.unit

SERVICES = ("ingest", "status", "dispatcher", "dialer")
PUBLIC = ("ingest", "status")
WEB = "web"
"""The static dashboard's nginx (deploy/docker/Dockerfile.web): no Python settings, same pod hardening."""


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> Rendered:
    return rendered(request.param)


def parse_kafka_version(text: str) -> tuple[int, ...]:
    """ "4.0.0" → (4, 0, 0), the way KEDA's Kafka client (sarama) reads its `version` metadata."""
    parts = tuple(int(p) for p in text.split("."))
    assert 3 <= len(parts) <= 4, text
    return parts


def container(r: Rendered, service: str) -> Obj:
    containers = r.one("Deployment", service)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{service}: one container per pod"
    return containers[0]


def effective_env(r: Rendered, c: Obj) -> dict[str, str]:
    """The env a container starts with: envFrom ConfigMaps, then env (secrets and field refs stand in)."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        assert "configMapRef" in source, f"only ConfigMaps in envFrom, got {source}"
        env.update(r.config_map(source["configMapRef"]["name"]))
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var.get("valueFrom", {}):
            env[var["name"]] = "mongodb://mongo.example:27017/"
        else:
            env[var["name"]] = "pod-name-0"
    return env


def service_settings_class(service: str) -> Any:
    return importlib.import_module(f"{service}.config").Settings


def settings_from(service: str, env: dict[str, str]) -> Any:
    """The service's own Settings built from exactly this env, as `bootstrap` does in the pod."""
    with mock.patch.dict(os.environ, env, clear=True):
        return service_settings_class(service)()


def test_overlays_exist() -> None:
    assert set(OVERLAYS) >= {"dev", "prod"}


def test_every_object_validates_against_its_schema(overlay: Rendered) -> None:
    problems = [p for obj in overlay.objects for p in validation_errors(obj)]
    assert not problems, "\n".join(problems)


def test_validation_is_not_vacuous() -> None:
    """A typo in a core kind and in each custom resource kind is caught."""
    r = rendered("prod")
    broken = []
    deployment = copy.deepcopy(r.one("Deployment", "dialer"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpget"] = {}
    broken.append(deployment)
    scaled = copy.deepcopy(r.one("ScaledObject", "dialer"))
    scaled["spec"]["maxReplicas"] = 3
    broken.append(scaled)
    route = copy.deepcopy(r.one("HTTPRoute", "batchcalls-api"))
    route["spec"]["rules"][0]["matches"][0]["method"] = "FETCH"
    broken.append(route)
    topic = copy.deepcopy(r.of_kind("KafkaTopic")[0])
    topic["spec"]["partitions"] = "eight"
    broken.append(topic)
    for obj in broken:
        assert list(validation_errors(obj)), f"{obj['kind']} with a typo passed validation"


def test_each_service_has_deployment_service_pdb_and_network_policy(overlay: Rendered) -> None:
    policies = overlay.of_kind("NetworkPolicy")
    for service in (*SERVICES, WEB):
        pod_labels = overlay.one("Deployment", service)["spec"]["template"]["metadata"]["labels"]
        svc = overlay.one("Service", service)
        assert all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
        pdb = overlay.one("PodDisruptionBudget", service)
        assert all(pod_labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items())
        assert any(_selects(p["spec"]["podSelector"], pod_labels) for p in policies), service
    default_deny = overlay.one("NetworkPolicy", "batchcalls-default-deny")["spec"]
    assert set(default_deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in default_deny and "egress" not in default_deny


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def test_images_name_their_service(overlay: Rendered) -> None:
    for service in (*SERVICES, WEB):
        image = container(overlay, service)["image"]
        name, _, tag = image.rpartition(":")
        assert name.rsplit("/", 1)[-1] in (service, f"batchcalls-{service}"), image
        assert tag and tag != "latest", f"{service}: pin an image tag, got {image}"


def test_pods_run_non_root_read_only_without_capabilities(overlay: Rendered) -> None:
    for service in (*SERVICES, WEB):
        pod = overlay.one("Deployment", service)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        c = container(overlay, service)
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert "add" not in sc["capabilities"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{service}: {kind}"
        assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]), f"{service}: writable /tmp"


def test_env_vars_are_ones_the_service_reads(overlay: Rendered) -> None:
    infra = {f"BC_{f}".upper() for f in InfraSettings.model_fields}
    otel = {n for n in dir(otel_sdk_env) if n.startswith("OTEL_")}
    for service in SERVICES:
        settings_class = service_settings_class(service)
        prefix = settings_class.model_config["env_prefix"]
        assert prefix == f"{service.upper()}_"
        own = {f"{prefix}{f}".upper() for f in settings_class.model_fields if f != "infra"}
        unknown = set(effective_env(overlay, container(overlay, service))) - infra - own - otel
        assert not unknown, f"{service}: env vars no setting reads: {sorted(unknown)}"


def test_ports_and_probes_match_the_service(overlay: Rendered) -> None:
    app = FastAPI()
    install_common_routes(app, "probe", [])
    served = {getattr(route, "path", None) for route in app.routes}
    for service in SERVICES:
        c = container(overlay, service)
        settings = settings_from(service, effective_env(overlay, c))
        assert settings.http_host == "0.0.0.0", f"{service} must listen beyond loopback in a pod"
        (port,) = (p for p in c["ports"] if p["name"] == "http")
        assert port["containerPort"] == settings.http_port
        probes = {kind: c[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
        assert probes["livenessProbe"]["path"] == "/healthz"
        assert probes["startupProbe"]["path"] == "/healthz"
        assert probes["readinessProbe"]["path"] == "/readyz"
        for probe in probes.values():
            assert probe["port"] in ("http", settings.http_port)
            assert probe["path"] in served
        svc_port = overlay.one("Service", service)["spec"]["ports"][0]
        assert svc_port["targetPort"] in ("http", settings.http_port)
        assert svc_port["port"] == settings.http_port
        annotations = overlay.one("Deployment", service)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(settings.http_port)
        assert annotations["prometheus.io/path"] in served


def test_infra_settings_parse_in_every_service(overlay: Rendered) -> None:
    for service in SERVICES:
        settings = settings_from(service, effective_env(overlay, container(overlay, service)))
        assert settings.infra.mongo_url.startswith("mongodb")
        assert settings.infra.topic_prefix == "bc."


def test_kafka_topics_match_shared_topics(overlay: Rendered) -> None:
    env = overlay.config_map(_infra_map_name(overlay))
    prefix = env["BC_TOPIC_PREFIX"]
    replication = int(env["BC_TOPIC_REPLICATION"])
    declared = {t["spec"]["topicName"]: t["spec"] for t in overlay.of_kind("KafkaTopic")}
    assert set(declared) == {t.name_with(prefix) for t in Topic}
    for topic in Topic:
        spec = declared[topic.name_with(prefix)]
        assert spec["partitions"] == topic.partitions, topic
        assert spec["replicas"] == replication, f"{topic}: KafkaTopic replicas vs BC_TOPIC_REPLICATION"
        assert 1 <= int(spec["config"]["min.insync.replicas"]) <= max(1, spec["replicas"] - 1)
    clusters = {t["metadata"]["labels"]["strimzi.io/cluster"] for t in overlay.of_kind("KafkaTopic")}
    assert len(clusters) == 1


def _infra_map_name(r: Rendered) -> str:
    (name,) = (
        cm["metadata"]["name"]
        for cm in r.of_kind("ConfigMap")
        if cm["metadata"]["name"].startswith("batchcalls-infra")
    )
    return str(name)


def test_dialers_scale_on_call_request_lag(overlay: Rendered) -> None:
    (scaled,) = overlay.of_kind("ScaledObject")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "dialer"
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= CALL_REQUEST_PARTITIONS
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    env = effective_env(overlay, container(overlay, "dialer"))
    assert meta["topic"] == Topic.CALL_REQUESTS.name_with(env["BC_TOPIC_PREFIX"])
    assert meta["bootstrapServersFromEnv"] in env
    settings = settings_from("dialer", env)
    group = (
        getattr(settings, "consumer_group", None)
        or importlib.import_module("dialer.bootstrap").CONSUMER_GROUP
    )
    assert meta["consumerGroup"] == group, "KEDA must watch the group the dialers consume as"
    # Kafka 4 dropped the request versions of brokers before 2.1 (KIP-896).
    assert parse_kafka_version(meta["version"]) >= (2, 1, 0)
    assert int(meta["lagThreshold"]) >= 1
    assert not [
        h
        for h in overlay.of_kind("HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["name"] == "dialer"
    ]


def test_dialer_grace_period_covers_its_drain(overlay: Rendered) -> None:
    env = effective_env(overlay, container(overlay, "dialer"))
    settings = settings_from("dialer", env)
    grace = overlay.one("Deployment", "dialer")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= settings.drain_seconds + 30


def test_api_services_autoscale_and_dispatcher_fits_partitions(overlay: Rendered) -> None:
    targets = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"] for h in overlay.of_kind("HorizontalPodAutoscaler")
    }
    assert set(targets) == set(PUBLIC)
    for spec in targets.values():
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
    for service in (*PUBLIC, "dialer"):
        assert "replicas" not in overlay.one("Deployment", service)["spec"], (
            f"{service}: the autoscaler owns it"
        )
    assert 1 <= overlay.one("Deployment", "dispatcher")["spec"]["replicas"] <= WORKSPACE_PARTITIONS


def test_route_backends_are_the_public_services(overlay: Rendered) -> None:
    ports = {s["metadata"]["name"]: s["spec"]["ports"][0]["port"] for s in overlay.of_kind("Service")}
    (route,) = overlay.of_kind("HTTPRoute")
    backends = {(b["name"], b["port"]) for rule in route["spec"]["rules"] for b in rule["backendRefs"]}
    assert backends == {(s, ports[s]) for s in (*PUBLIC, WEB)}


def test_web_serves_the_dashboard_on_its_probed_port(overlay: Rendered) -> None:
    conf = (ROOT / "deploy" / "docker" / "web-nginx.conf").read_text()
    (listen,) = re.findall(r"listen (\d+);", conf)
    c = container(overlay, WEB)
    (port,) = c["ports"]
    assert port["containerPort"] == int(listen)
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and "location = /healthz" in conf
    assert c["readinessProbe"]["httpGet"]["path"] == "/app/" and "location ^~ /app/" in conf
