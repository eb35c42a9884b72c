"""`make demo`: real Keystone + Horizon with freezer-ui on 127.0.0.1, until Ctrl-C.

    python -m demo.run [--port 8000] [--keystone-port 5000] [--state-dir .state/demo]

Starts Keystone (bootstrapped once into the state directory, reused afterwards), migrates
Horizon's and freezer-ui's databases, starts ONE job agent for every demo project (embedded
mode, ``--all-projects``) and a small demo data directory to back up, starts Horizon, prints
the URL and the logins, and on Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from demo import keystone

REPO_ROOT = Path(__file__).resolve().parent.parent


class DemoError(RuntimeError):
    pass


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def django_env(state_dir: Path, keystone_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        # A DJANGO_SETTINGS_MODULE left in the caller's shell must not hijack the demo.
        DJANGO_SETTINGS_MODULE=os.environ.get("DEMO_DJANGO_SETTINGS", "demo.settings"),
        FREEZER_UI_DEMO_STATE=str(state_dir),
        FREEZER_UI_DEMO_KEYSTONE_URL=keystone_url,
        PYTHONWARNINGS="ignore::DeprecationWarning,ignore::PendingDeprecationWarning",
    )
    # manage.py imports `demo` from the checkout whatever the caller's working directory.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def migrate(env: dict[str, str], log: Path) -> None:
    """Horizon's tables (sessions) in ``default``, freezer-ui's in its own ``freezer_ui`` alias."""
    for extra in ([], ["--database", "freezer_ui"]):
        cmd = [sys.executable, str(REPO_ROOT / "manage.py"), "migrate", "--noinput", *extra]
        with open(log, "ab") as out:
            rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        if rc:
            raise DemoError(f"{' '.join(cmd[1:])} failed (exit {rc}):\n{_tail(log)}")


def seed(env: dict[str, str], accounts: dict, log: Path) -> None:
    """Register this host as an agent in each demo project (demo/seed.py says why)."""
    payload = {
        name: {"project_id": p.project_id, "user_id": p.user_id, "roles": [p.account.role]}
        for name, p in accounts.items()
    }
    cmd = [sys.executable, "-m", "demo.seed", json.dumps(payload)]
    with open(log, "ab") as out:
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    if rc:
        raise DemoError(f"registering the demo host failed (exit {rc}):\n{_tail(log)}")


def make_demo_data(root: Path) -> Path:
    """A small tree worth backing up (text, a binary, a symlink, an empty dir), made once."""
    data = root / "data"
    if data.is_dir():
        return data
    (data / "docs").mkdir(parents=True)
    (data / "empty").mkdir()
    for i in range(40):
        (data / "docs" / f"note-{i:02d}.txt").write_text(f"demo note {i}\n" * (50 + i * 40))
    (data / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (data / "latest").symlink_to("docs/note-39.txt")
    return data


class Agents:
    """ONE ``freezer-ui-agent run --all-projects`` for every demo project.

    ``demo.seed`` registered this host in each project (as ``<project>_<host>``); the agent
    finds those registrations and serves each project through a client scoped to it, so a
    job's backups and run records land in its own project.  "Start" on a job in the Jobs
    panel is picked up within a poll interval.
    """

    def __init__(self, env: dict[str, str], accounts: dict, state_dir: Path):
        from demo.seed import demo_hostname

        self.env, self.state_dir = env, state_dir
        self.hostname = demo_hostname()
        self.accounts = accounts
        self.process: subprocess.Popen | None = None

    def log(self) -> Path:
        return self.state_dir / "agent.log"

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "freezer_ui.cli",
            "run",
            "--mode",
            "embedded",
            "--all-projects",
            "--client-id",
            self.hostname,
            "--hostname",
            self.hostname,
            "--state-dir",
            str(self.state_dir / "agent"),
            "--poll-interval",
            "3",
            # Same fence as the panels' FREEZER_UI_ALLOWED_ROOTS (demo/settings.py).
            "--allowed-root",
            str(self.state_dir),
        ]
        with open(self.log(), "ab") as out:
            self.process = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )

    def dead(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Horizon:
    def __init__(self, env: dict[str, str], host: str, port: int, log: Path):
        self.env, self.host, self.port, self.log = env, host, port, log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self, timeout: float = 120.0) -> None:
        if keystone.port_in_use(self.port):
            raise DemoError(f"port {self.port} is already in use; pass --port to pick another")
        out = open(self.log, "ab")  # noqa: SIM115 - owned by the child for its whole life
        # runserver (not gunicorn): with DEBUG it serves the static files itself, so the demo
        # needs no collectstatic step.  --noreload: one process we can stop cleanly.
        cmd = [
            sys.executable,
            str(REPO_ROOT / "manage.py"),
            "runserver",
            f"{self.host}:{self.port}",
            "--noreload",
        ]
        self.process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        out.close()
        self._wait_login_page(timeout)

    def _wait_login_page(self, timeout: float) -> None:
        # The first render compiles Horizon's SCSS (~10 s); doing it here means the user's first
        # click is fast, and a broken settings module shows up now rather than in the browser.
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(
                    f"Horizon exited (code {self.process.returncode}):\n{_tail(self.log)}"
                )
            try:
                with urllib.request.urlopen(self.url + "auth/login/", timeout=60) as resp:
                    if resp.status == 200:
                        return
                    last = resp.status
            except urllib.error.HTTPError as exc:
                last = exc.code
                if exc.code >= 500:
                    raise DemoError(f"Horizon answers HTTP {exc.code}:\n{_tail(self.log)}") from exc
            except OSError as exc:
                last = exc
            time.sleep(0.3)
        raise DemoError(f"Horizon did not serve the login page in {timeout:.0f} s ({last})")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def banner(horizon_url: str, keystone_url: str, state_dir: Path, data_dir: Path) -> str:
    a, d, o = keystone.ADMIN, keystone.DEMO, keystone.OTHER
    return f"""
  freezer-ui demo is running.

    Horizon   {horizon_url}
    Keystone  {keystone_url}

    log in as (user / password, project):
      {a.username} / {a.password}   project "{a.project}", admin: Admin > Backup and Restore
      {d.username} / {d.password}     project "{d.project}", member: Project > Backup and Restore
      {o.username} / {o.password}   project "{o.project}", member (another tenant)

    try a job: engine tar, storage local, path to back up {data_dir},
    container {state_dir / "repos" / "demo"}; then Start it in the Jobs panel
    (one job agent serves every demo project; its log: {state_dir}/agent.log)

    state and logs: {state_dir}
  Ctrl-C stops Horizon, the agents and Keystone.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.run", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", 8000)))
    parser.add_argument(
        "--keystone-port", type=int, default=int(os.environ.get("DEMO_KEYSTONE_PORT", 5000))
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("DEMO_STATE", REPO_ROOT / ".state/demo")),
    )
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)

    # SIGTERM takes the same path as Ctrl-C, so `kill` and a closed terminal both clean up.
    # SIGINT is installed explicitly too: a shell starting us in the background hands SIGINT
    # down as ignored, and Python then never turns it into KeyboardInterrupt.
    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _terminate)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    t0 = time.monotonic()
    ks = keystone.KeystoneServer(state_dir / "keystone", args.keystone_port, host=args.host)
    horizon: Horizon | None = None
    agents: Agents | None = None
    try:
        _say(f"Keystone: setting up in {ks.state_dir}")
        if ks.setup():
            _say("Keystone: bootstrapped (admin, region RegionOne)")
        ks.start()
        ks.provision()
        _say(f"Keystone: serving {ks.url} (projects admin, demo, other)")

        env = django_env(state_dir, ks.url)
        migrate(env, state_dir / "migrate.log")
        _say("Django: databases migrated (default + freezer_ui)")
        seed(env, ks.accounts, state_dir / "migrate.log")
        _say("freezer-ui: this host registered as a backup agent in every demo project")
        data_dir = make_demo_data(state_dir)
        agents = Agents(env, ks.accounts, state_dir)
        agents.start()
        _say(f"freezer-ui: one job agent running for {', '.join(ks.accounts)}")

        horizon = Horizon(env, args.host, args.port, state_dir / "horizon.log")
        horizon.start()
        _say(f"ready in {time.monotonic() - t0:.1f} s")
        print(banner(horizon.url, ks.url, state_dir, data_dir), flush=True)

        while True:
            if agents.dead():
                raise DemoError(f"the job agent stopped:\n{_tail(agents.log())}")
            for name, proc in (("Horizon", horizon.process), ("Keystone", ks.process)):
                if proc is None or proc.poll() is not None:
                    log = horizon.log if name == "Horizon" else ks.log_file
                    raise DemoError(f"{name} stopped unexpectedly:\n{_tail(log)}")
            time.sleep(1)
    except KeyboardInterrupt:
        print(flush=True)
        _say("stopping")
        return 0
    except (DemoError, keystone.KeystoneError) as exc:
        _say(f"error: {exc}")
        return 1
    finally:
        # Ignore further Ctrl-C while cleaning up: a second one must not orphan Keystone.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if horizon is not None:
            horizon.stop()
        if agents is not None:
            agents.stop()
        ks.stop()
        _say("stopped Horizon, the agents and Keystone")


if __name__ == "__main__":
    sys.exit(main())
