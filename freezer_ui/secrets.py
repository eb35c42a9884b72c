"""Repository passphrases: resolved on the agent host, never carried by the job document.

A job action names a *reference*, never the passphrase itself (job documents are readable by
every member of the project, are logged by freezer-api and shown by the dashboard):

* ``passphrase_ref: "<name>"``: the file ``<key dir>/<name>`` on the agent host (key dir =
  ``--key-dir``, default ``<state dir>/keys``); ``<name>`` is a plain file name.
* ``encrypt_pass_file: "/path"``: upstream Freezer's option, a file on the agent host.
* neither: the agent's environment variable ``FREEZER_UI_PASSPHRASE`` (or no passphrase).

The value is returned to the caller and nowhere else: not logged, not put in argv, not in
error messages (which name the reference only).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

PASSPHRASE_ENV = "FREEZER_UI_PASSPHRASE"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SecretError(Exception):
    """The passphrase reference cannot be resolved (the message never holds the secret)."""


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    except OSError as e:
        raise SecretError(f"cannot read {what}: {e.strerror}") from None


def resolve_passphrase(
    action: Mapping[str, Any], key_dir: str, environ: Mapping[str, str] | None = None
) -> str | None:
    """The passphrase for a ``freezer_action``, or None for an unencrypted repository."""
    env = os.environ if environ is None else environ
    ref = action.get("passphrase_ref")
    if ref:
        if not isinstance(ref, str) or not _NAME.match(ref):
            # A path in a reference could read any file the agent can: names only.
            raise SecretError(f"bad passphrase_ref {ref!r}: a plain key file name is expected")
        return _read(os.path.join(key_dir, ref), f"key file {ref!r} in {key_dir}")
    path = action.get("encrypt_pass_file")
    if path:
        return _read(str(path), f"encrypt_pass_file {path}")
    return env.get(PASSPHRASE_ENV) or None
