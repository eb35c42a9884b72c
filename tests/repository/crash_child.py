"""A backup process for crash and concurrency tests (run as a script; no pytest import).

Usage: python crash_child.py ROOT SEED [PASSPHRASE]
Prints "ready" once its writer session is open, "done <gen_id> <puts>" after commit.
With FZUI_CRASH_AT="before:N" or "mid:N" the process SIGKILLs itself at its N-th storage
put (before it starts, or after the first part of the object was written to the temp file):
deterministic kill points that do not depend on machine load.
"""

from __future__ import annotations

import functools
import io
import os
import random
import signal
import sys
from collections.abc import Iterable, Iterator

from freezer_ui.repository import Repository
from freezer_ui.storage import LocalStorage

EXTRA_ITEMS = 5000


@functools.lru_cache(maxsize=4)
def dataset(seed: int, files: int = 40, size: int = 200_000) -> dict[str, bytes]:
    """Deterministic files; consecutive seeds share half of their files (dedup across runs)."""
    out = {}
    for i in range(files):
        file_seed = seed * 1000 + i if i % 2 else i
        rnd = random.Random(file_seed)
        buf = bytearray()
        while len(buf) < size:
            buf += rnd.randbytes(8192) if rnd.random() < 0.5 else bytes([rnd.randrange(4)]) * 8192
        out[f"f{i:03d}"] = bytes(buf[:size])
    return out


def backup(repo: Repository, seed: int, announce: bool = False) -> tuple[str, dict[str, int]]:
    files = dataset(seed)  # before "ready": kill points should land in the backup itself
    with repo.writer() as w:
        if announce:
            print("ready", flush=True)
        items = []
        for path, data in files.items():
            refs = list(w.add_chunks(repo.cdc_chunks(io.BytesIO(data))))
            items.append({"path": path, "type": "file", "size": len(data), "chunks": refs})
        items += [
            {"path": f"empty/{i:05d}", "type": "file", "size": 0, "chunks": []}
            for i in range(EXTRA_ITEMS)
        ]
        gen_id = w.commit({"backup_name": "crash", "engine": "test", "source": str(seed)}, items)
        return gen_id, dict(w.stats)


class KillingStorage(LocalStorage):
    """Counts puts; SIGKILLs the process at the configured one."""

    def __init__(self, root: str, crash_at: str | None) -> None:
        super().__init__(root, create=False)
        self.puts = 0
        self.mode, self.at = (
            (crash_at.split(":")[0], int(crash_at.split(":")[1])) if crash_at else ("", -1)
        )

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        self.puts += 1
        if self.puts == self.at:
            if self.mode == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            chunks = self._die_midway(chunks)
        return super().put(key, chunks)

    @staticmethod
    def _die_midway(chunks: Iterable[bytes]) -> Iterator[bytes]:
        for part in chunks:
            yield part[: max(1, len(part) // 2)]
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    root, seed = sys.argv[1], int(sys.argv[2])
    passphrase = sys.argv[3] if len(sys.argv) > 3 else None
    storage = KillingStorage(root, os.environ.get("FZUI_CRASH_AT"))
    repo = Repository.open(storage, passphrase)
    gen_id, _ = backup(repo, seed, announce=True)
    print("done", gen_id, storage.puts, flush=True)


if __name__ == "__main__":
    main()
