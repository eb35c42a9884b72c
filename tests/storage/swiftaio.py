"""A real OpenStack Swift all-in-one on loopback, for the swift and s3 storage tests.

Four real Swift servers (proxy with tempauth, account, container, object) from the ``swift``
package on PyPI, installed in its own venv ``.venv-swift`` because Swift pins eventlet and
friends that must not leak into the project's venv::

    python3 -m venv .venv-swift && .venv-swift/bin/pip install swift==2.38.3

One replica, one device directory under a temp dir (``mount_check = false``; the file system must
take ``user.*`` xattrs, which Swift keeps its metadata in), rings built with the real
``swift-ring-builder``.  Every config file is written from ``tests/storage/swift_conf/*.in``
into the temp dir, and ``swift_dir`` points the servers there, so nothing under ``/etc/swift`` is
read or written.  Tokens are tempauth *fernet* tokens, so no memcached is needed.

The proxy also speaks S3: Swift's own ``s3api`` middleware, in front of tempauth, serves the
same accounts at the same endpoint (path-style buckets; access key ``account:user``, secret =
the tempauth key), so the s3 storage is tested against a real S3 implementation too.

Use :func:`start` (or ``python -m tests.storage.swiftaio`` to poke at one by hand); the returned
:class:`SwiftAIO` stops every server on :meth:`SwiftAIO.stop` and, as a safety net, at exit.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from freezer_ui.storage import Storage

ROOT = Path(__file__).resolve().parents[2]
CONF_TEMPLATES = Path(__file__).resolve().parent / "swift_conf"
SWIFT_VENV = Path(os.environ.get("FREEZER_UI_SWIFT_VENV", ROOT / ".venv-swift"))
SWIFT_VERSION = "2.38.3"
INSTALL_HINT = (
    f"python3 -m venv {SWIFT_VENV} && {SWIFT_VENV}/bin/pip install swift=={SWIFT_VERSION}"
)
SERVERS = ("account", "container", "object", "proxy")

# tempauth accounts: (account, user, key).  "test" is the one the tests write into.
USERS = (("test", "tester", "testing"), ("test2", "tester2", "testing2"))

# Small server-side limits, so paging and the size refusal are exercised with little data:
# a listing of 50 objects takes three pages, and an object just over 16 MiB is refused.
CONTAINER_LISTING_LIMIT = 20
MAX_FILE_SIZE = 16 << 20
# One S3 listing page (s3api's max_bucket_listing); s3api asks Swift for one name more.
S3_LISTING_LIMIT = CONTAINER_LISTING_LIMIT - 1


# Each server runs the main() of its swift-*-server script, after one step those scripts cannot
# be told to do: Swift reads swift.conf's [swift-constraints] and storage policies once, at
# import, from the hard-coded /etc/swift/swift.conf (``swift_dir`` moves only the hash-path
# settings and the rings).  The all-in-one keeps its swift.conf in its own temp dir instead.
_LAUNCH = """
import importlib, sys
from swift.common import constraints, storage_policy, utils
utils.SWIFT_CONF_FILE = sys.argv.pop(1)
constraints.reload_constraints()
storage_policy.reload_storage_policies()
sys.exit(importlib.import_module(sys.argv.pop(1)).main())
"""
_MAIN = {
    "account": "swift.account.server",
    "container": "swift.container.server",
    "object": "swift.obj.server",
    "proxy": "swift.proxy.server",
}


class SwiftUnavailable(RuntimeError):
    """Swift's binaries are not installed, or this machine cannot run them (no user xattrs)."""


def missing_reason() -> str | None:
    """Why an all-in-one cannot start here, or None when it can (for ``pytest.skip``)."""
    for name in ("python", "swift-ring-builder", *(f"swift-{s}-server" for s in SERVERS)):
        if not (SWIFT_VENV / "bin" / name).exists():
            return f"Swift is not installed ({SWIFT_VENV}/bin/{name} missing): {INSTALL_HINT}"
    return None


@dataclass
class SwiftAIO:
    """A running all-in-one.  ``auth_url`` is tempauth's v1 endpoint."""

    workdir: Path
    proxy_port: int
    values: dict[str, str | int] = field(default_factory=dict)  # the config placeholders
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    keystone_proxy_port: int | None = None

    def _spawn(self, name: str, template: str, main: str) -> int:
        """Start one server from its config template; return its port."""
        swift_dir = self.workdir / "etc"
        conf = _render(template, swift_dir, self.values)
        with open(self.workdir / "log" / f"{name}.log", "wb") as log:
            self.procs[name] = subprocess.Popen(
                [
                    str(SWIFT_VENV / "bin" / "python"),
                    "-c",
                    _LAUNCH,
                    str(swift_dir / "swift.conf"),
                    main,
                    str(conf),
                    "-v",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # own process group: a Ctrl-C of pytest must not hit the servers first, stop()
                # ends them in order
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        return int(self.values[f"{name.upper().replace('-', '_')}_PORT"])

    def start_keystone_proxy(
        self, keystone_url: str, admin: str, password: str, project: str, timeout: float = 60.0
    ) -> str:
        """Start a second proxy that takes Keystone tokens (keystonemiddleware ``authtoken`` +
        Swift's ``keystoneauth``) in front of the same servers; return its base URL, for the
        object-store endpoint ``{url}/v1/AUTH_$(project_id)s`` of Keystone's catalog.  It
        serves S3 too, to EC2 credentials (``s3api`` + ``s3token``), at the same base URL.
        ``admin``/``password``/``project``: the service credentials authtoken validates with.
        """
        probe = subprocess.run(
            [str(SWIFT_VENV / "bin" / "python"), "-c", "import keystonemiddleware.auth_token"],
            capture_output=True,
            timeout=60,
        )
        if probe.returncode != 0:
            raise SwiftUnavailable(
                f"keystonemiddleware is not installed in {SWIFT_VENV}: "
                f"{SWIFT_VENV}/bin/pip install keystonemiddleware"
            )
        if self.keystone_proxy_port is not None and self.values["KEYSTONE_URL"] != keystone_url:
            # a proxy left by an earlier test module names a Keystone that is gone
            proc = self.procs.pop("proxy-keystone")
            proc.terminate()
            proc.wait(timeout=10)
            self.keystone_proxy_port = None
        if self.keystone_proxy_port is None:
            self.values.update(
                {
                    "PROXY_KEYSTONE_PORT": _free_port(),
                    "KEYSTONE_URL": keystone_url,
                    "KEYSTONE_ADMIN": admin,
                    "KEYSTONE_ADMIN_PASSWORD": password,
                    "KEYSTONE_ADMIN_PROJECT": project,
                }
            )
            port = self._spawn("proxy-keystone", "proxy-keystone.conf", _MAIN["proxy"])
            try:
                _wait_port(port, self.procs["proxy-keystone"], time.monotonic() + timeout, self)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n{self.log('proxy-keystone')[-3000:]}") from None
            self.keystone_proxy_port = port
        return f"http://127.0.0.1:{self.keystone_proxy_port}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def auth_url(self) -> str:
        return f"{self.endpoint}/auth/v1.0"

    def storage_url(self, account: str = "test") -> str:
        return f"{self.endpoint}/v1/AUTH_{account}"

    def credentials(self, index: int = 0) -> dict[str, str]:
        """Options for ``SwiftStorage`` naming one tempauth user (v1 auth)."""
        account, user, key = USERS[index]
        return {
            "auth_version": "1",
            "auth_url": self.auth_url,
            "username": f"{account}:{user}",
            "password": key,
        }

    def env(self, index: int = 0) -> dict[str, str]:
        """The same credentials as the ``swift`` CLI's environment variables."""
        account, user, key = USERS[index]
        return {"ST_AUTH": self.auth_url, "ST_USER": f"{account}:{user}", "ST_KEY": key}

    def s3_credentials(self, index: int = 0) -> dict[str, str]:
        """Options for ``S3Storage`` naming one tempauth user through s3api."""
        account, user, key = USERS[index]
        return {"endpoint": self.endpoint, "access_key": f"{account}:{user}", "secret_key": key}

    def s3_env(self, index: int = 0) -> dict[str, str]:
        """The same credentials as the AWS SDKs' environment variables."""
        account, user, key = USERS[index]
        return {"AWS_ACCESS_KEY_ID": f"{account}:{user}", "AWS_SECRET_ACCESS_KEY": key}

    def log(self, server: str) -> str:
        path = self.workdir / "log" / f"{server}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # a server that ignores SIGTERM must still not outlive the tests
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()
        self.keystone_proxy_port = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends it SIGTERM when the thread that started it
    dies.  atexit does not run when the test process is killed (a ``timeout``, CI's time
    limit, SIGKILL), and the servers, in their own session, would otherwise live on.  Hence
    also: start the all-in-one from a thread that outlives it (pytest's main thread does)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


_PR_SET_PDEATHSIG = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check_xattrs(directory: Path) -> None:
    probe = directory / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.swift.probe", b"1")
    except OSError as exc:
        raise SwiftUnavailable(
            f"{directory} does not support user xattrs ({exc}); Swift stores its object "
            "metadata in them: point TMPDIR at an ext4/xfs directory"
        ) from None
    finally:
        probe.unlink()


def _render(name: str, dest: Path, values: dict[str, str | int]) -> Path:
    text = (CONF_TEMPLATES / f"{name}.in").read_text()
    for k, v in values.items():
        text = text.replace("@" + k + "@", str(v))
    left = re.findall(r"@[A-Z0-9_]+@", text)
    if left:
        raise RuntimeError(f"{name}.in: placeholders left unfilled: {left}")
    out = dest / name
    out.write_text(text)
    return out


def _ring_builder(swift_dir: Path, *args: str) -> None:
    cmd = [str(SWIFT_VENV / "bin" / "swift-ring-builder"), *args]
    res = subprocess.run(cmd, cwd=swift_dir, capture_output=True, text=True, timeout=60)
    # swift-ring-builder exits 1 for "warnings" (e.g. a rebalance that moved nothing) and 2 for
    # errors; with one fresh device, anything but 0 is an error here.
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stdout}{res.stderr}")


def _wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float, aio: SwiftAIO) -> None:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"a Swift server on port {port} exited ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"a Swift server did not listen on port {port} in time")
        time.sleep(0.05)


def _wait_proxy(aio: SwiftAIO, deadline: float) -> None:
    """Until tempauth hands out a token and the account answers with it: that request crosses
    the proxy, the account server and the rings, so every part is up."""
    account, user, key = USERS[0]
    last: object = None
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(
                aio.auth_url, headers={"X-Auth-User": f"{account}:{user}", "X-Auth-Key": key}
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                token = resp.headers["X-Auth-Token"]
                url = resp.headers["X-Storage-Url"]
            req = urllib.request.Request(url, method="HEAD", headers={"X-Auth-Token": token})
            with urllib.request.urlopen(req, timeout=5):
                return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"Swift proxy did not answer in time (last error: {last})")


def start(base: str | os.PathLike[str] | None = None, timeout: float = 60.0) -> SwiftAIO:
    """Start an all-in-one in a fresh temp dir; raise :class:`SwiftUnavailable` if it cannot."""
    reason = missing_reason()
    if reason:
        raise SwiftUnavailable(reason)
    workdir = Path(tempfile.mkdtemp(prefix="fzui-swift-", dir=base))
    swift_dir, devices, logs = workdir / "etc", workdir / "srv", workdir / "log"
    ports = {s: _free_port() for s in SERVERS}
    aio = SwiftAIO(workdir=workdir, proxy_port=ports["proxy"])
    # registered first: whatever fails below, the servers and the temp dir go at exit
    atexit.register(aio.stop)
    try:
        for d in (swift_dir, devices / "d1", logs):
            d.mkdir(parents=True)
        _check_xattrs(devices / "d1")
        aio.values.update(
            {
                "SWIFT_DIR": swift_dir,
                "DEVICES": devices,
                "LISTING_LIMIT": CONTAINER_LISTING_LIMIT,
                "S3_LISTING_LIMIT": S3_LISTING_LIMIT,
                "MAX_FILE_SIZE": MAX_FILE_SIZE,
                # a fresh key per run: tokens of an earlier run are meaningless here
                "FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
                **{f"{s.upper()}_PORT": p for s, p in ports.items()},
            }
        )
        for i, (account, user, key) in enumerate(USERS):
            aio.values[f"USER{i}"] = f"user_{account}_{user} = {key} .admin"
        _render("swift.conf", swift_dir, aio.values)
        # part power 6, 1 replica, min_part_hours 1: the smallest ring that Swift accepts
        for ring in ("account", "container", "object"):
            builder = f"{ring}.builder"
            _ring_builder(swift_dir, builder, "create", "6", "1", "1")
            _ring_builder(swift_dir, builder, "add", f"r1z1-127.0.0.1:{ports[ring]}/d1", "100")
            _ring_builder(swift_dir, builder, "rebalance")
        for server in SERVERS:
            aio._spawn(server, f"{server}-server.conf", _MAIN[server])
        deadline = time.monotonic() + timeout
        for server in SERVERS:
            _wait_port(ports[server], aio.procs[server], deadline, aio)
        _wait_proxy(aio, deadline)
    except BaseException as exc:
        logs_text = "\n".join(f"--- {s}.log ---\n{aio.log(s)[-3000:]}" for s in SERVERS)
        aio.stop()
        if isinstance(exc, SwiftUnavailable) or not isinstance(exc, Exception):
            raise
        raise RuntimeError(f"Swift all-in-one failed to start: {exc}\n{logs_text}") from exc
    return aio


_shared: SwiftAIO | None = None
_shared_lock = threading.Lock()


def shared() -> SwiftAIO:
    """One all-in-one per test process (started on first use, stopped at exit): starting one
    costs seconds, a fresh container per test gives the same isolation."""
    global _shared
    with _shared_lock:
        if _shared is None or any(p.poll() is not None for p in _shared.procs.values()):
            if _shared is not None:
                _shared.stop()
            _shared = start()
        return _shared


def keystone_with_swift(aio: SwiftAIO, workdir: Path) -> Any:
    """A real Keystone (the demo's: sqlite, fernet, users demo/other, ``demo.keystone``) whose
    catalog names a Keystone-authenticated proxy of ``aio`` as the object-store endpoint.
    Started and provisioned; the caller stops it.  Raises :class:`SwiftUnavailable` when
    Keystone or keystonemiddleware is not installed."""
    import sys

    from demo import keystone as demo_keystone

    manage = Path(sys.executable).parent / "keystone-manage"
    if not manage.exists():
        raise SwiftUnavailable(
            f"Keystone is not installed ({manage} missing): pip install -e '.[demo]'"
        )
    server = demo_keystone.KeystoneServer(workdir, demo_keystone.free_port())
    server.setup()
    server.start()
    try:
        server.provision()
        admin = demo_keystone.ADMIN
        proxy = aio.start_keystone_proxy(server.url, admin.username, admin.password, admin.project)
        from keystoneclient.v3 import client

        ks = client.Client(session=server.admin_session(), interface="public")
        service = ks.services.create(name="swift", type="object-store")
        for interface in ("public", "internal"):
            ks.endpoints.create(
                service=service,
                url=proxy + "/v1/AUTH_$(project_id)s",
                interface=interface,
                region=demo_keystone.REGION,
            )
    except BaseException:
        server.stop()
        raise
    return server


def keystone_env(keystone: Any, user: str) -> dict[str, str]:
    """The openrc environment of a demo user (password = user name) of that Keystone."""
    return {
        "OS_AUTH_URL": keystone.url,
        "OS_USERNAME": user,
        "OS_PASSWORD": user,
        "OS_PROJECT_NAME": user,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": "RegionOne",
    }


def storage_factory(tmp_path: Path) -> Storage:
    """``STORAGE_FACTORIES["swift"]`` for tests/storage/conftest.py: an empty storage in a
    fresh container of the shared all-in-one.

    The credentials go into this process's environment (``ST_AUTH``/``ST_USER``/``ST_KEY``,
    naming only the loopback all-in-one), because the contract reopens storages from their
    URL alone, and a swift URL never carries secrets.
    """
    import pytest

    from freezer_ui.storage.swift import SwiftStorage

    try:
        aio = shared()
    except SwiftUnavailable as exc:
        pytest.skip(str(exc))
    for name in ("OS_AUTH_URL", "OS_AUTH_TOKEN", "OS_STORAGE_URL"):
        os.environ.pop(name, None)
    os.environ.update(aio.env())
    del tmp_path  # the objects live in Swift
    return SwiftStorage.from_url(f"swift://t-{uuid.uuid4().hex[:12]}")


# Every variable through which the AWS SDKs find credentials or settings: the tests clear them
# so that neither the developer's ~/.aws nor a CI role can leak in, and so that botocore never
# waits on the EC2 metadata service.
AWS_ENV_NAMES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def isolated_aws_env(workdir: Path) -> dict[str, str]:
    """Environment settings under which the AWS chain sees nothing of this machine: config
    files that do not exist, no metadata service.  Apply after removing ``AWS_ENV_NAMES``."""
    return {
        "AWS_CONFIG_FILE": str(workdir / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def s3_storage_factory(tmp_path: Path) -> Storage:
    """``STORAGE_FACTORIES["s3"]`` for tests/storage/conftest.py: an empty storage in a fresh
    bucket of the shared all-in-one, through s3api.

    As for swift, the credentials go into this process's environment (the AWS variables,
    naming only the loopback all-in-one's tempauth user): an s3 URL never carries secrets, and
    the contract reopens storages from their URL alone.
    """
    import pytest

    from freezer_ui.storage.s3 import S3Storage

    try:
        aio = shared()
    except SwiftUnavailable as exc:
        pytest.skip(str(exc))
    for name in AWS_ENV_NAMES:
        os.environ.pop(name, None)
    os.environ.update(isolated_aws_env(aio.workdir))
    os.environ.update(aio.s3_env())
    del tmp_path  # the objects live in Swift
    return S3Storage.from_url(f"s3://t-{uuid.uuid4().hex[:12]}?endpoint={aio.endpoint}")


if __name__ == "__main__":
    import sys

    running = start()
    print(f"Swift all-in-one: {running.auth_url}  (tempauth test:tester / testing)")
    print(f"  export ST_AUTH={running.auth_url} ST_USER=test:tester ST_KEY=testing")
    print(f"  S3 (s3api): endpoint {running.endpoint}, access key test:tester, secret testing")
    print("Ctrl-C stops it.")
    try:
        while all(p.poll() is None for p in running.procs.values()):
            time.sleep(1)
        print("a server exited:", {s: p.returncode for s, p in running.procs.items()})
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
