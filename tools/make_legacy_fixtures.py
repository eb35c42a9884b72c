#!/usr/bin/env python3
"""Generate the legacy-restore fixtures with the REAL upstream ``freezer-agent``.

Nothing here imitates Freezer's format: the script installs ``freezer==19.0.0`` from PyPI into a
private venv, starts a loopback stub Keystone (the agent insists on one, see NOTES-legacy.md),
builds small deterministic source trees, mutates them between runs, and lets the agent write its
backups to ``--storage local --container DIR``. After each run it records the source tree as the
expected restore result (path → type/mode/sha256/link target), keyed by the backup's timestamp.

    python tools/make_legacy_fixtures.py                  # writes tests/legacy/fixtures/
    python tools/make_legacy_fixtures.py --work /tmp/lw   # venv + scratch (bench/work/legacy)

Each scenario becomes ``fixtures/<scenario>/`` (a Freezer container: ``data/`` + ``metadata/``)
and ``fixtures/<scenario>.expected.json``. Re-running regenerates everything (timestamps differ).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@contextlib.contextmanager
def fake_keystone() -> Iterator[dict[str, str]]:
    """Run the benchmark's loopback stub Keystone (bench/fake_keystone.py); yield OS_* env vars.

    The agent needs a Keystone that answers even for --storage local (NOTES-legacy.md); the
    stub hands out a token and a catalog pointing back at itself, for any credentials.
    """
    from bench.fake_keystone import serve

    srv, port = serve(0)
    try:
        yield {
            "OS_AUTH_URL": f"http://127.0.0.1:{port}/v3",
            "OS_USERNAME": "legacy",
            "OS_PASSWORD": "legacy",
            "OS_PROJECT_NAME": "legacy",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_REGION_NAME": "RegionOne",
        }
    finally:
        srv.shutdown()
        srv.server_close()


FREEZER_VERSION = "19.0.0"
HOST = "legacyhost"
PASSPHRASE = "correct horse battery staple\n"


# ---------------------------------------------------------------------------- source trees


def blob(seed: str, size: int) -> bytes:
    """Deterministic incompressible-ish bytes (sha256 counter mode), so trees are reproducible."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:size])


def text(seed: str, lines: int) -> bytes:
    return "".join(f"{seed} line {i}\n" for i in range(lines)).encode()


def write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.write_bytes(data)
    path.chmod(mode)


def base_tree(root: Path) -> None:
    """A tree that exercises every member type the tar engine stores."""
    root.mkdir(parents=True)
    write(root / "readme.txt", text("readme", 50))
    write(root / "bin" / "run.sh", b"#!/bin/sh\necho legacy\n", 0o755)
    write(root / "data" / "random.bin", blob("random", 20_000))
    write(root / "data" / "zero.bin", bytes(30_000))
    write(root / "data" / "empty.txt", b"")
    write(root / "secret" / "key.pem", text("key", 5), 0o600)
    (root / "secret").chmod(0o700)
    write(root / "docs" / "a.txt", text("a", 20))
    write(root / "docs" / "b.txt", text("b", 20))
    write(root / "docs" / "sub" / "c.txt", text("c", 20))
    write(root / "with space é.txt", text("unicode", 3))
    long_dir = root / ("long_directory_name_" * 4) / ("nested_long_name_" * 4)
    write(long_dir / ("a_file_with_a_long_name_" * 3 + ".txt"), text("long", 4))
    (root / "emptydir").mkdir()
    os.symlink("readme.txt", root / "link-to-readme")
    os.symlink("docs/sub", root / "link-to-dir")
    os.symlink("../" * 3 + "x/" * 60 + "long-target", root / "link-long-target")
    os.symlink("does-not-exist", root / "dangling")
    os.link(root / "readme.txt", root / "hardlink-to-readme")


def rsync_tree(root: Path) -> None:
    """base_tree without dangling symlinks: 19.0.0's rsyncv2 calls os.path.getsize() on every
    entry, which raises for a dangling link inside its worker thread, and the agent then hangs."""
    base_tree(root)
    (root / "dangling").unlink()
    (root / "link-long-target").unlink()


def snapshot(root: Path) -> dict[str, dict[str, object]]:
    """Expected restore result: every entry under root (root itself excluded)."""
    out: dict[str, dict[str, object]] = {}
    if root.is_file():  # a single-file backup restores the file alone
        st = root.lstat()
        return {root.name: _entry(root, st)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = _entry(p, p.lstat())
    return dict(sorted(out.items()))


def _entry(p: Path, st: os.stat_result) -> dict[str, object]:
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return {"type": "symlink", "target": os.readlink(p)}
    if stat.S_ISDIR(st.st_mode):
        return {"type": "dir", "mode": mode}
    return {
        "type": "file",
        "mode": mode,
        "size": st.st_size,
        "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        "mtime": int(st.st_mtime),
    }


# ---------------------------------------------------------------------------- mutations


def m_modify_delete_add(root: Path) -> None:
    write(root / "readme.txt", text("readme v2", 60))  # hard link partner keeps old inode? no:
    # write() unlinks first, so the hard link now points at the old content: both must restore.
    (root / "docs" / "b.txt").unlink()
    write(root / "docs" / "new.txt", text("new", 10))
    write(root / "data" / "random.bin", blob("random v2", 20_000))
    (root / "emptydir" / "now-not-empty").write_bytes(b"x\n")


def m_renames(root: Path) -> None:
    (root / "docs" / "a.txt").rename(root / "docs" / "a-renamed.txt")
    (root / "docs").rename(root / "documents")  # directory rename: GNU tar writes R/T codes
    (root / "link-to-dir").unlink()
    os.symlink("documents/sub", root / "link-to-dir")
    (root / "link-to-readme").unlink()  # symlink → regular file at the same name
    write(root / "link-to-readme", text("now a file", 2))
    (root / "bin" / "run.sh").chmod(0o700)  # mode-only change (ctime moves)


def m_type_swaps_and_deletes(root: Path) -> None:
    shutil.rmtree(root / "secret")  # whole directory deleted
    write(root / "secret", text("secret is a file now", 1), 0o640)  # dir → file
    (root / "data" / "zero.bin").unlink()
    (root / "data" / "zero.bin").mkdir()  # file → dir
    write(root / "data" / "zero.bin" / "inner.txt", text("inner", 3))
    os.link(root / "documents" / "new.txt", root / "documents" / "new-hardlink.txt")


def m_small_change(tag: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        write(root / "changes" / f"{tag}.txt", text(tag, 5))
        write(root / "readme.txt", text(f"readme {tag}", 10))

    return f


def m_remove_file(name: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        (root / name).unlink()

    return f


def rs_tree(root: Path) -> None:
    """rsync_tree plus a 64 KiB file: 16 blocks of rsyncv2's default 4096, to patch in places."""
    rsync_tree(root)
    write(root / "data" / "big.bin", blob("big", 65_536))


def _patch_bytes(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:  # in place: same inode, only these bytes change
        f.seek(offset)
        f.write(data)


def m_rs_blocks(root: Path) -> None:
    """Block deltas: change blocks 1 and 9 of big.bin, the last (short) block of random.bin,
    append to a text file, add a file, delete a file."""
    big = root / "data" / "big.bin"
    _patch_bytes(big, 4096 + 100, b"changed block one")
    _patch_bytes(big, 9 * 4096, blob("nine", 4096))
    _patch_bytes(root / "data" / "random.bin", 19_990, b"tail-edit!")
    with open(root / "docs" / "a.txt", "ab") as f:
        f.write(text("appended", 300))  # grows past a block boundary
    write(root / "docs" / "new.txt", text("new", 10))
    (root / "docs" / "b.txt").unlink()


def m_rs_truncate(root: Path) -> None:
    """Truncation: mid-block (zero.bin, its kept blocks unchanged), on a block boundary
    (big.bin to 8 blocks, blocks unchanged), and shrink + rewrite (random.bin)."""
    os.truncate(root / "data" / "zero.bin", 10_000)
    os.truncate(root / "data" / "big.bin", 8 * 4096)
    write(root / "data" / "random.bin", blob("random v3", 5_000))
    (root / "emptydir" / "now-not-empty").write_bytes(b"x\n")


def m_rs_renames_deletes(root: Path) -> None:
    """Deletion of a whole tree, renames (file and directory), dir→file, file→dir, a symlink
    retargeted and one turned into a file, a mode-only change."""
    (root / "docs" / "a.txt").rename(root / "docs" / "a-renamed.txt")
    (root / "docs").rename(root / "documents")
    (root / "link-to-dir").unlink()
    os.symlink("documents/sub", root / "link-to-dir")
    (root / "link-to-readme").unlink()
    write(root / "link-to-readme", text("now a file", 2))
    shutil.rmtree(root / "secret")
    write(root / "secret", text("secret is a file now", 1), 0o640)
    (root / "data" / "zero.bin").unlink()
    (root / "data" / "zero.bin").mkdir()
    write(root / "data" / "zero.bin" / "inner.txt", text("inner", 3))
    (root / "bin" / "run.sh").chmod(0o700)


def rs1_tree(root: Path) -> None:
    """rs_tree for the rsync v1 engine: no symlink to a directory (v1 never stores one: os.walk
    lists it among the directories, and v1 processes only each walked root and its files), a
    symlink to a file instead, which the increments retarget."""
    rs_tree(root)
    (root / "link-to-dir").unlink()
    os.symlink("docs/a.txt", root / "link-to-a")


def m_rs1_renames_deletes(root: Path) -> None:
    """m_rs_renames_deletes for v1: the same changes, with a file symlink retargeted."""
    (root / "docs" / "a.txt").rename(root / "docs" / "a-renamed.txt")
    (root / "docs").rename(root / "documents")
    (root / "link-to-a").unlink()
    os.symlink("documents/a-renamed.txt", root / "link-to-a")
    (root / "link-to-readme").unlink()
    write(root / "link-to-readme", text("now a file", 2))
    shutil.rmtree(root / "secret")
    write(root / "secret", text("secret is a file now", 1), 0o640)
    (root / "data" / "zero.bin").unlink()
    (root / "data" / "zero.bin").mkdir()
    write(root / "data" / "zero.bin" / "inner.txt", text("inner", 3))
    (root / "bin" / "run.sh").chmod(0o700)


def m_rs1_shift(root: Path) -> None:
    """Insert bytes mid-file: v1's delta numbers the rolling checksum's outputs, not blocks,
    so it stores this file wrongly (docs/legacy.md)."""
    big = root / "data" / "big.bin"
    raw = big.read_bytes()
    big.write_bytes(raw[:100] + b"ten bytes!" + raw[100:])


def small_tree(root: Path) -> None:
    """A few small text files: compressed in one piece, which encrypted rsync v1 needs."""
    write(root / "readme.txt", text("readme", 20))
    write(root / "docs" / "a.txt", text("a", 30))
    write(root / "secret" / "key.pem", text("key", 5), 0o600)
    os.symlink("readme.txt", root / "link-to-readme")


# POSIX ACLs as the kernel stores them (system.posix_acl_*): version 2, then (tag, perm, id)
ACL_TAGS = {"user_obj": 0x01, "user": 0x02, "group_obj": 0x04, "group": 0x08, "mask": 0x10,
            "other": 0x20}  # fmt: skip


def acl_xattr(*entries: tuple[str, int, int]) -> bytes:
    """Entries (tag, perms, id) in the kernel's order; the id only for named users/groups."""
    out = struct.pack("<I", 2)
    for tag, perm, ident in entries:
        out += struct.pack("<HHI", ACL_TAGS[tag], perm, ident if ident >= 0 else 0xFFFFFFFF)
    return out


def acl_tree(root: Path) -> None:
    """small_tree with ACLs (setfacl is not needed: the xattrs are what it would write):
    a file readable by user nobody (65534), a directory with a default ACL for group nogroup."""
    small_tree(root)
    os.setxattr(
        root / "readme.txt", "system.posix_acl_access",
        acl_xattr(("user_obj", 6, -1), ("user", 4, 65534), ("group_obj", 4, -1), ("mask", 4, -1),
                  ("other", 4, -1)),
    )  # fmt: skip
    shared = root / "shared"
    shared.mkdir()
    os.setxattr(
        shared, "system.posix_acl_default",
        acl_xattr(("user_obj", 7, -1), ("group_obj", 5, -1), ("group", 7, 65534), ("mask", 7, -1),
                  ("other", 0, -1)),
    )  # fmt: skip
    write(shared / "plan.txt", text("plan", 3))  # inherits the default: an access ACL of its own


def m_acl_change(root: Path) -> None:
    """An ACL-only change (ctime moves, so tar stores the file again with its new ACL)."""
    os.setxattr(
        root / "readme.txt", "system.posix_acl_access",
        acl_xattr(("user_obj", 6, -1), ("group_obj", 4, -1), ("group", 6, 65534), ("mask", 6, -1),
                  ("other", 0, -1)),
    )  # fmt: skip


def acls(root: Path) -> dict[str, dict[str, str]]:
    """path → {"access"|"default": hex of the system.posix_acl_* xattr}, for entries that have
    one: what a restore must give back byte for byte."""
    out: dict[str, dict[str, str]] = {}
    for p in [root, *sorted(root.rglob("*"))]:
        if p.is_symlink():
            continue
        for kind in ("access", "default"):
            try:
                value = os.getxattr(p, f"system.posix_acl_{kind}")
            except OSError:
                continue
            out.setdefault(str(p.relative_to(root)), {})[kind] = value.hex()
    return out


def m_single_file_change(root: Path) -> None:
    write(root, text("single file v2", 100))


# ---------------------------------------------------------------------------- agent runner


class Agent:
    def __init__(self, work: Path, env: dict[str, str], venv: str = "venv") -> None:
        self.work = work
        self.env = env
        self.bin = work / venv / "bin" / "freezer-agent"
        self.last_ts = 0

    def backup(
        self, container: Path, source: Path, name: str, extra: list[str], env=None, engine="tar"
    ) -> None:
        # Freezer names generations by integer seconds: never let two runs share a second.
        while int(time.time()) <= self.last_ts:
            time.sleep(0.2)
        cmd = [
            str(self.bin),
            "--action", "backup", "--mode", "fs", "--engine", engine,
            "--storage", "local", "--container", str(container),
            "--path-to-backup", str(source), "--backup-name", name, "--hostname", HOST,
            "--log-file", str(self.work / "agent.log"),
            *extra,
        ]  # fmt: skip
        try:
            # rsync engines can hang forever on Python 3 (NOTES-legacy.md): never wait for ever.
            r = subprocess.run(
                cmd, env=env or self.env, capture_output=True, text=True, timeout=300
            )
        except subprocess.TimeoutExpired:
            sys.exit(f"freezer-agent hung (killed after 300 s): {' '.join(cmd)}")
        if r.returncode != 0:
            sys.exit(f"freezer-agent failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-3000:]}")
        self.last_ts = newest_ts(container)

    def restore(
        self,
        container: Path,
        name: str,
        target: Path,
        ts: int,
        extra: list[str],
        env=None,
        engine="tar",
    ) -> subprocess.CompletedProcess[str] | None:
        """Upstream's own restore at a date (19.0 reads --restore-from-date as UTC)."""
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
        cmd = [
            str(self.bin),
            "--action", "restore", "--mode", "fs", "--engine", engine,
            "--storage", "local", "--container", str(container),
            "--backup-name", name, "--hostname", HOST,
            "--restore-abs-path", str(target), "--restore-from-date", when,
            "--log-file", str(self.work / "agent.log"),
            *extra,
        ]  # fmt: skip
        try:
            return subprocess.run(
                cmd, env=env or self.env, capture_output=True, text=True, timeout=300
            )
        except subprocess.TimeoutExpired:
            return None


def newest_ts(container: Path) -> int:
    tss = [int(p.name.split("_")[1]) for p in container.glob("metadata/*/*/*/*")]
    return max(tss, default=0)


RSYNC_V1_SCENARIOS = (
    "rsync-gzip-shift",
    "rsync-bzip2-enc",
    "rsync-gzip-inc",
    "rsync-bzip2-inc",
    "rsync-gzip-enc",
    "rsync-gzip-enc-pieces",
)
PATCHES = REPO / "tools" / "legacy_patches"
RSYNC_PATCH = PATCHES / "freezer-19.0.0-rsyncv2-py3.patch"
CRYPT_PATCH = PATCHES / "freezer-19.0.0-crypt-py3.patch"
RSYNC_V1_PATCH = PATCHES / "freezer-19.0.0-rsync-v1-py3.patch"


def ensure_venv(work: Path, name: str = "venv", patches: tuple[Path, ...] = ()) -> None:
    """A venv with freezer==19.0.0 from PyPI; ``patches`` (unified diffs against site-packages)
    are applied right after the install, once: the ``.patched`` stamp records which."""
    venv = work / name
    stamp = venv / ".patched"
    wanted = "".join(p.read_text() for p in patches)
    if (venv / "bin" / "freezer-agent").exists() and (
        not patches or (stamp.exists() and stamp.read_text() == wanted)
    ):
        return
    if venv.is_symlink():  # a link to a venv that has since gone away
        venv.unlink()
    if venv.exists():
        shutil.rmtree(venv)  # unpatched or patched differently: start from PyPI again
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"freezer=={FREEZER_VERSION}"], check=True
    )
    if patches:
        where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        site = subprocess.run(
            [str(venv / "bin" / "python"), "-c", where], check=True, capture_output=True, text=True
        ).stdout.strip()
        for patch in patches:
            subprocess.run(["patch", "-p1", "--forward", "-d", site, "-i", str(patch)], check=True)
        stamp.write_text(wanted)


def md5_openssl_wrapper(work: Path) -> Path:
    """A directory holding an ``openssl`` that forces ``-md md5``: what pre-1.1.0 hosts did.

    The agent finds openssl on PATH (``distutils.spawn.find_executable('openssl')``) and runs
    ``openssl enc -aes-256-cfb -pass file:F`` (``-d`` to restore). OpenSSL < 1.1.0 derived the key
    with EVP_BytesToKey(MD5); appending ``-md md5`` makes today's openssl do exactly that.
    """
    d = work / "openssl-md5"
    d.mkdir(parents=True, exist_ok=True)
    real = shutil.which("openssl")
    w = d / "openssl"
    w.write_text(f'#!/bin/sh\nexec {real} "$@" -md md5\n')
    w.chmod(0o755)
    return d


# ---------------------------------------------------------------------------- scenarios


def run_scenario(
    agent: Agent,
    out: Path,
    scenario: str,
    name: str,
    source: Path,
    steps: list[tuple[Callable[[Path], None] | None, list[str]]],
    *,
    make: Callable[[Path], None] = base_tree,
    env: dict[str, str] | None = None,
    notes: str = "",
    passphrase: bool = False,
    engine: str = "tar",
    restore_error: str | None = None,
    lossy: dict[str, list[str]] | None = None,
    record_acls: bool = False,
) -> None:
    container = out / scenario
    shutil.rmtree(container, ignore_errors=True)
    if source.exists() or source.is_symlink():
        shutil.rmtree(source) if source.is_dir() else source.unlink()
    make(source)
    gens = []
    for mutate, flags in steps:
        if mutate is not None:
            mutate(source)
        agent.backup(container, source, name, flags, env, engine)
        ts = agent.last_ts
        level = next(int(p.name.split("_")[0]) for p in container.glob(f"metadata/*/*/*/*_{ts}"))
        gens.append({"timestamp": ts, "level": level, "flags": flags, "tree": snapshot(source)})
        if record_acls:
            gens[-1]["acls"] = acls(source)
        print(f"  {scenario}: level {level} at {ts}", flush=True)
    # Cross-check: what does the real agent restore at each generation's date? Recorded, not
    # asserted: with --always-level upstream may pick a stale generation (NOTES-legacy.md).
    for g in gens:
        tgt = agent.work / "upstream-restore"
        shutil.rmtree(tgt, ignore_errors=True)
        enc = [x for x in g["flags"] if x == "--encrypt-pass-file"]
        extra = ["--encrypt-pass-file", g["flags"][g["flags"].index(enc[0]) + 1]] if enc else []
        r = agent.restore(container, name, tgt, g["timestamp"], extra, env, engine)
        if r is None:
            g["upstream_restore"] = "hung (killed after 300 s)"
        elif r.returncode != 0:
            g["upstream_restore"] = f"failed (exit {r.returncode})"
        else:
            got = snapshot(tgt)
            g["upstream_restore"] = "same" if got == g["tree"] else _diff(g["tree"], got)
        print(f"    upstream restore at {g['timestamp']}: {g['upstream_restore']}", flush=True)
    doc = {
        "freezer_version": FREEZER_VERSION,
        "engine": engine,
        "backup": f"{HOST}_{name}",
        "hostname": HOST,
        "backup_name": name,
        "passphrase_file": f"{scenario}.pass" if passphrase else None,
        "notes": notes,
        "generations": gens,
    }
    if restore_error:  # no restore can succeed: the tests expect this error (helpers.py)
        doc["restore_error"] = restore_error
    if lossy:  # level → paths the agent itself stored wrongly (the tests expect a warning)
        doc["lossy"] = lossy
    (out / f"{scenario}.expected.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def perf(work: Path, env: dict[str, str], agent: Agent | None = None, dirs: int = 20) -> None:
    """Time our restore against the agent's own on a ``dirs`` × 10 MB tree (200 MB by default;
    docs/legacy.md, "Speed"); ``agent``: the rsync v1 agent (its own venv) instead of tar."""
    from freezer_ui.engines import legacy

    base = work / "perf"
    shutil.rmtree(base, ignore_errors=True)
    src = base / "src"
    for d in range(dirs):
        for f in range(50):  # half incompressible, half zeros: 50 files of 200 kB per dir
            write(
                src / f"d{d}" / f"f{f}.bin", blob(f"{d}-{f}", 200_000) if f % 2 else bytes(200_000)
            )
    engine = "tar" if agent is None else "rsync"
    agent = agent or Agent(work, env)
    env = agent.env
    t = time.monotonic()
    agent.backup(base / "c", src, "perf", ["--compression", "gzip"], env, engine)
    print(f"agent backup ({engine}, level 0, gzip): {time.monotonic() - t:.1f} s")
    t = time.monotonic()
    r = agent.restore(base / "c", "perf", base / "upstream", agent.last_ts, [], env, engine)
    print(f"agent restore: {time.monotonic() - t:.1f} s (exit {r.returncode if r else 'hung'})")
    for label, paths in (("full", None), ("one file", [f"d{dirs // 3}/f3.bin"])):
        out = base / f"ours-{len(paths or [])}"
        t, c = time.monotonic(), os.times()
        res = legacy.restore(base / "c", f"{HOST}_perf", out, paths=paths)
        dt, c2 = time.monotonic() - t, os.times()
        cpu = (c2.user - c.user, c2.system - c.system)
        print(
            f"our restore, {label}: {dt:.1f} s wall {cpu[0]:.1f} user {cpu[1]:.1f} sys, "
            f"{res.stats.files} files, {res.stats.bytes} bytes"
        )
    stored = sum(p.stat().st_size for p in (base / "c").rglob("data") if p.is_file())
    print(f"stored: {stored} bytes")
    shutil.rmtree(base, ignore_errors=True)


def _diff(want: dict[str, dict[str, object]], got: dict[str, dict[str, object]]) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    return f"differs: missing {missing}, extra {extra}, changed {changed}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "legacy")
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "legacy" / "fixtures")
    ap.add_argument("--only", nargs="*", help="scenario names to (re)generate")
    ap.add_argument("--perf", action="store_true", help="time restores instead (no fixtures)")
    ap.add_argument(
        "--perf-rsync-v1",
        type=int,
        metavar="DIRS",
        help="the same with the patched rsync v1 agent on DIRS × 10 MB (its checksums are pure "
        "Python: 2 is 20 MB)",
    )
    args = ap.parse_args()
    work: Path = args.work.resolve()
    out: Path = args.out.resolve()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    ensure_venv(work)
    pass_file = work / "passphrase"
    pass_file.write_text(PASSPHRASE)
    src = work / "src"
    src.mkdir(exist_ok=True)

    with fake_keystone() as ks_env:
        env = dict(os.environ, **ks_env)
        env["PATH"] = f"{work / 'venv' / 'bin'}:{env['PATH']}"
        md5_env = dict(env, PATH=f"{md5_openssl_wrapper(work)}:{env['PATH']}")
        agent = Agent(work, env)
        if args.perf:
            perf(work, env)
            return
        if args.perf_rsync_v1:
            ensure_venv(work, "venv-rsync-v1-patched", (RSYNC_V1_PATCH, CRYPT_PATCH))
            v1env = dict(env, PATH=f"{work / 'venv-rsync-v1-patched' / 'bin'}:{os.environ['PATH']}")
            perf(work, v1env, Agent(work, v1env, "venv-rsync-v1-patched"), args.perf_rsync_v1)
            return
        inc = ["--incremental"]

        def want(s: str) -> bool:
            return not args.only or s in args.only

        # rsyncv2 above level 0 needs the one-line Python 3 fix (docs/legacy.md): its own venv,
        # so the unpatched agent keeps writing every other fixture.
        patched = None
        if any(want(s) for s in ("rsyncv2-gzip-inc", "rsyncv2-bzip2-inc", "rsyncv2-gzip-enc")):
            # The crypt fix only matters to encrypted runs: unencrypted output is unchanged.
            ensure_venv(work, "venv-rsyncv2-patched", (RSYNC_PATCH, CRYPT_PATCH))
            penv = dict(env, PATH=f"{work / 'venv-rsyncv2-patched' / 'bin'}:{os.environ['PATH']}")
            patched = Agent(work, penv, "venv-rsyncv2-patched")

        # rsync v1 cannot write even level 0 on Python 3 unpatched (docs/legacy.md): its own
        # venv with the v1 patch and the crypt one (only encrypted runs touch the latter).
        v1 = None
        if any(want(s) for s in RSYNC_V1_SCENARIOS):
            ensure_venv(work, "venv-rsync-v1-patched", (RSYNC_V1_PATCH, CRYPT_PATCH))
            v1env = dict(env, PATH=f"{work / 'venv-rsync-v1-patched' / 'bin'}:{os.environ['PATH']}")
            v1 = Agent(work, v1env, "venv-rsync-v1-patched")
        v1_note = f"agent patched with tools/legacy_patches/{RSYNC_V1_PATCH.name} (docs/legacy.md)"
        for comp in ("gzip", "bzip2"):
            sc = f"rsync-{comp}-inc"
            if want(sc):
                fl = [*inc, "--max-level", "3", "--compression", comp]
                run_scenario(
                    v1, out, sc, "rs", src / f"rs1-{comp}",
                    [
                        (None, fl),
                        (m_rs_blocks, fl),
                        (m_rs_truncate, fl),
                        (m_rs1_renames_deletes, fl),
                        (m_small_change("chain2-l0"), fl),  # max level reached: a second chain
                        (m_small_change("chain2-l1"), fl),
                    ],
                    make=rs1_tree,
                    engine="rsync",
                    notes=f"rsync v1 levels 0-3 then a second chain; {v1_note}",
                )  # fmt: skip
        if want("rsync-gzip-shift"):
            fl = [*inc, "--max-level", "3", "--compression", "gzip"]
            run_scenario(
                v1, out, "rsync-gzip-shift", "rs", src / "rs1shift",
                [(None, fl), (m_rs1_shift, fl)],
                make=rs1_tree,
                engine="rsync",
                notes="rsync v1, level 1 inserts 10 bytes into data/big.bin: upstream stores a "
                f"delta that does not rebuild the file; {v1_note}",
                lossy={"1": ["data/big.bin"]},
            )  # fmt: skip
        if want("rsync-gzip-enc"):
            shutil.copy(pass_file, out / "rsync-gzip-enc.pass")
            fl = [*inc, "--max-level", "3", "--compression", "gzip"]
            fl += ["--encrypt-pass-file", str(pass_file)]
            run_scenario(
                v1, out, "rsync-gzip-enc", "rs", src / "rs1enc",
                [(None, fl), (m_small_change("l1"), fl), (m_remove_file("docs/a.txt"), fl)],
                make=small_tree,
                engine="rsync",
                passphrase=True,
                notes="encrypted rsync v1, every level compressed in one piece (small); "
                f"{v1_note} and {CRYPT_PATCH.name}",
            )  # fmt: skip
        if want("rsync-bzip2-enc"):
            shutil.copy(pass_file, out / "rsync-bzip2-enc.pass")
            fl = [*inc, "--max-level", "3", "--compression", "bzip2"]
            fl += ["--encrypt-pass-file", str(pass_file)]
            run_scenario(
                v1, out, "rsync-bzip2-enc", "rs", src / "rs1encbz",
                [(None, fl), (m_small_change("l1"), fl)],
                make=small_tree,
                engine="rsync",
                passphrase=True,
                notes="encrypted rsync v1 with bzip2: nothing leaves the compressor before its "
                f"final flush at this size (one piece); {v1_note} and {CRYPT_PATCH.name}",
            )  # fmt: skip
        if want("rsync-gzip-enc-pieces"):
            # Real-size data: zlib emits several blocks, each encrypted with a restarted cipher.
            shutil.copy(pass_file, out / "rsync-gzip-enc-pieces.pass")
            fl = [*inc, "--max-level", "3", "--compression", "gzip"]
            fl += ["--encrypt-pass-file", str(pass_file)]
            run_scenario(
                v1, out, "rsync-gzip-enc-pieces", "rs", src / "rs1pieces",
                [(None, fl)],
                make=rs1_tree,
                engine="rsync",
                passphrase=True,
                notes="encrypted rsync v1 whose level 0 came out of zlib in several pieces: "
                "cannot be decrypted (docs/legacy.md)",
                restore_error="CorruptArchive",
            )  # fmt: skip
        if want("tar-gzip-maxlevel"):
            ml = [*inc, "--max-level", "3", "--compression", "gzip"]
            run_scenario(
                agent, out, "tar-gzip-maxlevel", "fs", src / "maxlevel",
                [
                    (None, ml),
                    (m_modify_delete_add, ml),
                    (m_renames, ml),
                    (m_type_swaps_and_deletes, ml),
                    (m_small_change("chain2-l0"), ml),  # max level reached: a second chain
                    (m_small_change("chain2-l1"), ml),
                ],
                notes="levels 0-3 then a second chain (0, 1) under the same name",
            )  # fmt: skip
        for comp in ("bzip2", "xz"):
            sc = f"tar-{comp}"
            if want(sc):
                fl = [*inc, "--max-level", "2", "--compression", comp]
                run_scenario(
                    agent, out, sc, "fs", src / comp,
                    [(None, fl), (m_modify_delete_add, fl), (m_renames, fl)],
                )  # fmt: skip
        if want("tar-gzip-always"):
            al = [*inc, "--always-level", "2", "--compression", "gzip"]
            run_scenario(
                agent, out, "tar-gzip-always", "fs", src / "always",
                [
                    (None, al),
                    (m_small_change("l1"), al),
                    (m_small_change("l2-a"), al),
                    (m_small_change("l2-b"), al),
                    (m_remove_file("changes/l2-a.txt"), al),
                ],
                notes="--always-level 2: 0, 1, then every run is level 2 against level 1",
            )  # fmt: skip
        if want("tar-gzip-enc-sha256"):
            shutil.copy(pass_file, out / "tar-gzip-enc-sha256.pass")
            fl = [*inc, "--max-level", "2", "--compression", "gzip"]
            fl += ["--encrypt-pass-file", str(pass_file)]
            run_scenario(
                agent, out, "tar-gzip-enc-sha256", "fs", src / "enc256",
                [(None, fl), (m_modify_delete_add, fl)],
                passphrase=True,
                notes="openssl enc -aes-256-cfb, EVP_BytesToKey(SHA-256): the host's OpenSSL 3",
            )  # fmt: skip
        if want("tar-xz-enc-md5"):
            shutil.copy(pass_file, out / "tar-xz-enc-md5.pass")
            fl = [*inc, "--max-level", "2", "--compression", "xz"]
            fl += ["--encrypt-pass-file", str(pass_file)]
            run_scenario(
                agent, out, "tar-xz-enc-md5", "fs", src / "encmd5",
                [(None, fl), (m_renames, fl)],
                env=md5_env,
                passphrase=True,
                notes="openssl wrapper on PATH appends '-md md5' (OpenSSL < 1.1.0 behaviour)",
            )  # fmt: skip
        if want("tar-gzip-singlefile"):
            fl = [*inc, "--max-level", "2", "--compression", "gzip"]
            run_scenario(
                agent, out, "tar-gzip-singlefile", "file", src / "single.txt",
                [(None, fl), (m_single_file_change, fl)],
                make=lambda p: write(p, text("single file", 100), 0o640),
                notes="--path-to-backup names a file: the agent tars it from its parent dir",
            )  # fmt: skip
        for comp in ("gzip", "bzip2"):
            sc = f"rsyncv2-{comp}-l0"
            if want(sc):
                # Level 0 only: on Python 3, 19.0.0's rsyncv2 hangs at level 1, and cannot
                # encrypt at all (str + bytes in its crypt module).
                run_scenario(
                    agent, out, sc, "rs", src / f"rs-{comp}",
                    [(None, ["--compression", comp])],
                    make=rsync_tree,
                    engine="rsyncv2",
                    notes="rsyncv2 level 0 (what Python 3 agents can write)",
                )  # fmt: skip
        for comp in ("gzip", "bzip2"):
            sc = f"rsyncv2-{comp}-inc"
            if want(sc):
                fl = [*inc, "--max-level", "3", "--compression", comp]
                run_scenario(
                    patched, out, sc, "rs", src / f"rsinc-{comp}",
                    [
                        (None, fl),
                        (m_rs_blocks, fl),
                        (m_rs_truncate, fl),
                        (m_rs_renames_deletes, fl),
                        (m_small_change("chain2-l0"), fl),  # max level reached: a second chain
                        (m_small_change("chain2-l1"), fl),
                    ],
                    make=rs_tree,
                    engine="rsyncv2",
                    notes="rsyncv2 levels 0-3 then a second chain; agent patched with "
                    f"tools/legacy_patches/{RSYNC_PATCH.name} (docs/legacy.md)",
                )  # fmt: skip
        if want("rsyncv2-gzip-enc"):
            shutil.copy(pass_file, out / "rsyncv2-gzip-enc.pass")
            fl = [*inc, "--max-level", "3", "--compression", "gzip"]
            fl += ["--encrypt-pass-file", str(pass_file)]
            run_scenario(
                patched, out, "rsyncv2-gzip-enc", "rs", src / "rsenc",
                [(None, fl), (m_rs_blocks, fl), (m_rs_truncate, fl)],
                make=rs_tree,
                engine="rsyncv2",
                passphrase=True,
                notes="encrypted rsyncv2 (one segment per level); agent patched with "
                f"{RSYNC_PATCH.name} and {CRYPT_PATCH.name} (docs/legacy.md)",
            )  # fmt: skip
        if want("tar-gzip-acls"):
            # The agent never asks tar for ACLs; GNU tar reads TAR_OPTIONS from the environment
            # the agent passes on, which is the one way an upstream archive gets them.
            acl_env = dict(env, TAR_OPTIONS="--acls --format=posix")
            fl = [*inc, "--max-level", "2", "--compression", "gzip"]
            run_scenario(
                agent, out, "tar-gzip-acls", "fs", src / "acls",
                [(None, fl), (m_acl_change, fl)],
                make=acl_tree,
                env=acl_env,
                notes="TAR_OPTIONS='--acls --format=posix' in the agent's environment: pax "
                "SCHILY.acl.access/default records (the agent itself never passes --acls)",
                record_acls=True,
            )  # fmt: skip
        if want("tar-gzip-failed-run"):
            fl = [*inc, "--max-level", "3", "--compression", "gzip"]
            run_scenario(
                agent, out, "tar-gzip-failed-run", "fs", src / "failed",
                [(None, fl), (m_small_change("l1"), fl)],
                notes="level 1's metadata removed after the run: the footprint of a run killed "
                "before its metadata was written (the agent writes it last)",
            )  # fmt: skip
            doc_path = out / "tar-gzip-failed-run.expected.json"
            doc = json.loads(doc_path.read_text())
            failed = doc["generations"].pop()
            for meta in (out / "tar-gzip-failed-run").glob(
                f"metadata/*/*/*/*_{failed['timestamp']}"
            ):
                shutil.rmtree(meta)
            doc["failed_timestamps"] = [failed["timestamp"]]
            doc_path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")

    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"fixtures in {out}: {total} bytes")


if __name__ == "__main__":
    main()
