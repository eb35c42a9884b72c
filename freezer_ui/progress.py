"""Progress reporting shared by engines, the CLI and the agent (docs/architecture.md §6).

Work code calls :meth:`Progress.start`, :meth:`Progress.advance` and :meth:`Progress.finish`;
renderers (tqdm in the CLI, the agent's job-record writer) either poll :meth:`snapshot` or
pass ``on_update`` to be called at most every ``interval`` seconds.  All methods are
thread-safe: writer threads and the engine may advance the same object.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressSnapshot:
    """A consistent view of the progress at one instant."""

    bytes_done: int
    bytes_total: int | None
    files_done: int
    files_total: int | None
    elapsed: float  # seconds since start()
    rate: float  # bytes per second over the whole run so far (0.0 before any time passed)
    eta: float | None  # seconds left, None when unknown (no total, or no rate yet)
    finished: bool
    label: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.bytes_total:
            return None
        return min(1.0, self.bytes_done / self.bytes_total)

    def to_dict(self) -> dict[str, object]:
        return {
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "files_done": self.files_done,
            "files_total": self.files_total,
            "elapsed": round(self.elapsed, 3),
            "rate": round(self.rate, 1),
            "eta": None if self.eta is None else round(self.eta, 1),
            "finished": self.finished,
            "label": self.label,
        }


class Progress:
    """Thread-safe progress counter with rate and ETA.

    ``clock`` is injectable so tests can drive time without sleeping.
    """

    def __init__(
        self,
        on_update: Callable[[ProgressSnapshot], None] | None = None,
        *,
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._on_update = on_update
        self._interval = interval
        self._clock = clock
        self._started: float | None = None
        self._finished_at: float | None = None
        self._last_emit = float("-inf")
        self._bytes = 0
        self._files = 0
        self._bytes_total: int | None = None
        self._files_total: int | None = None
        self._label = ""

    def start(
        self, total_bytes: int | None = None, total_files: int | None = None, *, label: str = ""
    ) -> None:
        """Begin (or restart) counting; totals may be None when unknown."""
        with self._lock:
            self._started = self._clock()
            self._finished_at = None
            self._bytes = self._files = 0
            self._bytes_total = total_bytes
            self._files_total = total_files
            self._label = label
        self._emit(force=True)

    def set_total(self, total_bytes: int | None = None, total_files: int | None = None) -> None:
        """Update totals discovered while working (e.g. after a directory scan)."""
        with self._lock:
            if total_bytes is not None:
                self._bytes_total = total_bytes
            if total_files is not None:
                self._files_total = total_files

    def advance(self, bytes: int = 0, files: int = 0) -> None:  # noqa: A002 - contract name
        """Add work done.  Cheap: safe to call per chunk."""
        with self._lock:
            if self._started is None:
                self._started = self._clock()
            self._bytes += bytes
            self._files += files
        self._emit()

    def finish(self) -> None:
        """Mark the work complete (ETA becomes 0, rate freezes)."""
        with self._lock:
            if self._started is None:
                self._started = self._clock()
            self._finished_at = self._clock()
        self._emit(force=True)

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            now = self._finished_at if self._finished_at is not None else self._clock()
            elapsed = 0.0 if self._started is None else max(0.0, now - self._started)
            rate = self._bytes / elapsed if elapsed > 0 else 0.0
            eta: float | None
            if self._finished_at is not None:
                eta = 0.0
            elif self._bytes_total is not None and rate > 0:
                eta = max(0.0, (self._bytes_total - self._bytes) / rate)
            else:
                eta = None
            return ProgressSnapshot(
                bytes_done=self._bytes,
                bytes_total=self._bytes_total,
                files_done=self._files,
                files_total=self._files_total,
                elapsed=elapsed,
                rate=rate,
                eta=eta,
                finished=self._finished_at is not None,
                label=self._label,
            )

    def _emit(self, force: bool = False) -> None:
        if self._on_update is None:
            return
        now = self._clock()
        with self._lock:
            if not force and now - self._last_emit < self._interval:
                return
            self._last_emit = now
        self._on_update(self.snapshot())
