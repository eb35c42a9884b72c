"""Write the format fixtures under tests/repository/fixtures/ (run once per format version).

    PYTHONPATH=. python tests/repository/make_fixtures.py

Fixtures are never regenerated for an existing version: they are what that version's
writer produced, and test_fixtures.py proves every later reader still opens them.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from freezer_ui.repository import ChunkerParams, Repository
from freezer_ui.storage import LocalStorage

HERE = Path(__file__).parent / "fixtures"
PASSPHRASE = "fixture passphrase"


def content() -> dict[str, bytes]:
    rnd = random.Random(1)
    files = {}
    for i in range(3):
        buf = bytearray()
        while len(buf) < 40_000:
            buf += rnd.randbytes(1024) if rnd.random() < 0.3 else bytes([65 + i]) * 1024
        files[f"dir/file{i}"] = bytes(buf)
    return files


def main(version: int) -> None:
    for enc in ("none", "aes-256-gcm"):
        root = HERE / f"v{version}-{enc}"
        if root.exists():
            sys.exit(f"{root} exists: fixtures are never rewritten")
        repo = Repository.init(
            LocalStorage(str(root)),
            PASSPHRASE if enc != "none" else None,
            enc,
            chunker=ChunkerParams(avg=4096, min=1024, max=16384, seed=3),
            pack_size=1 << 16,
            scrypt_n=1 << 10,
        )
        import io

        for gen in range(2):
            files = content()
            if gen:
                files["dir/new"] = b"second generation\n"
            with repo.writer() as w:
                items = [{"path": "dir", "type": "dir", "mode": 0o755}]
                for path, data in files.items():
                    refs = list(w.add_chunks(repo.cdc_chunks(io.BytesIO(data))))
                    items.append({"path": path, "type": "file", "size": len(data), "chunks": refs})
                w.commit(
                    {
                        "backup_name": "fixture",
                        "engine": "tar",
                        "source": "/src",
                        "time": 1_764_000_000.0 + gen,
                    },
                    items,
                )


if __name__ == "__main__":
    main(1)
