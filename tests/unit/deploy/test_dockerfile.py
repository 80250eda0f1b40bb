"""The image recipe, read statically (no Docker engine here): multi-stage, slim non-root runtime without
build tools, a health check on /healthz, and the service chosen by `ARG SERVICE`."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field

import pytest

from tests.unit.deploy.manifests import ROOT

pytestmark = pytest.mark.unit

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "docker" / "Dockerfile.dockerignore"
SERVICES = ("ingest", "status", "dispatcher", "dialer")
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "apt-get install", "pip install", "git")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def stages() -> list[Stage]:
    """Instructions grouped by stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = args.partition(" AS ")
            result.append(Stage(base.strip(), name.strip()))
        elif result:
            result[-1].instructions.append((keyword, args.strip()))
    return result


def test_multi_stage_with_a_slim_python_311_runtime() -> None:
    builder, runtime = stages()
    assert builder.name == "builder" and runtime.name == "runtime"
    assert "${PYTHON_VERSION}" in runtime.base and "slim" in runtime.base
    assert re.search(r"ARG PYTHON_VERSION=3\.11\b", DOCKERFILE.read_text())
    assert any("requirements.lock" in run for run in builder.all("RUN"))


def test_runtime_has_no_build_tools_and_copies_only_the_venv() -> None:
    runtime = stages()[-1]
    for run in runtime.all("RUN"):
        for tool in BUILD_TOOLS:
            assert tool not in run, f"runtime stage runs {tool!r}: {run}"
    copies = runtime.all("COPY")
    assert copies == ["--from=builder /opt/venv /opt/venv"]


def test_runs_as_a_non_root_user() -> None:
    (user,) = stages()[-1].all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "a numeric uid lets Kubernetes check runAsNonRoot"
    assert any("useradd" in run and f"--uid {uid}" in run for run in stages()[-1].all("RUN"))


def test_health_check_hits_healthz_on_the_service_port() -> None:
    (check,) = stages()[-1].all("HEALTHCHECK")
    assert "/healthz" in check
    assert "BATCHCALLS_SERVICE" in check and ".config" in check and "http_port" in check


def test_service_is_chosen_by_build_arg() -> None:
    runtime = stages()[-1]
    assert "SERVICE" in runtime.all("ARG")
    (env,) = runtime.all("ENV")
    assert "BATCHCALLS_SERVICE=${SERVICE}" in env
    (entrypoint,) = runtime.all("ENTRYPOINT")
    assert 'exec python -m \\"$BATCHCALLS_SERVICE\\"' in entrypoint
    (guard,) = [run for run in runtime.all("RUN") if "case" in run]
    allowed = re.search(r'case "\$\{SERVICE\}" in ([\w|]+)\)', guard)
    assert allowed and set(allowed.group(1).split("|")) == set(SERVICES)
    for service in SERVICES:
        assert (ROOT / "services" / service / "__main__.py").exists(), f"python -m {service}"


def test_services_listen_beyond_loopback_on_their_own_ports() -> None:
    runtime = stages()[-1]
    (env,) = runtime.all("ENV")
    (expose,) = runtime.all("EXPOSE")
    for service in SERVICES:
        assert f"{service.upper()}_HTTP_HOST=0.0.0.0" in env
        port = importlib.import_module(f"{service}.config").Settings.model_fields["http_port"].default
        assert str(port) in expose.split(), f"{service} listens on {port}"


def test_build_context_keeps_only_what_the_image_needs() -> None:
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip() and ln[0] != "#"]
    assert lines[0] == "*"
    for needed in ("requirements.lock", "pyproject.toml", "shared/", "services/", "clients/"):
        assert f"!{needed}" in lines
    builder = stages()[0]
    copied = " ".join(builder.all("COPY"))
    for needed in ("requirements.lock", "pyproject.toml", "shared", "services", "clients"):
        assert needed in copied


def test_dashboard_image_is_unprivileged_static_files() -> None:
    text = (ROOT / "deploy" / "docker" / "Dockerfile.web").read_text()
    assert re.search(r"^FROM nginxinc/nginx-unprivileged:[\d.]+-alpine$", text, re.M), (
        "a pinned unprivileged nginx"
    )
    assert re.search(r"^USER 101:101$", text, re.M)
    assert "COPY web/dashboard/ /usr/share/nginx/html/app/" in text
    assert re.search(r"^HEALTHCHECK .*/healthz", text, re.M)
    ignore = (ROOT / "deploy" / "docker" / "Dockerfile.web.dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1 :][:2] == ["!web/dashboard/", "!deploy/docker/web-nginx.conf"]
    assert (ROOT / "web" / "dashboard" / "index.html").exists()


def test_dev_only_packages_exist_in_the_lock_and_nothing_at_runtime_imports_them() -> None:
    listed = [
        ln.strip()
        for ln in (ROOT / "deploy" / "docker" / "dev-only.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    locked = {
        ln.split("==")[0].lower().replace("_", "-")
        for ln in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in ln
    }
    assert {name.lower().replace("_", "-") for name in listed} <= locked
    imports = {
        *(
            "pytest",
            "hypothesis",
            "mypy",
            "ruff",
            "importlinter",
            "grimp",
            "playwright",
            "yaml",
            "jsonschema",
        ),
        *("kubernetes_validate", "grafana_foundation_sdk", "promql_parser", "attr", "attrs", "schemathesis"),
        *("werkzeug", "markupsafe", "graphql"),
    }
    runtime = [p for top in ("shared", "services", "clients") for p in (ROOT / top).rglob("*.py")]
    for path in runtime:
        for line in path.read_text().splitlines():
            match = re.match(r"\s*(?:import|from)\s+([A-Za-z_]\w*)", line)
            assert not (match and match.group(1) in imports), f"{path}: runtime code imports {match.group(1)}"
