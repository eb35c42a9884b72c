"""A real OpenSSH server on a loopback port, for the ssh storage tests.

    server = SSHServer.start(workdir)      # generated host key, client key, config
    storage = SSHStorage.from_url(server.url("/some/abs/root"))
    server.stop()

Debian's ``openssh-server`` (``/usr/sbin/sshd``) runs in the foreground (``-D -e``) with a
config written here: its own host key, PidFile and authorized_keys, the current user only, key
authentication only. When the tests run as root (CI does), sshd also needs its privilege
separation directory (``/run/sshd``), root logins by key (``PermitRootLogin
prohibit-password``), no PAM (no PAM stack for a throwaway server) and ``StrictModes no``
(pytest's temp directories are not the modes sshd insists on for ``~/.ssh``).

:func:`shared_server` starts one server per test process, stopped at exit; :func:`make_ssh_storage`
is the ``tmp_path -> Storage`` factory the contract suite uses.
"""

from __future__ import annotations

import atexit
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"  # Debian's openssh-sftp-server
# The Debian packages CI needs: sshd itself (pulls openssh-client for ssh-keygen and
# openssh-sftp-server; we use sshd's built-in internal-sftp either way).
APT_PACKAGES = ("openssh-server",)


def missing_reason() -> str | None:
    """Why a real sshd cannot run here, or None when it can."""
    if not os.access(SSHD, os.X_OK):
        return f"{SSHD} is missing: apt-get install {' '.join(APT_PACKAGES)}"
    if shutil.which(SSH_KEYGEN) is None:
        return f"{SSH_KEYGEN} is missing: apt-get install {' '.join(APT_PACKAGES)}"
    return None


def _keygen(path: Path) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "freezer-ui-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SSHServer:
    """One running sshd. ``user``, ``port``, ``client_key``, ``known_hosts`` say how to reach it."""

    def __init__(self, workdir: Path, sftp_log_level: str | None = None) -> None:
        self.workdir = workdir
        self.sftp_log_level = sftp_log_level
        self.user = getpass.getuser()
        self.host = "127.0.0.1"
        self.port = 0
        self.host_key = workdir / "ssh_host_ed25519_key"
        self.client_key = workdir / "id_ed25519"
        self.known_hosts = workdir / "known_hosts"
        self.log = workdir / "sshd.log"
        self.sftp_log = workdir / "sftp-server.log"  # with sftp_log_level only
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls, workdir: Path | None = None, timeout: float = 15.0, sftp_log_level: str | None = None
    ) -> SSHServer:
        """``sftp_log_level`` (e.g. "DEBUG3"): the SFTP server logs each request it executes
        into ``self.sftp_log``, so a test can see what reached the server."""
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        workdir = Path(workdir or tempfile.mkdtemp(prefix="freezer-ui-sshd-"))
        workdir.mkdir(parents=True, exist_ok=True)
        server = cls(workdir, sftp_log_level)
        _keygen(server.host_key)
        _keygen(server.client_key)
        (workdir / "authorized_keys").write_bytes(
            server.client_key.with_suffix(".pub").read_bytes()
        )
        if os.geteuid() == 0:
            # sshd running as root chroots its pre-auth child there and refuses to start without it.
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        # A port picked free may be taken before sshd binds it: try a few.
        last = ""
        for _ in range(5):
            server.port = _free_port()
            server._write_config()
            if server._launch(timeout):
                host_pub = server.host_key.with_suffix(".pub").read_text().split()
                server.known_hosts.write_text(
                    f"[{server.host}]:{server.port} {host_pub[0]} {host_pub[1]}\n"
                )
                return server
            last = server.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"sshd did not start; its log ends with:\n{last}")

    def _write_config(self) -> None:
        w = self.workdir
        (w / "sshd_config").write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    f"HostKey {self.host_key}",
                    f"PidFile {w / 'sshd.pid'}",
                    f"AuthorizedKeysFile {w / 'authorized_keys'}",
                    f"AllowUsers {self.user}",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    # The storage opens a few SFTP channels per connection; tests open several
                    # connections at once (threads, reconnects, the Freezer agent).
                    "MaxSessions 32",
                    "MaxStartups 64",
                    f"Subsystem sftp {self._sftp_logger()}"
                    if self.sftp_log_level
                    else "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )

    def _sftp_logger(self) -> Path:
        # sshd discards a subsystem's stderr, and internal-sftp logs to syslog (none here): the
        # separate sftp-server with -e, its stderr sent to a file, shows every request served.
        wrapper = self.workdir / "sftp-server-logged"
        wrapper.write_text(
            f"#!/bin/sh\nexec {SFTP_SERVER} -e -l {self.sftp_log_level} 2>>{self.sftp_log}\n"
        )
        wrapper.chmod(0o755)
        return wrapper

    def _launch(self, timeout: float) -> bool:
        log = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.workdir / "sshd_config")],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-2.0-"):
                        return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        return False

    def url(self, root: str | os.PathLike[str], **query: str) -> str:
        """An ``ssh://`` storage URL for ``root`` on this server, with its key and known_hosts."""
        q = {"key": str(self.client_key), "known_hosts": str(self.known_hosts), **query}
        qs = "&".join(f"{k}={quote(v, safe='/')}" for k, v in q.items())
        return f"ssh://{self.user}@{self.host}:{self.port}{quote(str(root))}?{qs}"

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener): kill one to drop a
        client's connection for real."""
        if self.proc is None:
            return []
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                out.append(int(entry))
        return out

    def stop(self) -> None:
        if self.proc is None:
            return
        for pid in self.session_pids():
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


_shared: SSHServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> SSHServer:
    """One sshd for the whole test process, started on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.proc is None or _shared.proc.poll() is not None:
            server = SSHServer.start()
            atexit.register(lambda: (server.stop(), shutil.rmtree(server.workdir, True)))
            _shared = server
        return _shared


def make_ssh_storage(tmp_path: Path):  # -> SSHStorage; untyped so this imports without paramiko
    """The contract factory: an empty ssh storage rooted at ``tmp_path/store`` on the shared
    sshd (the server runs as this user on this host, so the remote path is a local one).
    Skips, with the reason, only when sshd itself is missing."""
    import pytest

    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    from freezer_ui.storage.ssh import SSHStorage

    return SSHStorage.from_url(shared_server().url(tmp_path / "store"))
