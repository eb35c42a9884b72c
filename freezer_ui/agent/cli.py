"""``freezer-ui-agent run``: the job runtime's command line.

Embedded mode needs the Django settings of the deployment (``DJANGO_SETTINGS_MODULE`` or
``--settings``): the agent then reads and writes the same database as the dashboard.  Remote
mode talks to freezer-api; the Keystone token comes from the environment (``OS_TOKEN``), never
from argv (argv is visible to every user of the host in ``ps``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from typing import Any

from freezer_ui.agent.agent import Agent, AgentConfig, default_client_id

DEFAULT_STATE_DIR = "/var/lib/freezer-ui"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of ``run``; pass a subparser to mount them under another CLI."""
    p = parser or argparse.ArgumentParser(
        prog="freezer-ui-agent run", description="run the backup jobs assigned to this client"
    )
    env = os.environ.get
    p.add_argument("--mode", choices=("embedded", "remote"), default=env("FREEZER_UI_API_MODE"))
    p.add_argument("--settings", help="Django settings module (embedded mode)")
    p.add_argument("--state-dir", default=env("FREEZER_UI_STATE_DIR") or None)
    p.add_argument("--client-id", default=env("FREEZER_UI_CLIENT_ID") or "")
    p.add_argument("--hostname", default=socket.gethostname())
    p.add_argument(
        "--project-id",
        action="append",
        dest="project_ids",
        default=None,
        help="project to serve (repeatable in embedded mode: one process serves them all; "
        "default $OS_PROJECT_ID or $FREEZER_UI_PROJECT_ID)",
    )
    p.add_argument(
        "--all-projects",
        action="store_true",
        help="embedded mode: also serve every project where this host is registered as a "
        "client (client_id or <project>_<client_id>), found again at each poll",
    )
    p.add_argument("--user-id", default=env("OS_USER_ID") or env("FREEZER_UI_USER_ID") or "agent")
    p.add_argument("--api-url", default=env("FREEZER_UI_API_URL"), help="remote: freezer-api URL")
    p.add_argument("--auth-url", default=env("OS_AUTH_URL"), help="remote: Keystone v3 URL")
    p.add_argument("--key-dir", help="passphrase files named by passphrase_ref")
    p.add_argument("--poll-interval", type=float, default=10.0)
    p.add_argument("--progress-interval", type=float, default=1.0)
    p.add_argument(
        "--allowed-root",
        action="append",
        dest="allowed_roots",
        default=None,
        help="host path jobs may read from, restore into or keep local repositories in "
        "(repeatable; default: $FREEZER_UI_ALLOWED_ROOTS, colon-separated, or /)",
    )
    p.add_argument(
        "--allow-exec",
        action="store_true",
        help="run exec actions (commands written by job authors, i.e. tenants); off by default",
    )
    p.add_argument(
        "--exec-timeout",
        type=float,
        default=3600.0,
        help="upper bound, in seconds, of an exec action's run time (default 3600)",
    )
    p.add_argument(
        "--remote-storage",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="let jobs keep repositories on a remote storage, under URL/<project id>/<container> "
        "(repeatable), e.g. swift=swift://freezer-ui or "
        "ssh=ssh://backup@nas/srv/freezer-ui?key=/etc/freezer-ui/id_ed25519; credentials are "
        "the agent's (OS_* environment for swift, the key file for ssh)",
    )
    p.add_argument(
        "--legacy-storage",
        action="append",
        choices=("swift",),
        default=[],
        help="restore backups of the upstream Freezer agent from containers of the project's "
        "own Swift account, as their records name them; the agent's OS_* credentials must be "
        "that project's (checked at each restore); one project per agent",
    )
    p.add_argument("--once", action="store_true", help="one poll, then exit")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _django(settings: str | None) -> None:
    if settings:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise SystemExit("embedded mode needs --settings or DJANGO_SETTINGS_MODULE")
    import django

    django.setup()


def project_ids(args: argparse.Namespace) -> list[str]:
    """The projects named on the command line, else the environment's (not with
    --all-projects: a stray OS_PROJECT_ID must not register the host somewhere)."""
    if args.project_ids:
        return list(dict.fromkeys(p for p in args.project_ids if p))
    if getattr(args, "all_projects", False):
        return []
    env = os.environ.get("OS_PROJECT_ID") or os.environ.get("FREEZER_UI_PROJECT_ID")
    return [env] if env else []


def make_client(args: argparse.Namespace, project_id: str | None = None, roles=()) -> Any:
    from freezer_ui.api.client import FreezerClient

    mode = args.mode or "embedded"
    if project_id is None:
        ids = project_ids(args)
        if not ids:
            raise SystemExit("--project-id (or OS_PROJECT_ID) is required")
        project_id = ids[0]
    if mode == "embedded":
        _django(args.settings)
        from freezer_ui.api.transports.embedded import EmbeddedTransport

        transport: Any = EmbeddedTransport()
    else:
        from freezer_ui.api.transports.remote import RemoteTransport

        token = os.environ.get("OS_TOKEN")
        if not token:
            raise SystemExit("remote mode needs a Keystone token in OS_TOKEN")
        if args.auth_url:
            transport = RemoteTransport(
                project_id=project_id,
                auth_url=args.auth_url,
                token=token,
                endpoint=args.api_url,
            )
        else:
            # No Keystone URL: the token is sent as is to the endpoint (a token_endpoint
            # session, e.g. behind a gateway that validates it).
            if not args.api_url:
                raise SystemExit("remote mode needs --api-url or --auth-url")
            from freezerclient.v2.client import Client
            from keystoneauth1 import session as ks_session
            from keystoneauth1 import token_endpoint

            session = ks_session.Session(auth=token_endpoint.Token(args.api_url, token))
            freezer = Client(session=session, endpoint=args.api_url, project_id=project_id)
            transport = RemoteTransport(
                project_id=project_id, freezer=freezer, endpoint=args.api_url
            )
    return FreezerClient(transport, project_id=project_id, user_id=args.user_id, roles=roles)


def main(argv: list[str] | None = None) -> int:
    """``python -m freezer_ui.agent run ...`` (``run`` is optional here)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run with parsed options (for a parent CLI that mounted :func:`build_parser`)."""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ids = project_ids(args)
    multi = args.all_projects or len(ids) > 1
    if multi and (args.mode or "embedded") != "embedded":
        # A Keystone token is scoped to one project and freezer-api lists clients one project
        # at a time: a remote agent serves one project (run one per project).
        raise SystemExit("--all-projects and several --project-id need --mode embedded")
    if multi and args.legacy_storage:
        # The OS_* credentials of the environment are one project's: a process serving
        # several projects would read every tenant's records with them.
        raise SystemExit("--legacy-storage needs an agent serving one project")
    if not ids and not args.all_projects:
        raise SystemExit("--project-id (or OS_PROJECT_ID) is required")
    if (args.mode or "embedded") == "embedded":
        _django(args.settings)  # before reading FREEZER_UI_STATE_DIR from the settings
    state_dir = args.state_dir
    if not state_dir:
        try:
            from freezer_ui import conf

            state_dir = conf.get("FREEZER_UI_STATE_DIR")
        except Exception:  # noqa: BLE001 - no Django settings in remote mode
            state_dir = DEFAULT_STATE_DIR
    config = AgentConfig(
        state_dir=os.path.join(state_dir, "agent"),
        client_id=args.client_id or default_client_id(args.hostname),
        hostname=args.hostname,
        allowed_roots=tuple(
            args.allowed_roots
            or [r for r in os.environ.get("FREEZER_UI_ALLOWED_ROOTS", "/").split(":") if r]
        ),
        poll_interval=args.poll_interval,
        progress_interval=args.progress_interval,
        key_dir=args.key_dir,
        allow_exec=args.allow_exec,
        exec_timeout=args.exec_timeout,
        remote_storages=_remote_storages(args.remote_storage),
        legacy_storages=tuple(dict.fromkeys(args.legacy_storage)),
    )
    agent: Any
    if multi:
        from freezer_ui.agent.multi import MultiProjectAgent

        agent = MultiProjectAgent(
            lambda project: make_client(args, project),
            config,
            project_ids=ids,
            all_projects=args.all_projects,
            # Only to find this host's registrations across projects; every job runs through
            # its own project's client.
            admin_client=make_client(args, "freezer-ui-agent", roles=("admin",)),
        )
    else:
        agent = Agent(make_client(args, ids[0]), config)

    def stop(signum: int, frame: Any) -> None:
        agent.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.once:
        agent.start()
        agent.poll()
        return 0
    agent.run_forever()
    return 0


def _remote_storages(specs: list[str]) -> tuple[tuple[str, str], ...]:
    """``NAME=URL`` options -> ((name, url), ...); a wrong one stops the agent at start."""
    from freezer_ui.storage.registry import storage_names

    out = []
    for spec in specs:
        name, sep, url = spec.partition("=")
        if not sep or not url.startswith(f"{name}://") or name == "local":
            raise SystemExit(
                f"--remote-storage {spec!r}: expected NAME=NAME://..., e.g. swift=swift://c"
            )
        if name not in storage_names():
            raise SystemExit(f"--remote-storage {spec!r}: unknown storage {name!r}")
        out.append((name, url))
    return tuple(out)
