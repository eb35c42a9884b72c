"""Streaming decryption and decompression of a Freezer tar-engine ``data`` object.

Upstream pipes ``tar -z|-j|-J`` into ``openssl enc -aes-256-cfb -pass file:F``. We undo that
with ``cryptography`` (AES-256-CFB128, the cipher ``openssl enc`` calls aes-256-cfb) and the
stdlib decompressors, one chunk at a time, so memory stays flat whatever the archive size.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # cryptography ≥ 47 keeps CFB among the "decrepit" modes (the main import is deprecated)
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB

from .errors import CorruptArchive, TruncatedArchive, UnsupportedBackup

CHUNK = 1 << 20
OPENSSL_MAGIC = b"Salted__"
# OpenSSL ≥ 1.1.0 derives with SHA-256, older releases with MD5; both with one iteration.
DIGESTS = ("sha256", "md5")
# openssl's app_get_pass reads at most this many bytes of the first line of -pass file:F.
OPENSSL_PASS_MAX = 1023

COMPRESSIONS = ("gzip", "bzip2", "xz", "none")


def read_passphrase_file(path: str | Path) -> bytes:
    """Return the passphrase exactly as ``openssl enc -pass file:F`` would use it.

    OpenSSL takes the first line (up to 1023 bytes) and strips the newline; nothing else.
    """
    with open(path, "rb") as f:
        line = f.readline(OPENSSL_PASS_MAX)
    return line.split(b"\n", 1)[0]


def evp_bytes_to_key(passphrase: bytes, salt: bytes, digest: str) -> tuple[bytes, bytes]:
    """OpenSSL's EVP_BytesToKey with count=1: 32-byte key + 16-byte IV for AES-256-CFB."""
    out = b""
    prev = b""
    while len(out) < 48:
        prev = hashlib.new(digest, prev + passphrase + salt).digest()
        out += prev
    return out[:32], out[32:48]


def file_chunks(path: Path, counter: Callable[[int], None] | None = None) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if counter:
                counter(len(chunk))
            yield chunk


def decrypt(
    chunks: Iterable[bytes], passphrase: bytes, digest: str, source: str
) -> Iterator[bytes]:
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= 16:
            break
    if len(head) < 16 or not head.startswith(OPENSSL_MAGIC):
        if len(head) < 16 and head == OPENSSL_MAGIC[: len(head)]:
            raise TruncatedArchive(source, "encrypted data ends inside the openssl header")
        raise CorruptArchive(
            source, "metadata says encrypted but data has no openssl 'Salted__' header"
        )
    key, iv = evp_bytes_to_key(passphrase, head[8:16], digest)
    dec = Cipher(algorithms.AES(key), CFB(iv)).decryptor()
    if len(head) > 16:
        yield dec.update(head[16:])
    for chunk in it:
        yield dec.update(chunk)
    tail = dec.finalize()  # CFB is a stream mode: nothing is buffered, but be explicit
    if tail:
        yield tail


def _new_decompressor(compression: str) -> Any:
    if compression == "gzip":
        return zlib.decompressobj(wbits=31)  # 31 = gzip wrapper, checks CRC32 and ISIZE
    if compression == "zlib":  # rsyncv2's "gzip" is a bare zlib stream
        return zlib.decompressobj()
    if compression == "bzip2":
        return bz2.BZ2Decompressor()
    if compression == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    raise UnsupportedBackup(f"unknown compression {compression!r}")


_DECOMPRESS_ERRORS = (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError)


def decompress(chunks: Iterable[bytes], compression: str | None, source: str) -> Iterator[bytes]:
    """Decompress a stream that may hold several concatenated members (gzip/bzip2/xz allow it).

    Output is produced at most CHUNK bytes at a time (a 1 MiB run of zeros must not become a
    gigabyte in memory). Raises TruncatedArchive when input ends inside a member: its integrity
    trailer (CRC) is then missing, so nothing produced from it may count as a complete restore.
    """
    if compression in (None, "", "none"):
        yield from chunks
        return
    is_zlib = compression in ("gzip", "zlib")
    d = _new_decompressor(compression)
    try:
        for chunk in chunks:
            buf = chunk
            while True:
                if d.eof:
                    if not buf.strip(b"\0"):
                        break  # zero padding after the last member, as tar/dd may leave
                    d = _new_decompressor(compression)  # next concatenated member
                out = d.decompress(buf, CHUNK)
                if out:
                    yield out
                if d.eof:
                    buf = d.unused_data
                    continue
                if is_zlib:
                    buf = d.unconsumed_tail
                    if not buf:
                        break
                else:
                    buf = b""
                    if d.needs_input:
                        break
        if is_zlib and not d.eof:
            out = d.flush()
            if out:
                yield out
    except _DECOMPRESS_ERRORS as e:
        raise CorruptArchive(source, f"{compression} data is corrupt: {e}") from None
    if not d.eof:
        raise TruncatedArchive(source, f"{compression} stream ends before its end marker")


def plain_stream(
    path: Path,
    compression: str | None,
    passphrase: bytes | None,
    digest: str | None,
    counter: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The tar bytes of one ``data`` object: read → (decrypt) → decompress."""
    source = str(path)
    chunks: Iterable[bytes] = file_chunks(path, counter)
    if passphrase is not None:
        chunks = decrypt(chunks, passphrase, digest or "sha256", source)
    return decompress(chunks, compression, source)


class ChunkReader:
    """A minimal ``read(n)`` over an iterator of byte chunks (what TarReader consumes)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""
        self._off = 0

    def read(self, n: int) -> bytes:
        while len(self._buf) - self._off < n:
            try:
                nxt = next(self._it)
            except StopIteration:
                break
            self._buf = self._buf[self._off :] + nxt
            self._off = 0
        out = self._buf[self._off : self._off + n]
        self._off += len(out)
        return out
