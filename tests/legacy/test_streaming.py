"""Large members are streamed: memory stays flat whatever the archive size."""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc
from pathlib import Path

import pytest

from freezer_ui.engines import legacy

from .helpers import write_container

SIZE = 96 * 1024 * 1024


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
def test_big_member_is_streamed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "big.bin", "wb") as f:
        f.truncate(SIZE)  # zeros: compresses to ~100 KB, decompresses to 96 MiB
    write_container(tmp_path / "c", [b""], key="host_big")
    (data,) = (tmp_path / "c" / "data").rglob("data")
    # tar | gzip straight to the data file, as the agent's pipeline does.
    with open(data, "wb") as out:
        tar = subprocess.Popen(
            ["tar", "--create", "--format=gnu", f"--listed-incremental={tmp_path / 'snap'}",
             "-C", str(src), "-f", "-", "."],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        subprocess.run(["gzip", "-c"], stdin=tar.stdout, stdout=out, check=True)
        assert tar.wait() == 0
    tracemalloc.start()
    try:
        res = legacy.restore(tmp_path / "c", "host_big", tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.stats.bytes == SIZE
    assert (tmp_path / "out" / "big.bin").stat().st_size == SIZE
    assert peak < 16 * 1024 * 1024, peak
