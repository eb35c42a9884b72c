"""The ssh storage against a real OpenSSH server on loopback (tests/storage/sshd.py).

The whole storage contract, then what only ssh has: host-key checking, key authentication, a
connection killed under the storage, the server's own write-once rename and fsync, a full file
system on the server, and a repository backed up and restored through it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from freezer_ui.storage import (
    ObjectExists,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageFull,
    get_storage,
)
from freezer_ui.storage.ssh import AuthenticationFailed, HostKeyError, SSHStorage
from tests.storage.sshd import SSHServer, make_ssh_storage, missing_reason, shared_server

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    s = make_ssh_storage(tmp_path)
    yield s
    s.close()


@pytest.fixture
def server() -> SSHServer:
    return shared_server()


# ------------------------------------------------------------------ URL and options


def test_url_carries_options_and_reopens(server: SSHServer, tmp_path: Path) -> None:
    url = server.url(tmp_path / "r", timeout="7", channels="2")
    s = SSHStorage.from_url(url)
    try:
        assert (s.port, s.timeout, s.channels) == (server.port, 7.0, 2)
        assert s.key == str(server.client_key) and s.known_hosts == str(server.known_hosts)
        again = get_storage(s.url)
        assert (again.url, again.channels) == (s.url, 2)
        again.close()
    finally:
        s.close()


def test_keyword_options_override_query(server: SSHServer, tmp_path: Path) -> None:
    s = SSHStorage.from_url(server.url(tmp_path / "r", channels="2"), channels=3)
    assert s.channels == 3
    s.close()


def test_unknown_option_and_bad_url_refused(server: SSHServer, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="unknown ssh storage option.*colour"):
        SSHStorage.from_url(server.url(tmp_path / "r", colour="blue"))
    with pytest.raises(StorageError, match="not an ssh storage URL"):
        SSHStorage.from_url("ssh:///no/host")


# ------------------------------------------------------------------ host keys, authentication


def test_unknown_host_key_refused(server: SSHServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError, match=r"not in .*known_hosts.*SHA256:") as e:
        SSHStorage.from_url(server.url(tmp_path / "r"), known_hosts=str(empty))
    # The fingerprint offered is the server's real one, so the user can check it.
    fp = subprocess.run(
        ["ssh-keygen", "-lf", str(server.host_key.with_suffix(".pub"))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    assert fp in str(e.value)
    assert empty.read_text() == "", "an unknown key must never be added silently"
    assert not (tmp_path / "r").exists()


def test_changed_host_key_refused(server: SSHServer, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = other.with_suffix(".pub").read_text().split()[:2]
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[{server.host}]:{server.port} {kind} {blob}\n")
    with pytest.raises(HostKeyError, match="HOST KEY MISMATCH"):
        SSHStorage.from_url(server.url(tmp_path / "r"), known_hosts=str(kh))


def test_missing_known_hosts_file_is_a_clear_error(server: SSHServer, tmp_path: Path) -> None:
    with pytest.raises(HostKeyError, match="does not exist"):
        SSHStorage.from_url(server.url(tmp_path / "r"), known_hosts=str(tmp_path / "nope"))


def test_wrong_client_key_refused(server: SSHServer, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    with pytest.raises(AuthenticationFailed, match=f"authentication failed with key {stranger}"):
        SSHStorage.from_url(server.url(tmp_path / "r"), key=str(stranger))


def test_connection_refused_is_a_storage_error(server: SSHServer, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    url = server.url(tmp_path / "r").replace(f":{server.port}/", f":{port}/")
    kh = tmp_path / "kh"
    kh.write_text("")
    with pytest.raises(StorageError, match="cannot connect"):
        SSHStorage.from_url(url, known_hosts=str(kh), timeout=5)


# ------------------------------------------------------------------ dropped connections


def _kill_sessions(server: SSHServer) -> int:
    pids = server.session_pids()
    for pid in pids:
        os.kill(pid, 9)
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(pids)


def _fresh_server(tmp_path: Path) -> SSHServer:
    # Its own sshd, so killing "every session" hits only this test's connection.
    return SSHServer.start(tmp_path / "sshd")


def test_dropped_connection_recovered(tmp_path: Path) -> None:
    srv = _fresh_server(tmp_path)
    try:
        s = SSHStorage.from_url(srv.url(tmp_path / "r"))
        s.put("a/k", [b"before"])
        assert _kill_sessions(srv) >= 1
        # Each call meets the dead connection first and must reconnect by itself.
        assert s.get_bytes("a/k") == b"before"
        _kill_sessions(srv)
        s.put("a/k2", [b"after"])
        _kill_sessions(srv)
        assert {o.key for o in s.list()} == {"a/k", "a/k2"}
        _kill_sessions(srv)
        assert s.exists("a/k2") and s.get_range("a/k2", 1, 3) == b"fte"
        s.close()
    finally:
        srv.stop()


def test_get_resumes_after_drop_mid_stream(tmp_path: Path) -> None:
    srv = _fresh_server(tmp_path)
    try:
        s = SSHStorage.from_url(srv.url(tmp_path / "r"))
        data = os.urandom(5 * 1024 * 1024)
        s.put("big", [data])
        it = s.get("big")
        first = next(it)
        _kill_sessions(srv)
        rest = b"".join(it)
        assert first + rest == data
        s.close()
    finally:
        srv.stop()


def test_put_interrupted_by_drop_raises_and_leaves_only_debris(tmp_path: Path) -> None:
    srv = _fresh_server(tmp_path)
    try:
        s = SSHStorage.from_url(srv.url(tmp_path / "r"))

        def chunks() -> Iterator[bytes]:
            yield b"x" * 100_000
            _kill_sessions(srv)
            yield b"y" * 100_000

        with pytest.raises(StorageError, match="connection lost"):
            s.put("k", chunks())
        assert not s.exists("k")  # and the storage works again
        temps = [p.name for p in (tmp_path / "r").iterdir()]
        assert all(n.startswith(".tmp-") for n in temps)
        assert temps and s.remove_leftovers(older_than=3600) == 0  # too fresh to be debris
        assert s.remove_leftovers(older_than=0) == len(temps)
        assert list((tmp_path / "r").iterdir()) == []
        s.close()
    finally:
        srv.stop()


# ------------------------------------------------------------------ server-side guarantees


def test_rename_never_replaces_even_past_the_existence_check(storage: SSHStorage) -> None:
    """Two puts of one key that both passed the existence check: the server's RENAME (link +
    unlink in OpenSSH) must refuse the second, not overwrite the first."""

    def slow() -> Iterator[bytes]:
        yield b"slow writer"
        # The other put completes while this one is past its check and still writing.
        storage.put("k", [b"fast writer"])

    with pytest.raises(ObjectExists):
        storage.put("k", slow())
    assert storage.get_bytes("k") == b"fast writer"
    assert storage.remove_leftovers(older_than=0) == 0  # the loser's temp file is gone


def test_server_fsyncs_then_renames_without_replacing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What reached the server, from its own log: the temp file fsynced, closed, then the
    standard RENAME (not posix-rename@openssh.com, which would replace an existing key)."""
    import re

    caplog.set_level(logging.WARNING, logger="freezer_ui.storage.ssh")
    srv = SSHServer.start(tmp_path / "sshd", sftp_log_level="DEBUG3")
    try:
        s = SSHStorage.from_url(srv.url(tmp_path / "r"))
        s.put("a/k", [b"durable"])
        s.close()
    finally:
        srv.stop()
    events = [
        line
        for line in srv.sftp_log.read_text().splitlines()
        if re.match(r'(fsync|close|rename|posix-rename) "?', line)
    ]
    tmp = re.escape(str(tmp_path / "r" / "a")) + r"/\.tmp-[0-9a-f]+"
    assert len(events) == 3, events
    assert re.fullmatch(f'fsync "{tmp}"', events[0])
    assert re.fullmatch(f'close "{tmp}" bytes read 0 written 7', events[1])
    assert re.fullmatch(f'rename old "{tmp}" new "{tmp_path}/r/a/k"', events[2])
    assert "fsync@openssh.com" not in caplog.text  # no "server lacks the extension" warning


def test_threads_share_the_channel_pool(tmp_path: Path, server: SSHServer) -> None:
    s = SSHStorage.from_url(server.url(tmp_path / "r", channels="3"))
    errors: list[BaseException] = []
    payload = {f"t{i}/k{j}": os.urandom(50_000 + i * 1000 + j) for i in range(6) for j in range(5)}

    def worker(i: int) -> None:
        try:
            for j in range(5):
                key = f"t{i}/k{j}"
                s.put(key, [payload[key][:1000], payload[key][1000:]])
                assert s.get_bytes(key) == payload[key]
                assert s.get_range(key, 10, 20) == payload[key][10:30]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {o.key: o.size for o in s.list()} == {k: len(v) for k, v in payload.items()}
    assert len(s._idle) <= 3
    s.close()


def test_abandoned_get_gives_its_channel_back(tmp_path: Path, server: SSHServer) -> None:
    s = SSHStorage.from_url(server.url(tmp_path / "r", channels="1"))
    s.put("k", [os.urandom(3 << 20)])
    for _ in range(3):
        it = s.get("k")
        next(it)
        del it  # one channel only: a leaked one would block the next call for ever
    s.get("k")  # never iterated at all
    assert s.get_bytes("k")[:1] is not None
    s.close()


def test_missing_key_errors(storage: SSHStorage) -> None:
    with pytest.raises(ObjectNotFound):
        storage.get_range("a/b", 0, 1)
    assert not storage.exists("a")


# ------------------------------------------------------------------ a full file system


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_is_storage_full_and_leaves_nothing(small_fs: Path, server: SSHServer) -> None:
    s = SSHStorage.from_url(server.url(small_fs / "store"))
    s.put("small", [b"fits"])
    with pytest.raises(StorageFull, match="no space left"):
        s.put("big", (os.urandom(256 * 1024) for _ in range(16)))  # 4 MiB into 2 MiB
    assert not s.exists("big")
    assert sorted(p.name for p in (small_fs / "store").iterdir()) == ["small"]
    s.put("after", [b"room again"])  # the space of the failed put was given back
    assert s.get_bytes("after") == b"room again"
    s.close()


# ------------------------------------------------------------------ a repository through ssh


def test_repository_roundtrip_over_ssh(tmp_path: Path, server: SSHServer) -> None:
    from freezer_ui.engines.tar import TarEngine
    from freezer_ui.repository import ChunkerParams, Repository
    from tests.engines.treeutil import build_sample_tree, diff, snapshot

    src = tmp_path / "src"
    build_sample_tree(str(src))
    storage = get_storage(server.url(tmp_path / "repo"))
    chunker = ChunkerParams(avg=16 << 10, min=4 << 10, max=64 << 10, seed=3)
    Repository.init(storage, "pass phrase", chunker=chunker, pack_size=1 << 20, scrypt_n=1 << 10)
    repo = Repository.open(get_storage(storage.url), passphrase="pass phrase")
    engine = TarEngine(cache_dir=str(tmp_path / "cache"))
    res = engine.backup(repo, str(src), backup_name="ssh", hostname="h")
    assert repo.verify().ok
    again = Repository.open(get_storage(storage.url), passphrase="pass phrase")
    out = tmp_path / "out"
    engine.restore(again, res.generation_id, str(out))
    assert diff(snapshot(str(src), atime=False), snapshot(str(out), atime=False)) == []
    # The objects really are files on the server side, with no temp debris left.
    on_disk = {str(p.relative_to(tmp_path / "repo")) for p in (tmp_path / "repo").rglob("*")}
    assert "config" in on_disk and not any("/.tmp-" in p or p.startswith(".tmp-") for p in on_disk)
    storage.close()


# ------------------------------------------------------------------ measurement


def _measure() -> None:  # pragma: no cover - run by hand: python -m tests.storage.test_ssh
    """Throughput of put/get with 4 threads over 1, 2, 4 channels (and one thread as base)."""
    import resource
    import shutil
    import tempfile

    srv = SSHServer.start()
    try:
        with tempfile.TemporaryDirectory() as d:
            blob = os.urandom(4 << 20)
            for threads, channels in ((1, 1), (4, 1), (4, 2), (4, 4)):
                s = SSHStorage.from_url(
                    srv.url(f"{d}/c{threads}-{channels}", channels=str(channels))
                )
                per = 8
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                t0 = time.monotonic()

                def work(i: int, s: SSHStorage = s, per: int = per) -> None:
                    for j in range(per):
                        s.put(f"t{i}/{j}", [blob])
                    for j in range(per):
                        assert sum(len(b) for b in s.get(f"t{i}/{j}")) == len(blob)

                ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                wall = time.monotonic() - t0
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                for o in list(s.list()):
                    s.delete(o.key)  # keep the disk use of the whole run to one round
                mb = threads * per * len(blob) * 2 / 1e6
                cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
                print(
                    f"{threads} threads, {channels} channels: {mb:.0f} MB put+get in {wall:.2f} s "
                    f"wall ({mb / wall:.0f} MB/s), client CPU {cpu:.2f} s"
                )
                s.close()
    finally:
        srv.stop()
        shutil.rmtree(srv.workdir, ignore_errors=True)


if __name__ == "__main__":
    _measure()
