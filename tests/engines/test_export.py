"""export-tar: a standard tar stream that Python's tarfile and GNU tar both read."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from freezer_ui.engines.tar.export import export_tar
from tests.engines.conftest import backup
from tests.engines.treeutil import build_sample_tree, diff, snapshot


@pytest.fixture
def gen(repo, engine, tmp_path: Path) -> tuple[str, str]:
    src = str(tmp_path / "src")
    build_sample_tree(src)
    return src, backup(engine, repo, src).generation_id


class NoSeek(io.RawIOBase):
    """A pipe-like sink: export must not need to seek."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return self.buf.write(b)


def test_export_roundtrip_python_tarfile(repo, gen) -> None:
    src, gid = gen
    sink = NoSeek()
    res = export_tar(repo, gid, sink)
    data = sink.buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["dir/a.txt"].isfile()
        assert tar.extractfile("dir/a.txt").read() == b"hello world\n"
        assert members["dir/a.txt"].mode == 0o640
        assert members["dir/a.txt"].pax_headers.get("SCHILY.xattr.user.comment") == "kept"
        assert members["dir/sub/hardlink-to-a"].islnk()
        assert members["dir/sub/hardlink-to-a"].linkname == "dir/a.txt"
        assert members["dir/sub/link-to-a"].issym()
        assert members["fifo"].isfifo()
        assert members["empty"].isdir()
        with open(os.path.join(src, "dir/sub/big.bin"), "rb") as f:
            assert tar.extractfile("dir/sub/big.bin").read() == f.read()
        sparse = tar.extractfile("sparse.img").read()
        assert len(sparse) == 64 << 20 and sparse[:4] == b"head"
    assert res["files"] == len(members)


def test_export_subtree(repo, gen, tmp_path: Path) -> None:
    _, gid = gen
    out = tmp_path / "sub.tar"
    with open(out, "wb") as f:
        export_tar(repo, gid, f, paths=["dir/sub"])
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    # ancestors are included so the subtree extracts with its parent's metadata; the hard
    # link's first path is outside the subtree, so it is exported as a regular file
    assert "dir/sub/big.bin" in names and "dir/a.txt" not in names
    with tarfile.open(out) as tar:
        assert tar.getmember("dir/sub/hardlink-to-a").isfile()


def test_gnu_tar_lists_and_extracts(repo, gen, tmp_path: Path) -> None:
    src, gid = gen
    out = tmp_path / "gen.tar"
    with open(out, "wb") as f:
        export_tar(repo, gid, f)
    listing = subprocess.run(
        ["tar", "-tvf", str(out)], check=True, capture_output=True, text=True
    ).stdout
    assert "dir/sub/link-to-a -> ../a.txt" in listing
    assert "dir/sub/hardlink-to-a link to dir/a.txt" in listing
    dest = tmp_path / "x"
    dest.mkdir()
    subprocess.run(
        ["tar", "-xpf", str(out), "-C", str(dest), "--xattrs", "--xattrs-include=user.*"],
        check=True,
    )
    a, b = snapshot(src, atime=False), snapshot(str(dest), atime=False)
    # tar does not carry the root directory itself, and GNU tar does not keep holes
    # unless asked (--sparse at creation), so compare everything else
    for s in (a, b):
        s.pop(".")
        s["sparse.img"].pop("sparse")
    assert diff(a, b) == []
