"""The s3 storage against a real S3 server: Swift's ``s3api`` middleware in the Swift
all-in-one on loopback (tests/storage/swiftaio.py).  The contract suite runs over s3 too
(conftest); these are the S3-specific parts.

Skipped, with the install command, only when Swift's binaries are absent.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
from swiftclient.client import Connection

from freezer_ui.storage import (
    ObjectExists,
    StorageError,
    StorageFull,
    get_storage,
)
from freezer_ui.storage.s3 import S3Storage
from freezer_ui.storage.swift import SwiftStorage
from tests.storage import swiftaio

MIB = 1 << 20


@pytest.fixture(scope="session")
def aio() -> swiftaio.SwiftAIO:
    try:
        return swiftaio.shared()
    except swiftaio.SwiftUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def s3_env(aio: swiftaio.SwiftAIO, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test user's S3 credentials in the environment, as an agent configured the AWS way
    has them, and nothing of this machine's own AWS configuration."""
    for name in swiftaio.AWS_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**swiftaio.isolated_aws_env(aio.workdir), **aio.s3_env()}.items():
        monkeypatch.setenv(name, value)


def _bucket() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def _url(aio: swiftaio.SwiftAIO, bucket: str, tail: str = "") -> str:
    return f"s3://{bucket}{tail}?endpoint={aio.endpoint}"


@pytest.fixture
def storage(aio: swiftaio.SwiftAIO, s3_env: None) -> Iterator[S3Storage]:
    s = S3Storage.from_url(_url(aio, _bucket()))
    yield s
    s.close()


def _small_parts(aio: swiftaio.SwiftAIO, bucket: str, **kw: Any) -> S3Storage:
    """A storage that goes multipart above 5 MiB, in 5 MiB parts (S3's minimum)."""
    return S3Storage(
        bucket, multipart_threshold=5 * MIB, part_size=5 * MIB, **aio.s3_credentials(), **kw
    )


def _raw_s3(aio: swiftaio.SwiftAIO) -> Any:
    """A plain boto3 client, to look at what the storage wrote from outside."""
    creds = aio.s3_credentials()
    return boto3.client(
        "s3",
        endpoint_url=creds["endpoint"],
        region_name="us-east-1",
        aws_access_key_id=creds["access_key"],
        aws_secret_access_key=creds["secret_key"],
        config=botocore.config.Config(
            s3={"addressing_style": "path"}, request_checksum_calculation="when_required"
        ),
    )


def _raw_swift(aio: swiftaio.SwiftAIO) -> Connection:
    creds = aio.credentials()
    return Connection(
        authurl=creds["auth_url"], user=creds["username"], key=creds["password"], auth_version="1"
    )


def _uploads(aio: swiftaio.SwiftAIO, bucket: str) -> list[dict[str, Any]]:
    return list(_raw_s3(aio).list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def _listing_requests(aio: swiftaio.SwiftAIO, bucket: str) -> int:
    """How many S3 ListObjectsV2 requests on the bucket the proxy logged."""
    return sum(
        1
        for line in aio.log("proxy").splitlines()
        if f" GET /{bucket}%3F" in line and "list-type%3D2" in line
    )


# -- URLs and credentials -------------------------------------------------------------------------


def test_url_round_trip_and_registry(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    bucket = _bucket()
    s = get_storage(f"s3://{bucket}/repos/one?endpoint={aio.endpoint}&region=us-east-1")
    assert type(s) is S3Storage
    assert s.url == f"s3://{bucket}/repos/one?endpoint={aio.endpoint}&region=us-east-1"
    assert get_storage(s.url).url == s.url


def test_registered_without_importing_boto3() -> None:
    """boto3 costs its import time only to those who use s3 (the registry names it lazily)."""
    code = (
        "import sys; from freezer_ui.storage.registry import storage_names, builtin_class; "
        "assert 's3' in storage_names(); before = 'boto3' in sys.modules; "
        "builtin_class('s3'); print(before, 'boto3' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["False", "True"]


@pytest.mark.parametrize(
    "url",
    [
        "s3://AKIDEXAMPLE:s3cr3t-value@bucket",
        "s3://s3cr3t-value@bucket/p",
        "s3://bucket?access_key=AKIDEXAMPLE&secret_key=s3cr3t-value",
        "s3://bucket?aws_secret_access_key=s3cr3t-value",
        "s3://bucket?X-Amz-Credential=s3cr3t-value",
        "s3://bucket?endpoint=http://AKID:s3cr3t-value@127.0.0.1:1",
    ],
)
def test_url_with_credentials_is_refused(url: str, s3_env: None) -> None:
    with pytest.raises(StorageError, match="credentials never go into an s3 URL") as info:
        get_storage(url)
    assert "s3cr3t-value" not in str(info.value)
    assert "AWS_ACCESS_KEY_ID" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3://Bad_Bucket",
        "s3://ab",
        "s3://bucket/../up",
        "s3://bucket?endpoint=ftp://host",
        "s3://bucket?endpoint=http://host/path",
        "s3://bucket?endpoint=http://a&endpoint=http://b",
        "s3://bucket?colour=blue",
        "s3://bucket?region=",
        "s3://bucket#frag",
        "swift://bucket",
    ],
)
def test_bad_urls(url: str, s3_env: None) -> None:
    with pytest.raises(StorageError):
        S3Storage.from_url(url)


def test_errors_about_a_url_never_echo_its_query(s3_env: None) -> None:
    for url in ("s3://bucket?sk=s3cr3t-value", "s3:/bucket?sk=s3cr3t-value", "s3://b?k&s3cr3t"):
        with pytest.raises(StorageError) as info:
            S3Storage.from_url(url)
        assert "s3cr3t" not in str(info.value)


def test_wrong_secret_is_a_clear_storage_error(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    good = S3Storage(_bucket(), **aio.s3_credentials())
    good.put("k", [b"v"])
    creds = {**aio.s3_credentials(), "secret_key": "not-the-key"}
    s = S3Storage(good.bucket, **creds)
    ops = (
        lambda: s.put("k2", [b"x"]),
        lambda: list(s.list()),
        lambda: s.get("k"),
        lambda: s.exists("k"),  # a HEAD: its 403 has no body, the storage asks once more
        lambda: s.delete("k"),
    )
    for op in ops:
        with pytest.raises(StorageError, match="S3 authentication failed for access key") as info:
            op()
        assert type(info.value) is StorageError
        assert "test:tester" in str(info.value) and "not-the-key" not in str(info.value)
        assert aio.endpoint in str(info.value)
    assert good.get_bytes("k") == b"v"


def test_another_account_sees_none_of_our_objects(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    mine = S3Storage(_bucket(), **aio.s3_credentials())
    mine.put("k", [b"v"])
    theirs = S3Storage(mine.bucket, **aio.s3_credentials(1))
    # s3api maps a bucket name into the caller's own account: test2 sees no such bucket
    assert not theirs.exists("k")


def test_unknown_access_key(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    s = S3Storage(_bucket(), endpoint=aio.endpoint, access_key="nobody:none", secret_key="x")
    with pytest.raises(StorageError, match="'nobody:none'") as info:
        s.put("k", [b"v"])
    assert type(info.value) is StorageError


def test_unreachable_endpoint(s3_env: None) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = S3Storage(_bucket(), endpoint=f"http://127.0.0.1:{port}", retries=1)
    with pytest.raises(StorageError, match=f"127.0.0.1:{port}") as info:
        s.put("k", [b"v"])
    assert type(info.value) is StorageError and "connect" in str(info.value).lower()


def test_credentials_from_the_environment_only(
    aio: swiftaio.SwiftAIO, s3_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = get_storage(_url(aio, _bucket()))
    s.put("k", [b"v"])  # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of the tempauth user
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match="no S3 credentials found.*AWS_ACCESS_KEY_ID"):
        get_storage(s.url)


def test_credentials_from_a_shared_credentials_file(
    aio: swiftaio.SwiftAIO, s3_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    creds = aio.s3_credentials()
    path = tmp_path / "credentials"
    path.write_text(
        f"[backup]\naws_access_key_id = {creds['access_key']}\n"
        f"aws_secret_access_key = {creds['secret_key']}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    monkeypatch.setenv("AWS_PROFILE", "backup")
    s = get_storage(_url(aio, _bucket()))
    s.put("k", [b"v"])
    assert s.get_bytes("k") == b"v"
    with pytest.raises(StorageError, match="S3 credentials"):
        S3Storage(s.bucket, endpoint=aio.endpoint, profile="no-such-profile")


# -- the same objects through Swift and S3 -----------------------------------------------------


def test_swift_and_s3_see_the_same_objects(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    """One all-in-one serves both APIs: an S3 bucket is a Swift container of the account."""
    bucket = _bucket()
    s3 = S3Storage(bucket, **aio.s3_credentials())
    s3.put("data/k", [b"through s3"])
    swift = SwiftStorage(bucket, **aio.credentials())
    assert swift.get_bytes("data/k") == b"through s3"
    swift.put("data/j", [b"through swift"])
    assert {o.key for o in s3.list("data/")} == {"data/k", "data/j"}
    # the random id our put tags each object with, read back through the other API too
    assert _raw_swift(aio).head_object(bucket, "data/k")["x-object-meta-fzui-put-id"]


def test_prefix_in_url_keeps_keys_under_it(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    bucket = _bucket()
    s = get_storage(_url(aio, bucket, "/repos/one"))
    other = get_storage(_url(aio, bucket, "/repos/two"))
    s.put("config", [b"1"])
    other.put("config", [b"2"])
    assert [o.key for o in s.list()] == ["config"]
    assert s.get_bytes("config") == b"1"
    names = [o["Key"] for o in _raw_s3(aio).list_objects_v2(Bucket=bucket)["Contents"]]
    assert names == ["repos/one/config", "repos/two/config"]


def test_keys_with_characters_urls_must_escape(storage: S3Storage) -> None:
    key = "dir/ünï cødé ✓?#%&+;=.txt"
    storage.put(key, [b"v"])
    assert storage.get_bytes(key) == b"v"
    assert storage.get_range(key, 0, 1) == b"v"
    assert [o.key for o in storage.list("dir/ü")] == [key]
    storage.delete(key)
    assert not storage.exists(key)


def test_foreign_names_are_not_listed(aio: swiftaio.SwiftAIO, storage: S3Storage) -> None:
    storage.put("mine", [b"x"])
    _raw_s3(aio).put_object(Bucket=storage.bucket, Key=".hidden", Body=b"y")
    _raw_s3(aio).put_object(Bucket=storage.bucket, Key="a//b", Body=b"z")
    assert [o.key for o in storage.list()] == ["mine"]


def test_create_false_refuses_a_missing_bucket(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    s = S3Storage(_bucket(), create=False, **aio.s3_credentials())
    assert list(s.list()) == [] and not s.exists("k")  # reads see an empty storage
    with pytest.raises(StorageError, match="does not exist"):
        s.put("k", [b"v"])


def test_a_bucket_removed_under_the_storage(aio: swiftaio.SwiftAIO, storage: S3Storage) -> None:
    storage.put("k", [b"v"])
    raw = _raw_s3(aio)
    raw.delete_object(Bucket=storage.bucket, Key="k")
    raw.delete_bucket(Bucket=storage.bucket)
    with pytest.raises(StorageError, match="does not exist") as info:
        storage.put("k2", [b"v"])
    assert type(info.value) is StorageError
    assert not storage.exists("k") and list(storage.list()) == []
    storage.put("k3", [b"v"])  # the next put creates the bucket again
    assert storage.get_bytes("k3") == b"v"


def test_closed_storage_refuses(storage: S3Storage) -> None:
    storage.put("k", [b"v"])
    stream = storage.get("k")
    storage.close()
    assert b"".join(stream) == b"v"  # a stream begun before close ends normally
    with pytest.raises(StorageError, match="closed"):
        storage.exists("k")


# -- listing ----------------------------------------------------------------------------------


def test_listing_pages_with_a_small_limit(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    bucket = _bucket()
    s = S3Storage(bucket, listing_limit=5, **aio.s3_credentials())
    keys = {f"data/{i:03d}" for i in range(23)} | {"other/x"}
    for k in keys:
        s.put(k, [k.encode()])
    before = _listing_requests(aio, bucket)
    listed = list(s.list("data/"))
    assert {o.key for o in listed} == {k for k in keys if k.startswith("data/")}
    assert all(o.size == len(o.key) for o in listed)
    assert _listing_requests(aio, bucket) - before == 5  # 23 names in pages of 5


def test_listing_pages_at_the_servers_limit(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    """s3api caps a page at 19 names here (max_bucket_listing in swiftaio) whatever MaxKeys
    asks (1,000 by default): the storage follows the continuation tokens."""
    bucket = _bucket()
    s = S3Storage(bucket, **aio.s3_credentials())
    n = 2 * swiftaio.S3_LISTING_LIMIT + 5
    for i in range(n):
        s.put(f"k{i:04d}", [b"v"])
    before = _listing_requests(aio, bucket)
    assert sorted(o.key for o in s.list()) == [f"k{i:04d}" for i in range(n)]
    assert _listing_requests(aio, bucket) - before == 3


# -- multipart ----------------------------------------------------------------------------------


def _pattern(size: int) -> Iterator[bytes]:
    """``size`` reproducible random bytes in odd-sized chunks (64 KiB + 7)."""
    data = random.Random(size).randbytes(size)
    for start in range(0, size, 65543):
        yield data[start : start + 65543]


def test_multipart_round_trip(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    """17 MiB in 5 MiB parts: four parts, larger than the cluster's 16 MiB single-object limit
    (swiftaio), read back byte-exact, whole and in ranges across part boundaries."""
    s = _small_parts(aio, _bucket())
    size = 17 * MIB + 12345
    expected = b"".join(_pattern(size))
    assert s.put("pack", _pattern(size)) == size
    head = _raw_s3(aio).head_object(Bucket=s.bucket, Key="pack")
    assert head["ETag"].strip('"').endswith("-4") and head["ContentLength"] == size
    assert b"".join(s.get("pack")) == expected
    for off in (0, 5 * MIB - 3, 10 * MIB - 1, size - 10):
        assert s.get_range("pack", off, 100) == expected[off : off + 100]
    assert [(o.key, o.size) for o in s.list()] == [("pack", size)]
    assert _uploads(aio, s.bucket) == []


def test_object_just_under_the_threshold_is_one_put(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    s = _small_parts(aio, _bucket())
    size = 5 * MIB
    assert s.put("one", _pattern(size)) == size
    etag = _raw_s3(aio).head_object(Bucket=s.bucket, Key="one")["ETag"]
    assert "-" not in etag  # a plain object: its ETag is its MD5
    assert s.get_bytes("one") == b"".join(_pattern(size))


def test_an_object_over_the_services_single_put_limit_goes_in_parts(
    aio: swiftaio.SwiftAIO, s3_env: None
) -> None:
    """The cluster refuses single objects over 16 MiB (swiftaio's max_file_size), which s3api
    reports as EntityTooLarge: the storage retries that PUT as a multipart upload, and cuts
    objects that large into parts from then on."""
    s = S3Storage(_bucket(), part_size=5 * MIB, **aio.s3_credentials())  # threshold: 64 MiB
    size = swiftaio.MAX_FILE_SIZE + MIB
    assert s.put("big", _pattern(size)) == size
    raw = _raw_s3(aio)
    assert raw.head_object(Bucket=s.bucket, Key="big")["ETag"].strip('"').endswith("-4")
    assert s.get_bytes("big") == b"".join(_pattern(size))
    assert s.multipart_threshold == 5 * MIB
    assert _uploads(aio, s.bucket) == []


def test_multipart_write_once(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    s = _small_parts(aio, _bucket())
    s.put("k", _pattern(6 * MIB))
    with pytest.raises(ObjectExists):
        s.put("k", (b"\x00" * MIB for _ in range(6)))
    assert s.get_bytes("k") == b"".join(_pattern(6 * MIB))
    assert _uploads(aio, s.bucket) == []  # the refused upload was aborted


def test_multipart_failing_source_stores_nothing(aio: swiftaio.SwiftAIO, s3_env: None) -> None:
    s = _small_parts(aio, _bucket())

    def chunks() -> Iterator[bytes]:
        yield b"a" * (11 * MIB)  # two parts are uploaded before the source breaks
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        s.put("k", chunks())
    assert not s.exists("k") and list(s.list()) == []
    assert _uploads(aio, s.bucket) == []


def test_remove_leftovers_aborts_old_unfinished_uploads(
    aio: swiftaio.SwiftAIO, storage: S3Storage
) -> None:
    """What a killed put leaves: a multipart upload with parts, never completed."""
    storage.put("kept", [b"v"])
    raw = _raw_s3(aio)
    upload = raw.create_multipart_upload(Bucket=storage.bucket, Key="data/killed")
    raw.upload_part(
        Bucket=storage.bucket,
        Key="data/killed",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"x" * MIB,
    )
    assert storage.remove_leftovers(older_than=3600) == 0  # too young to be debris
    assert len(_uploads(aio, storage.bucket)) == 1
    time.sleep(2.2)  # s3api rounds Initiated up to the next whole second
    assert storage.remove_leftovers(older_than=1) == 1
    assert _uploads(aio, storage.bucket) == []
    assert storage.get_bytes("kept") == b"v"


# -- write-once across hosts -----------------------------------------------------------------


def _stalled_multipart(host: S3Storage, go: threading.Event) -> dict[str, Any]:
    """Start a 6 MiB multipart put on ``host`` whose source stalls after its first part."""
    started = threading.Event()
    out: dict[str, Any] = {}

    def source() -> Iterator[bytes]:
        yield b"A" * (5 * MIB)
        yield b"A" * 4096  # the reader asks for more before part 1 goes: hold the next one
        started.set()
        assert go.wait(30), "the test never released this upload"
        yield b"A" * MIB

    def run() -> None:
        try:
            out["size"] = host.put("k", source())
        except Exception as exc:  # handed to the test thread to assert on
            out["error"] = exc

    out["thread"] = threading.Thread(target=run)
    out["thread"].start()
    assert started.wait(30)
    return out


@pytest.mark.parametrize("conditional", [None, False])
def test_two_hosts_a_multipart_upload_finishing_late_gets_object_exists(
    aio: swiftaio.SwiftAIO, s3_env: None, conditional: bool | None
) -> None:
    """Host A starts a multipart upload; host B writes the whole key meanwhile; then A
    completes.  With If-None-Match on the completion (s3api passes it to Swift) and, on a
    service without it (conditional_writes=False), with a HEAD before the completion, A gets
    ObjectExists and B's bytes stay."""
    bucket = _bucket()
    host_a = _small_parts(aio, bucket, conditional_writes=conditional)
    host_b = _small_parts(aio, bucket, conditional_writes=conditional)
    host_b.put("warmup", [b"x"])
    go = threading.Event()
    a = _stalled_multipart(host_a, go)
    assert host_b.put("k", [b"B" * 2000]) == 2000
    go.set()
    a["thread"].join(60)
    assert isinstance(a.get("error"), ObjectExists), a
    assert host_a.get_bytes("k") == b"B" * 2000
    assert _uploads(aio, bucket) == []


def test_without_conditional_writes_one_thread_of_many_wins(
    aio: swiftaio.SwiftAIO, s3_env: None
) -> None:
    """The fallback for services without conditional PUTs: HEAD, per-key lock, read-back."""
    s = S3Storage(_bucket(), conditional_writes=False, **aio.s3_credentials())
    results: list[str] = []

    def writer(i: int) -> None:
        try:
            s.put("race", [bytes([i]) * 1000])
            results.append("ok")
        except ObjectExists:
            results.append("exists")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["exists"] * 5 + ["ok"]
    with pytest.raises(ObjectExists):
        s.put("race", [b"again"])


# -- quota ----------------------------------------------------------------------------------------


def test_container_quota_is_storage_full(aio: swiftaio.SwiftAIO, storage: S3Storage) -> None:
    """A Swift container quota on the bucket: s3api answers 413 EntityTooLarge, which is
    StorageFull, and nothing is stored."""
    storage.put("first", [b"x" * 100])
    _raw_swift(aio).post_container(storage.bucket, {"X-Container-Meta-Quota-Bytes": "150"})
    # unlike a chunked Swift upload, an S3 PUT states its length: Swift refuses it up front
    with pytest.raises(StorageFull, match="quota"):
        storage.put("second", [b"y" * 100])
    assert not storage.exists("second")
    assert {o.key for o in storage.list()} == {"first"}
    storage.put("small", [b"z" * 10])  # what still fits is stored


# -- OpenStack EC2 credentials (s3api + s3token + Keystone) ----------------------------------------


@pytest.fixture(scope="module")
def keystone(aio: swiftaio.SwiftAIO, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Keystone (the demo's) and the all-in-one's Keystone proxy, which serves S3 to EC2
    credentials through s3api + s3token (swiftaio.keystone_with_swift)."""
    try:
        server = swiftaio.keystone_with_swift(aio, tmp_path_factory.mktemp("keystone"))
    except swiftaio.SwiftUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


def _ec2_credentials(keystone: Any, user: str) -> tuple[str, str]:
    """``openstack ec2 credentials create`` as that demo user: (access, secret)."""
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3
    from keystoneclient.v3 import client

    auth = v3.Password(
        auth_url=keystone.url,
        username=user,
        password=user,
        project_name=user,
        user_domain_id="default",
        project_domain_id="default",
    )
    sess = ks_session.Session(auth=auth)
    ks = client.Client(session=sess, interface="public")
    cred = ks.ec2.create(sess.get_user_id(), sess.get_project_id())
    return cred.access, cred.secret


@pytest.mark.slow  # starts a real Keystone (db_sync, bootstrap) once per module
def test_openstack_ec2_credentials_through_s3token(
    aio: swiftaio.SwiftAIO, s3_env: None, keystone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EC2 credentials given the AWS way reach the demo project's Swift account: the object
    written through S3 is read back through Swift with the demo user's Keystone token."""
    access, secret = _ec2_credentials(keystone, "demo")
    endpoint = aio.start_keystone_proxy(keystone.url, "", "", "")  # already running: reused
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    bucket = _bucket()
    s = get_storage(f"s3://{bucket}?endpoint={endpoint}")
    s.put("k", [b"demo's, through s3"])
    assert get_storage(s.url).get_bytes("k") == b"demo's, through s3"
    for name, value in swiftaio.keystone_env(keystone, "demo").items():
        monkeypatch.setenv(name, value)
    swift = SwiftStorage.from_url(f"swift://{bucket}")
    assert swift.get_bytes("k") == b"demo's, through s3"
    # the same access key with a wrong secret: Keystone refuses the signature
    bad = S3Storage(bucket, endpoint=endpoint, access_key=access, secret_key="wrong")
    with pytest.raises(StorageError, match=f"S3 authentication failed for access key '{access}'"):
        bad.put("x", [b"x"])


# -- a repository on S3 ------------------------------------------------------------------------


def test_repository_tar_backup_and_restore_on_s3(storage: S3Storage, tmp_path: Path) -> None:
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


# -- speed (python -m tests.storage.test_s3) ----------------------------------------------------


def _measure(label: str, storage: Any, size: int, count: int) -> None:
    import resource

    block = random.Random(1).randbytes(1 << 16)
    chunks = size // len(block)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i in range(count):
        storage.put(f"bench/{i}", (block for _ in range(chunks)))
    cpu1, t1 = time.process_time(), time.perf_counter()
    for i in range(count):
        for _ in storage.get(f"bench/{i}"):
            pass
    cpu2, t2 = time.process_time(), time.perf_counter()
    mb = size * count / 1e6
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{label:34s} put {mb / (t1 - t0):6.0f} MB/s ({cpu1 - cpu0:4.2f} s CPU)  "
        f"get {mb / (t2 - t1):6.0f} MB/s ({cpu2 - cpu1:4.2f} s CPU)  peak RSS {rss:4.0f} MiB"
    )


if __name__ == "__main__":
    # One mode per process (peak RSS is per process):
    #   python -m tests.storage.test_s3 [single|multipart|swift]
    mode = sys.argv[1] if len(sys.argv) > 1 else "single"
    swiftaio.MAX_FILE_SIZE = 1 << 30  # packs in one PUT (the tests' 16 MiB would refuse them)
    running = swiftaio.start()
    try:
        size, count = 32 * MIB, 4  # four packs of the repository's default size
        if mode == "swift":
            target: Any = SwiftStorage(_bucket(), **running.credentials())
        elif mode == "multipart":
            target = S3Storage(
                _bucket(),
                multipart_threshold=8 * MIB,
                part_size=8 * MIB,
                **running.s3_credentials(),
            )
        else:
            target = S3Storage(_bucket(), **running.s3_credentials())
        target.put("warmup", [b"x"])
        _measure(f"{mode} ({count} x {size >> 20} MiB)", target, size, count)
    finally:
        running.stop()
