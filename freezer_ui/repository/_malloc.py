"""Keep peak RSS from growing with the data backed up (glibc only; a no-op elsewhere)."""

from __future__ import annotations

from typing import Any

# glibc's malloc raises its mmap threshold to the largest block freed so far (up to 32 MiB),
# and its trim threshold to twice that.  After the first large read buffer is freed, every
# chunk-sized buffer (read blocks, chunks, sealed blobs: ~1 MiB, made in one thread, freed in
# another) then comes from the heap arenas, which keep up to 64 MiB of freed memory each:
# peak RSS grew with the data backed up (167 -> 211 MB from 0.5x to 1x of the benchmark
# corpus).  A fixed threshold (set once, process-wide) turns that adjustment off, so the
# default trim threshold applies again, and a trim after each pack upload hands the arenas'
# free pages back.  Lower thresholds (128 KiB - 1 MiB) cost ~10-30% more CPU in page faults
# for little more.
_MMAP_THRESHOLD = 4 << 20
_M_MMAP_THRESHOLD = -3


def _libc() -> Any:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError, ImportError):
        return None  # not glibc: nothing to tune


_LIBC = _libc()
_tuned = False


def tune_malloc() -> None:
    global _tuned
    if _LIBC is not None and not _tuned:
        _tuned = True
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def malloc_trim() -> None:
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
