"""Write an upstream Freezer container with the REAL freezer 19.0.0 agent through ITS OWN ssh
storage, into a real sshd on loopback (tests/storage/sshd.py).

    .venv/bin/python -m tests.legacy.remote_make_fixture        # -> tests/legacy/remote_fixtures/

The agent runs as ``tools/make_legacy_fixtures.py`` runs it (its venv, its stub Keystone, its
source trees and mutations are reused from there, not copied), but with ``--storage ssh
--ssh-host 127.0.0.1 --ssh-port P --ssh-username U --ssh-key K --container /abs/path``. The
server runs as this user on this host, so the container the agent uploads lands in a local
directory, which is then committed as the fixture; ``<scenario>.expected.json`` records the
source tree after each run (the same shape as tests/legacy/fixtures/*.expected.json) and what
the agent's own restore, again over ssh, gave back.

``generate()`` is also what tests/legacy/test_remote_ssh.py runs live when the agent's venv
exists (bench/work/legacy/venv: ``python tools/make_legacy_fixtures.py`` creates it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from tests.storage.sshd import SSHServer

REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "remote_fixtures"
AGENT_WORK = REPO / "bench" / "work" / "legacy"
SCENARIO = "ssh-tar-gzip"
NAME = "fs"


def tools() -> ModuleType:
    """tools/make_legacy_fixtures.py as a module (it is a script, not a package member)."""
    path = REPO / "tools" / "make_legacy_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_legacy_fixtures", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_legacy_fixtures", mod)
    spec.loader.exec_module(mod)
    return mod


def agent_bin(work: Path = AGENT_WORK) -> Path:
    return work / "venv" / "bin" / "freezer-agent"


def _ssh_flags(server: SSHServer, container: Path) -> list[str]:
    return [
        "--storage", "ssh",
        "--ssh-host", server.host,
        "--ssh-port", str(server.port),
        "--ssh-username", server.user,
        "--ssh-key", str(server.client_key),
        "--container", str(container),
    ]  # fmt: skip


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        sys.exit(f"freezer-agent hung (killed after 300 s): {' '.join(cmd)}")


def generate(
    server: SSHServer, out: Path, work: Path, *, agent_work: Path = AGENT_WORK
) -> dict[str, object]:
    """Run the scenario; return the expected document (also written next to the container)."""
    t = tools()
    container = out / SCENARIO
    shutil.rmtree(container, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    src = work / "src"
    shutil.rmtree(src, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    t.base_tree(src)
    flags = ["--incremental", "--max-level", "3", "--compression", "gzip"]
    steps = [None, t.m_modify_delete_add, t.m_renames]
    gens: list[dict[str, object]] = []
    last = 0
    with t.fake_keystone() as ks_env:
        env = dict(os.environ, **ks_env)
        env["PATH"] = f"{agent_work / 'venv' / 'bin'}:{env['PATH']}"
        for mutate in steps:
            if mutate is not None:
                mutate(src)
            while int(time.time()) <= last:  # generations are named by integer seconds
                time.sleep(0.2)
            cmd = [
                str(agent_bin(agent_work)),
                "--action", "backup", "--mode", "fs", "--engine", "tar",
                *_ssh_flags(server, container),
                "--path-to-backup", str(src), "--backup-name", NAME, "--hostname", t.HOST,
                "--log-file", str(work / "agent.log"),
                *flags,
            ]  # fmt: skip
            r = _run(cmd, env)
            if r.returncode != 0:
                sys.exit(f"freezer-agent failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
            last = t.newest_ts(container)
            level = next(
                int(p.name.split("_")[0]) for p in container.glob(f"metadata/*/*/*/*_{last}")
            )
            gens.append(
                {"timestamp": last, "level": level, "flags": flags, "tree": t.snapshot(src)}
            )
        # The agent's own restore, over ssh too: recorded, as the local fixtures record it.
        for g in gens:
            target = work / "upstream-restore"
            shutil.rmtree(target, ignore_errors=True)
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(g["timestamp"])))  # type: ignore[call-overload]
            r = _run(
                [
                    str(agent_bin(agent_work)),
                    "--action",
                    "restore",
                    "--mode",
                    "fs",
                    "--engine",
                    "tar",
                    *_ssh_flags(server, container),
                    "--backup-name",
                    NAME,
                    "--hostname",
                    t.HOST,
                    "--restore-abs-path",
                    str(target),
                    "--restore-from-date",
                    when,
                    "--log-file",
                    str(work / "agent.log"),
                ],  # fmt: skip
                env,
            )
            if r.returncode != 0:
                g["upstream_restore"] = f"failed (exit {r.returncode})"
            else:
                got = t.snapshot(target)
                g["upstream_restore"] = "same" if got == g["tree"] else t._diff(g["tree"], got)
    doc: dict[str, object] = {
        "freezer_version": t.FREEZER_VERSION,
        "engine": "tar",
        "storage": "ssh",
        "backup": f"{t.HOST}_{NAME}",
        "hostname": t.HOST,
        "backup_name": NAME,
        "passphrase_file": None,
        "notes": "written by freezer-agent --storage ssh into a loopback OpenSSH sshd",
        "generations": gens,
    }
    (out / f"{SCENARIO}.expected.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return doc


def main() -> None:
    tools().ensure_venv(AGENT_WORK)  # freezer==19.0.0 from PyPI, as the local fixtures use
    server = SSHServer.start()
    try:
        doc = generate(server, OUT, AGENT_WORK / "ssh-scratch")
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
    for g in doc["generations"]:  # type: ignore[union-attr]
        print(f"level {g['level']} at {g['timestamp']}: upstream restore {g['upstream_restore']}")


if __name__ == "__main__":
    main()
