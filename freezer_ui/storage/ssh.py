"""SSH storage: objects are files below a directory of an SFTP server (OpenSSH's, typically).

URL (everything the storage needs, so ``storage.url`` reopens it with no other input)::

    ssh://USER@HOST[:PORT]/ABS/ROOT[?key=FILE&known_hosts=FILE&timeout=SECONDS&channels=N]

``key``: private key file (default: paramiko's usual ~/.ssh keys and the ssh agent);
``known_hosts``: the file the server's host key must be in (default ``~/.ssh/known_hosts``);
``timeout``: seconds for connecting, the SSH handshake and authentication (default 30);
``channels``: how many SFTP channels the connection opens at most, i.e. how many operations
run at the same time (default 4). The same names are accepted as keyword options of
:meth:`SSHStorage.from_url` and override the query. Unknown names are an error.

Host keys are always checked: an unknown host, or a key different from the recorded one, is a
:class:`HostKeyError` that says which key the server offered and how to record it. There is no
"accept new keys" mode: that is what lets a man in the middle read every backup.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import posixpath
import secrets
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import paramiko
from paramiko.sftp import (
    CMD_DATA,
    CMD_EXTENDED,
    CMD_EXTENDED_REPLY,
    CMD_READ,
    CMD_STATUS,
    CMD_WRITE,
    int64,
)

from freezer_ui.storage.base import (
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageFull,
    validate_key,
    validate_prefix,
)

log = logging.getLogger(__name__)

_TMP_PREFIX = ".tmp-"  # as the local storage: no valid key can name it, list() skips it
# paramiko's (and most servers') largest SFTP read/write request.
_REQUEST = 32 * 1024
# Requests in flight per transfer: enough to keep a LAN link busy, few enough that an error
# is noticed within 2 MiB of data.
_WINDOW = 64
# SSH flow control per channel, well above what _WINDOW keeps in flight so the server does not
# wait for window adjustments: on loopback, get went from 32-46 MB/s with paramiko's 2 MiB
# default to 40-77 MB/s (docs/storage.md).
_CHANNEL_WINDOW = 16 << 20
_YIELD = 4 << 20  # get() yields blocks of this size (one open/close round trip each)
_DEFAULT_PORT = 22
_DEFAULT_TIMEOUT = 30.0
_DEFAULT_CHANNELS = 4

T = TypeVar("T")


class HostKeyError(StorageError):
    """The server's host key is not in the known_hosts file, or differs from the one there."""


class AuthenticationFailed(StorageError):
    """The server refused our key (or we had none it accepts)."""


def _fingerprint(key: paramiko.PKey) -> str:
    # The form OpenSSH prints (ssh-keygen -lf, the "authenticity of host" prompt).
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _known_hosts_name(host: str, port: int) -> str:
    return host if port == _DEFAULT_PORT else f"[{host}]:{port}"


class _RejectUnknownHost(paramiko.MissingHostKeyPolicy):
    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyError(
            f"host key of {hostname} is not in {self.known_hosts} (the server offered "
            f"{key.get_name()} {_fingerprint(key)}); after checking that fingerprint with the "
            f"server's administrator, add it, e.g. with ssh-keyscan, to {self.known_hosts}"
        )


def _is_connection_error(exc: BaseException) -> bool:
    # SFTP status errors arrive as a plain IOError (with an errno or just the server's text);
    # a broken link shows as SSHException, EOFError, a timeout or a ConnectionError.
    return isinstance(exc, paramiko.SSHException | EOFError | TimeoutError | ConnectionError)


_SFTP_ERRORS = (OSError, EOFError, paramiko.SSHException, paramiko.SFTPError)


class SSHStorage(Storage):
    """Objects are files below ``root`` on an SFTP server; keys map 1:1 onto relative paths.

    **put** checks the key is free, writes ``.tmp-<random>`` in the key's directory, sends
    ``fsync@openssh.com`` for it, then renames it to the key with the *standard* SFTP
    ``RENAME``. OpenSSH's sftp-server implements that as ``link()`` + ``unlink()``, so it fails
    when the target exists: two writers of one key cannot overwrite each other, exactly one
    wins (the loser gets :class:`ObjectExists`). (``posix-rename@openssh.com`` would replace
    the target; it is never used.) On a file system without hard links sftp-server falls back
    to stat-then-rename, which keeps write-once except for two puts racing within that window.

    **Durability.** The temp file's data is fsynced on the server before the rename, when the
    server offers ``fsync@openssh.com`` (OpenSSH ≥ 6.5 does). SFTP cannot fsync a directory,
    so the new *name* is as durable as the server's file system makes a rename (ext4/xfs
    journal it within seconds); a power cut in that window loses the object, never leaves a
    partial one. Servers without the extension get a warning in the log, once.

    **Errors.** OpenSSH reports ``ENOSPC`` and ``EDQUOT`` as a generic SFTP failure; when a
    write fails that way the storage asks the server's free space (``statvfs@openssh.com``)
    and reports :class:`StorageFull` if the file system is full. A quota (EDQUOT) with free
    space left stays a plain :class:`StorageError` with the server's message. Either way the
    temp file is removed.

    **Threads.** One SSH connection carries up to ``channels`` SFTP sessions; each operation
    takes one for its duration, so operations run in parallel up to that number and wait
    beyond it. A streaming :meth:`get` takes a channel per 4 MiB block, never between blocks.

    **Dropped connection.** When the connection dies the storage reconnects once and retries:
    an operation that has not consumed caller data is simply repeated, a :meth:`get` resumes at
    the block it had reached. A :meth:`put` whose source was partly consumed cannot be
    replayed: it raises :class:`StorageError` (its temp file is debris for
    :meth:`remove_leftovers`).
    """

    name = "ssh"

    def __init__(
        self,
        host: str,
        root: str,
        *,
        user: str | None = None,
        port: int = _DEFAULT_PORT,
        key: str | None = None,
        known_hosts: str | None = None,
        timeout: float = _DEFAULT_TIMEOUT,
        channels: int = _DEFAULT_CHANNELS,
    ) -> None:
        if not root.startswith("/"):
            raise StorageError(f"ssh storage root must be absolute: {root!r}")
        if channels < 1:
            raise StorageError(f"channels must be >= 1, got {channels}")
        self.host = host
        self.port = int(port)
        self.user = user
        self.root = posixpath.normpath(root)
        self.key = key
        self.known_hosts = known_hosts or os.path.expanduser("~/.ssh/known_hosts")
        self.timeout = float(timeout)
        self.channels = int(channels)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.channels)
        self._client: paramiko.SSHClient | None = None
        self._generation = 0  # bumped at each (re)connect; stale channels are dropped
        self._idle: list[tuple[int, paramiko.SFTPClient]] = []
        self._no_fsync_warned = False
        self._dirs: set[str] = set()  # directories known to exist (saves a mkdir per put)
        self._run(None, lambda sftp: self._makedirs(sftp, self.root))

    # ------------------------------------------------------------------ URL

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SSHStorage:
        parts = urlsplit(url)
        if parts.scheme != "ssh" or not parts.hostname:
            raise StorageError(f"not an ssh storage URL (ssh://user@host[:port]/path): {url!r}")
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
        merged: dict[str, Any] = {**query, **options}
        known = {"key", "known_hosts", "timeout", "channels"}
        unknown = set(merged) - known
        if unknown:
            raise StorageError(
                f"unknown ssh storage option(s) {', '.join(sorted(unknown))} in {url!r}; "
                f"known: {', '.join(sorted(known))}"
            )
        try:
            port = parts.port or _DEFAULT_PORT
            timeout = float(merged.get("timeout", _DEFAULT_TIMEOUT))
            channels = int(merged.get("channels", _DEFAULT_CHANNELS))
        except ValueError as exc:
            raise StorageError(f"bad ssh storage URL {url!r}: {exc}") from None
        return cls(
            parts.hostname,
            unquote(parts.path) or "/",
            user=unquote(parts.username) if parts.username else None,
            port=port,
            key=merged.get("key") or None,
            known_hosts=merged.get("known_hosts") or None,
            timeout=timeout,
            channels=channels,
        )

    @property
    def url(self) -> str:
        user = quote(self.user, safe="") + "@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == _DEFAULT_PORT else f":{self.port}"
        query = [("known_hosts", self.known_hosts)]
        if self.key:
            query.insert(0, ("key", self.key))
        if self.timeout != _DEFAULT_TIMEOUT:
            query.append(("timeout", f"{self.timeout:g}"))
        if self.channels != _DEFAULT_CHANNELS:
            query.append(("channels", str(self.channels)))
        qs = "&".join(f"{k}={quote(v, safe='/')}" for k, v in query)
        return f"ssh://{user}{host}{port}{quote(self.root)}?{qs}"

    def __repr__(self) -> str:
        return f"SSHStorage({self.user or ''}@{self.host}:{self.port}{self.root})"

    # ------------------------------------------------------------------ connection

    def _where(self) -> str:
        return f"ssh://{self.user + '@' if self.user else ''}{self.host}:{self.port}"

    def _connect(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(self.known_hosts)
        except FileNotFoundError:
            raise HostKeyError(
                f"{self._where()}: known_hosts file {self.known_hosts} does not exist; host keys "
                "are always checked (record the server's key there first)"
            ) from None
        except (OSError, paramiko.SSHException) as exc:
            raise HostKeyError(f"cannot read known_hosts {self.known_hosts}: {exc}") from None
        client.set_missing_host_key_policy(_RejectUnknownHost(self.known_hosts))
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.user,
                key_filename=self.key,
                look_for_keys=self.key is None,
                allow_agent=self.key is None,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                channel_timeout=self.timeout,
            )
        except HostKeyError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyError(
                f"{self._where()}: HOST KEY MISMATCH — the server offered "
                f"{exc.key.get_name()} {_fingerprint(exc.key)} but "
                f"{self.known_hosts} records {_fingerprint(exc.expected_key)} for "
                f"{_known_hosts_name(self.host, self.port)}; this may be an attack, or the "
                "server was reinstalled: check with its administrator before changing the file"
            ) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            which = f"key {self.key}" if self.key else "the default keys and agent"
            raise AuthenticationFailed(
                f"{self._where()}: authentication failed with {which} ({exc}); is the public "
                "key in the server's authorized_keys for that user?"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise StorageError(f"{self._where()}: cannot connect: {exc}") from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(30)  # notices a silently dead link; keeps NATs open
        return client

    def _alive(self) -> bool:
        t = self._client.get_transport() if self._client else None
        return t is not None and t.is_active()

    def _take(self) -> tuple[int, paramiko.SFTPClient]:
        with self._lock:
            if not self._alive():
                self._drop_locked()
                self._client = self._connect()
                self._generation += 1
            while self._idle:
                gen, sftp = self._idle.pop()
                if gen == self._generation and not sftp.sock.closed:
                    return gen, sftp
                sftp.close()
            gen, client = self._generation, self._client
        assert client is not None
        try:
            sftp = paramiko.SFTPClient.from_transport(
                client.get_transport(), window_size=_CHANNEL_WINDOW
            )
            if sftp is None:
                raise paramiko.SSHException("the server opened no SFTP channel")
            # A server that stops answering (dead link, hung disk) must not hang us for
            # ever; fsync of a large object may take a while, hence the generous factor.
            sftp.get_channel().settimeout(self.timeout * 10)
            return gen, sftp
        except _SFTP_ERRORS as exc:
            if _is_connection_error(exc):
                raise  # the caller's retry logic decides
            raise StorageError(f"{self._where()}: cannot open an SFTP channel: {exc}") from None

    def _give_back(self, gen: int, sftp: paramiko.SFTPClient) -> None:
        with self._lock:
            if gen == self._generation and self._alive() and not sftp.sock.closed:
                self._idle.append((gen, sftp))
                return
        sftp.close()

    def _drop_locked(self) -> None:
        for _gen, sftp in self._idle:
            sftp.close()
        self._idle.clear()
        if self._client is not None:
            self._client.close()
            self._client = None

    @contextmanager
    def _channel(self) -> Iterator[tuple[int, paramiko.SFTPClient]]:
        self._slots.acquire()
        try:
            gen, sftp = self._take()
            try:
                yield gen, sftp
            finally:
                self._give_back(gen, sftp)
        finally:
            self._slots.release()

    def _run(self, key: str | None, fn: Callable[[paramiko.SFTPClient], T]) -> T:
        """Run ``fn`` on a channel; on a dropped connection reconnect and run it once more."""
        for attempt in (0, 1):
            with self._channel() as (gen, sftp):
                try:
                    return fn(sftp)
                except StorageError:
                    raise
                except _SFTP_ERRORS as exc:
                    if attempt == 0 and self._dropped(gen, exc):
                        continue
                    raise self._error(exc, key, sftp) from exc
        raise AssertionError("unreachable")

    def _dropped(self, gen: int, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection (or the channel) broke, so a retry may work.

        A dead connection is forgotten here; the next channel taken connects anew.
        """
        if not _is_connection_error(exc) and self._alive():
            return False  # the server answered: an SFTP error, not a broken link
        log.info("%s: connection dropped (%s), reconnecting", self._where(), exc)
        with self._lock:
            # Not only when the transport already says so: its reader thread may not have seen
            # the EOF yet while our own send already failed, and reusing it would fail again.
            if gen == self._generation:
                self._drop_locked()
        return True

    def _error(
        self, exc: BaseException, key: str | None, sftp: Any, path: str = ""
    ) -> StorageError:
        what = repr(key) if key is not None else self.root
        if isinstance(exc, OSError) and exc.errno == errno.ENOENT:
            return ObjectNotFound(key or self.root)
        if _is_connection_error(exc) or not self._alive():
            # (paramiko also says "Socket is closed" as a plain OSError)
            return StorageError(f"{self._where()}: connection lost during {what}: {exc}")
        if path and sftp is not None and self._server_full(sftp, path):
            return StorageFull(f"{self._where()}: no space left writing {what}: {exc}")
        return StorageError(f"{self._where()}{self.root}: {what}: {exc}")

    def _server_full(self, sftp: paramiko.SFTPClient, path: str) -> bool:
        """Whether the file system holding ``path`` has no room left (statvfs@openssh.com)."""
        try:
            t, msg = sftp._request(CMD_EXTENDED, "statvfs@openssh.com", path)
        except _SFTP_ERRORS:
            return False
        if t != CMD_EXTENDED_REPLY:
            return False
        _bsize, frsize = msg.get_int64(), msg.get_int64()
        _blocks, _bfree, bavail = msg.get_int64(), msg.get_int64(), msg.get_int64()
        # Only asked after a write failed: with less than one window of requests' worth of
        # room left, that failure was the file system filling up.
        return bavail * frsize < _REQUEST * _WINDOW

    def close(self) -> None:
        with self._lock:
            self._drop_locked()

    # ------------------------------------------------------------------ paths

    def _path(self, key: str) -> str:
        return posixpath.join(self.root, validate_key(key))

    def _makedirs(self, sftp: paramiko.SFTPClient, directory: str) -> None:
        if directory in self._dirs:
            return
        missing = []
        d = directory
        while d not in ("/", ""):
            try:
                if stat.S_ISDIR(sftp.stat(d).st_mode or 0):
                    break
                raise StorageError(f"{self._where()}: {d} exists and is not a directory")
            except FileNotFoundError:
                missing.append(d)
                d = posixpath.dirname(d)
        for d in reversed(missing):
            try:
                sftp.mkdir(d)
            except OSError:
                # another writer may have made it meanwhile; anything else shows on the next step
                if not stat.S_ISDIR(sftp.stat(d).st_mode or 0):
                    raise
        self._dirs.add(directory)

    # ------------------------------------------------------------------ put

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        directory = posixpath.dirname(path)
        tmp = posixpath.join(directory, _TMP_PREFIX + secrets.token_hex(8))

        def open_tmp(sftp: paramiko.SFTPClient) -> paramiko.SFTPFile:
            try:
                sftp.stat(path)
            except FileNotFoundError:
                pass
            else:
                raise ObjectExists(key)
            try:
                return sftp.open(tmp, "wx")
            except FileNotFoundError:
                self._dirs.discard(directory)
                self._makedirs(sftp, directory)
                return sftp.open(tmp, "wx")

        # Opening is retried on a dropped connection (nothing consumed yet); writing is not.
        for attempt in (0, 1):
            with self._channel() as (gen, sftp):
                try:
                    fh = open_tmp(sftp)
                except StorageError:
                    raise
                except _SFTP_ERRORS as exc:
                    if attempt == 0 and self._dropped(gen, exc):
                        continue
                    raise self._error(exc, key, sftp, directory) from exc
                return self._write(sftp, fh, key, path, tmp, chunks)
        raise AssertionError("unreachable")

    def _write(
        self,
        sftp: paramiko.SFTPClient,
        fh: paramiko.SFTPFile,
        key: str,
        path: str,
        tmp: str,
        chunks: Iterable[bytes],
    ) -> int:
        size = 0
        pending: deque[int] = deque()
        done = False
        source = iter(chunks)
        try:
            try:
                while True:
                    try:
                        chunk = next(source)
                    except StopIteration:
                        break
                    except BaseException as exc:
                        # The caller's data source failed: propagate it unchanged.
                        raise _SourceFailed(exc) from None
                    view = memoryview(chunk).cast("B")
                    for i in range(0, len(view), _REQUEST):
                        part = bytes(view[i : i + _REQUEST])
                        pending.append(
                            sftp._async_request(type(None), CMD_WRITE, fh.handle, int64(size), part)
                        )
                        size += len(part)
                        while len(pending) > _WINDOW:
                            _expect_ok(sftp, pending.popleft())
                while pending:
                    _expect_ok(sftp, pending.popleft())
                self._fsync(sftp, fh)
                fh.close()
                try:
                    sftp.rename(tmp, path)  # standard RENAME: never replaces (see class doc)
                except OSError as exc:
                    if _is_connection_error(exc) or not self._exists(sftp, path):
                        raise
                    raise ObjectExists(key) from None
                done = True
            except _SFTP_ERRORS as exc:
                # Answers still in flight first: the statvfs request _error may send would
                # otherwise read (and drop) them, and a later wait for them would never end.
                _drain(sftp, pending)
                raise self._error(exc, key, sftp, posixpath.dirname(path)) from exc
        except _SourceFailed as wrapped:
            raise wrapped.exc from None
        finally:
            if not done:
                self._discard_tmp(sftp, fh, tmp, pending)
        return size

    @staticmethod
    def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
        try:
            sftp.stat(path)
        except FileNotFoundError:
            return False
        return True

    def _discard_tmp(
        self, sftp: paramiko.SFTPClient, fh: paramiko.SFTPFile, tmp: str, pending: deque[int]
    ) -> None:
        try:
            _drain(sftp, pending)
            fh.close()
            sftp.remove(tmp)
        except FileNotFoundError:
            pass
        except _SFTP_ERRORS as exc:
            # Connection gone: the temp file stays until remove_leftovers().
            log.warning("%s: could not remove temp file %s: %s", self._where(), tmp, exc)

    def _fsync(self, sftp: paramiko.SFTPClient, fh: paramiko.SFTPFile) -> None:
        try:
            sftp._request(CMD_EXTENDED, "fsync@openssh.com", fh.handle)
        except OSError as exc:
            if "unsupported" not in str(exc).lower():
                raise
            if not self._no_fsync_warned:
                self._no_fsync_warned = True
                log.warning(
                    "%s: server lacks fsync@openssh.com; objects are as durable as its "
                    "file system makes a close()",
                    self._where(),
                )

    # ------------------------------------------------------------------ get

    def get(self, key: str) -> Iterator[bytes]:
        path = self._path(key)

        def size_of(sftp: paramiko.SFTPClient) -> int:
            st = sftp.stat(path)
            if not stat.S_ISREG(st.st_mode or 0):
                raise ObjectNotFound(key)
            return st.st_size or 0

        # Checked now, so a missing key raises here and not at the first next().
        return self._stream(key, path, self._run(key, size_of))

    def _stream(self, key: str, path: str, size: int) -> Iterator[bytes]:
        # Each block takes a channel, opens, reads and closes: no channel is held between two
        # next() calls, so a caller may keep any number of these iterators open (or abandon
        # them) without starving other operations, and a dropped connection costs one block.
        offset = 0
        while offset < size:
            end = min(size, offset + _YIELD)

            def block(sftp: paramiko.SFTPClient, start: int = offset, end: int = end) -> bytes:
                with sftp.open(path, "rb") as fh:
                    return b"".join(_read(sftp, fh, start, end))

            data = self._run(key, block)
            if len(data) != end - offset:
                # Objects are write-once: a shorter one was deleted and written anew meanwhile.
                raise StorageError(f"{self._where()}: {key!r} changed while being read")
            offset = end
            yield data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        path = self._path(key)

        def read(sftp: paramiko.SFTPClient) -> bytes:
            with sftp.open(path, "rb") as fh:
                if length == 0:
                    return b""
                size = fh.stat().st_size or 0
                return b"".join(_read(sftp, fh, offset, min(size, offset + length)))

        return self._run(key, read)

    # ------------------------------------------------------------------ list, delete, exists

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix fixes, then filter by string prefix.
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = posixpath.join(self.root, base) if base else self.root

        def walk(sftp: paramiko.SFTPClient) -> list[ObjectInfo]:
            found: list[ObjectInfo] = []
            todo = [(start, base + "/" if base else "")]
            while todo:
                directory, rel = todo.pop()
                try:
                    entries = sftp.listdir_attr(directory)
                except FileNotFoundError:
                    continue  # no such prefix, or removed while listing
                for e in entries:
                    if e.filename.startswith(".") or "/" in e.filename:
                        # temp files of puts in progress; and a name with a "/" can only come
                        # from a broken or hostile server: it is no key of ours
                        continue
                    mode = e.st_mode or 0
                    if stat.S_ISDIR(mode):
                        todo.append((posixpath.join(directory, e.filename), rel + e.filename + "/"))
                    elif stat.S_ISREG(mode) and (rel + e.filename).startswith(prefix):
                        found.append(ObjectInfo(rel + e.filename, e.st_size or 0))
            return found

        # Collected first, then yielded: a generator holding a channel for as long as the
        # caller dawdles would starve the other threads.
        yield from self._run(prefix, walk)

    def delete(self, key: str) -> None:
        path = self._path(key)
        self._run(key, lambda sftp: sftp.remove(path))

    def exists(self, key: str) -> bool:
        path = self._path(key)

        def check(sftp: paramiko.SFTPClient) -> bool:
            try:
                return stat.S_ISREG(sftp.stat(path).st_mode or 0)
            except FileNotFoundError:
                return False

        return self._run(key, check)

    def remove_leftovers(self, older_than: float = 3600.0) -> int:
        # The temp files' mtimes are the server's clock: a skew larger than older_than could
        # remove a put in progress, hence the repository's hour-long default.
        cutoff = time.time() - older_than

        def sweep(sftp: paramiko.SFTPClient) -> int:
            removed = 0
            todo = [self.root]
            while todo:
                directory = todo.pop()
                try:
                    entries = sftp.listdir_attr(directory)
                except FileNotFoundError:
                    continue
                for e in entries:
                    p = posixpath.join(directory, e.filename)
                    if stat.S_ISDIR(e.st_mode or 0):
                        todo.append(p)
                    elif e.filename.startswith(_TMP_PREFIX) and (e.st_mtime or 0) < cutoff:
                        try:
                            sftp.remove(p)
                            removed += 1
                        except FileNotFoundError:
                            pass
            return removed

        return self._run(None, sweep)


class _SourceFailed(Exception):
    """Carries an exception raised by the caller's chunk iterable through put's handlers."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _expect_ok(sftp: paramiko.SFTPClient, num: int) -> None:
    t, _msg = sftp._read_response(num)  # raises IOError on an error status
    if t != CMD_STATUS:
        raise paramiko.SFTPError(f"unexpected SFTP answer {t} to a write")


def _drain(sftp: paramiko.SFTPClient, pending: deque[int]) -> None:
    """Wait for the answers to requests in flight (their errors no longer matter); never
    raises, it runs while another error is being reported.

    Answers arrive in request order and paramiko drops the ones nobody waits for, so every
    request sent must be waited for before the channel carries anything else.
    """
    while pending:
        try:
            sftp._read_response(pending.popleft())
        except _SFTP_ERRORS as exc:
            if _is_connection_error(exc) or sftp.sock.closed:
                pending.clear()  # no answers will come; the caller reports the real error
                return


def _read(sftp: paramiko.SFTPClient, fh: Any, start: int, end: int) -> Iterator[bytes]:
    """The bytes [start, end) of an open file, with up to _WINDOW reads in flight.

    Answers come back in request order, so each is matched to the oldest request; a short
    answer (allowed by SFTP) is completed by asking again for the rest before moving on.
    """
    inflight: deque[tuple[int, int, int]] = deque()  # (request id, offset, length)
    nxt = start
    try:
        while nxt < end or inflight:
            while nxt < end and len(inflight) < _WINDOW:
                n = min(_REQUEST, end - nxt)
                inflight.append(
                    (sftp._async_request(type(None), CMD_READ, fh.handle, int64(nxt), n), nxt, n)
                )
                nxt += n
            num, off, n = inflight.popleft()
            try:
                t, msg = sftp._read_response(num)
            except EOFError:
                return  # the file ends before `end`
            if t != CMD_DATA:
                raise paramiko.SFTPError(f"unexpected SFTP answer {t} to a read")
            data = msg.get_string()
            if not data:
                return
            yield data
            if len(data) < n:
                # Drain the rest of the window, then ask for what the short answer left out.
                for num2, _o, _n in inflight:
                    try:
                        sftp._read_response(num2)
                    except (EOFError, OSError):
                        pass
                inflight.clear()
                nxt = off + len(data)
    finally:
        for num2, _o, _n in inflight:
            try:
                sftp._read_response(num2)
            except (EOFError, OSError, paramiko.SSHException):
                break
