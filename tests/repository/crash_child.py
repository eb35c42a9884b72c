"""A backup process for crash and concurrency tests (run as a script; no pytest import).

Usage: python crash_child.py ROOT SEED [PASSPHRASE]
Prints "ready" once its writer session is open, "done <gen_id>" after commit.
"""

from __future__ import annotations

import functools
import io
import random
import sys

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


def main() -> None:
    root, seed = sys.argv[1], int(sys.argv[2])
    passphrase = sys.argv[3] if len(sys.argv) > 3 else None
    repo = Repository.open(LocalStorage(root, create=False), passphrase)
    gen_id, _ = backup(repo, seed, announce=True)
    print("done", gen_id, flush=True)


if __name__ == "__main__":
    main()
