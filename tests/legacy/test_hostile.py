"""Hostile archives: nothing may be written outside the restore target, whatever they contain.

The archives are raw GNU tar streams built here (helpers.tar_header) or by the real ``tar`` CLI
with --absolute-names / --transform, stored in the container layout the agent uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from freezer_ui.engines import legacy

from .helpers import (
    dumpdir,
    leftovers,
    other_warnings,
    snapshot,
    tar_end,
    tar_member,
    write_container,
)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """A restore parent plus an 'outside' directory with a file an attacker wants to hit."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("original")
    parent = tmp_path / "restore-parent"
    parent.mkdir()
    return {"root": tmp_path, "outside": outside, "parent": parent, "target": parent / "t"}


def _outside_untouched(w: dict[str, Path]) -> None:
    assert sorted(p.name for p in w["outside"].iterdir()) == ["victim"]
    assert (w["outside"] / "victim").read_text() == "original"
    assert sorted(p.name for p in w["root"].iterdir()) == ["c", "outside", "restore-parent"]
    assert sorted(p.name for p in w["parent"].iterdir()) in (["t"], [])
    assert leftovers(w["parent"]) == []


def _restore(w: dict[str, Path], levels: list[bytes]) -> legacy.RestoreResult:
    write_container(w["root"] / "c", levels)
    return legacy.restore(w["root"] / "c", "host_evil", w["target"])


def test_dotdot_members_are_skipped(world: dict[str, Path]) -> None:
    tar = (
        tar_member("../outside/victim", b"pwned")
        + tar_member("a/../../outside/new", b"pwned")
        + tar_member("ok.txt", b"fine")
        + tar_end()
    )
    res = _restore(world, [tar])
    _outside_untouched(world)
    assert snapshot(world["target"]).keys() == {"ok.txt"}
    assert sum("'..'" in w for w in res.warnings) == 2


def test_absolute_members_land_inside(world: dict[str, Path]) -> None:
    victim = str(world["outside"] / "victim")
    res = _restore(world, [tar_member(victim, b"pwned") + tar_end()])
    _outside_untouched(world)
    inside = world["target"] / victim.lstrip("/")
    assert inside.read_bytes() == b"pwned"
    assert any("leading '/'" in w for w in res.warnings)


def test_symlink_then_file_through_it(world: dict[str, Path]) -> None:
    out = str(world["outside"])
    tar = (
        tar_member("esc", typeflag=b"2", linkname=out)
        + tar_member("esc/victim", b"pwned")
        + tar_member("esc/new", b"pwned")
        + tar_member("rel", typeflag=b"2", linkname="../../outside")
        + tar_member("rel/new2", b"pwned")
        + tar_member("d/", typeflag=b"5", mode=0o755)
        + tar_member("d/deep/../x", b"pwned")
        + tar_end()
    )
    res = _restore(world, [tar])
    _outside_untouched(world)
    t = world["target"]
    assert os.readlink(t / "esc") == out  # the link itself is restored verbatim...
    assert res.stats.skipped == 4  # ...but nothing is written through it


def test_symlink_replaced_by_file_does_not_follow(world: dict[str, Path]) -> None:
    victim = world["outside"] / "victim"
    tar = (
        tar_member("f", typeflag=b"2", linkname=str(victim))
        + tar_member("f", b"replaces the link, never writes through it")
        + tar_end()
    )
    _restore(world, [tar])
    _outside_untouched(world)
    assert not (world["target"] / "f").is_symlink()


def test_symlink_escape_across_levels(world: dict[str, Path]) -> None:
    # Level 0 plants a link where level 1 has a directory's files.
    out = str(world["outside"])
    l0 = dumpdir("./", ["Ysub"]) + tar_member("sub", typeflag=b"2", linkname=out) + tar_end()
    l1 = (
        dumpdir("./", ["Dsub"])
        + dumpdir("sub/", ["Yvictim"])  # a real dir replaces the link: nothing is purged outside
        + tar_member("sub/victim", b"inside now")
        + tar_end()
    )
    _restore(world, [l0, l1])
    _outside_untouched(world)
    assert (world["target"] / "sub").is_dir() and not (world["target"] / "sub").is_symlink()
    assert (world["target"] / "sub" / "victim").read_bytes() == b"inside now"


def test_hard_link_escapes(world: dict[str, Path]) -> None:
    tar = (
        tar_member("ok", b"data")
        + tar_member("h1", typeflag=b"1", linkname="../outside/victim")
        + tar_member("lnk", typeflag=b"2", linkname=str(world["outside"]))
        + tar_member("h2", typeflag=b"1", linkname="lnk/victim")
        + tar_member("h3", typeflag=b"1", linkname="lnk")  # links the symlink, not its target
        + tar_end()
    )
    res = _restore(world, [tar])
    _outside_untouched(world)
    t = world["target"]
    assert not (t / "h1").exists() and not (t / "h2").exists()
    assert (t / "h3").is_symlink()
    assert res.stats.skipped == 2


def test_hard_link_to_absolute_path_is_an_error_not_an_escape(world: dict[str, Path]) -> None:
    tar = tar_member("h", typeflag=b"1", linkname=str(world["outside"] / "victim")) + tar_end()
    with pytest.raises(legacy.CorruptArchive, match="target not restored"):
        _restore(world, [tar])
    _outside_untouched(world)
    assert not world["target"].exists()


def test_device_nodes_are_skipped(world: dict[str, Path]) -> None:
    tar = (
        tar_member("null", typeflag=b"3", devmajor=1, devminor=3)
        + tar_member("sda", typeflag=b"4", devmajor=8, devminor=0)
        + tar_member("fifo", typeflag=b"6", mode=0o600)
        + tar_end()
    )
    res = _restore(world, [tar])
    _outside_untouched(world)
    assert sorted(p.name for p in world["target"].iterdir()) == ["fifo"]
    assert sum("device node" in w for w in res.warnings) == 2


def test_dumpdir_cannot_purge_or_rename_outside(world: dict[str, Path]) -> None:
    l0 = dumpdir("./", ["Ya"]) + tar_member("a", b"a") + tar_end()
    l1 = (
        dumpdir("../", [])  # would purge the parent of the target
        + dumpdir("/", [])  # the root: purges only the target itself
        + dumpdir("./", ["R../outside", "Tstolen", "Rstolen2", "T../outside/x"])
        + tar_end()
    )
    res = _restore(world, [l0, l1])
    _outside_untouched(world)
    assert list(world["target"].iterdir()) == []
    assert res.stats.skipped >= 3


def test_dumpdir_cycle_rename_through_temporary(world: dict[str, Path]) -> None:
    # a ↔ b swap as GNU tar encodes it: X names a stub, empty R/T names mean "the stub".
    l0 = (
        dumpdir("./", ["Da", "Db"])
        + dumpdir("a/", ["Yfa"])
        + dumpdir("b/", ["Yfb"])
        + tar_member("a/fa", b"A")
        + tar_member("b/fb", b"B")
        + tar_end()
    )
    l1 = (
        dumpdir("./", ["Da", "Db", "X./tmpstub", "R./a", "T", "R./b", "T./a", "R", "T./b"])
        + dumpdir("a/", ["Nfb"])
        + dumpdir("b/", ["Nfa"])
        + tar_end()
    )
    _restore(world, [l0, l1])
    _outside_untouched(world)
    t = world["target"]
    assert (t / "a" / "fb").read_bytes() == b"B"
    assert (t / "b" / "fa").read_bytes() == b"A"
    assert sorted(p.name for p in t.iterdir()) == ["a", "b"]


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
def test_real_tar_absolute_names_and_transform(
    world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    src = tmp_path_factory.mktemp("src")
    (src / "evil.txt").write_text("pwned")
    victim = world["outside"] / "victim"
    outputs = []
    for extra in (
        ["--absolute-names", str(victim)],  # member name is the absolute path
        ["--transform", "s,^,../../outside/,", "evil.txt"],  # member climbs out with ..
    ):
        outputs.append(
            subprocess.run(
                ["tar", "--create", "--format=gnu", "-C", str(src), "-f", "-", *extra],
                check=True,
                capture_output=True,
            ).stdout
        )
    victim_before = victim.read_text()
    write_container(world["root"] / "c", [outputs[0]])
    res = legacy.restore(world["root"] / "c", "host_evil", world["target"])
    assert victim.read_text() == victim_before
    assert (world["target"] / str(victim).lstrip("/")).read_text() == "original"
    assert res.warnings
    shutil.rmtree(world["root"] / "c")
    shutil.rmtree(world["target"])
    write_container(world["root"] / "c", [outputs[1]])
    res = legacy.restore(world["root"] / "c", "host_evil", world["target"])
    _outside_untouched(world)
    assert list(world["target"].iterdir()) == []
    assert any("'..'" in w for w in res.warnings)


def test_rsyncv2_hostile_headers(world: dict[str, Path]) -> None:
    """The rsyncv2 reader feeds the same guarded writer; skipped files' data is still consumed."""
    import json
    import zlib

    import msgpack

    out = str(world["outside"])
    reg = 0o100644

    def f(path: str, size: int) -> dict[str, object]:
        return {"path": path, "inode": {"mode": reg, "mtime": 1, "size": size}}

    headers = [
        f("../outside/victim", 5),
        {"path": "lnk", "inode": {"mode": 0o120777, "mtime": 1, "size": 0}, "lname": out},
        f("lnk/victim", 5),
        f(out + "/abs", 3),
        f("ok", 2),
    ]
    payload = msgpack.packb(headers) + b"pwnedpwnedabsok"
    rel = Path("rsync") / "host_evil" / "1700000000" / "0_1700000000"
    d = world["root"] / "c" / "data" / rel
    d.mkdir(parents=True)
    (d / "data").write_bytes(zlib.compress(payload, 9))
    m = world["root"] / "c" / "metadata" / rel
    m.mkdir(parents=True)
    meta = {"engine_name": "rsync", "compression": "gzip", "rsync_block_size": 4096}
    (m / "metadata").write_text(json.dumps(meta | {"encryption": False}))
    res = legacy.restore(world["root"] / "c", "host_evil", world["target"])
    _outside_untouched(world)
    t = world["target"]
    assert (t / "ok").read_bytes() == b"ok"  # data stayed in step after the skipped members
    assert (t / out.lstrip("/") / "abs").read_bytes() == b"abs"
    assert res.stats.skipped == 2


def test_old_style_regular_and_contiguous_members(world: dict[str, Path]) -> None:
    tar = (
        tar_member("v7.txt", b"v7", typeflag=b"\0")
        + tar_member("olddir/", typeflag=b"\0")
        + tar_member("contig.txt", b"c", typeflag=b"7")
        + tar_end()
    )
    res = _restore(world, [tar])
    t = world["target"]
    assert (t / "v7.txt").read_bytes() == b"v7" and (t / "contig.txt").read_bytes() == b"c"
    assert (t / "olddir").is_dir()
    assert not other_warnings(res.warnings)


def test_selected_paths_through_a_planted_symlink(world: dict[str, Path]) -> None:
    """A sub-path restore is just as guarded: a selected path that runs through a symlink the
    archive planted (this level or an earlier one), or a rename aimed out, writes nothing."""
    out = str(world["outside"])
    l0 = tar_member("lnk", typeflag=b"2", linkname=out) + tar_end()
    l1 = (
        dumpdir("./", ["Ylnk", "Dd", "R./d", "T./lnk/d"])
        + tar_member("lnk/victim", b"pwned")
        + tar_member("lnk/new", b"pwned")
        + tar_end()
    )
    write_container(world["root"] / "c", [l0, l1])
    warnings: list[str] = []
    # lnk/victim is skipped (a symlink where a directory is expected), the rename into lnk/ is
    # refused the same way, so neither selected path exists: the whole restore is refused.
    with pytest.raises(legacy.PathNotFound, match="lnk/victim, lnk/d"):
        legacy.restore(
            world["root"] / "c", "host_evil", world["target"], paths=["lnk/victim", "lnk/d"],
            warn=warnings.append,
        )  # fmt: skip
    _outside_untouched(world)
    assert any("'lnk/victim'" in w and "not a directory" in w for w in warnings), warnings
