"""Register the demo host as a backup agent ("client") in the demo projects.

A job names the agent that runs it, and the job form offers only agents registered in the
user's project.  On a real cloud each agent registers itself at start-up; the demo registers
this machine, through the same API call an agent makes (``clients.create``), so the Create Job
form has something to offer.  Idempotent: registering again refreshes the record.

    python -m demo.seed '<json: username -> {project_id, user_id, roles}>'   (called by demo.run)
"""

from __future__ import annotations

import json
import re
import socket
import sys


def demo_hostname() -> str:
    # Client IDs and hostnames follow freezer-api's hostname pattern; a container's random
    # hostname or an underscore would be refused.
    name = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()).strip("-.") or "demo-host"
    return name[:63]


def register_client(
    *, project_id: str, user_id: str, roles: list[str], hostname: str, description: str = ""
) -> str:
    """Register ``hostname`` as a client of ``project_id`` (Django must be configured)."""
    from freezer_ui.api.client import FreezerClient
    from freezer_ui.api.transports.embedded import EmbeddedTransport

    client = FreezerClient(EmbeddedTransport(), project_id=project_id, user_id=user_id, roles=roles)
    with client:
        return client.clients.create(
            {
                # freezer-agent's own convention: "<project>_<hostname>", unique per project.
                "client_id": f"{project_id}_{hostname}",
                "hostname": hostname,
                "description": description or f"agent on {hostname}",
            }
        )


def main(argv: list[str]) -> int:
    import django

    django.setup()
    accounts = json.loads(argv[0])
    hostname = demo_hostname()
    for username, ids in accounts.items():
        register_client(
            project_id=ids["project_id"],
            user_id=ids["user_id"],
            roles=ids["roles"],
            hostname=hostname,
            description=f"the demo host, registered for {username}'s project",
        )
    print(f"registered client {hostname!r} in {len(accounts)} projects")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
