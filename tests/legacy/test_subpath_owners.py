"""Sub-path restore, owners and extended attributes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from freezer_ui.engines import legacy

from .helpers import (
    FIXTURES,
    expected,
    leftovers,
    other_warnings,
    passphrase_file,
    scenarios,
    snapshot,
    tar_end,
    tar_member,
    write_container,
)


def _filtered(tree: dict, paths: list[str]) -> dict:
    """The expected tree cut to ``paths`` and the directories leading to them."""
    out = {}
    for k, v in tree.items():
        if any(k == p or k.startswith(p + "/") for p in paths):
            out[k] = v
        elif any(p.startswith(k + "/") for p in paths):
            out[k] = v  # an ancestor directory, with its recorded mode
    return out


def _pick(tree: dict) -> list[str]:
    """Every third top-level entry."""
    top = sorted(k for k in tree if "/" not in k)
    return top[::3]


CASES = [(s, i) for s in scenarios() for i in range(len(expected(s)["generations"]))]


@pytest.mark.parametrize(("scenario", "index"), CASES, ids=[f"{s}-{i}" for s, i in CASES])
def test_subpath_of_every_fixture_generation(scenario: str, index: int, tmp_path: Path) -> None:
    doc = expected(scenario)
    g = doc["generations"][index]
    paths = _pick(g["tree"])
    res = legacy.restore(
        FIXTURES / scenario,
        doc["backup"],
        tmp_path / "o",
        at=g["timestamp"],
        passphrase_file=passphrase_file(scenario),
        paths=paths,
    )
    assert snapshot(tmp_path / "o") == _filtered(g["tree"], paths)
    assert res.paths == paths
    assert not other_warnings(res.warnings)


def test_renamed_directory_followed_back_through_levels(tmp_path: Path) -> None:
    """documents/sub is named docs/sub in level 0, where its unchanged files live."""
    for scenario in ("tar-gzip-maxlevel", "tar-xz-enc-md5"):
        doc = expected(scenario)
        g = next(g for g in doc["generations"] if "documents/sub/c.txt" in g["tree"])
        out = tmp_path / scenario
        res = legacy.restore(
            FIXTURES / scenario,
            doc["backup"],
            out,
            at=g["timestamp"],
            passphrase_file=passphrase_file(scenario),
            paths=["documents/sub"],
        )
        assert len(res.generations) > 1
        assert snapshot(out) == _filtered(g["tree"], ["documents/sub"])
        assert (out / "documents" / "sub" / "c.txt").is_file()


def test_other_members_are_streamed_past_not_written(tmp_path: Path) -> None:
    doc = expected("tar-gzip-maxlevel")
    g = doc["generations"][0]
    res = legacy.restore(
        FIXTURES / "tar-gzip-maxlevel", doc["backup"], tmp_path / "o", at=g["timestamp"],
        paths=["docs/sub/c.txt"],
    )  # fmt: skip
    assert res.stats.files == 1
    assert res.stats.bytes == g["tree"]["docs/sub/c.txt"]["size"]
    assert sorted(p.name for p in (tmp_path / "o").rglob("*")) == ["c.txt", "docs", "sub"]


def test_rsyncv2_subpath_across_deltas_and_deletions(tmp_path: Path) -> None:
    doc = expected("rsyncv2-gzip-inc")
    for i in (1, 2, 3):
        g = doc["generations"][i]
        out = tmp_path / f"o{i}"
        legacy.restore(
            FIXTURES / "rsyncv2-gzip-inc", doc["backup"], out, at=g["timestamp"],
            paths=["data", "bin/run.sh"],
        )  # fmt: skip
        assert snapshot(out) == _filtered(g["tree"], ["data", "bin/run.sh"]), i


def test_path_deleted_later_is_not_found_at_that_date(tmp_path: Path) -> None:
    doc = expected("tar-gzip-maxlevel")
    g0, g1 = doc["generations"][0], doc["generations"][1]
    assert "docs/b.txt" in g0["tree"] and "docs/b.txt" not in g1["tree"]
    legacy.restore(
        FIXTURES / "tar-gzip-maxlevel", doc["backup"], tmp_path / "ok", at=g0["timestamp"],
        paths=["docs/b.txt"],
    )  # fmt: skip
    assert (tmp_path / "ok" / "docs" / "b.txt").is_file()
    with pytest.raises(legacy.PathNotFound, match="docs/b.txt"):
        legacy.restore(
            FIXTURES / "tar-gzip-maxlevel", doc["backup"], tmp_path / "gone", at=g1["timestamp"],
            paths=["docs/b.txt", "readme.txt"],
        )  # fmt: skip
    assert not (tmp_path / "gone").exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("bad", ["../etc", "/etc", "", ".", "a/../../b"])
def test_bad_paths_are_refused_before_anything_is_written(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="relative path"):
        legacy.restore(FIXTURES / "tar-gzip-maxlevel", "legacyhost_fs", tmp_path / "o", paths=[bad])
    assert not (tmp_path / "o").exists()


def test_hard_link_whose_target_is_not_selected_gets_the_data(tmp_path: Path) -> None:
    """GNU tar stores the data under the first name and a link member for the second; asking
    for either name alone restores it with its content (`tar -x NAME` would fail instead)."""
    doc = expected("tar-gzip-maxlevel")
    g = doc["generations"][0]
    for name in ("readme.txt", "hardlink-to-readme"):
        out = tmp_path / name
        res = legacy.restore(
            FIXTURES / "tar-gzip-maxlevel", doc["backup"], out, at=g["timestamp"], paths=[name]
        )
        assert snapshot(out) == _filtered(g["tree"], [name])
        assert not other_warnings(res.warnings)


def test_hard_links_both_unselected_target_two_names(tmp_path: Path) -> None:
    c = tmp_path / "c"
    write_container(
        c,
        [
            tar_member("t", b"payload")
            + tar_member("a", typeflag=b"1", linkname="t")
            + tar_member("b", typeflag=b"1", linkname="t")
            + tar_member("x", typeflag=b"1", linkname="nowhere")
            + tar_end()
        ],
    )
    res = legacy.restore(c, "host_evil", tmp_path / "o", paths=["a", "b", "x"])
    assert (tmp_path / "o" / "a").read_bytes() == b"payload"
    assert os.path.samefile(tmp_path / "o" / "a", tmp_path / "o" / "b")
    assert not (tmp_path / "o" / "t").exists()
    assert any("'x' not restored" in w for w in res.warnings)


# ------------------------------------------------------------------ owners


def _container(tmp_path: Path, members: list[bytes]) -> Path:
    c = tmp_path / "c"
    write_container(c, [b"".join(members) + tar_end()])
    return c


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="restoring owners needs root")


@needs_root
def test_owners_names_first_then_ids(tmp_path: Path) -> None:
    c = _container(
        tmp_path,
        [
            # a name that resolves here wins over the stored id, as with GNU tar
            tar_member("named.txt", b"n", uid=4242, gid=4343, uname="daemon", gname="daemon"),
            # unknown names: the numeric ids are used
            tar_member("numeric.txt", b"x", uid=12345, gid=23456, uname="nosuchuser-xyz",
                       gname="nosuchgroup-xyz"),
            tar_member("suid", b"#!", mode=0o4755, uid=12345, gid=23456, uname="", gname=""),
            tar_member("d/", typeflag=b"5", mode=0o750, uid=777, gid=888, uname="", gname=""),
            tar_member("link", typeflag=b"2", linkname="named.txt", uid=555, gid=666,
                       uname="", gname=""),
        ],
    )  # fmt: skip
    out = tmp_path / "o"
    res = legacy.restore(c, "host_evil", out)
    assert not res.warnings
    st = (out / "named.txt").stat()
    assert (st.st_uid, st.st_gid) == (1, 1)
    st = (out / "numeric.txt").stat()
    assert (st.st_uid, st.st_gid) == (12345, 23456)
    st = (out / "suid").stat()
    assert st.st_mode & 0o7777 == 0o4755  # owner restored, so the set-uid bit is kept
    st = (out / "d").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (777, 888, 0o750)
    st = (out / "link").lstat()
    assert (st.st_uid, st.st_gid) == (555, 666)


def test_without_owners_one_warning_and_no_setuid(tmp_path: Path) -> None:
    c = _container(
        tmp_path,
        [
            tar_member("a", b"a", uid=12345, gid=23456, uname="", gname=""),
            tar_member("b", b"b", mode=0o4755, uid=12345, gid=23456, uname="", gname=""),
        ],
    )
    out = tmp_path / "o"
    res = legacy.restore(c, "host_evil", out, owners=False)
    assert len([w for w in res.warnings if "owners not restored" in w]) == 1
    assert (out / "a").stat().st_uid == os.geteuid()
    assert (out / "b").stat().st_mode & 0o7777 == 0o755


def test_without_owners_no_warning_when_they_are_ours(tmp_path: Path) -> None:
    me, grp = os.geteuid(), os.getegid()
    c = _container(tmp_path, [tar_member("a", b"a", uid=me, gid=grp, uname="", gname="")])
    res = legacy.restore(c, "host_evil", tmp_path / "o", owners=False)
    assert not res.warnings


# ------------------------------------------------------------------ xattrs


def _xattrs_supported(p: Path) -> bool:
    f = p / "probe"
    f.write_bytes(b"")
    try:
        os.setxattr(f, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        f.unlink()


def test_xattrs_from_gnu_tar_pax_records(tmp_path: Path) -> None:
    """An archive written by real GNU tar with --xattrs (pax SCHILY.xattr.* records)."""
    if not _xattrs_supported(tmp_path):
        pytest.skip("no user xattrs on this filesystem")
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    (src / "f.txt").write_bytes(b"hello")
    os.setxattr(src / "f.txt", "user.comment", b"line1\nline2\n")  # ends in a newline itself
    os.setxattr(src / "f.txt", "user.bin", bytes(range(256)))
    os.setxattr(src / "dir", "user.tag", b"dir-tag")
    tar = subprocess.run(
        ["tar", "--create", "--xattrs", "--xattrs-include=user.*", "--format=posix",
         "-C", str(src), "."],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    assert b"SCHILY.xattr.user.comment" in tar
    c = tmp_path / "c"
    write_container(c, [tar])
    out = tmp_path / "o"
    res = legacy.restore(c, "host_evil", out)
    assert not res.warnings
    assert os.getxattr(out / "f.txt", "user.comment") == b"line1\nline2\n"
    assert os.getxattr(out / "f.txt", "user.bin") == bytes(range(256))
    assert os.getxattr(out / "dir", "user.tag") == b"dir-tag"
    assert (out / "f.txt").read_bytes() == b"hello"


def test_xattr_that_cannot_be_set_is_a_warning(tmp_path: Path) -> None:
    body = "SCHILY.xattr.bogusnamespace.x=v\n"
    n = len(body) + 3  # "NN " prefix: the length counts itself
    pax = f"{n} {body}".encode()
    assert len(pax) == n
    c = _container(
        tmp_path,
        [tar_member("PaxHeaders/f", pax, typeflag=b"x"), tar_member("f", b"data")],
    )
    res = legacy.restore(c, "host_evil", tmp_path / "o")
    assert (tmp_path / "o" / "f").read_bytes() == b"data"
    assert any("bogusnamespace.x" in w and "not set" in w for w in res.warnings)
