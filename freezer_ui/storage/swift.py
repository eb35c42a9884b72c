"""OpenStack Swift storage: one Swift object per storage key, in one container.

URL and options
---------------
``swift://CONTAINER[/PREFIX]`` names *where* the objects live; it never holds a secret (the URL
is written into backup records and logs).  *Who* connects comes from keyword options, and every
option left out is taken from the usual OpenStack environment variables (the ones the ``swift``
and ``openstack`` CLIs read), so an agent started with an ``openrc`` needs nothing else:

option (environment variable): meaning

- ``auth_url`` (``OS_AUTH_URL``, or ``ST_AUTH``): Keystone v3 URL, or a v1 auth URL such as
  tempauth's ``http://proxy:8080/auth/v1.0``
- ``auth_version``: ``"3"`` (Keystone, the default) or ``"1"`` (implied by ``ST_AUTH``)
- ``username`` (``OS_USERNAME``, or ``ST_USER``): the user; v1: ``account:user``
- ``password`` (``OS_PASSWORD``, or ``ST_KEY``): the password; v1: the key
- ``project_name`` / ``project_id`` (``OS_PROJECT_NAME`` / ``OS_PROJECT_ID``)
- ``user_domain_name``, ``project_domain_name`` (``OS_USER_DOMAIN_NAME``,
  ``OS_PROJECT_DOMAIN_NAME``): both default to ``Default``; or ``user_domain_id``,
  ``project_domain_id`` (``OS_USER_DOMAIN_ID``, ``OS_PROJECT_DOMAIN_ID``)
- ``region_name`` (``OS_REGION_NAME``), ``interface`` (``OS_INTERFACE``, default ``public``):
  which object-store endpoint of the Keystone catalog
- ``token`` + ``storage_url`` (``OS_AUTH_TOKEN`` + ``OS_STORAGE_URL``): an existing token and
  the account's storage URL; no authentication request at all
- ``session``: a ready keystoneauth1 ``Session`` (what Horizon holds for the user)
- ``cacert`` (``OS_CACERT``): CA bundle for https
- ``create``: create the container on the first put (default ``True``)
- ``listing_limit``: names asked per listing request (default 10,000; never more than the
  cluster's ``container_listing_limit``)

Which credentials win: a ``session``; else ``token`` + ``storage_url``; else ``auth_url`` with
``auth_version`` 1 (tempauth, swauth, any v1 auth) or 3 (Keystone password).  An option that
names an endpoint or a token (``auth_url``, ``token``, ``storage_url``, ``session``) replaces
the environment's credentials as a whole; any other option overrides just its own setting.

Guarantees and how Swift gives them
-----------------------------------
* Atomic: a Swift PUT becomes visible only when complete; a body that breaks off (our chunk
  source raised, the process died) leaves nothing.  Bodies stream with chunked transfer
  encoding, so a pack is never held in memory; the MD5 Swift returns is checked against ours.
* Write-once: every PUT carries ``If-None-Match: *`` (Swift answers 412 when the object exists).
  Swift checks that header when a PUT *starts*, so two PUTs of one key that overlap in time
  can both pass it.  Inside one process a per-key lock serialises them, so exactly one wins.
  Across processes each PUT tags the object with a random id and reads it back: a writer whose
  object was replaced by a racing writer's raises :class:`ObjectExists`.  What no Swift client
  can detect is the mirror case (the first writer finished and checked before the second
  replaced it): then both return and the later PUT's bytes stay.  The repository names packs,
  indexes, manifests and locks by random ids, so only two hosts running ``init`` on the same
  URL at the same moment (``config``, ``keys/...``) could meet this case.
* Listing: Swift returns at most ``container_listing_limit`` names per request (10,000 by
  default, read from the cluster's ``/info``); :meth:`SwiftStorage.list` pages with markers.
* Size: objects above the cluster's ``max_file_size`` (5 GiB by default) are refused before
  Swift sees the end of them; our packs are ~32 MiB, so segmented (SLO/DLO) objects are not
  written.  413 (too large for a quota) and 507 (a full disk) become :class:`StorageFull`.
* Threads: swiftclient ``Connection`` objects are not thread-safe, so each operation takes one
  from a pool (a streaming :meth:`get` keeps it until the stream ends).
* The container is created by the first :meth:`put` (``create=False`` refuses instead); reads of
  a missing container see an empty storage.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from keystoneauth1 import exceptions as ks_exceptions
from requests.exceptions import RequestException
from swiftclient.client import ClientException, Connection

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
# Swift's defaults, used when a cluster hides its /info.
_DEFAULT_MAX_OBJECT = 5 * (1 << 30) + 2
_DEFAULT_LISTING_LIMIT = 10_000
# Our random tag on each PUT, read back to tell a won race from a lost one.
_PUT_ID = "X-Object-Meta-Fzui-Put-Id"

# option name -> environment variable(s), first one set wins.
_ENV = {
    "auth_url": ("OS_AUTH_URL",),
    "username": ("OS_USERNAME",),
    "password": ("OS_PASSWORD",),
    "project_name": ("OS_PROJECT_NAME", "OS_TENANT_NAME"),
    "project_id": ("OS_PROJECT_ID", "OS_TENANT_ID"),
    "user_domain_name": ("OS_USER_DOMAIN_NAME",),
    "project_domain_name": ("OS_PROJECT_DOMAIN_NAME",),
    "user_domain_id": ("OS_USER_DOMAIN_ID",),
    "project_domain_id": ("OS_PROJECT_DOMAIN_ID",),
    "region_name": ("OS_REGION_NAME",),
    "interface": ("OS_INTERFACE",),
    "token": ("OS_AUTH_TOKEN",),
    "storage_url": ("OS_STORAGE_URL",),
    "cacert": ("OS_CACERT",),
}
_ENV_V1 = {"auth_url": "ST_AUTH", "username": "ST_USER", "password": "ST_KEY"}


def settings_from_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Connection options found in the environment (see the module docstring).

    ``ST_AUTH`` (the swift CLI's v1 variables) is used only when ``OS_AUTH_URL`` is unset, and
    then brings ``auth_version = "1"`` with it: mixing a v1 endpoint with Keystone names
    would fail in confusing ways.
    """
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for option, names in _ENV.items():
        for name in names:
            if env.get(name):
                out[option] = env[name]
                break
    if "auth_url" not in out and env.get("ST_AUTH"):
        out["auth_version"] = "1"
        for option, name in _ENV_V1.items():
            if env.get(name):
                out[option] = env[name]
    return out


def _check_container(container: str) -> str:
    # Swift's own rules: no "/" (it would become part of the object path), at most 256 bytes.
    if not container or "/" in container or len(container.encode()) > 256:
        raise StorageError(f"invalid Swift container name: {container!r}")
    return container


class SwiftStorage(Storage):
    """Objects in one Swift container, keys under an optional name prefix."""

    name = "swift"

    def __init__(
        self,
        container: str,
        prefix: str = "",
        *,
        auth_url: str | None = None,
        auth_version: str = "3",
        username: str | None = None,
        password: str | None = None,
        project_name: str | None = None,
        project_id: str | None = None,
        user_domain_name: str | None = None,
        project_domain_name: str | None = None,
        user_domain_id: str | None = None,
        project_domain_id: str | None = None,
        region_name: str | None = None,
        interface: str | None = None,
        token: str | None = None,
        storage_url: str | None = None,
        session: Any = None,
        cacert: str | None = None,
        create: bool = True,
        listing_limit: int = _DEFAULT_LISTING_LIMIT,
        timeout: float = 60.0,
        retries: int = 3,
    ) -> None:
        self.container = _check_container(container)
        self.prefix = check_prefix(prefix)
        self._name_prefix = self.prefix + "/" if self.prefix else ""
        if listing_limit < 1:
            raise StorageError(f"listing_limit must be >= 1, got {listing_limit}")
        self.listing_limit = listing_limit
        self.create = create
        self._who = ""  # for error messages: who tried to authenticate where
        auth_version = str(auth_version).lstrip("v").split(".")[0]
        common: dict[str, Any] = {"retries": retries, "timeout": timeout, "cacert": cacert}
        os_options = {
            "service_type": "object-store",
            "endpoint_type": interface or "public",
            "region_name": region_name,
        }
        if session is None and not (token and storage_url) and auth_url and auth_version == "3":
            if not (username and password):
                raise StorageError("Keystone v3 needs username and password (or a token)")
            session = self._keystone_session(
                auth_url,
                username,
                password,
                project_name=project_name,
                project_id=project_id,
                # a domain named by id needs no name; neither given: Keystone's default domain
                user_domain_id=user_domain_id,
                project_domain_id=project_domain_id,
                user_domain_name=user_domain_name or (None if user_domain_id else "Default"),
                project_domain_name=project_domain_name
                or (None if project_domain_id else "Default"),
                cacert=cacert,
                timeout=timeout,
            )
            self._who = f"Keystone {auth_url} as {username}"
        self._session = session
        self._os_options = os_options
        if session is not None:
            self._conn_args = {**common, "session": session, "os_options": os_options}
            self._who = self._who or "the given Keystone session"
        elif token and storage_url:
            self._conn_args = {**common, "preauthurl": storage_url, "preauthtoken": token}
            self._who = f"the given token at {storage_url}"
        elif auth_url and auth_version == "1":
            if not (username and password):
                raise StorageError("v1 auth needs username (account:user) and password (key)")
            self._conn_args = {
                **common,
                "authurl": auth_url,
                "user": username,
                "key": password,
                "auth_version": "1",
            }
            self._who = f"{auth_url} as {username}"
        elif auth_url:
            raise StorageError(f"unsupported Swift auth_version {auth_version!r} (use 1 or 3)")
        else:
            raise StorageError(
                "no Swift credentials: give auth_url/username/password (or set OS_AUTH_URL, "
                "OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME; or ST_AUTH, ST_USER, ST_KEY), "
                "or token + storage_url, or a keystoneauth session"
            )
        self._pool: list[Connection] = []
        self._lock = threading.Lock()
        self._key_locks = KeyLocks()  # see KeyLocks: one put per key at a time here
        self._container_ready = False
        self._endpoint_checked = False
        self._info: dict[str, Any] | None = None
        self._closed = False

    @staticmethod
    def _keystone_session(auth_url: str, username: str, password: str, **kw: Any) -> Any:
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity import v3

        auth = v3.Password(
            auth_url=auth_url,
            username=username,
            password=password,
            project_name=kw["project_name"],
            project_id=kw["project_id"],
            user_domain_name=kw["user_domain_name"],
            project_domain_name=kw["project_domain_name"],
            user_domain_id=kw["user_domain_id"],
            project_domain_id=kw["project_domain_id"],
        )
        return ks_session.Session(auth=auth, verify=kw["cacert"] or True, timeout=kw["timeout"])

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SwiftStorage:
        parts = urlsplit(url)
        if parts.scheme != "swift" or not parts.netloc or parts.query or parts.fragment:
            raise StorageError(f"not a swift storage URL (swift://CONTAINER[/PREFIX]): {url!r}")
        settings: dict[str, Any] = settings_from_env()
        if any(k in options for k in ("auth_url", "session", "token", "storage_url")):
            # explicit credentials replace the environment's, never mix with them
            settings = {k: v for k, v in settings.items() if k in ("region_name", "cacert")}
        settings.update(options)
        return cls(unquote(parts.netloc), unquote(parts.path), **settings)

    @property
    def url(self) -> str:
        tail = "/" + quote(self.prefix) if self.prefix else ""
        return f"swift://{quote(self.container, safe='')}{tail}"

    def __repr__(self) -> str:
        return f"SwiftStorage({self.url!r})"

    # -- connections --------------------------------------------------------------------------

    def _checkout(self) -> Connection:
        if self._closed:
            raise StorageError(f"{self.url} is closed")
        with self._lock:
            conn = self._pool.pop() if self._pool else None
        return conn if conn is not None else self._new_connection()

    def _new_connection(self) -> Connection:
        if self._session is not None and not self._endpoint_checked:
            # swiftclient would go on with a None storage URL and fail somewhere obscure
            interface = self._os_options["endpoint_type"]
            region = self._os_options["region_name"]
            try:
                url = self._session.get_endpoint(
                    service_type="object-store", interface=interface, region_name=region
                )
            except ks_exceptions.ClientException as exc:
                raise self._error(exc, "", "find the object-store endpoint") from exc
            if not url:
                raise StorageError(
                    f"the Keystone catalog for {self._who} has no object-store endpoint "
                    f"(interface {interface!r}, region {region!r})"
                )
            self._endpoint_checked = True
        return Connection(**self._conn_args)

    def _checkin(self, conn: Connection) -> None:
        with self._lock:
            if not self._closed:
                self._pool.append(conn)
                return
        conn.close()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        conn = self._checkout()
        try:
            yield conn
        finally:
            self._checkin(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()

    def _error(self, exc: BaseException, key: str, what: str) -> StorageError:
        """One Swift/HTTP/Keystone failure as the StorageError subclass it means."""
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, ClientException):
            status = exc.http_status
            detail = f"{status} {exc.http_reason or ''}".strip() if status else str(exc)
            body = exc.http_response_content
            if isinstance(body, bytes):
                body = body.decode("utf-8", "replace")
            auth_failed = status == 401 or (exc.msg or "").startswith("Auth GET failed")
            if body and not auth_failed:  # a 401 body is boilerplate HTML
                detail += f": {str(body)[:200]}"
            if auth_failed:
                return StorageError(f"Swift authentication failed for {self._who}: {detail}")
            if status == 403:
                return StorageError(f"Swift denied {what} {key!r} for {self._who}: {detail}")
            if status == 404:
                return ObjectNotFound(key)
            if status in (413, 507):
                return StorageFull(f"Swift refused {what} {key!r} (quota or disk full): {detail}")
            return StorageError(f"Swift {what} {key!r} in {self.url} failed: {detail}")
        if isinstance(exc, ks_exceptions.Unauthorized):
            return StorageError(f"Keystone authentication failed for {self._who}: {exc}")
        if isinstance(exc, ks_exceptions.EndpointNotFound):
            return StorageError(f"no object-store endpoint for {self._who}: {exc}")
        if isinstance(exc, ks_exceptions.ConnectionError):
            return StorageError(f"cannot reach Keystone for {self._who}: {exc}")
        if isinstance(exc, ks_exceptions.ClientException):
            return StorageError(f"Keystone refused {self._who}: {exc}")
        if isinstance(exc, (RequestException, OSError)):
            return StorageError(f"cannot reach Swift for {what} {key!r} ({self._who}): {exc}")
        return StorageError(f"Swift {what} {key!r} failed: {exc!r}")

    def _cluster(self, conn: Connection) -> dict[str, Any]:
        """The cluster's limits from ``/info`` (Swift's defaults if it does not publish them)."""
        if self._info is None:
            try:
                info = conn.get_capabilities().get("swift", {})
            except ClientException as exc:
                if exc.http_status in (401, 403) or (exc.msg or "").startswith("Auth GET"):
                    raise self._error(exc, "/info", "read") from exc
                info = {}  # /info switched off (expose_info = false)
            except (RequestException, OSError, ks_exceptions.ClientException) as exc:
                raise self._error(exc, "/info", "read") from exc
            self._info = {
                "max_file_size": int(info.get("max_file_size", _DEFAULT_MAX_OBJECT)),
                "container_listing_limit": int(
                    info.get("container_listing_limit", _DEFAULT_LISTING_LIMIT)
                ),
            }
        return self._info

    def _object(self, key: str) -> str:
        return self._name_prefix + validate_key(key)

    def _ensure_container(self, conn: Connection) -> None:
        if self._container_ready:
            return
        try:
            conn.head_container(self.container)
        except ClientException as exc:
            if exc.http_status != 404:
                raise self._error(exc, self.container, "open container") from exc
            if not self.create:
                raise StorageError(
                    f"Swift container {self.container!r} does not exist (create=False)"
                ) from None
            try:
                conn.put_container(self.container)
            except (ClientException, RequestException, OSError) as exc2:
                raise self._error(exc2, self.container, "create container") from exc2
        except (RequestException, OSError, ks_exceptions.ClientException) as exc:
            raise self._error(exc, self.container, "open container") from exc
        self._container_ready = True

    # -- the Storage contract ------------------------------------------------------------------

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        name = self._object(key)
        with self._key_locks.hold(name), self._connection() as conn:
            self._ensure_container(conn)
            upload = _Upload(chunks, self._cluster(conn)["max_file_size"], key)
            put_id = secrets.token_hex(16)
            headers = {"If-None-Match": "*", _PUT_ID: put_id}
            # A streamed body cannot be replayed, and swiftclient's retry would replace the real
            # error with "no ability to reset contents": no retries for this one request.
            retries, conn.retries = conn.retries, 0
            etag = None
            try:
                etag = conn.put_object(
                    self.container,
                    name,
                    upload.body(),
                    headers=headers,
                    content_type="application/octet-stream",
                )
            except BaseException as exc:
                if upload.error is None:
                    if isinstance(exc, ClientException) and exc.http_status in (409, 412):
                        raise ObjectExists(key) from None
                    if isinstance(exc, Exception):
                        raise self._error(exc, key, "put") from exc
                    raise
            finally:
                conn.retries = retries
            if upload.error is not None:
                # The source's own exception, unchanged: raised outside the except block so
                # that neither its __context__ nor its __cause__ is rewritten.
                raise upload.error
            assert etag is not None
            self._verify(conn, name, key, put_id, etag, upload)
        return upload.size

    def _verify(
        self, conn: Connection, name: str, key: str, put_id: str, etag: str, upload: _Upload
    ) -> None:
        try:
            head = conn.head_object(self.container, name)
        except (ClientException, RequestException, OSError, ks_exceptions.ClientException) as exc:
            if isinstance(exc, ClientException) and exc.http_status == 404:
                # deleted by someone else between our PUT and HEAD: it existed, and not as ours
                raise ObjectExists(key) from None
            raise self._error(exc, key, "verify") from exc
        if head.get(_PUT_ID.lower()) != put_id:
            # a racing PUT of the same key (another process) replaced ours: it holds the key
            raise ObjectExists(key)
        ours = upload.md5.hexdigest()
        size = int(head.get("content-length", -1))
        if etag.strip('"') != ours or size != upload.size:
            try:
                conn.delete_object(self.container, name)
            except (ClientException, RequestException, OSError):
                pass  # the error below says what happened; a corrupt leftover fails reads
            raise StorageError(
                f"Swift stored {key!r} wrong (etag {etag!r}, {size} bytes; sent {ours}, "
                f"{upload.size} bytes): removed it"
            )

    def get(self, key: str) -> Iterator[bytes]:
        name = self._object(key)
        conn = self._checkout()
        try:
            _headers, body = conn.get_object(self.container, name, resp_chunk_size=_READ_BLOCK)
        except BaseException as exc:
            self._checkin(conn)
            if isinstance(exc, Exception):
                raise self._error(exc, key, "get") from exc
            raise
        return self._stream(conn, body, key)

    def _stream(self, conn: Connection, body: Any, key: str) -> Iterator[bytes]:
        try:
            while True:
                try:
                    block = body.read(_READ_BLOCK)
                except (ClientException, RequestException, OSError) as exc:
                    raise self._error(exc, key, "get") from exc
                if not block:
                    return
                yield block
        finally:
            body.close()
            self._checkin(conn)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        name = self._object(key)
        if length == 0:
            if not self.exists(key):
                raise ObjectNotFound(key)
            return b""
        resp: dict[str, Any] = {}
        with self._connection() as conn:
            try:
                _headers, data = conn.get_object(
                    self.container,
                    name,
                    headers={"Range": f"bytes={offset}-{offset + length - 1}"},
                    response_dict=resp,
                )
            except ClientException as exc:
                if exc.http_status == 416:  # the range starts at or past the end
                    return b""
                raise self._error(exc, key, "get_range") from exc
            except (RequestException, OSError, ks_exceptions.ClientException) as exc:
                raise self._error(exc, key, "get_range") from exc
        if resp.get("status") == 200:  # a server that ignored Range sent everything
            return bytes(data[offset : offset + length])
        return bytes(data)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        full = self._name_prefix + prefix
        marker = ""
        while True:
            with self._connection() as conn:
                # never ask for more than the cluster allows: Swift answers 412 to that
                limit = min(self.listing_limit, self._cluster(conn)["container_listing_limit"])
                try:
                    _headers, page = conn.get_container(
                        self.container, prefix=full, marker=marker, limit=limit
                    )
                except ClientException as exc:
                    if exc.http_status == 404:
                        return  # no container yet: nothing stored
                    raise self._error(exc, prefix, "list") from exc
                except (RequestException, OSError, ks_exceptions.ClientException) as exc:
                    raise self._error(exc, prefix, "list") from exc
            for entry in page:
                key = entry["name"][len(self._name_prefix) :]
                try:
                    validate_key(key)
                except StorageError:
                    continue  # a name no key can have: not ours (a foreign tool wrote it)
                yield ObjectInfo(key, int(entry["bytes"]))
            if len(page) < limit:
                return
            marker = page[-1]["name"]

    def delete(self, key: str) -> None:
        name = self._object(key)
        with self._connection() as conn:
            try:
                conn.delete_object(self.container, name)
            except (ClientException, RequestException, OSError, ks_exceptions.ClientException) as e:
                raise self._error(e, key, "delete") from e

    def exists(self, key: str) -> bool:
        name = self._object(key)
        with self._connection() as conn:
            try:
                conn.head_object(self.container, name)
            except ClientException as exc:
                if exc.http_status == 404:
                    return False
                raise self._error(exc, key, "exists") from exc
            except (RequestException, OSError, ks_exceptions.ClientException) as exc:
                raise self._error(exc, key, "exists") from exc
        return True


class _Upload:
    """The chunk source of one PUT: counts, hashes, enforces the size limit, and keeps the
    source's own exception so that ``put`` can re-raise it unchanged (the HTTP stack would
    otherwise wrap it or replace it with a connection error)."""

    def __init__(self, chunks: Iterable[bytes], limit: int, key: str) -> None:
        self.chunks = chunks
        self.limit = limit
        self.key = key
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)  # Swift's ETag is the body's MD5
        self.error: BaseException | None = None

    def body(self) -> Iterator[bytes]:
        try:
            for chunk in self.chunks:
                # requests frames chunks by len(): make it count bytes, whatever was passed
                data = chunk if isinstance(chunk, bytes) else bytes(memoryview(chunk))
                if not data:
                    continue
                self.size += len(data)
                if self.size > self.limit:
                    raise StorageError(
                        f"{self.key!r} is larger than the Swift cluster's maximum object size "
                        f"({self.limit} bytes); nothing was stored"
                    )
                self.md5.update(data)
                yield data
        except GeneratorExit:
            raise  # the HTTP stack stopped reading (Swift answered early): not our error
        except BaseException as exc:
            self.error = exc
            raise
