"""Upstream Freezer containers read from Swift: RemoteContainer + SwiftStorage + a real Swift.

The objects in tests/legacy/remote_fixtures/swift-tar-gzip/ were written by the real freezer
19.0.0 agent through its own swift storage (Keystone v3) into a Swift all-in-one, each level's
stream as ``segments/00000000``... behind a zero-byte DLO manifest ``data``
(tests/legacy/remote_make_fixture.py).  Here they are put back, as stored, into a real Swift
all-in-one, and our reader restores every generation byte-exact, joining the segments itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from freezer_ui.engines.legacy.remote import RemoteContainer
from freezer_ui.storage.swift import SwiftStorage
from tests.legacy.helpers import leftovers, snapshot
from tests.legacy.remote_make_fixture import OUT, SWIFT_SCENARIO
from tests.storage import swiftaio

pytestmark = pytest.mark.skipif(
    swiftaio.missing_reason() is not None, reason=str(swiftaio.missing_reason())
)

FIXTURE = OUT / SWIFT_SCENARIO
DOC = json.loads((OUT / f"{SWIFT_SCENARIO}.expected.json").read_text())
GENS = DOC["generations"]
KEYS = sorted(p.relative_to(FIXTURE).as_posix() for p in FIXTURE.rglob("*") if p.is_file())


class Recording(SwiftStorage):
    """The real swift storage, remembering which objects were read."""

    fetched: list[str]

    def get(self, key: str) -> Iterator[bytes]:
        self.fetched.append(key)
        return super().get(key)


@pytest.fixture(scope="module")
def container_url() -> str:
    """A container of the shared all-in-one holding the agent's objects, as it stored them."""
    s = swiftaio.storage_factory(Path("."))
    for key in KEYS:
        s.put(key, [(FIXTURE / key).read_bytes()])
    url = s.url
    s.close()
    return url


@pytest.fixture
def storage(container_url: str) -> Iterator[Recording]:
    s = Recording.from_url(container_url)
    assert isinstance(s, Recording)
    s.fetched = []
    yield s
    s.close()


def test_fixture_is_the_agents_swift_layout() -> None:
    assert DOC["storage"] == "swift" and DOC["freezer_version"] == "19.0.0"
    assert [g["level"] for g in GENS] == [0, 1, 2]
    manifests = [k for k in KEYS if k.endswith("/data")]
    assert len(manifests) == len(GENS)
    assert all((FIXTURE / k).stat().st_size == 0 for k in manifests)  # DLO manifests
    # at least one level was cut into several segments
    counts = [sum(1 for k in KEYS if k.startswith(m[:-4] + "segments/")) for m in manifests]
    assert max(counts) > 1


def test_discover_reports_the_joined_segment_sizes(storage: Recording, tmp_path: Path) -> None:
    with RemoteContainer(storage, tmp_path) as rc:
        (b,) = rc.discover()
        assert (b.engine, b.key) == ("tar", DOC["backup"])
        assert [(g.level, g.timestamp) for g in b.generations] == [
            (g["level"], g["timestamp"]) for g in GENS
        ]
        for g in b.generations:
            base = g.data_path.relative_to(rc.spool).parent.as_posix() + "/segments/"
            want = sum((FIXTURE / k).stat().st_size for k in KEYS if k.startswith(base))
            assert g.size == want > 0
        assert all(k.startswith("metadata/") for k in storage.fetched)


@pytest.mark.parametrize("index", range(len(GENS)))
def test_restore_each_generation_from_swift(storage: Recording, tmp_path: Path, index: int) -> None:
    gen = GENS[index]
    with RemoteContainer(storage, tmp_path / "spool") as rc:
        (b,) = rc.discover()
        storage.fetched.clear()
        res = rc.restore(b, tmp_path / "out", at=gen["timestamp"])
        assert snapshot(tmp_path / "out") == gen["tree"]
        assert [g.level for g in res.generations] == list(range(gen["level"] + 1))
        # The streams came from the segments (never through the manifest), only the applied
        # chain's, and nothing of them stays on disk.
        want = set()
        for g in res.generations:
            rel = g.data_path.relative_to(rc.spool).parent.as_posix()
            want |= {k for k in KEYS if k.startswith(f"{rel}/segments/")}
            want.add(f"{rel}/engine_metadata")
        assert set(storage.fetched) == want
        assert sum(p.stat().st_size for p in rc.spool.rglob("data/**/*") if p.is_file()) == 0
    assert leftovers(tmp_path) == []


def test_a_missing_segment_fails_the_restore(container_url: str, tmp_path: Path) -> None:
    from freezer_ui.engines.legacy import LegacyError

    s = swiftaio.storage_factory(tmp_path)
    segs = [k for k in KEYS if "/segments/" in k]
    for key in KEYS:
        if key != segs[len(segs) // 2]:
            s.put(key, [(FIXTURE / key).read_bytes()])
    with RemoteContainer(s, tmp_path / "spool") as rc:
        (b,) = rc.discover()
        with pytest.raises(LegacyError):
            rc.restore(b, tmp_path / "out", at=GENS[-1]["timestamp"])
    s.close()
