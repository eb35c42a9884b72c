"""A tiny loopback Keystone v3 stub, only so the real freezer-agent 19.0.0 starts offline.

freezer 18.x/19.x build openstacksdk proxies at start-up even with `--storage local`
(NOTES-legacy.md), so they need a Keystone that answers version discovery and
`POST /v3/auth/tokens`.  Nothing here is checked: any credentials get a token and a catalog whose
endpoints point back at this stub (which answers every other GET with a version document).

Run: python -m bench.fake_keystone PORT   (prints "ready" on stdout once listening)
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICES = [
    ("identity", "keystone", "/v3"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("volumev3", "cinderv3", "/volume/v3/bench"),
    ("block-storage", "cinder", "/volume/v3/bench"),
    ("network", "neutron", "/network"),
    ("object-store", "swift", "/swift/v1/AUTH_bench"),
    ("backup", "freezer", "/backup"),
]

# (path prefix, version id, microversion) answered on discovery GETs of the fake services.
DISCOVERY = [
    ("/compute", "v2.1", "2.79"),
    ("/image", "v2", ""),
    ("/volume", "v3", "3.60"),
    ("/network", "v2.0", ""),
    ("/backup", "v2", ""),
]


def _version_doc(base: str) -> dict:
    return {
        "version": {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": base + "/v3/"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
        }
    }


def _token(base: str) -> dict:
    now = datetime.now(timezone.utc)
    catalog = []
    for i, (stype, name, path) in enumerate(SERVICES):
        catalog.append(
            {
                "id": f"svc{i}",
                "type": stype,
                "name": name,
                "endpoints": [
                    {
                        "id": f"ep{i}{iface[0]}",
                        "interface": iface,
                        "region": "RegionOne",
                        "region_id": "RegionOne",
                        "url": base + path,
                    }
                    for iface in ("public", "internal", "admin")
                ],
            }
        )
    return {
        "token": {
            "methods": ["password"],
            "user": {
                "id": "bench-user",
                "name": "bench",
                "domain": {"id": "default", "name": "Default"},
            },
            "project": {
                "id": "bench-project",
                "name": "bench",
                "domain": {"id": "default", "name": "Default"},
            },
            "roles": [{"id": "r1", "name": "admin"}, {"id": "r2", "name": "member"}],
            "issued_at": now.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "expires_at": (now + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "catalog": catalog,
        }
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as keystoneauth expects

    def _send(self, code: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _base(self) -> str:
        return f"http://{self.headers.get('Host') or '127.0.0.1'}"

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        base = self._base()
        if self.path.rstrip("/") in ("", "/identity"):
            self._send(300, {"versions": {"values": [_version_doc(base)["version"]]}})
        elif self.path.startswith("/v3/auth/tokens"):
            self._send(200, _token(base), {"X-Subject-Token": "bench-token"})
        elif self.path.startswith("/v3"):
            self._send(200, _version_doc(base))
        else:
            # Other services' version discovery (openstacksdk insists on a supported version).
            for prefix, vid, ver in DISCOVERY:
                if self.path.startswith(prefix):
                    href = f"{base}{prefix}/{vid}/"
                    doc = {
                        "id": vid,
                        "status": "CURRENT",
                        "version": ver,
                        "min_version": ver.split(".")[0] + ".0" if ver else "",
                        "links": [{"rel": "self", "href": href}],
                    }
                    self._send(200, {"versions": [doc]})
                    return
            self._send(200, {"versions": []})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/v3/auth/tokens"):
            self._send(201, _token(self._base()), {"X-Subject-Token": "bench-token"})
        else:
            self._send(404, {"error": {"code": 404, "message": "not in the stub"}})

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(200, {}, {"X-Subject-Token": "bench-token"})

    def log_message(self, fmt, *args) -> None:  # quiet: the bench prints its own progress
        pass


def serve(port: int = 0) -> tuple[ThreadingHTTPServer, int]:
    """Start in a daemon thread; returns (server, port).  port=0 picks a free port."""
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
