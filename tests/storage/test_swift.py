"""The swift storage against a real Swift all-in-one on loopback (tests/storage/swiftaio.py).

Skipped, with the install command, only when Swift's binaries are absent.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from swiftclient.client import Connection

from freezer_ui.storage import (
    STORAGE_TABLE,
    ObjectExists,
    ObjectNotFound,
    StorageError,
    StorageFull,
    get_storage,
)
from freezer_ui.storage.swift import SwiftStorage, settings_from_env
from tests.storage import swiftaio

_ENV_NAMES = [
    "OS_AUTH_URL",
    "OS_USERNAME",
    "OS_PASSWORD",
    "OS_PROJECT_NAME",
    "OS_PROJECT_ID",
    "OS_TENANT_NAME",
    "OS_TENANT_ID",
    "OS_AUTH_TOKEN",
    "OS_STORAGE_URL",
    "OS_REGION_NAME",
    "OS_INTERFACE",
    "OS_CACERT",
    "OS_USER_DOMAIN_NAME",
    "OS_PROJECT_DOMAIN_NAME",
    "OS_USER_DOMAIN_ID",
    "OS_PROJECT_DOMAIN_ID",
    "ST_AUTH",
    "ST_USER",
    "ST_KEY",
]


@pytest.fixture(scope="session")
def aio() -> swiftaio.SwiftAIO:
    try:
        return swiftaio.shared()
    except swiftaio.SwiftUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def swift_env(aio: swiftaio.SwiftAIO, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test user's credentials in the environment, as an agent started from an openrc has
    them, and "swift" in the storage table for this test (the registry adds it for good)."""
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in aio.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(STORAGE_TABLE, "swift", SwiftStorage)


def _container() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def storage(swift_env: None) -> Iterator[SwiftStorage]:
    s = SwiftStorage.from_url(f"swift://{_container()}")
    yield s
    s.close()


def _raw(aio: swiftaio.SwiftAIO) -> Connection:
    """A plain swiftclient connection, to look at what the storage wrote from outside."""
    creds = aio.credentials()
    return Connection(
        authurl=creds["auth_url"], user=creds["username"], key=creds["password"], auth_version="1"
    )


def _requests(aio: swiftaio.SwiftAIO, method: str, container: str) -> int:
    """How many client requests of ``method`` on the container itself the proxy logged."""
    needle = f" {method} /v1/AUTH_test/{container}%3F"
    return sum(
        1
        for line in aio.log("proxy").splitlines()
        if needle in line and "python-swiftclient" in line
    )


# -- write-once under real races ----------------------------------------------------------------


def _race(storage: SwiftStorage, key: str) -> dict[int, str]:
    start = threading.Barrier(2)
    results: dict[int, str] = {}

    def writer(i: int) -> None:
        start.wait()
        try:
            # 1 MiB each, in 64 KiB chunks: long enough for the two PUTs to overlap
            storage.put(key, (bytes([i]) * 65536 for _ in range(16)))
            results[i] = "ok"
        except ObjectExists:
            results[i] = "exists"

    threads = [threading.Thread(target=writer, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_threads_race_one_key_exactly_one_wins(storage: SwiftStorage) -> None:
    for round_ in range(5):
        key = f"race/{round_}"
        results = _race(storage, key)
        assert sorted(results.values()) == ["exists", "ok"]
        winner = next(i for i, r in results.items() if r == "ok")
        assert storage.get_bytes(key) == bytes([winner]) * (1 << 20)


def _paused_source(
    first: bytes, rest: bytes, started: threading.Event, go: threading.Event
) -> Iterator[bytes]:
    yield first
    started.set()
    assert go.wait(30), "the test never released this upload"
    yield rest


def _background_put(s: SwiftStorage, key: str, chunks: Iterator[bytes]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["size"] = s.put(key, chunks)
        except Exception as exc:  # handed to the test thread to assert on
            out["error"] = exc

    out["thread"] = threading.Thread(target=run)
    out["thread"].start()
    return out


def test_two_hosts_race_the_replaced_writer_gets_object_exists(
    aio: swiftaio.SwiftAIO, swift_env: None
) -> None:
    """Two storages (two hosts: separate pools, no shared lock).  A starts its PUT and
    stalls; B writes the whole key meanwhile; then A ends.  Swift accepts A's body, but B's
    object (newer timestamp) is what Swift keeps, so A must report ObjectExists."""
    container = _container()
    host_a = SwiftStorage(container, **aio.credentials())
    host_b = SwiftStorage(container, **aio.credentials())
    host_b.put("warmup", [b"x"])  # the container exists before the race
    started, go = threading.Event(), threading.Event()
    a = _background_put(host_a, "k", _paused_source(b"A" * 1000, b"A" * 1000, started, go))
    assert started.wait(30)
    # A's headers (and If-None-Match) reach the object server when its PUT starts; give the
    # loopback proxy ample time to get there before B creates the object.
    time.sleep(1.0)
    assert host_b.put("k", [b"B" * 2000]) == 2000
    go.set()
    a["thread"].join(30)
    assert isinstance(a.get("error"), ObjectExists), a
    assert host_a.get_bytes("k") == b"B" * 2000


def _overlapping_puts(first: SwiftStorage, second: SwiftStorage) -> list[bool]:
    """Two PUTs of one key that overlap: the first starts and stalls, the second starts and
    stalls, then the first ends, then the second.  Which of them returned without error."""
    a_started, a_go = threading.Event(), threading.Event()
    b_started, b_go = threading.Event(), threading.Event()
    a = _background_put(first, "k", _paused_source(b"A", b"A", a_started, a_go))
    assert a_started.wait(30)
    time.sleep(0.5)  # A's PUT has passed If-None-Match at the object server
    b = _background_put(second, "k", _paused_source(b"B", b"B", b_started, b_go))
    # B either waits for A (same process: the per-key lock) or passes If-None-Match too
    time.sleep(1.0)
    a_go.set()
    a["thread"].join(30)
    b_go.set()
    b["thread"].join(30)
    assert not a["thread"].is_alive() and not b["thread"].is_alive()
    for out in (a, b):
        assert "error" not in out or isinstance(out["error"], ObjectExists), out
    return ["error" not in a, "error" not in b]


def test_two_threads_overlapping_puts_exactly_one_wins(storage: SwiftStorage) -> None:
    """The case Swift cannot settle by itself (see the next test): inside one process the
    storage serialises PUTs of one key, so the second gets ObjectExists and the first's bytes
    stay."""
    storage.put("warmup", [b"x"])
    assert _overlapping_puts(storage, storage) == [True, False]
    assert storage.get_bytes("k") == b"AA"


@pytest.mark.xfail(
    strict=True,
    reason="Swift has no atomic create: if the first of two overlapping PUTs from two hosts "
    "ends (and checks) first, the second still replaces it and both succeed",
)
def test_two_hosts_overlapping_puts_exactly_one_wins(
    aio: swiftaio.SwiftAIO, swift_env: None
) -> None:
    container = _container()
    host_a = SwiftStorage(container, **aio.credentials())
    host_b = SwiftStorage(container, **aio.credentials())
    host_b.put("warmup", [b"x"])
    assert _overlapping_puts(host_a, host_b).count(True) == 1


# -- listing ----------------------------------------------------------------------------------


def test_listing_pages_with_a_small_limit(aio: swiftaio.SwiftAIO, swift_env: None) -> None:
    container = _container()
    s = SwiftStorage(container, listing_limit=5, **aio.credentials())
    keys = {f"data/{i:03d}" for i in range(23)} | {"other/x"}
    for k in keys:
        s.put(k, [k.encode()])
    before = _requests(aio, "GET", container)
    listed = list(s.list("data/"))
    assert {o.key for o in listed} == {k for k in keys if k.startswith("data/")}
    assert all(o.size == len(o.key) for o in listed)
    # 23 names in pages of 5: five requests, the last one short
    assert _requests(aio, "GET", container) - before == 5
    assert {o.key for o in s.list()} == keys


def test_listing_pages_at_the_clusters_limit(aio: swiftaio.SwiftAIO, swift_env: None) -> None:
    """The cluster caps listings at 20 names (swift.conf in swiftaio) and answers 412 to a
    larger limit: the storage reads the cap from /info and pages at it."""
    container = _container()
    s = SwiftStorage(container, **aio.credentials())  # asks for 10,000 by default
    n = 2 * swiftaio.CONTAINER_LISTING_LIMIT + swiftaio.CONTAINER_LISTING_LIMIT // 2
    for i in range(n):
        s.put(f"k{i:04d}", [b"v"])
    before = _requests(aio, "GET", container)
    assert sorted(o.key for o in s.list()) == [f"k{i:04d}" for i in range(n)]
    assert _requests(aio, "GET", container) - before == 3


def test_prefix_in_url_keeps_keys_under_it(aio: swiftaio.SwiftAIO, swift_env: None) -> None:
    container = _container()
    s = get_storage(f"swift://{container}/repos/one")
    other = get_storage(f"swift://{container}/repos/two")
    assert s.url == f"swift://{container}/repos/one"
    s.put("config", [b"1"])
    other.put("config", [b"2"])
    assert [o.key for o in s.list()] == ["config"]
    assert s.get_bytes("config") == b"1"
    names = [o["name"] for o in _raw(aio).get_container(container)[1]]
    assert names == ["repos/one/config", "repos/two/config"]


def test_keys_with_characters_urls_must_escape(storage: SwiftStorage) -> None:
    key = "dir/ünï cødé ✓?#%&+;=.txt"
    storage.put(key, [b"v"])
    assert storage.get_bytes(key) == b"v"
    assert storage.get_range(key, 0, 1) == b"v"
    assert [o.key for o in storage.list("dir/ü")] == [key]
    storage.delete(key)
    assert not storage.exists(key)


def test_foreign_names_are_not_listed(aio: swiftaio.SwiftAIO, storage: SwiftStorage) -> None:
    storage.put("mine", [b"x"])
    _raw(aio).put_object(storage.container, ".hidden", b"y")
    _raw(aio).put_object(storage.container, "a//b", b"z")
    assert [o.key for o in storage.list()] == ["mine"]


# -- errors -------------------------------------------------------------------------------------


def test_wrong_password_is_a_clear_storage_error(aio: swiftaio.SwiftAIO, swift_env: None) -> None:
    creds = {**aio.credentials(), "password": "not-the-key"}
    s = SwiftStorage(_container(), **creds)
    for op in (lambda: s.exists("k"), lambda: s.put("k", [b"x"]), lambda: list(s.list())):
        with pytest.raises(StorageError, match="Swift authentication failed") as info:
            op()
        assert type(info.value) is StorageError
        assert "test:tester" in str(info.value) and "not-the-key" not in str(info.value)


def test_no_credentials_at_all(swift_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ST_AUTH", "ST_USER", "ST_KEY"):
        monkeypatch.delenv(name)
    with pytest.raises(StorageError, match="no Swift credentials"):
        get_storage("swift://c")


def test_existing_token_and_storage_url(aio: swiftaio.SwiftAIO, swift_env: None) -> None:
    creds = aio.credentials()
    req = urllib.request.Request(
        creds["auth_url"],
        headers={"X-Auth-User": creds["username"], "X-Auth-Key": creds["password"]},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        token, url = resp.headers["X-Auth-Token"], resp.headers["X-Storage-Url"]
    container = _container()
    s = get_storage(f"swift://{container}", token=token, storage_url=url)
    s.put("k", [b"v"])
    assert s.get_bytes("k") == b"v"
    stale = SwiftStorage(container, token="AUTH_ftk-not-a-valid-fernet-token", storage_url=url)
    with pytest.raises(StorageError, match="authentication failed for the given token"):
        stale.get_bytes("k")


def test_container_quota_is_storage_full(aio: swiftaio.SwiftAIO, storage: SwiftStorage) -> None:
    storage.put("first", [b"x" * 100])
    _raw(aio).post_container(storage.container, {"X-Container-Meta-Quota-Bytes": "150"})
    # Swift checks a chunked upload against the bytes already stored (it cannot know the new
    # size): 100 <= 150 lets this one in, and the container is then over its quota.
    storage.put("second", [b"y" * 100])
    with pytest.raises(StorageFull, match="quota"):
        storage.put("third", [b"z" * 10])
    assert not storage.exists("third")
    assert {o.key for o in storage.list()} == {"first", "second"}


def test_object_over_the_clusters_max_size_is_refused(storage: SwiftStorage) -> None:
    block = b"\xab" * (1 << 20)
    limit = swiftaio.MAX_FILE_SIZE
    with pytest.raises(StorageError, match="maximum object size") as info:
        storage.put("huge", (block for _ in range(limit // len(block) + 1)))
    assert not isinstance(info.value, StorageFull)
    assert not storage.exists("huge")
    # exactly the limit is allowed
    assert storage.put("max", (block for _ in range(limit // len(block)))) == limit


def test_create_false_refuses_a_missing_container(aio: swiftaio.SwiftAIO, swift_env: None) -> None:
    s = get_storage(f"swift://{_container()}", create=False)
    assert list(s.list()) == [] and not s.exists("k")
    with pytest.raises(ObjectNotFound):
        s.get("k")
    with pytest.raises(StorageError, match="does not exist"):
        s.put("k", [b"v"])


def test_bad_urls() -> None:
    for url in ("swift://", "swift://c?x=1", "swift://c/../up", "s3://c"):
        with pytest.raises(StorageError):
            SwiftStorage.from_url(url, token="t", storage_url="http://127.0.0.1:1/v1/AUTH_x")


def test_closed_storage_refuses(storage: SwiftStorage) -> None:
    storage.put("k", [b"v"])
    stream = storage.get("k")
    storage.close()
    assert b"".join(stream) == b"v"  # a stream begun before close ends normally
    with pytest.raises(StorageError, match="closed"):
        storage.exists("k")


def test_many_threads_share_one_storage(storage: SwiftStorage) -> None:
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(10):
                key = f"t{t}/{i}"
                data = f"{t}:{i}".encode() * 100
                storage.put(key, [data])
                assert storage.get_bytes(key) == data
                assert storage.get_range(key, 2, 3) == data[2:5]
                assert storage.exists(key)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list(storage.list())) == 80


def test_settings_from_env_prefers_keystone_and_never_mixes() -> None:
    v1 = {"ST_AUTH": "http://h/auth/v1.0", "ST_USER": "a:u", "ST_KEY": "k"}
    assert settings_from_env(v1) == {
        "auth_version": "1",
        "auth_url": "http://h/auth/v1.0",
        "username": "a:u",
        "password": "k",
    }
    ks = {
        "OS_AUTH_URL": "http://k:5000/v3",
        "OS_USERNAME": "u",
        "OS_PASSWORD": "p",
        "OS_PROJECT_NAME": "demo",
        "OS_REGION_NAME": "RegionOne",
    }
    assert settings_from_env({**ks, **v1}) == {
        "auth_url": "http://k:5000/v3",
        "username": "u",
        "password": "p",
        "project_name": "demo",
        "region_name": "RegionOne",
    }


# -- Keystone v3 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keystone(aio: swiftaio.SwiftAIO, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Keystone (the demo's) whose catalog names a Keystone-authenticated proxy of the
    all-in-one as the object-store endpoint (swiftaio.keystone_with_swift)."""
    try:
        server = swiftaio.keystone_with_swift(aio, tmp_path_factory.mktemp("keystone"))
    except swiftaio.SwiftUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


def _keystone_env(
    monkeypatch: pytest.MonkeyPatch, keystone: Any, user: str, *, domain_ids: bool = False
) -> None:
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    env = swiftaio.keystone_env(keystone, user)
    if domain_ids:  # openrc files name the domains either way
        del env["OS_USER_DOMAIN_NAME"], env["OS_PROJECT_DOMAIN_NAME"]
        env.update(OS_USER_DOMAIN_ID="default", OS_PROJECT_DOMAIN_ID="default")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(STORAGE_TABLE, "swift", SwiftStorage)


@pytest.mark.slow  # starts a real Keystone (db_sync, bootstrap) once per module
def test_keystone_v3_from_the_openrc_environment(
    keystone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = _container()
    _keystone_env(monkeypatch, keystone, "demo")
    s = get_storage(f"swift://{container}")
    s.put("k", [b"demo's"])
    assert get_storage(s.url).get_bytes("k") == b"demo's"
    # the endpoint came from the catalog: the object lives in the demo project's account, and
    # the other project's account has no such object under the same container name
    _keystone_env(monkeypatch, keystone, "other", domain_ids=True)
    other = get_storage(f"swift://{container}")
    assert not other.exists("k") and list(other.list()) == []


@pytest.mark.slow
def test_keystone_wrong_password_is_a_clear_storage_error(
    keystone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _keystone_env(monkeypatch, keystone, "demo")
    s = get_storage(f"swift://{_container()}", password="wrong")
    with pytest.raises(StorageError, match="Keystone authentication failed") as info:
        s.exists("k")
    assert type(info.value) is StorageError and "wrong" not in str(info.value)


@pytest.mark.slow
def test_keystone_catalog_without_the_endpoint_or_no_keystone_at_all(
    keystone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _keystone_env(monkeypatch, keystone, "demo")
    s = get_storage(f"swift://{_container()}", region_name="NoSuchRegion")
    with pytest.raises(StorageError, match="no object-store endpoint.*NoSuchRegion"):
        s.exists("k")
    with socket.socket() as free:  # a loopback port nobody listens on
        free.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{free.getsockname()[1]}/v3"
    s = get_storage(f"swift://{_container()}", auth_url=nowhere, username="demo", password="demo")
    with pytest.raises(StorageError, match="cannot reach Keystone"):
        s.exists("k")


@pytest.mark.slow
def test_keystone_session_and_its_token(keystone: Any) -> None:
    """Horizon hands over the user's keystoneauth session; an agent may get a token alone."""
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    auth = v3.Password(
        auth_url=keystone.url,
        username="demo",
        password="demo",
        project_name="demo",
        user_domain_name="Default",
        project_domain_name="Default",
    )
    sess = ks_session.Session(auth=auth)
    container = _container()
    SwiftStorage(container, session=sess).put("k", [b"v"])
    token = sess.get_token()
    url = sess.get_endpoint(service_type="object-store", interface="public")
    assert url.endswith("/v1/AUTH_" + keystone.accounts["demo"].project_id)
    assert SwiftStorage(container, token=token, storage_url=url).get_bytes("k") == b"v"


_AGENTS = [
    Path(__file__).resolve().parents[2] / "bench" / "work" / d / "bin" / "freezer-agent"
    for d in ("legacy/venv", "freezer-venv")
]


@pytest.mark.slow
def test_upstream_freezer_agent_layout_reads_through_this_storage(
    keystone: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real freezer-agent 19.0.0 backs up into the all-in-one (its own swift storage,
    through Keystone); this storage then sees its container as plain keys (the layout the
    legacy reader maps, see docs/storage.md), and the DLO manifest reads as the segments."""
    import gzip
    import io
    import os
    import subprocess
    import tarfile

    agent = next((a for a in _AGENTS if a.exists()), None)
    if agent is None:
        pytest.skip(f"no freezer-agent 19.0.0 venv ({_AGENTS[0]}): tools/make_legacy_fixtures.py")
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a.txt").write_text("hello\n")
    (src / "big").write_bytes(os.urandom(250_000))
    _keystone_env(monkeypatch, keystone, "demo")
    env = dict(os.environ, OS_IDENTITY_API_VERSION="3", OS_INTERFACE="public")
    container = _container()
    cmd = [
        str(agent),
        "--action", "backup", "--mode", "fs", "--engine", "tar", "--storage", "swift",
        "--container", f"{container}/sub", "--path-to-backup", str(src),
        "--backup-name", "fs", "--hostname", "host1", "--compression", "gzip",
        "--max-segment-size", "100000", "--log-file", str(tmp_path / "agent.log"),
    ]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    s = get_storage(f"swift://{container}/sub")
    keys = sorted(o.key for o in s.list())
    assert len(keys) == 6, keys
    meta = keys[-1]
    assert re.fullmatch(r"metadata/tar/host1_fs/(\d+)/0_\1/metadata", meta), keys
    gen = meta.split("/")[3]
    base = f"data/tar/host1_fs/{gen}/0_{gen}/"
    segments = [f"{base}segments/{i:08d}" for i in range(3)]
    assert keys[:-1] == [f"{base}data", f"{base}engine_metadata", *segments]
    assert [o.size for o in s.list(base + "data")] == [0]  # the DLO manifest
    stream = b"".join(s.get_bytes(k) for k in segments)
    assert s.get_bytes(base + "data") == stream  # Swift's DLO concatenates them the same way
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(stream))) as tar:
        names = tar.getnames()
    assert any(n.endswith("d/a.txt") for n in names) and any(n.endswith("big") for n in names)


# -- a repository on Swift --------------------------------------------------------------------


def test_repository_tar_backup_and_restore_on_swift(storage: SwiftStorage, tmp_path: Path) -> None:
    from freezer_ui.engines.tar import TarEngine
    from freezer_ui.repository import Repository
    from tests.engines.conftest import SMALL_CHUNKER, backup
    from tests.engines.treeutil import build_sample_tree, diff, snapshot
    from tests.repository.conftest import FAST_SCRYPT, PASSPHRASE

    src = str(tmp_path / "src")
    build_sample_tree(src)
    Repository.init(
        storage,
        PASSPHRASE,
        "aes-256-gcm",
        chunker=SMALL_CHUNKER,
        pack_size=1 << 20,
        scrypt_n=FAST_SCRYPT,
    )
    before = snapshot(src)
    engine = TarEngine(cache_dir=str(tmp_path / "cache"))
    res = backup(engine, Repository.open(storage, PASSPHRASE), src)
    assert res.warnings == []
    # a fresh process would see only the URL and the environment: reopen from those
    again = get_storage(storage.url)
    repo = Repository.open(again, PASSPHRASE)
    assert [g.id for g in repo.generations()] == [res.generation_id]
    out = str(tmp_path / "out")
    rr = engine.restore(repo, res.generation_id, out)
    assert rr.rejected == [] and rr.warnings == []
    assert diff(before, snapshot(out)) == []
    assert any(o.key.startswith("data/") for o in again.list())
    again.close()
