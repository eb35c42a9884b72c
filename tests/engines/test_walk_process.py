"""The tar backup walks in a forked process (walk_process): it yields exactly what the
in-process walk yields, reports the walk's warnings, and a walker that dies fails the backup
cleanly, with nothing left running."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from freezer_ui.engines.tar import walk_process
from freezer_ui.engines.tar.walk import Excluder, WalkWarnings, walk
from freezer_ui.engines.tar.walk_process import WalkError, WalkProcess
from freezer_ui.progress import Progress
from tests.engines.conftest import backup


def _children() -> set[int]:
    out: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                out |= {int(p) for p in f.read().split()}
        except FileNotFoundError:  # that thread ended meanwhile
            pass
    return out


def _deep(root: Path, depth: int) -> None:
    """Directories nested deeper than PATH_MAX (4096 bytes) allows to name from ``root``:
    made with dir fds, since no single path can reach the bottom."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d" * 200, dir_fd=fd)
            nfd = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        with open(os.open("bottom", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("unreachable by path")
    finally:
        os.close(fd)


def _tree(root: Path) -> None:
    for i in range(700):  # several batches
        d = root / f"dir{i % 7}" / f"sub{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.txt").write_text(str(i))
        (d / f"f{i}.tmp").write_text("excluded")
    (root / "ünïcode ✓").mkdir()
    (root / "ünïcode ✓" / "naïve.txt").write_text("x")
    (root / os.fsdecode(b"bad-\xff-name")).write_text("not UTF-8")
    (root / "empty").mkdir()
    os.symlink("dir0", root / "link-to-dir")
    os.symlink("nowhere", root / "dangling")
    os.mkfifo(root / "fifo")
    os.link(root / "dir0/sub0/f0.txt", root / "hardlink")
    _deep(root / "empty", 25)  # 25 x 201 bytes > PATH_MAX: "cannot list"/"cannot stat"


def _in_process(root: str, excludes: list[str]) -> tuple[list, list]:
    warnings = WalkWarnings()
    out = [
        (rel, path, walk_process._fields(st))
        for rel, path, st in walk(root, Excluder(excludes), False, warnings)
    ]
    return out, warnings.messages


def _forked(root: str, excludes: list[str]) -> tuple[list, list]:
    warnings = WalkWarnings()
    with WalkProcess(root, excludes, False, warnings) as wp:
        out = [(rel, path, tuple(st)) for rel, path, st in wp]
    return out, warnings.messages


@pytest.mark.parametrize("excludes", [[], ["*.tmp", "dir3"]])
def test_yields_exactly_what_the_in_process_walk_yields(tmp_path: Path, excludes) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _tree(src)
    before = _children()
    want, want_warnings = _in_process(str(src), excludes)
    # after a first listing, relatime leaves the directories' atimes alone
    got, got_warnings = _forked(str(src), excludes)
    want, want_warnings = _in_process(str(src), excludes)
    assert got == want
    assert len(got) > 2 * walk_process.BATCH
    assert any(rel.startswith("ünïcode") for rel, _, _ in got)
    assert os.fsdecode(b"bad-\xff-name") in {rel for rel, _, _ in got}
    # the deep directory's bottom cannot be named by a path: a warning, as in-process
    assert got_warnings == want_warnings
    assert any("File name too long" in w for w in got_warnings), got_warnings
    assert _children() - before == set()  # reaped


def test_the_root_keeps_the_path_it_was_given(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    os.symlink("real", tmp_path / "alias")
    got, _ = _forked(str(tmp_path / "alias"), [])
    assert [(rel, path) for rel, path, _ in got] == [
        (".", str(tmp_path / "alias")),
        ("f", str(tmp_path / "alias" / "f")),
    ]
    assert got[0][2][0] == os.stat(tmp_path / "real").st_mode  # followed, as walk() does


def _big_tree(root: Path, n: int = 3000) -> None:
    for i in range(n):
        (root / f"f{i:05d}").touch()


def test_a_killed_walker_is_an_error_never_a_short_tree(tmp_path: Path, monkeypatch) -> None:
    # A one-page pipe: the walker blocks after a few dozen entries, so the kill always lands
    # before it could have sent the end of the tree.
    monkeypatch.setattr(walk_process, "PIPE_SIZE", 4096)
    _big_tree(tmp_path)
    seen = 0
    with WalkProcess(str(tmp_path), [], False, WalkWarnings()) as wp:
        it = iter(wp)
        next(it)
        os.kill(wp.pid, signal.SIGKILL)
        with pytest.raises(WalkError, match=r"the walk process died \(killed by SIGKILL\)"):
            for _ in it:
                seen += 1
    assert seen < 3000


def test_stopping_early_kills_and_reaps_the_walker(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(walk_process, "PIPE_SIZE", 4096)
    _big_tree(tmp_path)
    before = _children()
    wp = WalkProcess(str(tmp_path), [], False, WalkWarnings())
    it = iter(wp)
    next(it)
    assert wp.pid in _children()
    with open(f"/proc/{wp.pid}/comm") as f:
        assert f.read().strip() == "fzui-walk"  # tells it from the backup's workers in ps
    wp.close()  # blocked on its full pipe: must not hang
    wp.close()  # twice is fine
    assert _children() - before == set()
    assert os.WIFSIGNALED(wp.status)


class _KillWalker(Progress):
    def __init__(self) -> None:
        super().__init__()
        self.killed: int | None = None

    def advance(self, bytes: int = 0, files: int = 0) -> None:  # noqa: A002
        if self.killed is None:
            for pid in _children():
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "fzui-walk":
                        os.kill(pid, signal.SIGKILL)
                        self.killed = pid
        super().advance(bytes=bytes, files=files)


def test_a_backup_whose_walker_dies_fails_and_commits_nothing(
    repo, engine, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(walk_process, "PIPE_SIZE", 4096)
    src = tmp_path / "src"
    src.mkdir()
    _big_tree(src)
    before = _children()
    progress = _KillWalker()
    with pytest.raises(WalkError, match="killed by SIGKILL"):
        backup(engine, repo, str(src), progress=progress)
    assert progress.killed is not None
    assert repo.generations() == []
    assert _children() - before == set()  # walker and workers reaped
    # the next backup is whole
    res = backup(engine, repo, str(src))
    assert res.files == 3001


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan is reaped by whatever PID 1 is, maybe never)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_walker_dies_with_the_backup_process(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    _big_tree(tmp_path)
    code = (
        "import sys, time\n"
        "from freezer_ui.engines.tar import walk_process as w\n"
        "w.PIPE_SIZE = 4096\n"
        "wp = w.WalkProcess(sys.argv[1], [], False, w.WalkWarnings())\n"
        "print(wp.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        walker = int(proc.stdout.readline())
        assert os.path.exists(f"/proc/{walker}")
        proc.kill()  # SIGKILL: no cleanup of its own runs
        proc.wait()
        deadline = time.monotonic() + 10
        while _alive(walker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(walker)
    finally:
        proc.kill()
        proc.wait()
