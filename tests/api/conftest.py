"""Fixtures for the API layer: real FreezerClients over the embedded transport (real sqlite)."""

import copy
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from freezer_ui.api.client import FreezerClient
from freezer_ui.api.transports.embedded import EmbeddedTransport

HOST = "host1"
ROOT = pathlib.Path(__file__).resolve().parents[2]
FAPI_VENV = ROOT / ".venv-fapi"
FAPI_PYTHON = FAPI_VENV / "bin" / "python"


def backup_action(**overrides):
    action = {
        "action": "backup",
        "mode": "fs",
        "backup_name": "etc",
        "path_to_backup": "/etc",
        "container": "/srv/backups",
        "storage": "local",
        "engine_name": "tar",
    }
    action.update(overrides)
    return action


def job_doc(client_id=HOST, **overrides):
    doc = {
        "description": "nightly /etc",
        "client_id": client_id,
        "job_schedule": {"schedule_interval": "6 hours"},
        "job_actions": [{"freezer_action": backup_action(), "max_retries": 3}],
    }
    doc.update(overrides)
    return copy.deepcopy(doc)


@pytest.fixture
def transport(db):
    return EmbeddedTransport()


def _client(transport, project, user, roles=("member",)):
    client = FreezerClient(transport, project_id=project, user_id=user, roles=roles)
    return client


@pytest.fixture
def alice(transport):
    """A member of project A with a registered agent host."""
    client = _client(transport, "proj-a", "alice")
    client.clients.create({"client_id": HOST, "hostname": HOST})
    return client


@pytest.fixture
def bob(transport):
    """A member of project B with its own agent host of the same name."""
    client = _client(transport, "proj-b", "bob")
    client.clients.create({"client_id": HOST, "hostname": HOST})
    return client


@pytest.fixture
def admin(transport):
    return _client(transport, "proj-admin", "root", roles=("admin", "member"))


def _usable(python):
    if not python.exists():
        return False
    check = [str(python), "-c", "import freezer_api.common.elasticv2_utils"]
    return subprocess.run(check, capture_output=True, timeout=120).returncode == 0


@pytest.fixture(scope="session")
def freezer_api_python():
    if not _usable(FAPI_PYTHON):
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", "--clear", str(FAPI_VENV)],
                check=True,
                capture_output=True,
                timeout=120,
            )
            install = [str(FAPI_PYTHON), "-m", "pip", "install", "-q", "freezer-api==19.0.0"]
            subprocess.run(install, check=True, capture_output=True, timeout=900)
        except (OSError, subprocess.SubprocessError) as error:
            detail = getattr(error, "stderr", b"") or b""
            pytest.skip(
                f"cannot install freezer-api 19.0.0 into {FAPI_VENV}: {error} "
                f"{detail.decode(errors='replace')[-300:]}"
            )
    if not _usable(FAPI_PYTHON):
        pytest.skip(f"{FAPI_VENV} exists but cannot import freezer_api")
    return FAPI_PYTHON


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def freezer_api_url(freezer_api_python, tmp_path_factory):
    """A real freezer-api 19.0.0 (sqlalchemy on sqlite) on a loopback port.

    Keystone is replaced by a paste filter (``_fapi_identity.py``) in front of freezer-api's own
    context middleware: the token "project:user:role,role" becomes the identity headers that
    keystonemiddleware would set.  Everything behind it is freezer-api as shipped.
    """
    work = tmp_path_factory.mktemp("freezer-api")
    port = free_port()
    shutil.copy(pathlib.Path(__file__).with_name("_fapi_identity.py"), work / "fapi_identity.py")
    paste = (FAPI_VENV / "etc" / "freezer" / "freezer-paste.ini").read_text()
    shipped = "pipeline = http_proxy_to_wsgi versionsNegotiator authtoken context backupapp"
    assert shipped in paste, "freezer-api's paste pipeline changed"
    paste = paste.replace(shipped, shipped.replace("authtoken", "identity"))
    paste += "\n[filter:identity]\npaste.filter_factory = fapi_identity:factory\n"
    (work / "paste.ini").write_text(paste)
    conf = work / "freezer-api.conf"
    conf.write_text(
        f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"
        f"[database]\nconnection = sqlite:///{work}/freezer.db\n"
        f"[paste_deploy]\nconfig_file = {work}/paste.ini\n"
        "[centralized_scheduler]\nenabled = False\n"
    )
    bin_dir = FAPI_VENV / "bin"
    subprocess.run(
        [str(bin_dir / "freezer-manage"), "--config-file", str(conf), "db", "sync"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = open(work / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    env = {**os.environ, "PYTHONPATH": str(work)}
    server = subprocess.Popen(
        [str(bin_dir / "freezer-api"), "--config-file", str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "freezer-api did not start: " + (work / "server.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
