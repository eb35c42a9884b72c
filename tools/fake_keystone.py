"""A loopback stub of Keystone, just enough for the upstream ``freezer-agent`` to start.

freezer 18.x/19.x builds openstacksdk/keystoneauth objects at start-up even for
``--storage local``, so it needs an identity endpoint that answers. This stub serves the
version documents and ``POST /v3/auth/tokens`` (token + a catalog) and nothing else. It binds
to 127.0.0.1 only and is meant for fixture generation and offline benchmarks, never for real use.

Use as a context manager::

    with FakeKeystone() as ks:
        env["OS_AUTH_URL"] = ks.url   # http://127.0.0.1:PORT/v3
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "fake-token-0123456789abcdef"
PROJECT = {
    "id": "p0000000000000000000000000000001",
    "name": "demo",
    "domain": {"id": "default", "name": "Default"},
}
USER = {
    "id": "u0000000000000000000000000000001",
    "name": "demo",
    "domain": {"id": "default", "name": "Default"},
}


# Service name in our catalog → (version id, (min, max) microversion or None).
_SERVICE_VERSIONS: dict[str, tuple[str, tuple[str, str] | None]] = {
    "nova": ("v2.1", ("2.1", "2.90")),
    "cinder": ("v3.0", ("3.0", "3.70")),
    "glance": ("v2.0", None),
    "neutron": ("v2.0", None),
    "swift": ("v1.0", None),
    "freezer": ("v2", None),
}


def _version_doc(base: str) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # Quiet by default: the agent's own log is what matters; requests are kept for debugging.
        self.server.requests.append(f"{self.command} {self.path}")

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self.log_message("")
        base = self.server.base
        path = self.path.rstrip("/")
        if path in ("", "/"):
            self._send(300, {"versions": {"values": [_version_doc(base)]}})
        elif path == "/v3":
            self._send(200, {"version": _version_doc(base)})
        elif path == "/v3/auth/tokens":
            self._send(200, self._token_body(), {"X-Subject-Token": TOKEN})
        elif path.strip("/").split("/")[0] in _SERVICE_VERSIONS:
            # openstacksdk runs version discovery on the catalog's endpoints at start-up.
            name = path.strip("/").split("/")[0]
            vid, micro = _SERVICE_VERSIONS[name]
            doc = {
                "id": vid,
                "status": "CURRENT",
                "links": [{"rel": "self", "href": f"{base}/{name}/{vid}/"}],
            }
            if micro:
                doc.update({"min_version": micro[0], "version": micro[1]})
            self._send(200, {"versions": [doc]})
        else:
            self._send(404, {"error": {"code": 404, "message": "not in fake keystone"}})

    def do_HEAD(self) -> None:  # noqa: N802
        self.log_message("")
        self.send_response(200)
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        self.log_message("")
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.rstrip("/") == "/v3/auth/tokens":
            self._send(201, self._token_body(), {"X-Subject-Token": TOKEN})
        else:
            self._send(404, {"error": {"code": 404, "message": "not in fake keystone"}})

    def _token_body(self) -> dict[str, Any]:
        base = self.server.base
        now = datetime.now(UTC)
        fmt = "%Y-%m-%dT%H:%M:%S.000000Z"

        def svc(stype: str, name: str, url: str) -> dict[str, Any]:
            return {
                "type": stype,
                "name": name,
                "id": f"{name}-id",
                "endpoints": [
                    {
                        "id": f"{name}-{i}",
                        "interface": i,
                        "region": "RegionOne",
                        "region_id": "RegionOne",
                        "url": url,
                    }
                    for i in ("public", "internal", "admin")
                ],
            }

        # Every service the agent might build a proxy for points back at this stub: nothing is
        # ever called on them with --storage local, they only have to exist in the catalog.
        catalog = [
            svc("identity", "keystone", f"{base}/v3"),
            svc("object-store", "swift", f"{base}/swift"),
            svc("compute", "nova", f"{base}/nova"),
            svc("volumev3", "cinderv3", f"{base}/cinder"),
            svc("block-storage", "cinder", f"{base}/cinder"),
            svc("image", "glance", f"{base}/glance"),
            svc("network", "neutron", f"{base}/neutron"),
            svc("backup", "freezer", f"{base}/freezer"),
        ]
        return {
            "token": {
                "methods": ["password"],
                "expires_at": (now + timedelta(hours=12)).strftime(fmt),
                "issued_at": now.strftime(fmt),
                "user": USER,
                "project": PROJECT,
                "roles": [{"id": "r1", "name": "admin"}, {"id": "r2", "name": "member"}],
                "catalog": catalog,
            }
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    base: str
    requests: list[str]


class FakeKeystone:
    """Serve the stub on 127.0.0.1 (an ephemeral port by default) in a daemon thread."""

    def __init__(self, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        host, real_port = self._server.server_address[:2]
        self._server.base = f"http://{host}:{real_port}"
        self._server.requests = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The identity v3 URL to export as OS_AUTH_URL."""
        return f"{self._server.base}/v3"

    @property
    def requests(self) -> list[str]:
        return list(self._server.requests)

    def env(self) -> dict[str, str]:
        """OS_* variables that make keystoneauth happy against this stub."""
        return {
            "OS_AUTH_URL": self.url,
            "OS_USERNAME": USER["name"],
            "OS_PASSWORD": "secret",
            "OS_PROJECT_NAME": PROJECT["name"],
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_REGION_NAME": "RegionOne",
        }

    def __enter__(self) -> FakeKeystone:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":  # pragma: no cover - manual use: python tools/fake_keystone.py [PORT]
    import sys
    import time

    with FakeKeystone(int(sys.argv[1]) if len(sys.argv) > 1 else 0) as ks:
        print(ks.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
