"""Benchmark corpus: real files of this machine, selected deterministically, plus a seeded mutation.

Why real files: synthetic random data is incompressible and dedups nothing, which would flatter
some tools and punish others.  /usr is what a backup of an OpenStack host actually looks like
(libraries, text, headers, docs, many small files).

Selection (scale 1.0, ~1.5 GB, ~80k files on our machine kind):
  * all of /usr/share, /usr/lib/python3*, /usr/include (no *.pyc, no __pycache__);
  * then files of the rest of /usr/lib taken in sha1(path) order until the byte or file budget is
    met (a "slice" that is stable across runs on the same image and mixes big and small files).
Files over MAX_FILE are skipped so one browser binary does not dominate the byte count.

Scales: s <= 1 keeps the files of the 1.0 selection whose path hash falls under s (same files every
run).  s > 1 adds copies of the 1.0 corpus under copyN/ whose bytes go through a fixed byte
bijection (XOR with a per-copy constant): a bijection keeps every file's compressibility exactly
(LZ matches and symbol statistics map one to one) while no chunk of a copy dedups against the
original.  We chose this over "a bigger slice of /usr/lib" because /usr/lib has too few distinct
small files to double the file count, and a bigger slice would change the mix (gcloud SDK, JVM).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import shutil
import stat
import time
from dataclasses import dataclass, field

FULL_ROOTS = ["/usr/share", *sorted(glob.glob("/usr/lib/python3*")), "/usr/include"]
SLICE_ROOT = "/usr/lib"
TARGET_BYTES = 1_500_000_000
TARGET_FILES = 80_000
MAX_FILE = 64 * 1024 * 1024
CORPUS_VERSION = 1  # bump when the selection rules change: invalidates cached file lists


@dataclass
class Entry:
    src: str  # absolute source path on this machine
    rel: str  # path inside the corpus
    kind: str  # "f" regular file, "l" symlink
    size: int


@dataclass
class CorpusInfo:
    root: str
    files: int = 0
    symlinks: int = 0
    bytes: int = 0
    selection: dict = field(default_factory=dict)


def _hfrac(path: str) -> float:
    """Deterministic pseudo-random number in [0, 1) from a path (stable across runs and hosts)."""
    return int.from_bytes(hashlib.sha1(path.encode()).digest()[:8], "big") / 2**64


def _walk(root: str, skip_dirs: set[str] | None = None):
    """Sorted walk yielding Entry for regular files and symlinks; skips *.pyc and huge files."""
    for dirpath, dirnames, filenames in os.walk(root):
        # Sorting in place makes the walk order (and so the selection) independent of the FS.
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d != "__pycache__" and os.path.join(dirpath, d) not in (skip_dirs or ())
        )
        for name in sorted(filenames):
            if name.endswith(".pyc"):
                continue
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                yield Entry(p, p.lstrip("/"), "l", 0)
            elif stat.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE and os.access(p, os.R_OK):
                yield Entry(p, p.lstrip("/"), "f", st.st_size)
        # Symlinked directories are listed in dirnames by os.walk but not followed: keep them.
        for d in list(dirnames):
            p = os.path.join(dirpath, d)
            if os.path.islink(p):
                yield Entry(p, p.lstrip("/"), "l", 0)


def select_base() -> list[Entry]:
    """The scale-1.0 selection (see module docstring)."""
    entries: list[Entry] = []
    for root in FULL_ROOTS:
        entries.extend(_walk(root))
    nbytes = sum(e.size for e in entries)
    nfiles = len(entries)
    full = set(FULL_ROOTS)
    rest = list(_walk(SLICE_ROOT, skip_dirs=full))
    rest.sort(key=lambda e: hashlib.sha1(e.src.encode()).digest())
    for e in rest:
        if nbytes >= TARGET_BYTES or nfiles >= TARGET_FILES:
            break
        entries.append(e)
        nbytes += e.size
        nfiles += 1
    entries.sort(key=lambda e: e.rel)
    return entries


def select(scale: float) -> list[Entry]:
    base = select_base()
    out: list[Entry] = []
    copies = max(1, int(-(-scale // 1)))  # ceil
    for i in range(copies):
        frac = min(1.0, scale - i)
        prefix = "" if i == 0 else f"copy{i}/"
        for e in base:
            if frac >= 1.0 or _hfrac(e.rel) < frac:
                out.append(Entry(e.src, prefix + e.rel, e.kind, e.size))
    return out


def _xor_table(i: int) -> bytes:
    c = (0x5A + 17 * i) & 0xFF
    return bytes(b ^ c for b in range(256))


def build(dest: str, scale: float = 1.0, progress=print) -> CorpusInfo:
    """(Re)create the corpus at dest.  Deterministic: same machine image + scale = same tree."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    entries = select(scale)
    info = CorpusInfo(root=dest)
    t0 = time.monotonic()
    made_dirs: set[str] = set()
    for n, e in enumerate(entries):
        dst = os.path.join(dest, e.rel)
        d = os.path.dirname(dst)
        if d not in made_dirs:
            os.makedirs(d, exist_ok=True)
            made_dirs.add(d)
        if e.kind == "l":
            try:
                os.symlink(os.readlink(e.src), dst)
            except FileExistsError:
                continue
            info.symlinks += 1
            continue
        copy_no = int(e.rel[4 : e.rel.index("/")]) if e.rel.startswith("copy") else 0
        try:
            if copy_no == 0:
                shutil.copyfile(e.src, dst)
            else:
                table = _xor_table(copy_no)
                with open(e.src, "rb") as fi, open(dst, "wb") as fo:
                    while buf := fi.read(1 << 20):
                        fo.write(buf.translate(table))
            st = os.stat(e.src)
        except (OSError, IsADirectoryError):
            continue
        # Keep permission bits and times of the real file: restores are compared on them.
        os.chmod(dst, stat.S_IMODE(st.st_mode) | 0o600)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        info.files += 1
        info.bytes += st.st_size
        if n and n % 20000 == 0:
            progress(f"  corpus: {n}/{len(entries)} entries, {info.bytes / 1e9:.2f} GB")
    info.selection = {
        "scale": scale,
        "full_roots": FULL_ROOTS,
        "slice_root": SLICE_ROOT,
        "max_file": MAX_FILE,
        "build_seconds": round(time.monotonic() - t0, 1),
    }
    with open(os.path.join(os.path.dirname(dest.rstrip("/")), "corpus-info.json"), "w") as f:
        json.dump(info.__dict__, f, indent=1)
    return info


def _regular_files(root: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(p)
    return out


def mutate(root: str, seed: int = 42, fraction: float = 0.01) -> dict:
    """Seeded ~1% change: in-place overwrites, appends, deletes, new files, one renamed directory.

    Split of the fraction (of the regular-file count): 40% overwrites, 30% appends, 20% deletes,
    10% new files.  Writes happen now, so mtime/ctime move forward as a real edit would.
    """
    rng = random.Random(seed)
    files = _regular_files(root)
    n = max(10, int(len(files) * fraction))
    picks = rng.sample(files, n)
    k_over, k_app, k_del = int(n * 0.4), int(n * 0.3), int(n * 0.2)
    k_new = n - k_over - k_app - k_del
    stats = {"overwritten": 0, "appended": 0, "deleted": 0, "new": 0, "bytes_written": 0}
    for p in picks[:k_over]:
        size = os.path.getsize(p)
        if size == 0:
            continue
        length = min(size, rng.randint(1, 64 * 1024))
        with open(p, "r+b") as f:
            f.seek(rng.randint(0, size - length))
            f.write(rng.randbytes(length))
        stats["overwritten"] += 1
        stats["bytes_written"] += length
    for p in picks[k_over : k_over + k_app]:
        data = rng.randbytes(rng.randint(1, 16 * 1024))
        with open(p, "ab") as f:
            f.write(data)
        stats["appended"] += 1
        stats["bytes_written"] += len(data)
    for p in picks[k_over + k_app : k_over + k_app + k_del]:
        os.unlink(p)
        stats["deleted"] += 1
    for i, p in enumerate(picks[k_over + k_app + k_del :][:k_new]):
        newp = os.path.join(os.path.dirname(p), f"bench-new-{seed}-{i}.bin")
        if i % 2:
            data = rng.randbytes(rng.randint(1, 256 * 1024))  # fresh, incompressible content
        else:
            # A near-copy of an existing file (edited duplicate): dedup should notice.
            src = rng.choice(files)
            try:
                with open(src, "rb") as f:
                    data = f.read(512 * 1024)
            except FileNotFoundError:
                data = b""
            data = rng.randbytes(64) + data
        with open(newp, "wb") as f:
            f.write(data)
        stats["new"] += 1
        stats["bytes_written"] += len(data)
    # Rename one directory holding 20..500 files (paths change, content does not).
    counts: dict[str, int] = {}
    for p in _regular_files(root):
        d = os.path.dirname(p)
        counts[d] = counts.get(d, 0) + 1
    cands = sorted(d for d, c in counts.items() if 20 <= c <= 500 and d != root)
    victim = rng.choice(cands)
    os.rename(victim, victim + "-renamed")
    stats["renamed_dir"] = os.path.relpath(victim, root)
    stats["renamed_files"] = counts[victim]
    stats["seed"] = seed
    return stats


def hash_tree(root: str) -> dict[str, tuple]:
    """rel path -> (kind, perms, size, content digest | link target).  Directories included."""
    try:
        from blake3 import blake3 as hasher  # fast (~8 GB/s): the walk stays I/O bound
    except ImportError:  # pragma: no cover - stdlib fallback
        hasher = hashlib.sha256
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", 0, 0, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", 0, 0, "")
            elif stat.S_ISREG(st.st_mode):
                h = hasher()
                with open(p, "rb") as f:
                    while buf := f.read(1 << 20):
                        h.update(buf)
                out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_size, h.hexdigest())
            else:
                out[rel] = ("o", 0, 0, "")
    return out


def compare_trees(expected: dict, actual: dict) -> dict:
    """Counts of differences; perms are compared separately from content (lower severity)."""
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    content = [
        k
        for k, v in expected.items()
        if k in actual and (v[0], v[2], v[3]) != (actual[k][0], actual[k][2], actual[k][3])
    ]
    perms = [k for k, v in expected.items() if k in actual and v[1] != actual[k][1]]
    return {
        "ok": not (missing or extra or content),
        "missing": len(missing),
        "extra": len(extra),
        "content": len(content),
        "perms": len(perms),
        "examples": (missing + extra + content)[:5],
    }
