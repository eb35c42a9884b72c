"""Chunkers: content-defined (FastCDC) for file trees, fixed-size for images and volumes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from pyfastcdc import FastCDC


@dataclass(frozen=True)
class ChunkerParams:
    """FastCDC parameters, stored in the repository config so every writer cuts alike.

    pyfastcdc's ``avg_size`` is the normalization point after the ``min_size`` skip, so the
    mean chunk is about ``avg + min`` for random data (≈1.25 MiB with the defaults).
    """

    avg: int = 1 << 20
    min: int = 256 << 10
    max: int = 4 << 20
    seed: int = 0

    def to_doc(self) -> dict[str, Any]:
        return {
            "algorithm": "fastcdc2020",
            "avg": self.avg,
            "min": self.min,
            "max": self.max,
            "seed": self.seed,
        }

    @classmethod
    def from_doc(cls, doc: Any) -> ChunkerParams:
        if not isinstance(doc, dict) or doc.get("algorithm") != "fastcdc2020":
            raise ValueError(f"unknown chunker {doc!r}")
        p = cls(int(doc["avg"]), int(doc["min"]), int(doc["max"]), int(doc["seed"]))
        p.make()  # validates the ranges
        return p

    def make(self) -> FastCDC:
        return FastCDC(self.avg, min_size=self.min, max_size=self.max, seed=self.seed)


# Metadata (the item stream) changes in small places; smaller chunks keep its dedup fine.
ITEM_CHUNKER = ChunkerParams(avg=64 << 10, min=16 << 10, max=256 << 10)


def cdc_chunks(stream: BinaryIO, params: ChunkerParams) -> Iterator[bytes]:
    """Cut ``stream`` into content-defined chunks (bytes, safe to keep)."""
    for chunk in params.make().cut_stream(stream):
        # cut_stream's memoryview is only valid until the next chunk: copy it out.
        yield bytes(chunk.data)


def cdc_views(stream: BinaryIO, params: ChunkerParams) -> Iterator[memoryview]:
    """Like :func:`cdc_chunks`, but each chunk is a view into the chunker's buffer, valid
    only until the next one is taken: for callers that hash and seal a chunk at once (the
    backup's worker processes), which saves copying every chunk out."""
    for chunk in params.make().cut_stream(stream):
        yield chunk.data


def fixed_chunks(stream: BinaryIO, size: int) -> Iterator[bytes]:
    """Cut ``stream`` into blocks of exactly ``size`` bytes (the last one may be shorter).

    Suits disk images and block devices, where data moves in place rather than shifting:
    a changed block then costs exactly one new chunk.
    """
    if size <= 0:
        raise ValueError("fixed chunk size must be positive")
    while True:
        block = stream.read(size)
        if not block:
            return
        # read() may return short blocks on pipes; fill up to keep chunk boundaries stable.
        while len(block) < size:
            more = stream.read(size - len(block))
            if not more:
                break
            block += more
        yield bytes(block)


class StreamCutter:
    """Incremental CDC over bytes pushed in pieces (used for the item stream).

    Cut points depend only on the bytes since the previous cut, so keeping the last
    (possibly unfinished) chunk as carry gives the same chunks as cutting the whole stream.
    """

    def __init__(self, params: ChunkerParams, flush_at: int = 8 << 20) -> None:
        self.cdc = params.make()
        self.buf = bytearray()
        self.flush_at = max(flush_at, params.max * 2)

    def push(self, data: bytes) -> list[bytes]:
        self.buf += data
        if len(self.buf) < self.flush_at:
            return []
        cuts = [(c.offset, c.length) for c in self.cdc.cut_buf(bytes(self.buf))]
        out = [bytes(self.buf[o : o + n]) for o, n in cuts[:-1]]
        last_off = cuts[-1][0]
        del self.buf[:last_off]
        return out

    def finish(self) -> list[bytes]:
        if not self.buf:
            return []
        data = bytes(self.buf)
        self.buf.clear()
        return [data[c.offset : c.offset + c.length] for c in self.cdc.cut_buf(data)]
