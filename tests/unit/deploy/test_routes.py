"""The Kubernetes HTTPRoute sends every request where the local nginx gateway sends it.

Both sides are read from their files: nginx's method+path map and `location` blocks from
stack/nginx/nginx.conf.template (emulating nginx's location selection), and the HTTPRoute from the rendered
overlays (emulating Gateway API match precedence). Then a grid of methods × paths must agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.unit.deploy.manifests import OVERLAYS, ROOT, Obj, rendered

pytestmark = pytest.mark.unit

NGINX = ROOT / "stack" / "nginx" / "nginx.conf.template"
STATIC = "static-dashboard"
UPSTREAMS = {"bc_ingest": "ingest", "bc_status": "status", STATIC: "web"}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Paths the Gateway routes that nginx does not (yet): webhook endpoints live in status.
ROUTE_ONLY = ("/v1/webhooks",)


@dataclass(frozen=True)
class Nginx:
    """nginx's choice of upstream for a method and path, read from the gateway's config template."""

    method_map: list[tuple[re.Pattern[str], str]]
    default: str
    exact: dict[str, str | None]
    prefixes_no_regex: list[tuple[str, str | None]]
    regexes: list[tuple[re.Pattern[str], str | None]]
    prefixes: list[tuple[str, str | None]]

    @classmethod
    def parse(cls, text: str) -> Nginx:
        block = re.search(r'map "\$request_method \$uri" \$bc_batch_upstream \{(.*?)\n\s*\}', text, re.S)
        assert block, "the method+path map of batch-calls requests"
        method_map, default = [], ""
        for line in block.group(1).splitlines():
            entry = re.match(r'\s*"~(.+)"\s+(\w+);', line)
            if entry:
                method_map.append((re.compile(entry.group(1)), entry.group(2)))
            fallback = re.match(r"\s*default\s+(\w+);", line)
            if fallback:
                default = fallback.group(1)
        exact: dict[str, str | None] = {}
        no_regex: list[tuple[str, str | None]] = []
        regexes: list[tuple[re.Pattern[str], str | None]] = []
        prefixes: list[tuple[str, str | None]] = []
        server = text[text.index("server {") :]
        locations = list(re.finditer(r"^\s*location\s+(=|~|\^~)?\s*(\S+)\s*\{", server, re.M))
        for i, loc in enumerate(locations):
            end = locations[i + 1].start() if i + 1 < len(locations) else len(server)
            body = server[loc.end() : end]
            proxied = re.search(r"proxy_pass http://(\$?\w+);", body)
            target = proxied.group(1) if proxied else None
            # The dashboard's files (and its /app → /app/ redirect) are nginx's own locally; the web
            # Deployment serves them in Kubernetes.
            if target is None and re.search(r"alias \S*web/dashboard/|return 302 /app/", body):
                target = STATIC
            modifier, path = loc.group(1), loc.group(2)
            if modifier == "=":
                exact[path] = target
            elif modifier == "^~":
                no_regex.append((path, target))
            elif modifier == "~":
                regexes.append((re.compile(path), target))
            else:
                prefixes.append((path, target))
        return cls(method_map, default, exact, no_regex, regexes, prefixes)

    def route(self, method: str, path: str) -> str | None:
        """nginx location selection: exact, then the longest prefix (final if `^~`), then regexes in order."""
        if path in self.exact:
            return self._resolve(self.exact[path], method, path)
        longest = max(
            ((p, t, True) for p, t in self.prefixes_no_regex if path.startswith(p)),
            default=None,
            key=lambda c: len(c[0]),
        )
        plain = max(
            ((p, t, False) for p, t in self.prefixes if path.startswith(p)),
            default=None,
            key=lambda c: len(c[0]),
        )
        best = max((c for c in (longest, plain) if c), default=None, key=lambda c: len(c[0]))
        if best and best[2]:
            return self._resolve(best[1], method, path)
        for pattern, target in self.regexes:
            if pattern.search(path):
                return self._resolve(target, method, path)
        return self._resolve(best[1], method, path) if best else None

    def _resolve(self, target: str | None, method: str, path: str) -> str | None:
        if target == "$bc_batch_upstream":
            request = f"{method} {path}"
            target = next((up for pattern, up in self.method_map if pattern.search(request)), self.default)
        return UPSTREAMS.get(target) if target else None


def gateway_route(route: Obj, method: str, path: str) -> str | None:
    """Gateway API precedence among the matches that match: Exact path, then the longest prefix, then a
    method match, then rule order."""
    candidates = []
    for order, rule in enumerate(route["spec"]["rules"]):
        for match in rule["matches"]:
            kind, value = match["path"]["type"], match["path"]["value"]
            if kind == "Exact":
                hit = path == value
            elif kind == "PathPrefix":
                hit = value == "/" or path == value or path.startswith(value.rstrip("/") + "/")
            else:
                raise AssertionError(f"only Exact and PathPrefix are portable, got {kind}")
            if hit and match.get("method", method) == method:
                rank = (kind == "Exact", len(value), "method" in match, -order)
                candidates.append((rank, rule["backendRefs"][0]["name"]))
    return max(candidates)[1] if candidates else None


def request_grid() -> list[tuple[str, str]]:
    paths = ["/v1/agents", "/v1/agents/agent_1", "/v1/dnc", "/v1/dnc/+15551234567", "/v1/usage",
             "/v1/usage/2026-12", "/app", "/app/", "/app/batches/batch_1", "/ingest/debug", "/status/debug",
             "/nowhere", "/v1", "/v1/batch-callsx", "/v1/webhooks", "/v1/webhooks/wh_1"]  # fmt: skip
    for base in ("/v1/batch-calls", "/v1/api/batch-calls"):
        paths += [base, f"{base}/", f"{base}/template", f"{base}/template/", f"{base}/validate",
                  f"{base}/validate/", f"{base}/batch_1f2e", f"{base}/batch_1f2e/"]  # fmt: skip
        paths += [f"{base}/batch_1f2e/{tail}" for tail in ("status", "calls", "events", "results", "pause",
                                                           "resume", "pause/", "calls/x_r1")]  # fmt: skip
    return [(m, p) for m in METHODS for p in paths]


@pytest.fixture(scope="module")
def nginx() -> Nginx:
    assert NGINX.exists(), f"{NGINX} (the local gateway) is the routing reference"
    return Nginx.parse(Path(NGINX).read_text())


def test_nginx_emulation_reads_the_documented_routes(nginx: Nginx) -> None:
    assert nginx.route("POST", "/v1/batch-calls") == "ingest"
    assert nginx.route("GET", "/v1/batch-calls/batch_1") == "status"
    assert nginx.route("GET", "/v1/batch-calls/template") == "ingest"
    assert nginx.route("DELETE", "/v1/api/batch-calls/batch_1") == "ingest"
    assert nginx.route("GET", "/v1/usage") == "status"
    assert nginx.route("GET", "/nowhere") is None
    assert nginx.route("GET", "/app/") == "web"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_httproute_routes_like_nginx(overlay: str, nginx: Nginx) -> None:
    (route,) = rendered(overlay).of_kind("HTTPRoute")
    differences = []
    for method, path in request_grid():
        want = nginx.route(method, path)
        if path.startswith(ROUTE_ONLY):
            assert want in (None, "status"), (method, path, want)
            want = "status"
        got = gateway_route(route, method, path)
        if got != want:
            differences.append(f"{method} {path}: nginx → {want}, HTTPRoute → {got}")
    assert not differences, "\n".join(differences)
