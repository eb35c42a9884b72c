"""A real Keystone 30 on sqlite + fernet, for `make demo` and the browser tests.

Everything lives in one state directory, so the demo keeps its users across runs and every test
session gets a throw-away one::

    ks = demo.keystone.KeystoneServer(state_dir, port)
    ks.setup()        # keystone.conf, db_sync, fernet/credential keys, bootstrap (skipped if done)
    ks.start()        # gunicorn on 127.0.0.1:port, returns once /v3 answers
    ks.provision()    # projects demo/other, users demo/other with role member (idempotent)
    ...
    ks.stop()

The accounts it creates are in ``USERS``; the demo prints them and the tests log in with them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "RegionOne"
DOMAIN_ID = "default"


@dataclasses.dataclass(frozen=True)
class Account:
    username: str
    password: str
    project: str
    role: str


# The admin comes from `keystone-manage bootstrap` (admin role on project "admin"); the two members
# live in separate projects so tenant isolation can be shown and tested.
ADMIN = Account("admin", "admin", "admin", "admin")
DEMO = Account("demo", "demo", "demo", "member")
OTHER = Account("other", "other", "other", "member")
USERS = (ADMIN, DEMO, OTHER)


@dataclasses.dataclass(frozen=True)
class Provisioned:
    """An account as Keystone knows it (the tests and the demo seed need the IDs)."""

    account: Account
    project_id: str
    user_id: str


class KeystoneError(RuntimeError):
    """Keystone could not be set up or did not come up; the message says where to look."""


def free_port() -> int:
    """A TCP port nothing listens on right now (tests run Keystone on it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _venv_script(name: str) -> str:
    # The console scripts sit next to the interpreter running us (the project venv); PATH may
    # not include that venv when `make` calls `.venv/bin/python` directly.
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


class KeystoneServer:
    def __init__(self, state_dir: str | os.PathLike, port: int = 5000, host: str = "127.0.0.1"):
        self.state_dir = Path(state_dir).resolve()
        self.port = port
        self.host = host
        self.process: subprocess.Popen | None = None
        self.accounts: dict[str, Provisioned] = {}

    # -- paths and URLs -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The v3 endpoint Horizon's OPENSTACK_KEYSTONE_URL points at."""
        return f"http://{self.host}:{self.port}/v3"

    @property
    def conf_file(self) -> Path:
        return self.state_dir / "keystone.conf"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "keystone.log"

    @property
    def _stamp(self) -> Path:
        return self.state_dir / "bootstrapped.json"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["OS_KEYSTONE_CONFIG_FILES"] = str(self.conf_file)
        # Keystone logs eventlet deprecation noise on import; it goes to our log file anyway.
        env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
        return env

    # -- setup ----------------------------------------------------------------------------------

    def write_config(self) -> None:
        s = self.state_dir
        conf = f"""\
# Written by demo/keystone.py: a single-node Keystone for the freezer-ui demo and tests.
[DEFAULT]
use_stderr = true

[database]
connection = sqlite:///{s}/keystone.db

[token]
provider = fernet

[fernet_tokens]
key_repository = {s}/fernet-keys

[fernet_receipts]
key_repository = {s}/fernet-receipts

[credential]
key_repository = {s}/credential-keys

[identity]
# bcrypt's default 12 rounds costs ~0.25 s per password check; demo passwords are public anyway,
# and logins (tests log in dozens of times) should not wait on it.
password_hash_rounds = 4

[cache]
# No memcached here.  Without any cache Keystone spends ~0.5 s validating each token (every
# Horizon page makes several calls); an in-process dogpile memory cache brings that to ~10 ms.
# It is only coherent inside one process, hence the single gunicorn worker in start().
enabled = true
backend = dogpile.cache.memory
"""
        self.conf_file.write_text(conf)

    def _manage(self, *args: str) -> None:
        cmd = [_venv_script("keystone-manage"), "--config-file", str(self.conf_file), *args]
        with open(self.log_file, "ab") as log:
            log.write(f"\n$ keystone-manage {args[0]}\n".encode())
            log.flush()
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env())
        if rc:
            raise KeystoneError(
                f"keystone-manage {args[0]} failed (exit {rc}); see {self.log_file}"
            )

    def setup(self) -> bool:
        """Create the state directory and bootstrap Keystone; returns False if it was done already.

        Re-running on a bootstrapped directory only re-runs ``bootstrap`` when the port changed,
        because the catalog's identity endpoint URL names the port.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        done = json.loads(self._stamp.read_text()) if self._stamp.exists() else None
        if done and done.get("url") == self.url:
            return False
        if not done:
            for sub in ("fernet-keys", "fernet-receipts", "credential-keys"):
                (self.state_dir / sub).mkdir(mode=0o700, exist_ok=True)
            self._manage("db_sync")
            user = _current_user_and_group()
            self._manage("fernet_setup", *user)
            self._manage("credential_setup", *user)
        self._manage(
            "bootstrap",
            "--bootstrap-username",
            ADMIN.username,
            "--bootstrap-password",
            ADMIN.password,
            "--bootstrap-project-name",
            ADMIN.project,
            "--bootstrap-role-name",
            "admin",
            "--bootstrap-service-name",
            "keystone",
            "--bootstrap-region-id",
            REGION,
            "--bootstrap-admin-url",
            self.url + "/",
            "--bootstrap-public-url",
            self.url + "/",
            "--bootstrap-internal-url",
            self.url + "/",
        )
        self._stamp.write_text(json.dumps({"url": self.url}))
        return True

    # -- serving --------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        if port_in_use(self.port):
            raise KeystoneError(
                f"port {self.port} on {self.host} is already in use (another Keystone or demo "
                "still running?); stop it or choose another port"
            )
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{self.host}:{self.port}",
            # One worker: the memory cache (see write_config) must see every write, or a role
            # grant or token revocation handled by one worker would stay invisible to another.
            "--workers",
            "1",
            "--timeout",
            "120",
            "--graceful-timeout",
            "5",
            "--pythonpath",
            str(REPO_ROOT),
            "--name",
            "freezer-ui-demo-keystone",
            "demo.keystone_wsgi:application",
        ]
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        log.write(b"\n$ gunicorn demo.keystone_wsgi:application\n")
        log.flush()
        self._log_handle = log
        self.process = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
            cwd=str(self.state_dir),
            # Own process group: a Ctrl-C in the demo's terminal reaches us first, and we stop
            # gunicorn in order instead of racing its own SIGINT handling.
            start_new_session=True,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise KeystoneError(
                    f"Keystone exited with code {self.process.returncode} while starting; "
                    f"last lines of {self.log_file}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    body = json.load(resp)
                if body.get("version", {}).get("status") == "stable":
                    return
            except (OSError, urllib.error.URLError, ValueError) as exc:
                last_error = exc
            time.sleep(0.2)
        self.stop()
        raise KeystoneError(
            f"Keystone did not answer on {self.url} within {timeout:.0f} s ({last_error}); "
            f"last lines of {self.log_file}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # gunicorn master: graceful stop of its workers
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        handle = getattr(self, "_log_handle", None)
        if handle is not None:
            handle.close()
            self._log_handle = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- accounts -------------------------------------------------------------------------------

    def admin_session(self):
        from keystoneauth1 import session
        from keystoneauth1.identity import v3

        auth = v3.Password(
            auth_url=self.url,
            username=ADMIN.username,
            password=ADMIN.password,
            project_name=ADMIN.project,
            user_domain_id=DOMAIN_ID,
            project_domain_id=DOMAIN_ID,
        )
        return session.Session(auth=auth)

    def provision(self, accounts=(DEMO, OTHER)) -> dict[str, Provisioned]:
        """Create each account's project, user and role assignment.

        Returns username → ids for every account in ``USERS`` (the admin's come from bootstrap).
        Safe to repeat: existing projects and users are reused, passwords reset to the known
        ones (so the printed credentials are always right), role grants are idempotent PUTs.
        """
        from keystoneclient.v3 import client

        ks = client.Client(session=self.admin_session(), interface="public")
        roles = {r.name: r for r in ks.roles.list()}
        for acct in accounts:
            projects = ks.projects.list(name=acct.project, domain=DOMAIN_ID)
            project = projects[0] if projects else None
            if project is None:
                project = ks.projects.create(
                    name=acct.project,
                    domain=DOMAIN_ID,
                    description=f"freezer-ui demo project {acct.project!r}",
                )
            users = ks.users.list(name=acct.username, domain=DOMAIN_ID)
            if users:
                user = ks.users.update(users[0], password=acct.password, default_project=project)
            else:
                user = ks.users.create(
                    name=acct.username,
                    domain=DOMAIN_ID,
                    password=acct.password,
                    default_project=project,
                )
            ks.roles.grant(roles[acct.role], user=user, project=project)
        ids = {}
        for acct in USERS:
            project = ks.projects.list(name=acct.project, domain=DOMAIN_ID)[0]
            user = ks.users.list(name=acct.username, domain=DOMAIN_ID)[0]
            ids[acct.username] = Provisioned(acct, project_id=project.id, user_id=user.id)
        self.accounts = ids
        return ids

    # -- context manager for tests ----------------------------------------------------------------

    def __enter__(self) -> KeystoneServer:
        self.setup()
        self.start()
        self.provision()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _current_user_and_group() -> list[str]:
    # fernet_setup/credential_setup chown the key directories; by default to "keystone", which
    # does not exist here.  The keys must belong to whoever runs gunicorn: us.
    import grp
    import pwd

    return [
        "--keystone-user",
        pwd.getpwuid(os.getuid()).pw_name,
        "--keystone-group",
        grp.getgrgid(os.getgid()).gr_name,
    ]
