"""The agent's view of :mod:`freezer_ui.secrets` (kept so ``freezer_ui.agent.secrets`` imports
keep working; the resolution lives one layer down, where the dashboard can use it too)."""

from freezer_ui.secrets import PASSPHRASE_ENV, SecretError, resolve_passphrase

__all__ = ["PASSPHRASE_ENV", "SecretError", "resolve_passphrase"]
