"""``generations``, ``ls``, ``cat`` and ``export-tar``: reading a repository."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from typing import Any

from freezer_ui.cli import gens
from freezer_ui.cli.common import (
    EXIT_OK,
    CliError,
    add_output_args,
    add_repo_args,
    emit_json,
    fmt_time,
    human_bytes,
    open_repo,
)
from freezer_ui.engines.safepath import UnsafePath, normalize_selection, split_item_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generations", help="list generations")
    add_repo_args(p)
    p.add_argument("--backup-name", metavar="NAME")
    p.add_argument("--hostname")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_generations)

    p = sub.add_parser("ls", help="list the items of a generation")
    add_repo_args(p)
    p.add_argument("generation", help="generation id, unique prefix or 'latest'")
    p.add_argument("path", nargs="?", default=None, help="only at/under this path")
    p.add_argument("-l", "--long", action="store_true", help="mode, owner, size, time")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_ls)

    p = sub.add_parser("cat", help="write one file of a generation to stdout")
    add_repo_args(p)
    p.add_argument("generation")
    p.add_argument("path")
    p.set_defaults(func=run_cat)

    p = sub.add_parser("export-tar", help="write a generation (or subtree) as a .tar stream")
    add_repo_args(p)
    p.add_argument("generation")
    p.add_argument("--path", action="append", default=None, metavar="P")
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    add_output_args(p)
    p.set_defaults(func=run_export)


def _info_dict(g: Any) -> dict[str, Any]:
    stats = gens.gen_field(g, "stats", {}) or {}
    return {
        "id": g.id,
        "time": gens.gen_time(g),
        "time_utc": fmt_time(gens.gen_time(g)),
        "hostname": gens.gen_field(g, "hostname"),
        "backup_name": gens.gen_field(g, "backup_name"),
        "engine": gens.gen_field(g, "engine"),
        "stats": stats,
    }


def run_generations(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    gl = gens.filtered(repo, args.backup_name, args.hostname)
    if args.json:
        emit_json([_info_dict(g) for g in gl])
        return EXIT_OK
    print(
        f"{'ID':32}  {'TIME (UTC)':23}  {'HOST':15} {'NAME':15} {'ENGINE':6} "
        f"{'FILES':>8} {'SIZE':>10}"
    )
    for g in gl:
        d = _info_dict(g)
        st = d["stats"]
        print(
            f"{g.id:32}  {d['time_utc']:23}  {str(d['hostname'])[:15]:15} "
            f"{str(d['backup_name'])[:15]:15} {str(d['engine'])[:6]:6} "
            f"{st.get('files', ''):>8} {human_bytes(st.get('bytes_total', 0)):>10}"
        )
    print(f"{len(gl)} generations")
    return EXIT_OK


def _items_under(repo: Any, gen_id: str, path: str | None):
    sel = normalize_selection(path) if path else ()
    found = False
    for item in repo.open_generation(gen_id).items():
        try:
            parts = split_item_path(item.get("path"))
        except UnsafePath:
            continue
        if parts[: len(sel)] == sel:
            found = True
            yield parts, item
    if not found and sel:
        raise CliError(f"no such path in generation: {path}")


_KIND_CHAR = {
    "file": "-",
    "hardlink": "-",
    "dir": "d",
    "symlink": "l",
    "fifo": "p",
    "chardev": "c",
    "blockdev": "b",
}


def _ls_line(parts: tuple[str, ...], item: dict, long: bool) -> str:
    name = "/".join(parts) or "."
    kind = item.get("type")
    if kind == "dir" and parts:
        name += "/"
    if not long:
        return name
    mode = stat.filemode(int(item.get("mode", 0)))[1:]
    owner = f"{item.get('user') or item.get('uid')}/{item.get('group') or item.get('gid')}"
    t = fmt_time(int(item.get("mtime_ns", 0)) / 1e9)[:19]
    extra = ""
    if kind == "symlink":
        tgt = item.get("target", "")
        extra = f" -> {os.fsdecode(tgt) if isinstance(tgt, bytes) else tgt}"
    elif kind == "hardlink":
        extra = f" link to {item.get('hardlink')}"
    return (
        f"{_KIND_CHAR.get(kind, '?')}{mode} {owner:17} {item.get('size', 0):>12} {t} {name}{extra}"
    )


def run_ls(args: argparse.Namespace) -> int:
    repo = open_repo(args)
    g = gens.resolve(repo, args.generation)
    out = sys.stdout
    if args.json:
        emit_json(
            [
                {k: v for k, v in item.items() if k != "chunks"} | {"path": "/".join(p) or "."}
                for p, item in _items_under(repo, g.id, args.path)
            ]
        )
        return EXIT_OK
    for parts, item in _items_under(repo, g.id, args.path):
        out.write(_ls_line(parts, item, args.long) + "\n")
    return EXIT_OK


def run_cat(args: argparse.Namespace) -> int:
    from freezer_ui.engines.tar.restore import iter_file_data

    repo = open_repo(args)
    g = gens.resolve(repo, args.generation)
    want = normalize_selection(args.path)
    for parts, item in _items_under(repo, g.id, args.path):
        if parts == want:
            if item.get("type") not in ("file", "hardlink"):
                raise CliError(f"{args.path} is a {item.get('type')}, not a regular file")
            out = sys.stdout.buffer
            for data in iter_file_data(repo, item):
                out.write(data)
            out.flush()
            return EXIT_OK
    raise CliError(f"no such file in generation: {args.path}")


def run_export(args: argparse.Namespace) -> int:
    from freezer_ui.engines.tar.export import export_tar

    repo = open_repo(args)
    g = gens.resolve(repo, args.generation)
    if args.output in (None, "-"):
        if sys.stdout.isatty():
            raise CliError("refusing to write a tar archive to a terminal; use -o FILE or a pipe")
        out = sys.stdout.buffer
        res = export_tar(repo, g.id, out, paths=args.path)
        out.flush()
    else:
        tmp = args.output + ".part"
        try:
            with open(tmp, "wb") as f:
                res = export_tar(repo, g.id, f, paths=args.path)
            os.replace(tmp, args.output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    if args.json:
        print(__import__("json").dumps(res), file=sys.stderr)
    return EXIT_OK
