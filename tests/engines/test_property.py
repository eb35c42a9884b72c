"""Property: for any tree (unicode names, deep paths, hard links, symlinks, empty dirs, sparse
files), backup then restore reproduces it exactly; an unchanged second backup reads nothing."""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freezer_ui.engines.tar import TarEngine
from freezer_ui.repository import Repository
from freezer_ui.storage import LocalStorage
from tests.engines.conftest import SMALL_CHUNKER
from tests.engines.treeutil import diff, make_sparse, snapshot

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=10,
).filter(lambda s: s not in (".", "..") and len(s.encode()) < 200)

entry = st.tuples(
    st.lists(names, min_size=1, max_size=4),  # path components
    st.sampled_from(["file", "file", "dir", "symlink", "hardlink", "sparse", "fifo"]),
    st.binary(max_size=20_000),
    st.sampled_from([0o644, 0o600, 0o755, 0o444, 0o4755]),
    st.integers(min_value=0, max_value=2_000_000_000_000_000_000),  # mtime ns
)


def build(root: str, entries, deep: int) -> None:
    os.makedirs(root)
    # one deep chain, to catch recursion limits and long paths; made first, so an entry
    # named like one of its directories is skipped rather than in the chain's way
    d = root
    for i in range(deep):
        d = os.path.join(d, f"d{i}")
    os.makedirs(d)
    with open(os.path.join(d, "leaf"), "wb") as f:
        f.write(b"deep")
    files: list[str] = []
    for parts, kind, data, mode, mtime in entries:
        p = os.path.join(root, *parts)
        parent = os.path.dirname(p)
        try:
            os.makedirs(parent, exist_ok=True)
        except (FileExistsError, NotADirectoryError, FileNotFoundError):
            continue  # a file (or a dangling symlink) is in the way: just skip this entry
        if os.path.lexists(p):
            continue
        if kind == "file":
            with open(p, "wb") as f:
                f.write(data)
            files.append(p)
        elif kind == "dir":
            os.mkdir(p)
        elif kind == "symlink":
            os.symlink(data.decode("latin-1").replace("\x00", "") or "x", p)
            continue
        elif kind == "hardlink":
            if not files:
                continue
            os.link(files[len(data) % len(files)], p)
        elif kind == "sparse":
            make_sparse(p, 8 << 20, [(len(data) * 100, data or b"z")])
            files.append(p)
        elif kind == "fifo":
            os.mkfifo(p)
        os.chmod(p, mode)
        os.utime(p, ns=(mtime, mtime))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(entries=st.lists(entry, max_size=25), deep=st.integers(min_value=1, max_value=300))
def test_backup_restore_identity(entries, deep) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        build(src, entries, deep)
        storage = LocalStorage(os.path.join(tmp, "repo"))
        Repository.init(storage, None, "none", chunker=SMALL_CHUNKER, pack_size=1 << 20)
        repo = Repository.open(storage)
        engine = TarEngine(cache_dir=os.path.join(tmp, "cache"))
        before = snapshot(src)
        res = engine.backup(repo, src, backup_name="p", hostname="h")
        assert res.warnings == []
        out = os.path.join(tmp, "out")
        rr = engine.restore(repo, res.generation_id, out)
        assert rr.rejected == [] and rr.warnings == []
        assert diff(before, snapshot(out)) == []
        # second run: nothing new is stored, whatever was cached or re-read (racy files)
        again = engine.backup(repo, src, backup_name="p", hostname="h")
        assert again.bytes_new == 0
