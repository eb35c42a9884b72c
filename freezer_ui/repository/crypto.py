"""Keys, key files and the blob envelope (docs/format.md, "Keys" and "Blobs").

Every stored blob (chunk, pack trailer, index, manifest) goes through :class:`Envelope`:
``seal`` compresses, then encrypts (or checksums) with associated data that binds the blob
to its type and id, so a blob moved to another place or swapped for another id fails to
open.
"""

from __future__ import annotations

import os
import struct
import threading
from dataclasses import dataclass
from typing import Any

import blake3
import msgpack  # type: ignore[import-untyped]
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from freezer_ui.repository.errors import CorruptData, UnsupportedFormat, WrongPassphrase

# --- blob envelope ------------------------------------------------------------------------
ENVELOPE_NONE = 0x00
ENVELOPE_AES_GCM = 0x01
COMPRESSION_RAW = 0x00
COMPRESSION_ZSTD = 0x01
TAG_LEN = 16
NONCE_LEN = 12

_ENV_NONE = bytes([ENVELOPE_NONE])
_ENV_AES_GCM = bytes([ENVELOPE_AES_GCM])
_RAW = bytes([COMPRESSION_RAW])
_ZSTD = bytes([COMPRESSION_ZSTD])

BLOB_CHUNK = b"C"
BLOB_TRAILER = b"T"
BLOB_INDEX = b"I"
BLOB_MANIFEST = b"M"

ENCRYPTIONS = ("none", "aes-256-gcm")

# Objects other than chunks (index, manifest, trailer) may be large but not unbounded: a
# corrupt zstd frame header must not make us allocate gigabytes.
MAX_META_SIZE = 1 << 30


def aad_for(blob_type: bytes, blob_id: bytes) -> bytes:
    """Associated data: type byte, id length, id.  Binds a blob to what it claims to be."""
    return blob_type + bytes([len(blob_id)]) + blob_id


@dataclass(frozen=True)
class KeyMaterial:
    """The secrets of one repository."""

    id_key: bytes  # 32 bytes: key of the keyed BLAKE3 chunk id
    enc_key: bytes | None  # 32 bytes AES-256-GCM key, None for unencrypted repositories


class Envelope:
    """Seal/open blobs.  Thread-safe (compressor objects are per thread)."""

    def __init__(self, keys: KeyMaterial, *, level: int = 3) -> None:
        self.keys = keys
        self.level = level
        self._aead = AESGCM(keys.enc_key) if keys.enc_key is not None else None
        self._local = threading.local()

    @property
    def overhead(self) -> int:
        return 2 + TAG_LEN + (NONCE_LEN if self._aead is not None else 0)

    def _compressor(self) -> zstandard.ZstdCompressor:
        c: zstandard.ZstdCompressor | None = getattr(self._local, "c", None)
        if c is None:
            c = self._local.c = zstandard.ZstdCompressor(level=self.level, write_content_size=True)
        return c

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        d: zstandard.ZstdDecompressor | None = getattr(self._local, "d", None)
        if d is None:
            d = self._local.d = zstandard.ZstdDecompressor()
        return d

    def seal(
        self, blob_type: bytes, blob_id: bytes, data: bytes, *, compress: bool = True
    ) -> bytes:
        """Compress (if it shrinks) and encrypt/checksum ``data``; return the stored blob."""
        # The blob is assembled with one copy of the body (bytes concatenation would copy a
        # chunk three or four times, holding the GIL while the sealing threads could run).
        body: bytes | memoryview = data
        comp = _RAW
        # Every chunk is compressed whole.  A 64 KiB probe from the middle used to decide
        # for chunks of 256 KiB or more; measured on the bench corpus it kept 43 MB of
        # chunks raw that compress by 2.5 % (many have one incompressible middle), and zstd
        # level 3 passes over incompressible data at ~320 MB/s, about what the probes cost.
        if compress and data:
            packed = self._compressor().compress(data)
            # Keep zstd only when it actually saves space: incompressible data stays raw.
            if len(packed) < len(data):
                body, comp = packed, _ZSTD
        aad = aad_for(blob_type, blob_id)
        if self._aead is None:
            h = blake3.blake3(aad)
            h.update(comp)
            h.update(body)
            return b"".join((_ENV_NONE, comp, body, h.digest(TAG_LEN)))
        nonce = os.urandom(NONCE_LEN)
        sealed = self._aead.encrypt(nonce, b"".join((comp, body)), aad)
        return b"".join((_ENV_AES_GCM, nonce, sealed))

    def open(
        self,
        blob_type: bytes,
        blob_id: bytes,
        blob: bytes,
        *,
        max_size: int = MAX_META_SIZE,
        where: str | None = None,
        offset: int | None = None,
    ) -> bytes:
        """Check and decrypt a blob, then decompress it (at most ``max_size`` bytes)."""
        if len(blob) < 1 + 1 + TAG_LEN:
            raise CorruptData("blob too short", key=where, offset=offset)
        env = blob[0]
        aad = aad_for(blob_type, blob_id)
        # Slices of a memoryview: the checks and decompression read the blob in place.
        view = memoryview(blob)
        payload: bytes | memoryview
        if env == ENVELOPE_NONE:
            if self._aead is not None:
                raise CorruptData(
                    "unencrypted blob in an encrypted repository", key=where, offset=offset
                )
            payload = view[1:-TAG_LEN]
            h = blake3.blake3(aad)
            h.update(payload)
            if h.digest(TAG_LEN) != view[-TAG_LEN:]:
                raise CorruptData("blob checksum mismatch", key=where, offset=offset)
        elif env == ENVELOPE_AES_GCM:
            if self._aead is None:
                raise CorruptData(
                    "encrypted blob in an unencrypted repository", key=where, offset=offset
                )
            if len(blob) < 1 + NONCE_LEN + 1 + TAG_LEN:
                raise CorruptData("blob too short", key=where, offset=offset)
            try:
                payload = memoryview(
                    self._aead.decrypt(view[1 : 1 + NONCE_LEN], view[1 + NONCE_LEN :], aad)
                )
            except InvalidTag:
                raise CorruptData("blob authentication failed", key=where, offset=offset) from None
        else:
            raise CorruptData(f"unknown blob envelope {env:#x}", key=where, offset=offset)
        if not payload:
            raise CorruptData("empty blob payload", key=where, offset=offset)
        comp = payload[0]
        body = payload[1:]
        if comp == COMPRESSION_RAW:
            if len(body) > max_size:
                raise CorruptData("blob larger than allowed", key=where, offset=offset)
            return bytes(body)
        if comp == COMPRESSION_ZSTD:
            try:
                params = zstandard.get_frame_parameters(body)
                if (
                    params.content_size > max_size
                    or params.content_size == zstandard.CONTENTSIZE_UNKNOWN
                ):
                    raise CorruptData("compressed blob has a bad size", key=where, offset=offset)
                out = self._decompressor().decompress(body, max_output_size=max_size)
            except zstandard.ZstdError as exc:
                raise CorruptData(
                    f"decompression failed: {exc}", key=where, offset=offset
                ) from None
            if len(out) != params.content_size:
                raise CorruptData("decompressed size mismatch", key=where, offset=offset)
            return out
        raise CorruptData(f"unknown compression {comp:#x}", key=where, offset=offset)


# --- checksummed plaintext objects (config, key files) ------------------------------------
def dump_checked(magic: bytes, version: int, doc: dict[str, Any]) -> bytes:
    """``magic(8) | u32 version | msgpack(doc) | blake3(all previous bytes)(32)``."""
    packed: bytes = msgpack.packb(doc, use_bin_type=True)
    body = magic + struct.pack("<I", version) + packed
    return body + blake3.blake3(body).digest()


def load_checked(
    magic: bytes, supported: int, data: bytes, where: str
) -> tuple[int, dict[str, Any]]:
    """Parse :func:`dump_checked` output.  Raises CorruptData or UnsupportedFormat."""
    if len(data) < 8 + 4 + 32 or data[:8] != magic:
        raise CorruptData("bad magic or truncated", key=where, offset=0)
    body, digest = data[:-32], data[-32:]
    if blake3.blake3(body).digest() != digest:
        raise CorruptData("checksum mismatch", key=where)
    (version,) = struct.unpack_from("<I", data, 8)
    if version > supported or version < 1:
        raise UnsupportedFormat(
            f"{where}: format version {version} (this code reads <= {supported})"
        )
    try:
        doc = msgpack.unpackb(body[12:], raw=False)
    except Exception as exc:  # msgpack raises many types for bad input
        raise CorruptData(f"undecodable: {exc}", key=where) from None
    if not isinstance(doc, dict):
        raise CorruptData("not a map", key=where)
    return version, doc


# --- key files ----------------------------------------------------------------------------
KEYFILE_MAGIC = b"FZUIKEYF"
KEYFILE_VERSION = 1
DEFAULT_SCRYPT_N = 1 << 15
# A key file names its own scrypt cost; cap it so a crafted file cannot eat all memory.
MAX_SCRYPT_N = 1 << 20


def _kek(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def make_key_file(
    passphrase: str, repo_id: bytes, keys: KeyMaterial, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> bytes:
    """Wrap ``keys`` with a passphrase-derived key; return the key file bytes."""
    assert keys.enc_key is not None
    salt = os.urandom(32)
    r, p = 8, 1
    kek = _kek(passphrase, salt, scrypt_n, r, p)
    nonce = os.urandom(NONCE_LEN)
    secret: bytes = msgpack.packb(
        {"enc_key": keys.enc_key, "id_key": keys.id_key, "repo_id": repo_id}, use_bin_type=True
    )
    wrapped = AESGCM(kek).encrypt(nonce, secret, KEYFILE_MAGIC + repo_id)
    doc = {
        "repo_id": repo_id,
        "kdf": "scrypt",
        "n": scrypt_n,
        "r": r,
        "p": p,
        "salt": salt,
        "cipher": "aes-256-gcm",
        "nonce": nonce,
        "wrapped": wrapped,
    }
    return dump_checked(KEYFILE_MAGIC, KEYFILE_VERSION, doc)


def open_key_file(data: bytes, passphrase: str, repo_id: bytes, where: str) -> KeyMaterial:
    """Unwrap a key file.  CorruptData if damaged, WrongPassphrase if it does not open."""
    _, doc = load_checked(KEYFILE_MAGIC, KEYFILE_VERSION, data, where)
    try:
        if doc["kdf"] != "scrypt" or doc["cipher"] != "aes-256-gcm":
            raise UnsupportedFormat(f"{where}: unknown kdf/cipher {doc['kdf']}/{doc['cipher']}")
        n, r, p = int(doc["n"]), int(doc["r"]), int(doc["p"])
        salt, nonce, wrapped = bytes(doc["salt"]), bytes(doc["nonce"]), bytes(doc["wrapped"])
        file_repo_id = bytes(doc["repo_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptData(f"malformed key file: {exc}", key=where) from None
    if file_repo_id != repo_id:
        raise CorruptData("key file belongs to another repository", key=where)
    # 128 * n * r bytes of memory: refuse more than 256 MiB whatever the file says.
    if (
        not (2 <= n <= MAX_SCRYPT_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16)
        or n * r > 1 << 21
    ):
        raise CorruptData("key file has unreasonable scrypt parameters", key=where)
    if len(nonce) != NONCE_LEN:
        raise CorruptData("malformed key file nonce", key=where)
    kek = _kek(passphrase, salt, n, r, p)
    try:
        secret = AESGCM(kek).decrypt(nonce, wrapped, KEYFILE_MAGIC + repo_id)
    except InvalidTag:
        # The file's checksum matched, so the bytes are intact: the passphrase is wrong.
        raise WrongPassphrase("wrong passphrase") from None
    try:
        sdoc = msgpack.unpackb(secret, raw=False)
        keys = KeyMaterial(id_key=bytes(sdoc["id_key"]), enc_key=bytes(sdoc["enc_key"]))
    except Exception as exc:
        raise CorruptData(f"malformed key material: {exc}", key=where) from None
    if len(keys.id_key) != 32 or keys.enc_key is None or len(keys.enc_key) != 32:
        raise CorruptData("malformed key material", key=where)
    return keys
