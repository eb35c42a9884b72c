"""Write upstream Freezer containers with the REAL freezer 19.0.0 agent through ITS OWN ssh and
swift storages: into a real sshd on loopback (tests/storage/sshd.py), and into a real Swift
all-in-one (tests/storage/swiftaio.py) behind a real Keystone (the demo's).

    .venv/bin/python -m tests.legacy.remote_make_fixture [ssh|swift|s3]  # -> remote_fixtures/

**swift**: the agent authenticates with Keystone and uploads each level's stream as
``<gen>/segments/00000000``... plus a zero-byte Dynamic Large Object manifest ``<gen>/data``
(``--max-segment-size 8192`` so a level has several segments).  Every object is then copied as
stored into ``remote_fixtures/swift-tar-gzip/<key>``; the manifest's ``X-Object-Manifest`` header
is not kept, because our reader joins the segments itself and never relies on it.

**s3**: the agent (``--storage s3 --endpoint --access-key --secret-key``) writes into Swift's
s3api in the same all-in-one (tempauth user ``test:tester``).  freezer 19.0.0 cannot finish a
backup there (see :func:`generate_s3`): the fixture ``s3-tar-gzip`` is what it really leaves,
and ``s3-tar-gzip.expected.json`` records the agent's own verdicts.

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
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tests.storage.sshd import SSHServer

REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "remote_fixtures"
AGENT_WORK = REPO / "bench" / "work" / "legacy"
SCENARIO = "ssh-tar-gzip"
SWIFT_SCENARIO = "swift-tar-gzip"
S3_SCENARIO = "s3-tar-gzip"
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


@dataclass
class Target:
    """Where the agent writes: its storage flags and how to list what it stored."""

    scenario: str
    storage: str
    flags: list[str]
    keys: Callable[[], list[str]]  # every object key of the container
    notes: str
    env: dict[str, str] | None = None  # a real Keystone's openrc; None: the tools' stub


def ssh_target(server: SSHServer, container: Path) -> Target:
    def keys() -> list[str]:
        return [p.relative_to(container).as_posix() for p in container.rglob("*") if p.is_file()]

    return Target(
        SCENARIO,
        "ssh",
        _ssh_flags(server, container),
        keys,
        "written by freezer-agent --storage ssh into a loopback OpenSSH sshd",
    )


def _newest(keys: list[str]) -> tuple[int, int]:
    """(timestamp, level) of the newest generation among metadata keys
    ``metadata/<engine>/<host>_<name>/<L0ts>/<level>_<ts>/metadata``."""
    gens = []
    for key in keys:
        parts = key.split("/")
        if len(parts) == 6 and parts[0] == "metadata" and parts[5] == "metadata":
            level, _, ts = parts[4].partition("_")
            gens.append((int(ts), int(level)))
    return max(gens)


def generate(
    target: Target, out: Path, work: Path, *, agent_work: Path = AGENT_WORK
) -> dict[str, object]:
    """Run the scenario; return the expected document (also written next to the container)."""
    t = tools()
    out.mkdir(parents=True, exist_ok=True)
    src = work / "src"
    shutil.rmtree(src, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    t.base_tree(src)
    flags = ["--incremental", "--max-level", "3", "--compression", "gzip"]
    steps = [None, t.m_modify_delete_add, t.m_renames]
    gens: list[dict[str, object]] = []
    last = 0
    with t.fake_keystone() as stub_env:
        env = dict(os.environ, **(stub_env if target.env is None else target.env))
        env["PATH"] = f"{agent_work / 'venv' / 'bin'}:{env['PATH']}"
        for mutate in steps:
            if mutate is not None:
                mutate(src)
            while int(time.time()) <= last:  # generations are named by integer seconds
                time.sleep(0.2)
            cmd = [
                str(agent_bin(agent_work)),
                "--action", "backup", "--mode", "fs", "--engine", "tar",
                *target.flags,
                "--path-to-backup", str(src), "--backup-name", NAME, "--hostname", t.HOST,
                "--log-file", str(work / "agent.log"),
                *flags,
            ]  # fmt: skip
            r = _run(cmd, env)
            if r.returncode != 0:
                sys.exit(f"freezer-agent failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
            last, level = _newest(target.keys())
            gens.append(
                {"timestamp": last, "level": level, "flags": flags, "tree": t.snapshot(src)}
            )
        # The agent's own restore, over the same storage: recorded, as the local fixtures
        # record it.
        for g in gens:
            dest = work / "upstream-restore"
            shutil.rmtree(dest, ignore_errors=True)
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
                    *target.flags,
                    "--backup-name",
                    NAME,
                    "--hostname",
                    t.HOST,
                    "--restore-abs-path",
                    str(dest),
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
                got = t.snapshot(dest)
                g["upstream_restore"] = "same" if got == g["tree"] else t._diff(g["tree"], got)
    doc: dict[str, object] = {
        "freezer_version": t.FREEZER_VERSION,
        "engine": "tar",
        "storage": target.storage,
        "backup": f"{t.HOST}_{NAME}",
        "hostname": t.HOST,
        "backup_name": NAME,
        "passphrase_file": None,
        "notes": target.notes,
        "generations": gens,
    }
    (out / f"{target.scenario}.expected.json").write_text(
        json.dumps(doc, indent=1, sort_keys=True) + "\n"
    )
    return doc


def generate_ssh(out: Path, work: Path) -> dict[str, object]:
    server = SSHServer.start()
    try:
        container = out / SCENARIO
        shutil.rmtree(container, ignore_errors=True)
        return generate(ssh_target(server, container), out, work)
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def generate_swift(out: Path, work: Path) -> dict[str, object]:
    from freezer_ui.storage.swift import SwiftStorage
    from tests.storage import swiftaio

    aio = swiftaio.start()
    # A fresh Keystone each run: a reused database would keep the last run's catalog, whose
    # object-store endpoint names a proxy port that is gone.
    ks_dir = Path(tempfile.mkdtemp(prefix="keystone-", dir=work if work.is_dir() else None))
    keystone = swiftaio.keystone_with_swift(aio, ks_dir)
    try:
        env = swiftaio.keystone_env(keystone, "demo")
        env.update(OS_IDENTITY_API_VERSION="3", OS_INTERFACE="public")
        os.environ.update(env)  # SwiftStorage reads the same openrc the agent does
        container = f"freezer-fixture-{int(time.time())}"
        storage = SwiftStorage.from_url(f"swift://{container}/sub")
        flags = ["--storage", "swift", "--container", f"{container}/sub"]
        target = Target(
            SWIFT_SCENARIO,
            "swift",
            [*flags, "--max-segment-size", "8192"],
            lambda: sorted(o.key for o in storage.list()),
            "written by freezer-agent --storage swift (Keystone v3) into a Swift 2.38.3 "
            "all-in-one; objects copied as stored, the DLO manifest header not kept",
            env,
        )
        doc = generate(target, out, work)
        dest = out / SWIFT_SCENARIO
        shutil.rmtree(dest, ignore_errors=True)
        for obj in storage.list():
            path = dest.joinpath(*obj.key.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            # A GET of the zero-byte DLO manifest returns the joined segments; the listing
            # shows the manifest object itself, which is what is kept.
            path.write_bytes(storage.get_bytes(obj.key) if obj.size else b"")
        return doc
    finally:
        keystone.stop()
        aio.stop()
        shutil.rmtree(ks_dir, ignore_errors=True)


def _critical(stderr: str) -> str:
    """The agent's one-line verdict ("Critical Error: ...") from its stderr."""
    lines = [ln.strip() for ln in stderr.splitlines() if "Critical Error" in ln]
    return lines[-1] if lines else stderr.strip().splitlines()[-1] if stderr.strip() else ""


def generate_s3(out: Path, work: Path) -> dict[str, object]:
    """freezer 19.0.0's s3 storage, run for real against Swift's s3api.  It cannot finish a
    backup: after uploading the data stream (one multipart object ``.../data``), its
    ``put_file`` passes ``ContentLength=len(f)`` for an open file and dies with a TypeError
    before writing ``engine_metadata`` and ``metadata``.  So this records what the agent
    really leaves in the bucket, and its own verdicts on the backup and on a restore of it;
    the scenario does not stop at the first failure as ``generate`` does."""
    from freezer_ui.storage.s3 import S3Storage
    from tests.storage import swiftaio

    t = tools()
    aio = swiftaio.start()
    try:
        creds = aio.s3_credentials()
        bucket = f"freezer-fixture-{int(time.time())}"
        storage = S3Storage(bucket, "sub", **creds)
        flags = [
            "--storage", "s3",
            "--endpoint", creds["endpoint"],
            "--access-key", creds["access_key"],
            "--secret-key", creds["secret_key"],
            "--container", f"{bucket}/sub",
        ]  # fmt: skip
        src = work / "src"
        shutil.rmtree(src, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        t.base_tree(src)
        with t.fake_keystone() as stub_env:
            env = dict(os.environ, **stub_env)
            env["PATH"] = f"{AGENT_WORK / 'venv' / 'bin'}:{env['PATH']}"
            common = ["--mode", "fs", "--engine", "tar", *flags, "--backup-name", NAME,
                      "--hostname", t.HOST, "--log-file", str(work / "agent.log")]  # fmt: skip
            backup_flags = ["--incremental", "--max-level", "3", "--compression", "gzip"]
            r = _run(
                [str(agent_bin()), "--action", "backup", *common,
                 "--path-to-backup", str(src), *backup_flags],
                env,
            )  # fmt: skip
            backup_result = f"exit {r.returncode}: {_critical(r.stderr)}"
            objects = {o.key: o.size for o in storage.list()}
            dest = work / "upstream-restore"
            shutil.rmtree(dest, ignore_errors=True)
            r = _run(
                [str(agent_bin()), "--action", "restore", *common,
                 "--restore-abs-path", str(dest)],
                env,
            )  # fmt: skip
            restore_result = f"exit {r.returncode}: {_critical(r.stderr)}"
        data_keys = [k for k in objects if k.endswith("/data")]
        gens = []
        for key in data_keys:  # data/tar/<host>_<name>/<L0ts>/<level>_<ts>/data
            level, _, ts = key.split("/")[4].partition("_")
            gens.append(
                {"timestamp": int(ts), "level": int(level), "flags": backup_flags,
                 "tree": t.snapshot(src)}
            )  # fmt: skip
        doc: dict[str, object] = {
            "freezer_version": t.FREEZER_VERSION,
            "engine": "tar",
            "storage": "s3",
            "backup": f"{t.HOST}_{NAME}",
            "hostname": t.HOST,
            "backup_name": NAME,
            "passphrase_file": None,
            "notes": "written by freezer-agent --storage s3 into Swift 2.38.3's s3api (tempauth "
            "user), objects copied as stored; the agent's backup fails after the data upload, "
            "so no metadata exists (agent_backup, agent_restore)",
            "agent_backup": backup_result,
            "agent_restore": restore_result,
            "objects": objects,
            "generations": gens,
        }
        dest = out / S3_SCENARIO
        shutil.rmtree(dest, ignore_errors=True)
        for key in objects:
            path = dest.joinpath(*key.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(storage.get_bytes(key))
        (out / f"{S3_SCENARIO}.expected.json").write_text(
            json.dumps(doc, indent=1, sort_keys=True) + "\n"
        )
        storage.close()
        return doc
    finally:
        aio.stop()


def main() -> None:
    tools().ensure_venv(AGENT_WORK)  # freezer==19.0.0 from PyPI, as the local fixtures use
    which = sys.argv[1:] or ["ssh", "swift", "s3"]
    for name in which:
        make = {"ssh": generate_ssh, "swift": generate_swift, "s3": generate_s3}[name]
        doc = make(OUT, AGENT_WORK / f"{name}-scratch")
        if "agent_backup" in doc:
            print(f"{name}: agent backup {doc['agent_backup']}; restore {doc['agent_restore']}")
        for g in doc["generations"]:  # type: ignore[union-attr]
            print(
                f"{name} level {g['level']} at {g['timestamp']}: "
                f"upstream restore {g.get('upstream_restore', '-')}"
            )


if __name__ == "__main__":
    main()
