"""Any flipped or missing byte in any stored object is detected (by verify, and by reads)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freezer_ui.repository import CorruptData, RepositoryError
from freezer_ui.repository.format import parse_pack, parse_pack_key
from freezer_ui.storage import LocalStorage

from .conftest import ENCRYPTIONS, backup_blob, make_repo, reopen, restore_blob, semi_random


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small repository per encryption: 2 generations, several packs."""
    out = {}
    for enc in ENCRYPTIONS:
        root = tmp_path_factory.mktemp(f"tpl-{enc}") / "repo"
        repo = make_repo(LocalStorage(str(root)), enc)
        backup_blob(repo, {"a": semi_random(150_000, 1), "b": b"small"})
        backup_blob(repo, {"a": semi_random(150_000, 1), "c": semi_random(60_000, 2)})
        out[enc] = root
    return out


def object_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not str(p.relative_to(root)).startswith("locks")
    )


def _copy(template: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        dst = Path(d) / "repo"
        shutil.copytree(template, dst)
        yield dst


def detected(root: Path, enc: str) -> bool:
    """True when the damage is reported: open fails, or verify lists an error."""
    storage = LocalStorage(str(root), create=False)
    try:
        repo = reopen(storage, enc)
    except RepositoryError:
        return True
    report = repo.verify()
    return not report.ok


def test_templates_verify_clean(templates: dict[str, Path]) -> None:
    for enc, root in templates.items():
        repo = reopen(LocalStorage(str(root)), enc)
        report = repo.verify()
        assert report.ok, report.errors
        assert report.packs_checked >= 3 and report.generations_checked == 2
        assert not report.warnings


@pytest.mark.parametrize("enc", ENCRYPTIONS)
@given(data=st.data())
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_flipped_byte_anywhere_is_detected(
    templates: dict[str, Path], enc: str, data: st.DataObject
) -> None:
    template = templates[enc]
    files = object_files(template)
    rel = data.draw(st.sampled_from(files), label="object")
    size = (template / rel).stat().st_size
    pos = data.draw(st.integers(0, size - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor")
    for root in _copy(template):
        path = root / rel
        raw = bytearray(path.read_bytes())
        raw[pos] ^= mask
        path.write_bytes(bytes(raw))
        assert detected(root, enc), f"flip of byte {pos} in {rel} went unnoticed"


@pytest.mark.parametrize("enc", ENCRYPTIONS)
def test_truncated_or_extended_objects_are_detected(templates: dict[str, Path], enc: str) -> None:
    template = templates[enc]
    for rel in object_files(template):
        for change in ("truncate", "extend"):
            for root in _copy(template):
                path = root / rel
                raw = path.read_bytes()
                path.write_bytes(raw[:-1] if change == "truncate" else raw + b"\0")
                assert detected(root, enc), f"{change} of {rel} went unnoticed"


@pytest.mark.parametrize("enc", ENCRYPTIONS)
def test_every_region_of_every_pack(templates: dict[str, Path], enc: str) -> None:
    """Deterministic companion of the hypothesis test: first/last byte of every blob,
    of the header, the trailer and the footer of every pack."""
    template = templates[enc]
    repo = reopen(LocalStorage(str(template)), enc)
    for rel in object_files(template):
        pack_id = parse_pack_key(rel)
        if pack_id is None:
            continue
        raw = (template / rel).read_bytes()
        entries = parse_pack(repo.envelope, pack_id, raw, rel)
        positions = {
            0,
            11,
            len(raw) - 1,
            len(raw) - 12,
            len(raw) - 13,
            entries[-1].offset + entries[-1].length,
        }
        for e in entries:
            positions |= {e.offset, e.offset + e.length - 1, e.offset + e.length // 2}
        for pos in sorted(positions):
            for root in _copy(template):
                path = root / rel
                b = bytearray(raw)
                b[pos] ^= 0x01
                path.write_bytes(bytes(b))
                assert detected(root, enc), f"flip at {pos} of {rel}"


@pytest.mark.parametrize("enc", ENCRYPTIONS)
def test_read_path_names_pack_and_offset(templates: dict[str, Path], enc: str) -> None:
    template = templates[enc]
    for root in _copy(template):
        storage = LocalStorage(str(root))
        repo = reopen(storage, enc)
        gen_id = repo.generations()[0].id
        item = next(i for i in repo.open_generation(gen_id).items() if i["path"] == "a")
        cid = bytes(item["chunks"][1][0])
        pack_id, offset, length, _ = repo.index.by_chunk[cid]
        path = root / "data" / pack_id.hex()[:2] / pack_id.hex()
        raw = bytearray(path.read_bytes())
        raw[offset + length // 2] ^= 0x80
        path.write_bytes(bytes(raw))
        with pytest.raises(CorruptData) as exc_info:
            restore_blob(reopen(storage, enc), gen_id)
        assert exc_info.value.key == f"data/{pack_id.hex()[:2]}/{pack_id.hex()}"
        assert exc_info.value.offset == offset
        assert pack_id.hex() in str(exc_info.value)


@pytest.mark.parametrize("enc", ENCRYPTIONS)
def test_swapped_blobs_between_ids_are_detected(templates: dict[str, Path], enc: str) -> None:
    """A valid blob stored under the wrong id fails: the AAD binds blob type and id."""
    template = templates[enc]
    for root in _copy(template):
        manifests = sorted((root / "manifests").iterdir())
        a, b = manifests[0].read_bytes(), manifests[1].read_bytes()
        manifests[0].write_bytes(b)
        manifests[1].write_bytes(a)
        assert detected(root, enc)


def test_sampled_verify_still_checks_structure(templates: dict[str, Path]) -> None:
    for root in _copy(templates["none"]):
        repo = reopen(LocalStorage(str(root)), "none")
        report = repo.verify(sample=0.0)
        assert report.ok and report.packs_sampled == 0 and report.packs_checked >= 3
        report = repo.verify(sample=0.5)
        assert report.ok and 0 < report.packs_sampled < report.packs_checked


@pytest.mark.parametrize("enc", ENCRYPTIONS)
def test_damaged_or_lost_index_is_rebuilt_from_packs(templates: dict[str, Path], enc: str) -> None:
    for damage in ("flip", "delete"):
        for root in _copy(templates[enc]):
            storage = LocalStorage(str(root))
            gens = {
                g.id: restore_blob(reopen(storage, enc), g.id)
                for g in reopen(storage, enc).generations()
            }
            for path in (root / "index").iterdir():
                if damage == "delete":
                    path.unlink()
                else:
                    raw = bytearray(path.read_bytes())
                    raw[len(raw) // 2] ^= 0x10
                    path.write_bytes(bytes(raw))
            repo = reopen(storage, enc)
            assert not repo.verify().ok
            if damage == "flip":
                with pytest.raises(CorruptData, match="rebuild_index"):
                    repo.refresh_index()
            assert repo.rebuild_index() >= 3
            again = reopen(storage, enc)
            assert again.verify().ok
            for gen_id, files in gens.items():
                assert restore_blob(again, gen_id) == files


@pytest.mark.parametrize("enc", ENCRYPTIONS)
@given(data=st.data())
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_flipped_byte_in_any_chunk_fails_the_read(
    templates: dict[str, Path], enc: str, data: st.DataObject
) -> None:
    template = templates[enc]
    repo = reopen(LocalStorage(str(template)), enc)
    locations = sorted(repo.index.by_chunk.items())
    cid, (pack_id, offset, length, _size) = data.draw(st.sampled_from(locations), label="chunk")
    pos = data.draw(st.integers(offset, offset + length - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor")
    for root in _copy(template):
        key = f"data/{pack_id.hex()[:2]}/{pack_id.hex()}"
        path = root / key
        raw = bytearray(path.read_bytes())
        raw[pos] ^= mask
        path.write_bytes(bytes(raw))
        with pytest.raises(CorruptData) as exc_info:
            reopen(LocalStorage(str(root)), enc).read_chunk(cid)
        assert (exc_info.value.key, exc_info.value.offset) == (key, offset)
