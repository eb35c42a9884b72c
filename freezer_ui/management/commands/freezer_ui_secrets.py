"""``manage.py freezer_ui_secrets``: the secret store's master key (docs/secrets.md).

* ``key``: the key file in use and its fingerprint (never the key);
* ``check``: open every stored secret with the current key; exits 1 if one does not open;
* ``rotate NEW_KEY_FILE [--replace]``: re-seal every secret under the key in NEW_KEY_FILE
  (created 0600 if missing) in one transaction; ``--replace`` then moves it over the current
  key file.

Django finds management commands under ``AppConfig.path``, which in a source checkout is the
repository root (freezer_ui/apps.py), so there it is reached as
``python -m freezer_ui.management.commands.freezer_ui_secrets --settings MOD ...`` (same
arguments); installed from a wheel, ``manage.py freezer_ui_secrets`` works as usual.
"""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError

from freezer_ui import secrets


class Command(BaseCommand):
    help = "Show, check or rotate the master key that seals freezer-ui's stored secrets."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        sub.add_parser("key", help="the key file in use and its fingerprint")
        sub.add_parser("check", help="open every stored secret with the current key")
        rotate = sub.add_parser("rotate", help="re-seal every stored secret under a new key")
        rotate.add_argument("new_key_file", help="the new key (created, mode 0600, if missing)")
        rotate.add_argument(
            "--replace",
            action="store_true",
            help="afterwards move NEW_KEY_FILE over the current key file",
        )

    def handle(self, *args, **options):
        if not secrets.store_available():
            raise CommandError("the freezer_ui database (FREEZER_UI_DATABASE) is not configured")
        store = secrets.SecretStore()
        try:
            return getattr(self, "do_" + options["action"])(store, options)
        except secrets.SecretError as e:
            raise CommandError(str(e)) from None

    def do_key(self, store, options):
        key = store.key()
        self.stdout.write(f"{store.key_file}: key {key.fingerprint}")

    def do_check(self, store, options):
        from freezer_ui.models import Secret

        rows = Secret.objects.using(store._alias()).order_by("project_id", "name")
        failed = 0
        total = 0
        for row in rows.iterator():
            total += 1
            try:
                store.key().open(row.project_id, row.name, row.ciphertext)
            except secrets.SecretError as e:
                failed += 1
                self.stderr.write(str(e))
        self.stdout.write(f"{total - failed} of {total} secrets open with {store.key_file}")
        if failed:
            raise CommandError(f"{failed} secrets do not open")

    def do_rotate(self, store, options):
        new_key_file = options["new_key_file"]
        count = store.rotate(new_key_file, replace=options["replace"])
        where = store.key_file if options["replace"] else new_key_file
        self.stdout.write(
            f"re-sealed {count} secrets under the key in {where} "
            f"(key {secrets.load_key(where).fingerprint})"
        )
        if not options["replace"]:
            self.stdout.write(
                f"now set FREEZER_UI_SECRET_KEY_FILE = {os.path.abspath(new_key_file)!r} "
                "everywhere the store is used (dashboard, agents) and back the new key up"
            )


def main(argv: list[str] | None = None) -> int:
    """Run the command outside ``manage.py`` (``--settings MOD`` or DJANGO_SETTINGS_MODULE)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--settings" in argv:
        i = argv.index("--settings")
        os.environ["DJANGO_SETTINGS_MODULE"] = argv[i + 1]
        del argv[i : i + 2]
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        print("freezer_ui_secrets: needs --settings MOD or DJANGO_SETTINGS_MODULE", file=sys.stderr)
        return 2
    import django

    django.setup()
    Command().run_from_argv(["freezer_ui_secrets", "freezer_ui_secrets", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
