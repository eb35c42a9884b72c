"""Secrets: repository passphrases and storage credentials, encrypted at rest (docs/secrets.md).

Two places hold a project's secrets:

* **The secret store** (the ``freezer_ui.models.Secret`` table): each value is sealed with
  AES-256-GCM under a *master key* kept outside the database, in the file
  ``FREEZER_UI_SECRET_KEY_FILE`` (default ``<FREEZER_UI_STATE_DIR>/secret.key``, created 0600
  on first use).  The associated data binds a ciphertext to its (project, name): a row copied
  to another project or renamed no longer opens.  The dashboard's Keys panel writes here.
* **Key files on the agent host** (``<key dir>/<name>``), for agents that cannot reach the
  dashboard's database (remote mode on another host).

A job action names a *reference*, never the passphrase itself (job documents are readable by
every member of the project, are logged by freezer-api and shown by the dashboard):

* ``passphrase_ref: "<name>"``: the project's stored secret ``<name>`` when the caller gives
  a project and a database is configured, else the file ``<key dir>/<name>``;
* ``encrypt_pass_file: "/path"``: upstream Freezer's option, a file on the agent host;
* neither: the agent's environment variable ``FREEZER_UI_PASSPHRASE`` (or no passphrase).

A value is returned to the caller and nowhere else: not logged, not put in argv, not in error
messages (which name the secret and the key file, never a value or a key).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import stat
import struct
import tempfile
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PASSPHRASE_ENV = "FREEZER_UI_PASSPHRASE"
KEY_FILE_ENV = "FREEZER_UI_SECRET_KEY_FILE"
KEY_FILE_NAME = "secret.key"
# What a secret is for; a passphrase_ref only resolves to a "passphrase".
KINDS = ("passphrase", "storage_credential")
MAX_NAME = 255
MAX_DESCRIPTION = 1024
# Passphrases and credentials (a key pair, a JSON credential file) fit easily; a limit keeps a
# paste of a whole file from landing in the database.
MAX_VALUE_BYTES = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

KEY_BYTES = 32
_MAGIC = b"FUS1"  # freezer-ui secret, format 1
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER = len(_MAGIC) + _KEY_ID_BYTES

LOG = logging.getLogger(__name__)


class SecretError(Exception):
    """A secret cannot be resolved, stored or opened (the message never holds a value)."""


class SecretKeyError(SecretError):
    """The master key file is missing, unreadable or unsafe, or is not the sealing key."""


class SecretCorrupt(SecretError):
    """A stored ciphertext fails authentication: altered, truncated, or moved to another row."""


class SecretNotFound(SecretError):
    """No secret of that name in the project (another project's names land here too)."""


class SecretExists(SecretError):
    """The project already has a secret of that name."""


class SecretInvalid(SecretError):
    """Bad input; ``field`` names the offending field (``name``, ``value``, ``kind``...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SecretRequired(SecretInvalid):
    def __init__(self, field: str) -> None:
        super().__init__(field, "this field is required")


# ---------------------------------------------------------------- master key
def key_file_path(environ: Mapping[str, str] | None = None) -> str:
    """Where the master key lives.

    ``$FREEZER_UI_SECRET_KEY_FILE`` first (a per-process choice, e.g. an agent started with a
    systemd credential), then the Django setting of that name, then
    ``<FREEZER_UI_STATE_DIR>/secret.key``.
    """
    env = os.environ if environ is None else environ
    if env.get(KEY_FILE_ENV):
        return env[KEY_FILE_ENV]
    from freezer_ui import conf

    if _django_configured():
        configured = conf.get("FREEZER_UI_SECRET_KEY_FILE")
        if configured:
            return str(configured)
        state_dir = conf.get("FREEZER_UI_STATE_DIR")
    else:
        state_dir = conf.DEFAULTS["FREEZER_UI_STATE_DIR"]
    return os.path.join(state_dir, KEY_FILE_NAME)


def _django_configured() -> bool:
    try:
        from django.conf import settings

        return bool(settings.configured)
    except ImportError:  # pragma: no cover - Django is a dependency of the package
        return False


def _aad(header: bytes, project_id: str, name: str) -> bytes:
    # Length-prefixed so ("ab", "c") and ("a", "bc") cannot collide.
    parts = [project_id.encode("utf-8"), name.encode("utf-8")]
    return header + b"".join(struct.pack(">I", len(p)) + p for p in parts)


class MasterKey:
    """A 256-bit AES-GCM key read from a file; seals and opens secret values.

    ``fingerprint`` identifies the key in ciphertexts and error messages without revealing it
    (a hash of the key under its own label, so it says nothing about the key itself).
    """

    def __init__(self, key: bytes, path: str = "") -> None:
        if len(key) != KEY_BYTES:
            raise SecretKeyError(f"key file {path}: a key is {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"freezer-ui secret key id\0" + key).digest()[:_KEY_ID_BYTES]
        self.path = path

    @property
    def fingerprint(self) -> str:
        return self.key_id.hex()

    def __repr__(self) -> str:  # never the key
        return f"<MasterKey {self.fingerprint} from {self.path or '?'}>"

    def seal(self, project_id: str, name: str, value: str) -> bytes:
        header = _MAGIC + self.key_id
        nonce = os.urandom(_NONCE_BYTES)
        data = value.encode("utf-8")
        return header + nonce + self._aead.encrypt(nonce, data, _aad(header, project_id, name))

    def open(self, project_id: str, name: str, blob: bytes) -> str:
        blob = bytes(blob)
        if len(blob) < _HEADER + _NONCE_BYTES + _TAG_BYTES or not blob.startswith(_MAGIC):
            raise SecretCorrupt(
                f"secret {name!r} of project {project_id}: not a sealed value "
                "(truncated or damaged)"
            )
        key_id = blob[len(_MAGIC) : _HEADER]
        if key_id != self.key_id:
            raise SecretKeyError(
                f"secret {name!r} of project {project_id} was sealed with key "
                f"{key_id.hex()}, but {self.path or 'the key file'} holds key "
                f"{self.fingerprint}: wrong FREEZER_UI_SECRET_KEY_FILE, or a rotation is "
                "in progress"
            )
        nonce = blob[_HEADER : _HEADER + _NONCE_BYTES]
        try:
            data = self._aead.decrypt(
                nonce, blob[_HEADER + _NONCE_BYTES :], _aad(blob[:_HEADER], project_id, name)
            )
        except InvalidTag:
            raise SecretCorrupt(
                f"secret {name!r} of project {project_id} fails authentication: the stored "
                "value was altered, or copied from another project or name"
            ) from None
        return data.decode("utf-8")

    # ------------------------------------------------------------ files
    @classmethod
    def load(cls, path: str, *, create: bool = False) -> MasterKey:
        """The key in ``path``; with ``create``, a new random key is written there if missing.

        The file holds 32 random bytes, raw or base64 (what we write: one line, so it can be
        copied into a password manager).  A file that group or others may read or write is
        refused: the key is as secret as every value it protects.
        """
        while True:
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                if not create:
                    raise SecretKeyError(
                        f"secret key file {path} does not exist (FREEZER_UI_SECRET_KEY_FILE): "
                        "restore it from your backup of the key file (a new key is made only "
                        "when the first secret is stored)"
                    ) from None
                try:
                    return cls._generate(path)
                except FileExistsError:
                    continue  # another process created it first: read theirs
            except OSError as e:
                raise SecretKeyError(f"cannot read secret key file {path}: {e.strerror}") from None
            with os.fdopen(fd, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                if not stat.S_ISREG(mode):
                    raise SecretKeyError(f"secret key file {path} is not a regular file")
                if mode & 0o066:
                    raise SecretKeyError(
                        f"secret key file {path} is accessible to group or others "
                        f"(mode {stat.S_IMODE(mode):04o}): run chmod 600 {path}"
                    )
                raw = f.read(4096)
            return cls(_decode_key(raw, path), path)

    @classmethod
    def _generate(cls, path: str) -> MasterKey:
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, mode=0o700, exist_ok=True)
        key = os.urandom(KEY_BYTES)
        # Written whole under a temporary name, then linked into place: link() fails if the
        # name exists, so two processes starting at once cannot each install a different key,
        # and no reader ever sees a half-written file.
        fd, tmp = tempfile.mkstemp(prefix=".secret-key-", dir=parent)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, base64.b64encode(key) + b"\n")
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.link(tmp, path)
        finally:
            if fd >= 0:
                os.close(fd)
            os.unlink(tmp)
        LOG.warning(
            "created secret key file %s: back it up now, without it no stored secret opens", path
        )
        return cls(key, path)


def _decode_key(raw: bytes, path: str) -> bytes:
    if len(raw) == KEY_BYTES:
        return raw
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise SecretKeyError(
            f"secret key file {path} holds no key: {KEY_BYTES} random bytes, raw or base64, "
            "are expected"
        )
    return key


# Keys by path, reused while the file is unchanged: a replaced key file (after a rotation) is
# read again on the next use, without a restart.
_KEYS: dict[str, tuple[tuple[int, ...], MasterKey]] = {}
_KEYS_LOCK = threading.Lock()


def load_key(path: str | None = None, *, create: bool = False) -> MasterKey:
    path = path or key_file_path()
    try:
        st = os.stat(path)
    except OSError:
        return MasterKey.load(path, create=create)
    # A rotation's rename brings a new inode (both files existed at once); ctime also moves
    # on chmod, which must be re-checked.
    ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)
    with _KEYS_LOCK:
        cached = _KEYS.get(path)
    if cached and cached[0] == ident:
        return cached[1]
    key = MasterKey.load(path, create=create)
    with _KEYS_LOCK:
        _KEYS[path] = (ident, key)
    return key


# ---------------------------------------------------------------- validation
def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise SecretRequired("name")
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise SecretInvalid(
            "name",
            "letters, digits, '.', '_' and '-' only, starting with a letter or digit, "
            f"at most {MAX_NAME} characters",
        )
    return name


def check_value(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise SecretRequired("value")
    if "\0" in value:
        raise SecretInvalid("value", "must not contain NUL characters")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise SecretInvalid("value", f"at most {MAX_VALUE_BYTES} bytes")
    return value


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise SecretInvalid("kind", f"must be one of {', '.join(KINDS)}")
    return kind


def check_description(description: Any) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise SecretInvalid("description", "must be text")
    if len(description) > MAX_DESCRIPTION:
        raise SecretInvalid("description", f"at most {MAX_DESCRIPTION} characters")
    return description


# ---------------------------------------------------------------- the store
def store_available() -> bool:
    """Whether this process can reach the secret store (Django set up, database configured).

    False in an agent running in remote mode on its own host: it resolves references from its
    key dir only.
    """
    if not _django_configured():
        return False
    from django.apps import apps
    from django.conf import settings

    from freezer_ui import conf

    return apps.ready and conf.database_alias() in settings.DATABASES


class SecretStore:
    """The ``Secret`` rows of every project, sealed under the master key in ``key_file``.

    Every method takes the project explicitly; callers that act for a user (the dashboard)
    take it from the request (freezer_ui/api/secrets.py), never from user input.
    """

    def __init__(self, key_file: str | None = None) -> None:
        self.key_file = key_file or key_file_path()

    @staticmethod
    def _alias() -> str:
        from freezer_ui import conf

        return conf.database_alias()

    def _rows(self) -> Any:
        from freezer_ui.models import Secret

        return Secret.objects.using(self._alias())

    def key(self, *, create: bool = False) -> MasterKey:
        return load_key(self.key_file, create=create)

    def list(self, project_id: str) -> list[Any]:
        """The project's rows by name, ciphertexts not loaded (nothing to open here)."""
        return list(self._rows().filter(project_id=project_id).defer("ciphertext"))

    def get(self, project_id: str, name: str) -> Any:
        try:
            return self._rows().defer("ciphertext").get(project_id=project_id, name=name)
        except self._rows().model.DoesNotExist:
            raise SecretNotFound(f"no secret {name!r} in project {project_id}") from None

    def create(
        self,
        project_id: str,
        user_id: str,
        name: str,
        value: str,
        kind: str = "passphrase",
        description: str = "",
    ) -> Any:
        from django.db import IntegrityError, transaction
        from django.utils import timezone

        check_name(name)
        check_kind(kind)
        description = check_description(description)
        check_value(value)
        sealed = self.key(create=True).seal(project_id, name, value)
        now = timezone.now()
        model = self._rows().model
        row = model(
            id=uuid.uuid4().hex,
            project_id=project_id,
            user_id=user_id,
            name=name,
            kind=kind,
            description=description,
            ciphertext=sealed,
            created_at=now,
            updated_at=now,
        )
        try:
            with transaction.atomic(using=self._alias()):
                row.save(using=self._alias(), force_insert=True)
        except IntegrityError:
            raise SecretExists(f"project {project_id} already has a secret {name!r}") from None
        LOG.info("secret %r of project %s created by %s", name, project_id, user_id)
        return row

    def update(self, project_id: str, name: str, value: str, *, user_id: str | None = None) -> Any:
        """Replace the value (write-only: the old one is never read back)."""
        from django.utils import timezone

        check_value(value)
        sealed = self.key(create=True).seal(project_id, name, value)
        fields = {"ciphertext": sealed, "updated_at": timezone.now()}
        if user_id:
            fields["user_id"] = user_id
        if not self._rows().filter(project_id=project_id, name=name).update(**fields):
            raise SecretNotFound(f"no secret {name!r} in project {project_id}")
        LOG.info("secret %r of project %s replaced by %s", name, project_id, user_id or "?")
        return self.get(project_id, name)

    def delete(self, project_id: str, name: str) -> None:
        deleted, _ = self._rows().filter(project_id=project_id, name=name).delete()
        if not deleted:
            raise SecretNotFound(f"no secret {name!r} in project {project_id}")
        LOG.info("secret %r of project %s deleted", name, project_id)

    def reveal(self, project_id: str, name: str, kind: str | None = None) -> str | None:
        """The value of ``name`` in the project, or None when there is no such secret."""
        from freezer_ui.models import Secret

        try:
            row = self._rows().get(project_id=project_id, name=name)
        except Secret.DoesNotExist:
            return None
        if kind and row.kind != kind:
            raise SecretError(
                f"secret {name!r} of project {project_id} is a {row.kind}, not a {kind}"
            )
        return self.key().open(project_id, name, row.ciphertext)

    def rotate(self, new_key_file: str, *, replace: bool = False) -> int:
        """Re-seal every row of every project under the key in ``new_key_file``.

        ``new_key_file`` is created (0600) if missing.  All rows change in one transaction: on
        any error (a row that does not open) none does.  A row already sealed with the new key
        is checked and kept, so a rotation interrupted after its commit can be run again.
        With ``replace``, the new key file then takes the place of ``self.key_file`` (one
        rename), so processes pick it up on their next use without a configuration change.
        Returns the number of rows re-sealed.
        """
        from django.db import transaction

        new = MasterKey.load(new_key_file, create=True)
        count = 0
        with transaction.atomic(using=self._alias()):
            rows = list(self._rows().select_for_update().order_by("project_id", "name"))
            old = self.key() if rows else None
            if old is not None and old.key_id == new.key_id:
                raise SecretKeyError(f"{new_key_file} holds the current key: nothing to rotate")
            for row in rows:
                blob = bytes(row.ciphertext)
                if blob[len(_MAGIC) : _HEADER] == new.key_id:
                    new.open(row.project_id, row.name, blob)
                    continue
                value = old.open(row.project_id, row.name, blob)  # type: ignore[union-attr]
                row.ciphertext = new.seal(row.project_id, row.name, value)
                # updated_at is the value's age: a re-seal does not change the value.
                row.save(using=self._alias(), update_fields=["ciphertext"])
                count += 1
        if replace and os.path.abspath(new_key_file) != os.path.abspath(self.key_file):
            os.replace(new_key_file, self.key_file)
        LOG.warning(
            "secret store re-sealed: %d secrets now under key %s%s",
            count,
            new.fingerprint,
            f" (moved to {self.key_file})" if replace else f" (in {new_key_file})",
        )
        return count


# ---------------------------------------------------------------- job actions
def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    except OSError as e:
        raise SecretError(f"cannot read {what}: {e.strerror}") from None


def resolve_passphrase(
    action: Mapping[str, Any],
    key_dir: str,
    environ: Mapping[str, str] | None = None,
    *,
    project_id: str | None = None,
) -> str | None:
    """The passphrase for a ``freezer_action``, or None for an unencrypted repository.

    With ``project_id`` and a reachable store, ``passphrase_ref`` names the project's stored
    passphrase first; a name the store does not have falls back to the key dir.
    """
    env = os.environ if environ is None else environ
    ref = action.get("passphrase_ref")
    if ref:
        if not isinstance(ref, str) or not _NAME.match(ref) or len(ref) > MAX_NAME:
            # A path in a reference could read any file the agent can: names only.
            raise SecretError(f"bad passphrase_ref {ref!r}: a plain key file name is expected")
        searched = bool(project_id) and store_available()
        if searched:
            value = SecretStore(key_file_path(env)).reveal(project_id, ref, kind="passphrase")
            if value is not None:
                return value
        try:
            return _read(os.path.join(key_dir, ref), f"key file {ref!r} in {key_dir}")
        except SecretError as e:
            if searched:
                raise SecretError(f"no secret {ref!r} in project {project_id}, and {e}") from None
            raise
    path = action.get("encrypt_pass_file")
    if path:
        return _read(str(path), f"encrypt_pass_file {path}")
    return env.get(PASSPHRASE_ENV) or None
