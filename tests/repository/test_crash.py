"""SIGKILL a backup at random points: the repository stays valid and the next run reuses."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from freezer_ui.repository import Repository
from freezer_ui.repository.format import parse_pack_key
from freezer_ui.storage import LocalStorage

from .conftest import PASSPHRASE, make_repo, reopen, stored_bytes
from .crash_child import backup, dataset

CHILD = str(Path(__file__).with_name("crash_child.py"))
ROOT = str(Path(__file__).resolve().parents[2])
TRIALS = 24


def _spawn(root: Path, seed: int, enc: str, crash_at: str | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, CHILD, str(root), str(seed)]
    if enc != "none":
        args.append(PASSPHRASE)
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("FZUI_CRASH_AT", None)
    if crash_at:
        env["FZUI_CRASH_AT"] = crash_at
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _wait_ready(p: subprocess.Popen[str]) -> None:
    assert p.stdout is not None
    line = p.stdout.readline()
    if line.strip() != "ready":
        _, err = p.communicate()
        raise AssertionError(f"child did not start: {line!r} {err}")


def _restore(repo: Repository, gen_id: str) -> dict[str, bytes]:
    out = {}
    for item in repo.open_generation(gen_id).items():
        if item["chunks"]:
            out[item["path"]] = b"".join(repo.read_chunks(bytes(c[0]) for c in item["chunks"]))
    return out


def _chunks_in_packs(repo: Repository) -> set[bytes]:
    present = set()
    for obj in repo.storage.list("data/"):
        pack_id = parse_pack_key(obj.key)
        assert pack_id is not None
        present |= {e.chunk_id for e in repo.read_pack_trailer(pack_id, obj.size)}
    return present


@pytest.mark.slow
def test_sigkill_at_random_points(tmp_path: Path) -> None:
    rnd = random.Random(20261126)
    seed = 5
    data = dataset(seed)

    # Calibrate: how long does the child's backup take once its writer is open?
    cal = tmp_path / "cal"
    make_repo(LocalStorage(str(cal)), "none")
    p = _spawn(cal, seed, "none")
    _wait_ready(p)
    t0 = time.monotonic()
    out, err = p.communicate()
    duration = time.monotonic() - t0
    assert p.returncode == 0, err
    assert out.startswith("done")
    total_puts = int(out.split()[2])

    outcomes: Counter[str] = Counter()
    partial_reuse = 0
    for trial in range(TRIALS):
        enc = rnd.choice(["none", "aes-256-gcm"])
        root = tmp_path / f"t{trial}"
        storage = LocalStorage(str(root))
        make_repo(storage, enc)
        if trial % 2:
            # timed kill from outside: lands anywhere, including inside library calls
            p = _spawn(root, seed, enc)
            _wait_ready(p)
            time.sleep(rnd.uniform(0, duration * 1.1))
            p.send_signal(signal.SIGKILL)
        else:
            # the child kills itself at its N-th put, before it or halfway through it
            mode = rnd.choice(["before", "mid"])
            # (put 1 is the lock, before "ready": the child may die before it says anything)
            p = _spawn(root, seed, enc, f"{mode}:{rnd.randint(1, total_puts)}")
        p.communicate()
        assert p.returncode == -signal.SIGKILL or p.returncode == 0

        repo = reopen(storage, enc)
        report = repo.verify()
        assert report.ok, (trial, report.errors)
        gens = repo.generations()
        assert len(gens) <= 1
        if gens:
            outcomes["committed"] += 1
            assert _restore(repo, gens[0].id) == data  # a visible generation is whole
        else:
            outcomes["killed"] += 1

        # The next backup stores only what the killed one did not.
        present = _chunks_in_packs(repo)
        sizes: dict[bytes, int] = {}
        for content in data.values():
            for chunk in repo.cdc_chunks(io.BytesIO(content)):
                sizes[repo.chunk_id(chunk)] = len(chunk)
        expected_new = sum(n for cid, n in sizes.items() if cid not in present)
        if 0 < expected_new < sum(sizes.values()):
            partial_reuse += 1
        before = stored_bytes(storage)
        gen_id, stats = backup(repo, seed)
        assert stats["new_bytes"] == expected_new, trial
        growth = stored_bytes(storage) - before
        assert growth <= expected_new + (256 << 10), (trial, growth, expected_new)
        assert _restore(reopen(storage, enc), gen_id) == data
        assert reopen(storage, enc).verify().ok
    # The random kill points really did land in the middle of backups.
    assert outcomes["killed"] >= TRIALS // 3, outcomes
    assert partial_reuse >= 3, (partial_reuse, outcomes)
