"""S3 storage: one S3 object per storage key, in one bucket (AWS S3 or any S3 service, such as
OpenStack Swift's ``s3api``, Ceph RGW or MinIO).

URL and options
---------------
``s3://BUCKET[/PREFIX][?endpoint=https://host:port][&region=R]`` names *where* the objects live:
``endpoint`` is the service's base URL (AWS's own when left out; buckets are then addressed
virtual-host style, and path style at any other endpoint, which is what S3 services that are not
AWS support everywhere), ``region`` the signing region (the AWS configuration's, else
``us-east-1``).  The URL is written into backup records and logs, so it never holds a secret:
a URL with a user part or a credential-like parameter is refused, with a message that says
where credentials go.

*Who* connects comes from the AWS SDKs' standard chain: ``AWS_ACCESS_KEY_ID`` +
``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``), ``AWS_PROFILE`` and ``~/.aws/credentials``,
container or instance roles.  OpenStack EC2 credentials (``openstack ec2 credentials create``,
for a Swift with ``s3api`` + ``s3token``) are given the same way: access = the ``access``
field, secret = the ``secret`` field.  Keyword options override the chain: ``access_key`` +
``secret_key`` (+ ``session_token``), or ``profile``; and ``cacert`` (a CA bundle),
``create`` (create the bucket on the first put, default ``True``), ``listing_limit`` (names per
listing request, default 1,000, S3's maximum), ``multipart_threshold`` / ``part_size``,
``conditional_writes`` (``None``: detect).

Guarantees and how S3 gives them
--------------------------------
* Atomic: an S3 PUT, or a multipart upload's completion, makes the whole object visible at
  once; nothing is visible before.  Objects up to ``multipart_threshold`` (64 MiB) go in one
  PUT; larger ones in parts of ``part_size`` (16 MiB; S3 wants at least 5 MiB).  S3 needs a
  PUT's length before its body, so the body of a single PUT is held in memory (a 32 MiB pack:
  32 MiB, where swift streams), a part at most in a multipart upload; packs go in one PUT
  because it measured ~1.8x as fast as 8 MiB parts (docs/storage.md).  A service that refuses a
  single PUT that large (``EntityTooLarge``: a Swift cluster's ``max_file_size``) gets it again
  in parts, and parts above ``part_size`` from then on.  A source that raises, or any error,
  aborts the multipart upload; a killed process leaves an unfinished upload (invisible, but
  billed), which :meth:`S3Storage.remove_leftovers` aborts.
* Integrity: every PUT and every part carries ``Content-MD5``, so the service refuses a body
  damaged on the way (``BadDigest``) instead of storing it; each part's ETag (its MD5) and the
  stored size are checked too.
* Write-once: every PUT and every multipart completion carries ``If-None-Match: *``.  AWS S3
  (since 2024-08) checks it atomically at completion, so of two racing writers exactly one
  wins.  Swift's ``s3api`` passes it to Swift, which checks it when the PUT *starts*: there,
  as with :mod:`freezer_ui.storage.swift`, two overlapping PUTs of one key can both pass it.
  So the same protections apply: a per-key lock serialises puts of one key inside one process,
  and each PUT tags its object with a random id and reads it back (a writer whose object was
  replaced raises :class:`ObjectExists`).  A service that does not implement conditional
  PUTs (``501 NotImplemented``) gets a HEAD before the PUT instead, plus the same lock and
  read-back.  What no client can detect on such services is the mirror case: the first writer
  finished and checked before a second, overlapping one replaced it; both return and the later
  bytes stay.  As for Swift, the repository names packs, indexes, manifests and locks by random
  ids, so only two hosts running ``init`` on one URL at the same moment could meet it.
* Errors: 412 is :class:`ObjectExists`; a quota refusal (``QuotaExceeded``, s3api's
  ``EntityTooLarge`` for a Swift quota, HTTP 507) is :class:`StorageFull`; wrong credentials
  say which access key (never the secret) failed at which endpoint.
* Listing: ``ListObjectsV2`` pages of at most ``listing_limit`` names, continued with the
  service's continuation token.  ``delete`` HEADs first: S3 deletes of a missing key succeed,
  the contract wants :class:`ObjectNotFound`.
* Threads: one boto3 client (boto3 clients are thread-safe), its connection pool sized for
  many concurrent calls; a streaming :meth:`get` holds one connection until it ends.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import boto3
import botocore.config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from freezer_ui.storage.base import (
    KeyLocks,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageFull,
    check_prefix,
    validate_key,
    validate_prefix,
)

_READ_BLOCK = 1 << 20
_MIB = 1 << 20
# S3's rules: parts of at least 5 MiB (except the last), at most 10,000 of them.
_MIN_PART = 5 * _MIB
_MAX_PARTS = 10_000
_DEFAULT_REGION = "us-east-1"
# Our random tag on each PUT (x-amz-meta-fzui-put-id), read back to tell a won race from a lost
# one where the service checks If-None-Match only when a PUT starts.
_PUT_ID = "fzui-put-id"

_AUTH_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
    "InvalidClientTokenId",
    "RequestTimeTooSkewed",
}
# s3api answers a Swift quota's 413 with EntityTooLarge (put() first retries a large single
# PUT in parts, in case it meant the cluster's object size limit).  The others: Ceph RGW, MinIO.
_FULL_CODES = {"QuotaExceeded", "EntityTooLarge", "XMinioStorageFull", "InsufficientStorage"}
_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}
# operations for which a missing bucket is a missing key (the bucket comes with the first put)
_READS = {"get", "get_range", "exists", "delete", "verify"}
# Query parameters that would put a secret into the URL: refused with a pointer to the chain.
_SECRET_PARAMS = {
    "access_key",
    "secret_key",
    "access_key_id",
    "secret_access_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "session_token",
    "token",
    "key",
    "secret",
    "password",
    "awsaccesskeyid",
    "signature",
    "x-amz-credential",
    "x-amz-signature",
    "x-amz-security-token",
}
_URL_OPTIONS = ("endpoint", "region")
_CREDENTIALS_HINT = (
    "credentials never go into an s3 URL (it is stored in backup records and logs): set "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE / ~/.aws/credentials), or "
    "pass access_key/secret_key options"
)


def _check_bucket(bucket: str) -> str:
    # S3's naming rules, so that a typo fails here and not as a confusing signature error.
    ok = 3 <= len(bucket) <= 63 and bucket[0].isalnum() and bucket[-1].isalnum()
    if not ok or any(not (c.islower() or c.isdigit() or c in ".-") for c in bucket):
        raise StorageError(
            f"invalid S3 bucket name {bucket!r}: 3-63 characters, lower-case letters, digits, "
            "'.' and '-', starting and ending with a letter or digit"
        )
    return bucket


def _check_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.username is not None or parts.password is not None:
        raise StorageError(f"the S3 endpoint carries a user part: {_CREDENTIALS_HINT}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StorageError(f"S3 endpoint must be an http(s) URL, got {endpoint!r}")
    if parts.query or parts.fragment or parts.path.strip("/"):
        raise StorageError(f"S3 endpoint must be a bare http(s)://host[:port], got {endpoint!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _md5_b64(data: bytes) -> tuple[str, str]:
    digest = hashlib.md5(data, usedforsecurity=False)  # what S3's Content-MD5 and ETag use
    return digest.hexdigest(), base64.b64encode(digest.digest()).decode()


class S3Storage(Storage):
    """Objects in one S3 bucket, keys under an optional name prefix."""

    name = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        profile: str | None = None,
        cacert: str | None = None,
        create: bool = True,
        listing_limit: int = 1000,
        multipart_threshold: int = 64 * _MIB,
        part_size: int = 16 * _MIB,
        conditional_writes: bool | None = None,
        timeout: float = 60.0,
        retries: int = 3,
    ) -> None:
        self.bucket = _check_bucket(bucket)
        self.prefix = check_prefix(prefix)
        self._name_prefix = self.prefix + "/" if self.prefix else ""
        self.endpoint = _check_endpoint(endpoint) if endpoint else None
        if listing_limit < 1:
            raise StorageError(f"listing_limit must be >= 1, got {listing_limit}")
        if part_size < _MIN_PART:
            raise StorageError(f"part_size must be >= 5 MiB (S3's minimum), got {part_size}")
        if multipart_threshold < part_size:
            raise StorageError("multipart_threshold must be >= part_size")
        self.listing_limit = listing_limit
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.create = create
        # None: try If-None-Match and fall back for good on the first 501 (see the docstring)
        self._conditional = conditional_writes
        if access_key or secret_key:
            if not (access_key and secret_key):
                raise StorageError("S3 access_key and secret_key go together")
            session = boto3.session.Session(
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=session_token,
            )
        else:
            try:
                session = boto3.session.Session(profile_name=profile)
            except BotoCoreError as exc:  # an unknown profile
                raise StorageError(f"S3 credentials: {exc}") from exc
        try:
            creds = session.get_credentials()
        except BotoCoreError as exc:
            raise StorageError(f"S3 credentials: {exc}") from exc
        if creds is None:
            raise StorageError(f"no S3 credentials found: {_CREDENTIALS_HINT}")
        self.region = region or session.region_name or _DEFAULT_REGION
        where = self.endpoint or "AWS S3"
        self._who = f"access key {creds.access_key!r} at {where}"
        config = botocore.config.Config(
            region_name=self.region,
            signature_version="s3v4",
            # path style works at every S3 service; AWS itself prefers virtual hosts
            s3={"addressing_style": "path" if self.endpoint else "auto"},
            retries={"max_attempts": retries, "mode": "standard"},
            connect_timeout=timeout,
            read_timeout=timeout,
            max_pool_connections=32,
            # botocore >= 1.36 adds CRC32 trailers by default, which older S3 services
            # refuse; we send Content-MD5 ourselves, which every S3 service checks
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client = session.client(
            "s3", endpoint_url=self.endpoint, verify=cacert or True, config=config
        )
        self._lock = threading.Lock()
        self._key_locks = KeyLocks()  # see KeyLocks: one put per key at a time here
        self._bucket_ready = False
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Storage:
        parts = urlsplit(url)
        # what error messages may echo: never the query, which could hold a secret by mistake
        shown = url.split("?", 1)[0]
        if "@" in parts.netloc:
            raise StorageError(f"refused s3 URL with a user part: {_CREDENTIALS_HINT}")
        if parts.scheme != "s3" or not parts.netloc or parts.fragment:
            raise StorageError(
                f"not an s3 storage URL (s3://BUCKET[/PREFIX][?endpoint=URL&region=R]): {shown!r}"
            )
        try:
            query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            query = [] if not parts.query else [("", "")]
        settings: dict[str, Any] = {}
        for name, value in query:
            if name.lower() in _SECRET_PARAMS:
                raise StorageError(f"refused s3 URL with parameter {name!r}: {_CREDENTIALS_HINT}")
            if name not in _URL_OPTIONS or name in settings or not value:
                raise StorageError(
                    f"bad s3 URL parameter {name!r} in {shown!r}?...: each of "
                    f"{', '.join(_URL_OPTIONS)} at most once, with a value"
                )
            settings[name] = value
        settings.update(options)
        return cls(unquote(parts.netloc), unquote(parts.path), **settings)

    @property
    def url(self) -> str:
        tail = "/" + quote(self.prefix) if self.prefix else ""
        query = {}
        if self.endpoint:
            query["endpoint"] = self.endpoint
            query["region"] = self.region
        elif self.region != _DEFAULT_REGION:
            query["region"] = self.region
        q = "?" + urlencode(query, safe=":/") if query else ""
        return f"s3://{self.bucket}{tail}{q}"

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r})"

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._client.close()

    # -- helpers --------------------------------------------------------------------------------

    def _api(self, operation: str, **kw: Any) -> Any:
        if self._closed:
            raise StorageError(f"{self.url} is closed")
        return getattr(self._client, operation)(Bucket=self.bucket, **kw)

    def _error(self, exc: BaseException, key: str, what: str) -> StorageError:
        """One S3/HTTP failure as the StorageError subclass it means."""
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            named = code if code and code != str(status) else ""  # a HEAD's code is its status
            detail = f"{status} {named}: {err.get('Message', '')}".replace(" :", ":").strip(": ")
            if code in _AUTH_CODES:
                return StorageError(f"S3 authentication failed for {self._who}: {detail}")
            if code == "NoSuchBucket" and what not in _READS:
                # a write into a bucket removed under us: not a missing key
                self._bucket_ready = False
                return StorageError(f"S3 bucket {self.bucket!r} does not exist ({what} {key!r})")
            if code in _NOT_FOUND_CODES or status == 404:
                return ObjectNotFound(key)
            if code in _FULL_CODES or status == 507:
                return StorageFull(f"S3 refused {what} {key!r} (quota or disk full): {detail}")
            if status == 403:
                # a HEAD's 403 has no body: wrong credentials and missing rights look alike
                return StorageError(
                    f"S3 denied {what} {key!r} in bucket {self.bucket!r} for {self._who} "
                    f"(wrong credentials, or no permission): {detail}"
                )
            return StorageError(f"S3 {what} {key!r} in {self.url} failed: {detail}")
        if isinstance(exc, NoCredentialsError):
            return StorageError(f"no S3 credentials found: {_CREDENTIALS_HINT}")
        if isinstance(exc, (BotoCoreError, OSError)):
            return StorageError(f"S3 {what} {key!r} ({self._who}) failed: {exc}")
        return StorageError(f"S3 {what} {key!r} failed: {exc!r}")

    def _head_error(self, exc: BaseException, key: str, what: str) -> StorageError:
        """The error of a failed HEAD.  A HEAD's 403 has no body, so wrong credentials and
        missing rights look alike: one small listing request, whose refusal says which."""
        status = (
            exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(exc, ClientError)
            else None
        )
        if status == 403:
            try:
                self._api("list_objects_v2", Prefix=self._name_prefix, MaxKeys=1)
            except ClientError as probe:
                if probe.response.get("Error", {}).get("Code") in _AUTH_CODES:
                    return self._error(probe, key, what)
            except (BotoCoreError, OSError):
                pass  # the HEAD's own error below says enough
        return self._error(exc, key, what)

    def _object(self, key: str) -> str:
        return self._name_prefix + validate_key(key)

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        try:
            self._api("head_bucket")
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status != 404:
                raise self._head_error(exc, self.bucket, "open bucket") from exc
            if not self.create:
                raise StorageError(
                    f"S3 bucket {self.bucket!r} does not exist (create=False)"
                ) from None
            kw: dict[str, Any] = {}
            if self.region != _DEFAULT_REGION:  # S3's rule: us-east-1 takes no constraint
                kw["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self._api("create_bucket", **kw)
            except ClientError as exc2:
                code = exc2.response.get("Error", {}).get("Code")
                if code != "BucketAlreadyOwnedByYou":  # another of our writers was first
                    raise self._error(exc2, self.bucket, "create bucket") from exc2
            except (BotoCoreError, OSError) as exc2:
                raise self._error(exc2, self.bucket, "create bucket") from exc2
        except (BotoCoreError, OSError) as exc:
            raise self._error(exc, self.bucket, "open bucket") from exc
        self._bucket_ready = True

    def _head(self, name: str, key: str, what: str) -> dict[str, Any] | None:
        """The object's HEAD response, or None when it does not exist."""
        try:
            return dict(self._api("head_object", Key=name))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise self._head_error(exc, key, what) from exc
        except (BotoCoreError, OSError) as exc:
            raise self._error(exc, key, what) from exc

    # -- the Storage contract ------------------------------------------------------------------

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        name = self._object(key)
        with self._key_locks.hold(name):
            self._ensure_bucket()
            reader = _Reader(chunks)
            # Reading happens here, in our frame, never inside botocore: a source that
            # raises propagates unchanged, and nothing has been sent yet (or the multipart
            # upload is aborted below).
            head = reader.read(self.multipart_threshold)
            put_id = secrets.token_hex(16)
            size = len(head)
            multipart = not reader.at_end()
            if not multipart:
                try:
                    self._put_single(name, key, head, put_id)
                except StorageFull as exc:
                    # EntityTooLarge means a quota *or* an object over the service's single
                    # PUT limit (a Swift cluster's max_file_size; s3api says the same for
                    # both): an object that can be cut into parts gets its second chance as a
                    # multipart upload, and this storage uses parts above that size from now.
                    if size <= self.part_size or "EntityTooLarge" not in str(exc):
                        raise
                    self.multipart_threshold = self.part_size
                    multipart = True
            if multipart:
                size = self._put_multipart(name, key, head, reader, put_id)
            self._verify(name, key, put_id, size)
        return size

    def _conditional_call(self, key: str, name: str, put_id: str, call: Any) -> None:
        """Run ``call(conditional)``: with If-None-Match first, and without it (after a HEAD)
        on a service that does not implement it."""
        if self._conditional is not False:
            try:
                call(True)
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    # ours, if a retry of a PUT whose answer got lost; else someone else's
                    found = self._head(name, key, "verify")
                    if found is None or found.get("Metadata", {}).get(_PUT_ID) != put_id:
                        raise ObjectExists(key) from None
                    return
                if not (status == 501 or code == "NotImplemented") or self._conditional:
                    raise self._error(exc, key, "put") from exc
                self._conditional = False  # this service has no conditional PUTs
            except (BotoCoreError, OSError) as exc:
                raise self._error(exc, key, "put") from exc
        if self._head(name, key, "put") is not None:
            raise ObjectExists(key)
        try:
            call(False)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error(exc, key, "put") from exc

    def _put_single(self, name: str, key: str, data: bytes, put_id: str) -> None:
        _hex, md5 = _md5_b64(data)

        def call(conditional: bool) -> None:
            kw = {"IfNoneMatch": "*"} if conditional else {}
            self._api(
                "put_object",
                Key=name,
                Body=data,
                ContentMD5=md5,
                ContentType="application/octet-stream",
                Metadata={_PUT_ID: put_id},
                **kw,
            )

        self._conditional_call(key, name, put_id, call)

    def _put_multipart(self, name: str, key: str, head: bytes, reader: _Reader, put_id: str) -> int:
        if self._conditional is False and self._head(name, key, "put") is not None:
            raise ObjectExists(key)  # no need to upload what would be refused
        try:
            upload_id = self._api(
                "create_multipart_upload",
                Key=name,
                ContentType="application/octet-stream",
                Metadata={_PUT_ID: put_id},
            )["UploadId"]
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error(exc, key, "start multipart upload of") from exc
        try:
            reader.unread(head)
            parts: list[dict[str, Any]] = []
            size = 0
            while True:
                data = reader.read(self.part_size)
                if not data:  # the source ended (the first part is never empty: see put)
                    break
                number = len(parts) + 1
                if number > _MAX_PARTS:
                    raise StorageError(
                        f"{key!r} needs more than {_MAX_PARTS} parts of {self.part_size} bytes "
                        "(S3's limit): raise part_size; nothing was stored"
                    )
                hexmd5, md5 = _md5_b64(data)
                try:
                    etag = self._api(
                        "upload_part",
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ContentMD5=md5,
                    )["ETag"]
                except (ClientError, BotoCoreError, OSError) as exc:
                    raise self._error(exc, key, f"upload part {number} of") from exc
                if etag.strip('"') != hexmd5:
                    raise StorageError(
                        f"S3 stored part {number} of {key!r} wrong (etag {etag}, sent {hexmd5})"
                    )
                parts.append({"ETag": etag, "PartNumber": number})
                size += len(data)

            def call(conditional: bool) -> None:
                kw = {"IfNoneMatch": "*"} if conditional else {}
                self._api(
                    "complete_multipart_upload",
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    **kw,
                )

            self._conditional_call(key, name, put_id, call)
        except BaseException:
            # the source raised, the service refused, or we were interrupted: the parts must
            # not linger (they are invisible, but they cost space until aborted)
            try:
                self._api("abort_multipart_upload", Key=name, UploadId=upload_id)
            except (ClientError, BotoCoreError, OSError):
                pass  # remove_leftovers catches it later; the original error matters more
            raise
        return size

    def _verify(self, name: str, key: str, put_id: str, size: int) -> None:
        found = self._head(name, key, "verify")
        if found is None or found.get("Metadata", {}).get(_PUT_ID) != put_id:
            # deleted or replaced by a racing writer (another host) meanwhile: not ours
            raise ObjectExists(key)
        stored = int(found.get("ContentLength", -1))
        if stored != size:
            try:
                self._api("delete_object", Key=name)
            except (ClientError, BotoCoreError, OSError):
                pass  # the error below says what happened; a wrong leftover fails reads
            raise StorageError(
                f"S3 stored {key!r} with {stored} bytes, {size} were sent: removed it"
            )

    def get(self, key: str) -> Iterator[bytes]:
        name = self._object(key)
        try:
            resp = self._api("get_object", Key=name)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error(exc, key, "get") from exc
        return self._stream(resp["Body"], key)

    def _stream(self, body: Any, key: str) -> Iterator[bytes]:
        try:
            while True:
                try:
                    # botocore raises IncompleteReadError if the body ends short of its length
                    block = body.read(_READ_BLOCK)
                except (BotoCoreError, OSError) as exc:
                    raise self._error(exc, key, "get") from exc
                if not block:
                    return
                yield block
        finally:
            body.close()

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        name = self._object(key)
        if length == 0:
            if not self.exists(key):
                raise ObjectNotFound(key)
            return b""
        try:
            resp = self._api("get_object", Key=name, Range=f"bytes={offset}-{offset + length - 1}")
            data = resp["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""  # the range starts at or past the end (a missing key is a 404)
            raise self._error(exc, key, "get_range") from exc
        except (BotoCoreError, OSError) as exc:
            raise self._error(exc, key, "get_range") from exc
        if "ContentRange" not in resp:  # a service that ignored Range sent everything
            return bytes(data[offset : offset + length])
        return bytes(data)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        kw: dict[str, Any] = {"Prefix": self._name_prefix + prefix, "MaxKeys": self.listing_limit}
        while True:
            try:
                page = self._api("list_objects_v2", **kw)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                    return  # no bucket yet: nothing stored
                raise self._error(exc, prefix, "list") from exc
            except (BotoCoreError, OSError) as exc:
                raise self._error(exc, prefix, "list") from exc
            for entry in page.get("Contents", []):
                key = entry["Key"][len(self._name_prefix) :]
                try:
                    validate_key(key)
                except StorageError:
                    continue  # a name no key can have: not ours (a foreign tool wrote it)
                yield ObjectInfo(key, int(entry["Size"]))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            kw["ContinuationToken"] = token

    def delete(self, key: str) -> None:
        name = self._object(key)
        # S3 answers 204 to a delete of a missing key; the contract wants ObjectNotFound
        if self._head(name, key, "delete") is None:
            raise ObjectNotFound(key)
        try:
            self._api("delete_object", Key=name)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error(exc, key, "delete") from exc

    def exists(self, key: str) -> bool:
        return self._head(self._object(key), key, "exists") is not None

    def remove_leftovers(self, older_than: float = 3600.0) -> int:
        """Abort unfinished multipart uploads under this storage's prefix started more than
        ``older_than`` seconds ago (a killed ``put`` leaves them; they hold space)."""
        cutoff = time.time() - older_than
        kw: dict[str, Any] = {"Prefix": self._name_prefix}
        removed = 0
        while True:
            try:
                page = self._api("list_multipart_uploads", **kw)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                    return removed
                raise self._error(exc, self._name_prefix, "list uploads under") from exc
            except (BotoCoreError, OSError) as exc:
                raise self._error(exc, self._name_prefix, "list uploads under") from exc
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() > cutoff:
                    continue
                try:
                    self._api(
                        "abort_multipart_upload", Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                        continue  # completed or aborted meanwhile
                    raise self._error(exc, upload["Key"], "abort upload of") from exc
                except (BotoCoreError, OSError) as exc:
                    raise self._error(exc, upload["Key"], "abort upload of") from exc
                removed += 1
            if not page.get("IsTruncated"):
                return removed
            kw["KeyMarker"] = page.get("NextKeyMarker", "")
            kw["UploadIdMarker"] = page.get("NextUploadIdMarker", "")


class _Reader:
    """Bytes in sizes we choose from a chunk source of sizes the caller chose."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()
        self._done = False

    def _fill(self, n: int) -> None:
        while len(self._buffer) < n and not self._done:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._done = True
                return
            # bytes, bytearray and memoryview alike
            self._buffer += chunk

    def read(self, n: int) -> bytes:
        """``n`` bytes, fewer only at the end of the source."""
        self._fill(n)
        if len(self._buffer) <= n:
            # the usual case (a whole object, a last part): one copy, not a slice and a copy
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        data = bytes(memoryview(self._buffer)[:n])
        del self._buffer[:n]
        return data

    def at_end(self) -> bool:
        self._fill(1)
        return not self._buffer

    def unread(self, data: bytes) -> None:
        self._buffer[:0] = data
