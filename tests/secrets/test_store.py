"""The secret store: sealing, the master key file, rows in the database, rotation, resolution."""

import base64
import os
import stat
import subprocess
import sys
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from freezer_ui import secrets
from freezer_ui.management.commands import freezer_ui_secrets
from freezer_ui.models import Secret

VALUE = "correct horse battery staple ☃"
PROJECT = "proj-a"
OTHER = "proj-b"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def key_file(tmp_path, settings, monkeypatch):
    monkeypatch.delenv(secrets.KEY_FILE_ENV, raising=False)
    path = tmp_path / "keys" / "secret.key"
    settings.FREEZER_UI_SECRET_KEY_FILE = str(path)
    return path


@pytest.fixture
def store(key_file, db):
    return secrets.SecretStore()


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------- sealing
def test_seal_and_open_round_trip_and_hide_the_value():
    key = secrets.MasterKey(os.urandom(32))
    blob = key.seal(PROJECT, "repo", VALUE)
    assert VALUE.encode() not in blob and b"horse" not in blob
    assert key.open(PROJECT, "repo", blob) == VALUE
    # A fresh nonce each time: equal values do not give equal ciphertexts.
    assert key.seal(PROJECT, "repo", VALUE) != blob


@pytest.mark.parametrize("project, name", [(OTHER, "repo"), (PROJECT, "repo2"), ("proj-", "arepo")])
def test_a_ciphertext_moved_to_another_project_or_name_does_not_open(project, name):
    key = secrets.MasterKey(os.urandom(32))
    blob = key.seal(PROJECT, "repo", VALUE)
    with pytest.raises(secrets.SecretCorrupt, match="copied from another project or name") as e:
        key.open(project, name, blob)
    assert VALUE not in str(e.value)


@pytest.mark.parametrize("where", [0, 5, 14, 30, -1])
def test_a_tampered_ciphertext_does_not_open(where):
    key = secrets.MasterKey(os.urandom(32))
    blob = bytearray(key.seal(PROJECT, "repo", VALUE))
    blob[where] ^= 0x01
    with pytest.raises(secrets.SecretError) as e:
        key.open(PROJECT, "repo", bytes(blob))
    # The magic and key id are checked first, the rest by the GCM tag.
    expected = secrets.SecretKeyError if where == 5 else secrets.SecretCorrupt
    assert isinstance(e.value, expected)
    assert VALUE not in str(e.value)


def test_a_truncated_ciphertext_is_refused():
    key = secrets.MasterKey(os.urandom(32))
    blob = key.seal(PROJECT, "repo", VALUE)
    for cut in (0, 10, 30, len(blob) - 1):
        with pytest.raises(secrets.SecretCorrupt):
            key.open(PROJECT, "repo", blob[:cut])


def test_the_wrong_key_names_both_fingerprints_not_the_value():
    right, wrong = secrets.MasterKey(os.urandom(32)), secrets.MasterKey(os.urandom(32), "/k")
    blob = right.seal(PROJECT, "repo", VALUE)
    with pytest.raises(secrets.SecretKeyError) as e:
        wrong.open(PROJECT, "repo", blob)
    message = str(e.value)
    assert right.fingerprint in message and wrong.fingerprint in message and "/k" in message
    assert VALUE not in message
    assert right.fingerprint not in repr(wrong) and "MasterKey" in repr(right)


# ---------------------------------------------------------------- the key file
def test_key_file_created_0600_on_first_use_then_reused(tmp_path):
    path = tmp_path / "state" / "secret.key"
    old = os.umask(0o000)  # a careless umask must not make the key readable
    try:
        key = secrets.MasterKey.load(str(path), create=True)
    finally:
        os.umask(old)
    assert mode_of(path) == 0o600
    assert len(base64.b64decode(path.read_bytes().strip())) == 32
    assert secrets.MasterKey.load(str(path)).fingerprint == key.fingerprint


def test_missing_key_file_is_not_created_when_reading(tmp_path):
    path = tmp_path / "secret.key"
    with pytest.raises(secrets.SecretKeyError, match="does not exist"):
        secrets.MasterKey.load(str(path))
    assert not path.exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o666])
def test_key_file_readable_by_others_is_refused(tmp_path, mode):
    path = tmp_path / "secret.key"
    secrets.MasterKey.load(str(path), create=True)
    os.chmod(path, mode)
    with pytest.raises(secrets.SecretKeyError, match="chmod 600"):
        secrets.MasterKey.load(str(path))
    with pytest.raises(secrets.SecretKeyError):
        secrets.load_key(str(path))


def test_raw_key_files_are_accepted_and_garbage_is_not(tmp_path):
    raw = os.urandom(32)
    path = tmp_path / "raw.key"
    path.write_bytes(raw)
    os.chmod(path, 0o400)
    assert secrets.MasterKey.load(str(path)).fingerprint == secrets.MasterKey(raw).fingerprint
    bad = tmp_path / "bad.key"
    bad.write_text("hunter2\n")
    os.chmod(bad, 0o600)
    with pytest.raises(secrets.SecretKeyError, match="holds no key") as e:
        secrets.MasterKey.load(str(bad))
    assert "hunter2" not in str(e.value)


def test_racing_first_uses_agree_on_one_key(tmp_path):
    path = str(tmp_path / "secret.key")
    found, barrier = [], threading.Barrier(8)

    def first_use():
        barrier.wait()
        found.append(secrets.MasterKey.load(path, create=True).fingerprint)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 8 and len(set(found)) == 1


def test_key_file_path_env_then_setting_then_state_dir(settings, monkeypatch, tmp_path):
    monkeypatch.delenv(secrets.KEY_FILE_ENV, raising=False)
    settings.FREEZER_UI_STATE_DIR = str(tmp_path)
    settings.FREEZER_UI_SECRET_KEY_FILE = None
    assert secrets.key_file_path() == str(tmp_path / "secret.key")
    settings.FREEZER_UI_SECRET_KEY_FILE = "/etc/freezer-ui/secret.key"
    assert secrets.key_file_path() == "/etc/freezer-ui/secret.key"
    assert secrets.key_file_path({secrets.KEY_FILE_ENV: "/run/creds/k"}) == "/run/creds/k"


# ---------------------------------------------------------------- rows
def raw_rows():
    """Every column of every Secret row as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Secret._meta.db_table}")
        return cursor.fetchall()


def test_the_database_holds_ciphertext_only(store, key_file):
    store.create(PROJECT, "alice", "repo", VALUE, description="nightly repository")
    (row,) = raw_rows()
    dump = repr(row)
    assert VALUE not in dump and "horse" not in dump
    assert all(VALUE.encode() not in bytes(c) for c in row if isinstance(c, (bytes, memoryview)))
    assert mode_of(key_file) == 0o600
    assert store.reveal(PROJECT, "repo") == VALUE
    (listed,) = store.list(PROJECT)
    assert listed.name == "repo" and listed.kind == "passphrase"
    assert store.list(OTHER) == []


def test_a_row_copied_to_another_project_does_not_open(store):
    store.create(PROJECT, "alice", "repo", VALUE)
    row = Secret.objects.get(project_id=PROJECT, name="repo")
    Secret.objects.create(
        id="copy", project_id=OTHER, user_id="mallory", name="repo", ciphertext=row.ciphertext
    )
    with pytest.raises(secrets.SecretCorrupt) as e:
        store.reveal(OTHER, "repo")
    assert VALUE not in str(e.value)
    Secret.objects.filter(id=row.id).update(name="renamed")
    with pytest.raises(secrets.SecretCorrupt):
        store.reveal(PROJECT, "renamed")


def test_names_are_unique_per_project_only(store):
    store.create(PROJECT, "alice", "repo", VALUE)
    with pytest.raises(secrets.SecretExists):
        store.create(PROJECT, "bob", "repo", "other")
    store.create(OTHER, "carol", "repo", "theirs")
    assert store.reveal(PROJECT, "repo") == VALUE
    assert store.reveal(OTHER, "repo") == "theirs"


def test_update_replaces_the_value_and_delete_removes_it(store):
    created = store.create(PROJECT, "alice", "repo", VALUE)
    updated = store.update(PROJECT, "repo", "new value", user_id="bob")
    assert updated.updated_at >= created.updated_at and updated.user_id == "bob"
    assert store.reveal(PROJECT, "repo") == "new value"
    with pytest.raises(secrets.SecretNotFound):
        store.update(OTHER, "repo", "x")
    with pytest.raises(secrets.SecretNotFound):
        store.delete(OTHER, "repo")
    store.delete(PROJECT, "repo")
    assert store.reveal(PROJECT, "repo") is None


@pytest.mark.parametrize(
    "field, kwargs",
    [
        ("name", {"name": "../etc/passwd"}),
        ("name", {"name": ""}),
        ("name", {"name": "x" * 256}),
        ("value", {"value": ""}),
        ("value", {"value": "a\0b"}),
        ("value", {"value": "x" * (64 * 1024 + 1)}),
        ("kind", {"kind": "password"}),
        ("description", {"description": "d" * 1025}),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(store, field, kwargs):
    args = {"name": "repo", "value": VALUE, "kind": "passphrase", "description": ""} | kwargs
    with pytest.raises(secrets.SecretInvalid) as e:
        store.create(PROJECT, "alice", **args)
    assert e.value.field == field
    assert not Secret.objects.exists()


def test_a_missing_key_file_with_stored_rows_is_a_clear_error(store, key_file):
    store.create(PROJECT, "alice", "repo", VALUE)
    os.unlink(key_file)
    with pytest.raises(secrets.SecretKeyError, match="does not exist") as e:
        store.reveal(PROJECT, "repo")
    assert VALUE not in str(e.value)
    assert not key_file.exists()  # reading never makes a new key that opens nothing


# ---------------------------------------------------------------- rotation
def test_rotate_reseals_every_row_in_one_go(store, key_file, tmp_path):
    store.create(PROJECT, "alice", "a", "value a")
    store.create(OTHER, "bob", "b", "value b", kind="storage_credential")
    old = store.key()
    before = {r.name: (bytes(r.ciphertext), r.updated_at) for r in Secret.objects.all()}
    new_file = tmp_path / "new.key"
    assert store.rotate(str(new_file)) == 2
    assert mode_of(new_file) == 0o600
    new = secrets.MasterKey.load(str(new_file))
    for row in Secret.objects.all():
        assert bytes(row.ciphertext) != before[row.name][0]
        assert row.updated_at == before[row.name][1]
        with pytest.raises(secrets.SecretKeyError):
            old.open(row.project_id, row.name, row.ciphertext)
    assert new.open(PROJECT, "a", Secret.objects.get(name="a").ciphertext) == "value a"
    # Run again (e.g. after a crash before the key file was switched): nothing to re-seal.
    assert store.rotate(str(new_file)) == 0
    # The store still points at the old key until told otherwise.
    with pytest.raises(secrets.SecretKeyError, match="rotation"):
        store.reveal(PROJECT, "a")


def test_rotate_with_replace_switches_the_key_file(store, key_file, tmp_path):
    store.create(PROJECT, "alice", "a", "value a")
    old = store.key().fingerprint
    store.rotate(str(tmp_path / "new.key"), replace=True)
    assert not (tmp_path / "new.key").exists()
    assert store.key().fingerprint != old and mode_of(key_file) == 0o600
    assert store.reveal(PROJECT, "a") == "value a"  # the cached old key was dropped


def test_rotate_changes_nothing_when_one_row_does_not_open(store, tmp_path):
    store.create(PROJECT, "alice", "a", "value a")
    store.create(PROJECT, "alice", "b", "value b")
    blob = bytearray(Secret.objects.get(name="b").ciphertext)
    blob[-1] ^= 1
    Secret.objects.filter(name="b").update(ciphertext=bytes(blob))
    before = {r.name: bytes(r.ciphertext) for r in Secret.objects.all()}
    with pytest.raises(secrets.SecretCorrupt):
        store.rotate(str(tmp_path / "new.key"))
    assert {r.name: bytes(r.ciphertext) for r in Secret.objects.all()} == before
    assert store.reveal(PROJECT, "a") == "value a"


def test_rotate_to_the_current_key_is_refused(store, key_file):
    store.create(PROJECT, "alice", "a", "value a")
    with pytest.raises(secrets.SecretKeyError, match="nothing to rotate"):
        store.rotate(str(key_file))


def test_management_command_key_check_rotate(store, key_file, tmp_path, capsys):
    store.create(PROJECT, "alice", "a", VALUE)
    command = freezer_ui_secrets.Command
    call_command(command(), "key")
    call_command(command(), "check")
    call_command(command(), "rotate", str(tmp_path / "new.key"), "--replace")
    call_command(command(), "check")
    out = capsys.readouterr().out
    assert "1 of 1 secrets open" in out and "re-sealed 1 secrets" in out
    assert VALUE not in out
    assert store.reveal(PROJECT, "a") == VALUE
    Secret.objects.update(ciphertext=b"FUS1" + b"\0" * 40)
    with pytest.raises(CommandError, match="1 secrets do not open"):
        call_command(command(), "check")


# ---------------------------------------------------------------- resolve_passphrase
def test_resolve_looks_in_the_store_first_then_the_key_dir(store, tmp_path):
    key_dir = tmp_path / "keys-dir"
    key_dir.mkdir()
    (key_dir / "repo").write_text("from the key dir\n")
    (key_dir / "only-file").write_text("file only\n")
    store.create(PROJECT, "alice", "repo", VALUE)
    action = {"passphrase_ref": "repo"}
    assert secrets.resolve_passphrase(action, str(key_dir), project_id=PROJECT) == VALUE
    # Without a project (today's agent call) or in another project: the key dir.
    assert secrets.resolve_passphrase(action, str(key_dir)) == "from the key dir"
    assert secrets.resolve_passphrase(action, str(key_dir), project_id=OTHER) == (
        "from the key dir"
    )
    only = {"passphrase_ref": "only-file"}
    assert secrets.resolve_passphrase(only, str(key_dir), project_id=PROJECT) == "file only"
    with pytest.raises(secrets.SecretError, match="no secret 'nowhere' in project proj-a, and"):
        secrets.resolve_passphrase({"passphrase_ref": "nowhere"}, str(key_dir), project_id=PROJECT)
    with pytest.raises(secrets.SecretError, match="bad passphrase_ref"):
        secrets.resolve_passphrase({"passphrase_ref": "../x"}, str(key_dir), project_id=PROJECT)
    assert secrets.resolve_passphrase({}, str(key_dir), {"FREEZER_UI_PASSPHRASE": "env"}) == "env"


def test_resolve_refuses_a_storage_credential_as_passphrase(store, tmp_path):
    store.create(PROJECT, "alice", "s3", VALUE, kind="storage_credential")
    with pytest.raises(secrets.SecretError, match="is a storage_credential, not a passphrase") as e:
        secrets.resolve_passphrase({"passphrase_ref": "s3"}, str(tmp_path), project_id=PROJECT)
    assert VALUE not in str(e.value)


def test_resolve_without_a_database_reads_the_key_dir(tmp_path):
    """An agent in remote mode on its own host: no Django settings at all."""
    (tmp_path / "repo").write_text("remote agent key\n")
    code = (
        "import sys; from freezer_ui import secrets; "
        "assert not secrets.store_available(); "
        "print(secrets.resolve_passphrase({'passphrase_ref': 'repo'}, sys.argv[1], "
        "project_id='proj-a'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "remote agent key"
