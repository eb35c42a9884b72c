"""End to end through the real ``freezer-ui-agent`` entry point, in subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.engines.treeutil import build_sample_tree, diff, snapshot

AGENT = [sys.executable, "-m", "freezer_ui.cli"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["FREEZER_UI_PASSPHRASE"] = "s3cret"
    e["XDG_CACHE_HOME"] = str(tmp_path / "xdg-cache")
    e["PYTHONPATH"] = os.getcwd()
    return e


def run(env, *args, check=True, input=None, binary=False) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [*AGENT, *args], env=env, capture_output=True, text=not binary, input=input, timeout=120
    )
    if check and p.returncode != 0:
        raise AssertionError(f"{args} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture
def setup(tmp_path: Path, env):
    src = tmp_path / "src"
    build_sample_tree(str(src))
    repo = str(tmp_path / "repo")
    run(env, "init", "--repo", repo)
    return src, repo


def test_full_cycle(tmp_path: Path, env, setup) -> None:
    src, repo = setup
    r = run(env, "backup", "--repo", repo, "--source", str(src), "--backup-name", "b", "--json")
    first = json.loads(r.stdout)
    assert first["files_read"] == 5 and first["bytes_read"] > 0 and first["bytes_new"] > 0
    assert set(first) >= {"generation_id", "files", "bytes_read", "bytes_new", "duration"}
    (src / "new.txt").write_text("second generation")
    r = run(env, "backup", "--repo", repo, "--source", str(src), "--backup-name", "b", "--json")
    second = json.loads(r.stdout)

    gens = json.loads(run(env, "generations", "--repo", repo, "--json").stdout)
    assert [g["id"] for g in gens] == [first["generation_id"], second["generation_id"]]
    assert gens[0]["backup_name"] == "b" and gens[0]["stats"]["files"] == first["files"]
    assert "2 generations" in run(env, "generations", "--repo", repo).stdout

    ls = run(env, "ls", "--repo", repo, "latest", "dir").stdout.split()
    assert "dir/a.txt" in ls and "new.txt" not in ls
    assert "-rw-r-----" in run(env, "ls", "-l", "--repo", repo, "latest", "dir/a.txt").stdout
    out = run(env, "cat", "--repo", repo, second["generation_id"][:8], "new.txt").stdout
    assert out == "second generation"

    # restore latest, and the older generation by --at
    run(env, "restore", "--repo", repo, "--target", str(tmp_path / "r2"))
    assert diff(snapshot(str(src)), snapshot(str(tmp_path / "r2"))) == []
    at = f"@{gens[0]['time'] + 0.0001}"  # epoch form; ISO dates are tested below
    run(env, "restore", "--repo", repo, "--at", at, "--target", str(tmp_path / "r1"))
    assert not (tmp_path / "r1/new.txt").exists() and (tmp_path / "r1/dir/a.txt").exists()
    p = run(
        env,
        "restore",
        "--repo",
        repo,
        "--at",
        "2001-01-01",
        "--target",
        str(tmp_path / "r0"),
        check=False,
    )
    assert p.returncode == 1 and "no generation at or before" in p.stderr

    # subset + overwrite
    r = run(
        env, "restore", "--repo", repo, "--target", str(tmp_path / "r2"), "--path", "dir", "--json"
    )
    assert json.loads(r.stdout)["skipped"]
    (tmp_path / "r2/dir/a.txt").write_text("changed")
    run(
        env,
        "restore",
        "--repo",
        repo,
        "--target",
        str(tmp_path / "r2"),
        "--path",
        "dir/a.txt",
        "--overwrite",
        "always",
    )
    assert (tmp_path / "r2/dir/a.txt").read_text() == "hello world\n"

    # export-tar to stdout (a pipe) and to a file
    p = run(env, "export-tar", "--repo", repo, "latest", binary=True)
    assert p.stdout[257:262] == b"ustar"
    run(env, "export-tar", "--repo", repo, "latest", "-o", str(tmp_path / "x.tar"))
    with tarfile.open(tmp_path / "x.tar") as t:
        assert t.extractfile("new.txt").read() == b"second generation"

    v = json.loads(run(env, "verify", "--repo", repo, "--json").stdout)
    assert v["ok"] and v["generations_checked"] == 2
    assert "OK" in run(env, "verify", "--repo", repo, "--sample", "0.5").stdout

    st = json.loads(run(env, "stats", "--repo", repo, "--json").stdout)
    assert st["generations"] == 2 and st["dedup_ratio"] > 1

    f = json.loads(run(env, "forget", "--repo", repo, "--keep-last", "1", "--json").stdout)
    assert f["removed"] == [first["generation_id"]]
    pr = json.loads(run(env, "prune", "--repo", repo, "--json").stdout)
    assert isinstance(pr, dict)
    assert [
        g["id"] for g in json.loads(run(env, "generations", "--repo", repo, "--json").stdout)
    ] == [second["generation_id"]]
    assert json.loads(run(env, "verify", "--repo", repo, "--json").stdout)["ok"]


def test_errors_are_one_line(tmp_path: Path, env, setup) -> None:
    src, repo = setup
    bad = dict(env, FREEZER_UI_PASSPHRASE="wrong")
    p = run(bad, "generations", "--repo", repo, check=False)
    assert (
        p.returncode == 1 and "passphrase" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    )
    no = {k: v for k, v in env.items() if k != "FREEZER_UI_PASSPHRASE"}
    p = run(no, "generations", "--repo", repo, check=False)
    assert p.returncode == 1 and "passphrase" in p.stderr
    pf = tmp_path / "pass"
    pf.write_text("s3cret\n")
    assert run(no, "generations", "--repo", repo, "--passphrase-file", str(pf)).returncode == 0

    p = run(env, "generations", "--repo", str(tmp_path / "nothing"), check=False)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1
    p = run(
        env,
        "backup",
        "--repo",
        repo,
        "--source",
        str(tmp_path / "missing"),
        "--backup-name",
        "x",
        check=False,
    )
    assert p.returncode == 1 and "not a directory" in p.stderr
    p = run(
        env,
        "backup",
        "--repo",
        repo,
        "--source",
        str(src),
        "--backup-name",
        "x",
        "--engine",
        "zzz",
        check=False,
    )
    assert p.returncode == 1 and "unknown engine 'zzz'" in p.stderr
    p = run(env, "cat", "--repo", repo, "latest", "dir", check=False)
    assert p.returncode == 1
    p = run(
        env,
        "restore",
        "--repo",
        repo,
        "--target",
        str(tmp_path / "t"),
        "--overwrite",
        "bad",
        check=False,
    )
    assert p.returncode == 2
    p = run(env, "forget", "--repo", repo, check=False)
    assert p.returncode == 2 and "needs at least one rule" in p.stderr
    p = run(env, "init", "--repo", repo, check=False)
    assert p.returncode == 1 and "already" in p.stderr


def test_warnings_exit_code(tmp_path: Path, env, setup) -> None:
    """A backup that completes with warnings exits 3 and prints them."""
    src, repo = setup
    if os.geteuid() == 0:
        # root reads mode-000 files, so run the agent as "nobody" on a tree it can mostly read
        pytest.importorskip("pwd")
        import pwd

        nobody = pwd.getpwnam("nobody")
        # pytest's tmp dirs are private to root: use a world-traversable one
        base = Path(tempfile.mkdtemp(prefix="fzui-nobody-"))
        try:
            os.chmod(base, 0o755)
            tree = base / "pub"
            (tree / "ok").mkdir(parents=True)
            (tree / "ok/f").write_text("fine")
            (tree / "secret").write_text("no")
            os.chmod(tree / "secret", 0)
            for d in (base / "nrepo", base / "nc"):
                d.mkdir()
                os.chown(d, nobody.pw_uid, nobody.pw_gid)
            e = dict(env, HOME=str(base), XDG_CACHE_HOME=str(base / "nc"))
            pre = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}"]
            cmd = [*pre, "--clear-groups", *AGENT]
            r = subprocess.run(
                [*cmd, "init", "--repo", str(base / "nrepo")], env=e, capture_output=True, text=True
            )
            assert r.returncode == 0, r.stderr
            p = subprocess.run(
                [*cmd, "backup", "--repo", str(base / "nrepo"), "--source", str(tree)]
                + ["--backup-name", "n"],
                env=e,
                capture_output=True,
                text=True,
            )
        finally:
            shutil.rmtree(base)
    else:
        os.chmod(src / "dir/a.txt", 0)
        p = run(
            env, "backup", "--repo", repo, "--source", str(src), "--backup-name", "n", check=False
        )
    assert p.returncode == 3, p.stderr
    assert "warning:" in p.stderr and "Permission denied" in p.stderr


def _backup_on_a_tty(env, repo: str, src: Path) -> str:
    """A CLI backup whose stderr is a terminal (so it draws its progress bar); its stderr."""
    import pty

    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(
            [*AGENT, "backup", "--repo", repo, "--source", str(src), "--backup-name", "tty"],
            env=dict(env, COLUMNS="200"),
            stdout=subprocess.DEVNULL,
            stderr=slave,
        )
        os.close(slave)
        out = b""
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
        assert p.wait(timeout=120) == 0, out.decode(errors="replace")
    finally:
        os.close(master)
    return out.decode(errors="replace")


def test_progress_bar_totals_come_from_the_previous_generation(tmp_path: Path, env, setup) -> None:
    """The first backup counts the tree for its bar; later ones take the previous
    generation's totals (no second walk beside the backup's own): the bar of the second run
    shows the first generation's item count as its total."""
    src, repo = setup
    _backup_on_a_tty(env, repo, src)
    gens = json.loads(run(env, "generations", "--repo", repo, "--json").stdout)
    items = gens[-1]["stats"]["files"] if "stats" in gens[-1] else gens[-1]["files"]
    (src / "new-file").write_text("one more")
    second = _backup_on_a_tty(env, repo, src)
    assert f"/{items} files" in second, second[-500:]
