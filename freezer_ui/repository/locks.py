"""Repository locks stored as objects under ``locks/`` (docs/format.md, "Locks").

Shared locks (backups, forget) coexist; an exclusive lock (prune) excludes everything.
Taking a lock = write my lock object, then list: if a conflicting live lock exists, remove
mine and retry.  Because both sides write before they list, two conflicting lockers cannot
both miss each other.  A lock is stale when its process is gone (same host) or when it was
not refreshed for ``STALE_AFTER`` seconds (other hosts).
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

from freezer_ui.repository.errors import LockError
from freezer_ui.repository.format import LOCKS_PREFIX
from freezer_ui.storage import ObjectNotFound, Storage, StorageError

LOCK_MAGIC = b"FZUILOCK"
STALE_AFTER = 30 * 60.0
REFRESH_EVERY = 5 * 60.0


@dataclass(frozen=True)
class LockInfo:
    key: str
    kind: str  # "shared" | "exclusive"
    hostname: str
    pid: int
    time: float


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def parse_lock(key: str, data: bytes) -> LockInfo | None:
    """Parse a lock object; None if it is unreadable (treated as a live foreign lock)."""
    if not data.startswith(LOCK_MAGIC):
        return None
    try:
        doc = json.loads(data[len(LOCK_MAGIC) :].decode("utf-8"))
        info = LockInfo(
            key, str(doc["kind"]), str(doc["hostname"]), int(doc["pid"]), float(doc["time"])
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return info if info.kind in ("shared", "exclusive") else None


def is_stale(info: LockInfo, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    if info.hostname == socket.gethostname():
        return not _pid_alive(info.pid)
    return now - info.time > STALE_AFTER


class Lock:
    """One held lock.  Use as a context manager or call :meth:`release`."""

    def __init__(self, storage: Storage, exclusive: bool, timeout: float = 30.0) -> None:
        self.storage = storage
        self.kind = "exclusive" if exclusive else "shared"
        self.timeout = timeout
        self.key: str | None = None
        self._taken_at = 0.0
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def _write(self) -> str:
        key = LOCKS_PREFIX + os.urandom(16).hex()
        doc = {
            "kind": self.kind,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "time": time.time(),
        }
        self.storage.put(key, [LOCK_MAGIC + json.dumps(doc).encode()])
        self._taken_at = time.monotonic()
        return key

    def _conflicts(self) -> list[str]:
        out = []
        for obj in list(self.storage.list(LOCKS_PREFIX)):
            if obj.key == self.key:
                continue
            try:
                data = self.storage.get_bytes(obj.key)
            except ObjectNotFound:
                continue
            info = parse_lock(obj.key, data)
            if info is not None and is_stale(info):
                try:
                    self.storage.delete(obj.key)
                except StorageError:
                    pass
                continue
            if self.kind == "exclusive" or info is None or info.kind == "exclusive":
                desc = (
                    "unreadable lock"
                    if info is None
                    else f"{info.kind} lock by {info.hostname} pid {info.pid}"
                )
                out.append(f"{obj.key} ({desc})")
        return out

    def acquire(self) -> Lock:
        deadline = time.monotonic() + self.timeout
        delay = 0.05
        while True:
            self.key = self._write()
            conflicts = self._conflicts()
            if not conflicts:
                self._start_refresher()
                return self
            self._remove()
            if time.monotonic() >= deadline:
                raise LockError(f"cannot take {self.kind} lock: held: {'; '.join(conflicts)}")
            # jitter: two lockers that keep colliding would otherwise retry in lockstep
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)

    def _start_refresher(self) -> None:
        # A holder that computes for a long time without touching the storage (a files-cache
        # walk, a slow upload) must not look stale to other hosts: refresh in the background.
        self._stop.clear()
        self._refresher = threading.Thread(target=self._refresh_loop, name="fzui-lock", daemon=True)
        self._refresher.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(REFRESH_EVERY):
            try:
                self.refresh()
            except StorageError:
                pass  # retried at the next tick; staleness needs STALE_AFTER of failures

    def refresh(self, force: bool = False) -> None:
        """Rewrite the lock object so other hosts do not consider it stale."""
        with self._mutex:
            if self.key is None:
                return
            if not force and time.monotonic() - self._taken_at < REFRESH_EVERY:
                return
            old = self.key
            self.key = self._write()
            try:
                self.storage.delete(old)
            except StorageError:
                pass

    def _remove(self) -> None:
        if self.key is not None:
            try:
                self.storage.delete(self.key)
            except StorageError:
                pass
            self.key = None

    def release(self) -> None:
        self._stop.set()
        with self._mutex:
            self._remove()

    def __enter__(self) -> Lock:
        if self.key is None:
            self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def break_locks(storage: Storage) -> int:
    """Remove every lock object (operator action after a crash on another host)."""
    n = 0
    for obj in list(storage.list(LOCKS_PREFIX)):
        try:
            storage.delete(obj.key)
            n += 1
        except ObjectNotFound:
            pass
    return n
