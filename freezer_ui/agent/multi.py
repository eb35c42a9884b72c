"""One agent process for the jobs of many projects (embedded mode).

freezer-api's model is one agent per client per project.  On one host serving many tenants
that means one process per project; :class:`MultiProjectAgent` runs them all in one process
instead: one :class:`~freezer_ui.agent.agent.Agent` per served project, each with a
:class:`~freezer_ui.api.client.FreezerClient` scoped to that project only.

Which projects: those given explicitly (the host is registered there as ``client_id``), and,
with ``all_projects``, every project where a client of this host is registered: ``client_id``
itself or freezer-agent's ``<project>_<client_id>`` convention.  Discovery runs each poll, so
a project that registers the host later is served from its next poll.

Tenant isolation holds because nothing crosses projects inside the process:

* a project's jobs, backup records and run records go through that project's client only
  (the transport filters every query by project), so a record lands in its job's project;
* each project has its own state dir (``<state>/projects/<project>``: run state, spool) and
  key dir (``<key dir>/<project>``), and the passphrase store is asked with the job's project;
  the agent's ``FREEZER_UI_PASSPHRASE`` is not used (it would be one secret for every tenant);
* ``{project_id}`` in an allowed root expands to the job's project
  (``--allowed-root /srv/tenants/{project_id}``): a job can then only name paths and local
  repositories under its own project's tree.  Without it, the roots are the operator's fence
  for all tenants and a job reaches only what it names itself inside them;
* the tar engine's files cache is keyed by repository id, so one project's cache never
  answers for another project's repository.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterable

from freezer_ui.agent.agent import Agent, AgentConfig
from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import FreezerAPIError, Unavailable
from freezer_ui.progress import ProgressSnapshot

LOG = logging.getLogger("freezer_ui.agent")

PROJECT_PLACEHOLDER = "{project_id}"


def project_config(config: AgentConfig, project_id: str, client_id: str) -> AgentConfig:
    """The configuration of one project's agent inside a multi-project process."""
    if os.sep in project_id or project_id in ("", ".", ".."):
        raise ValueError(f"unsafe project id {project_id!r}")
    key_dir = config.key_dir or os.path.join(config.state_dir, "keys")
    return dataclasses.replace(
        config,
        client_id=client_id,
        state_dir=os.path.join(config.state_dir, "projects", project_id),
        key_dir=os.path.join(key_dir, project_id),
        allowed_roots=tuple(
            root.replace(PROJECT_PLACEHOLDER, project_id) for root in config.allowed_roots
        ),
        project_id=project_id,
        shared_passphrase=False,
    )


class MultiProjectAgent:
    """Serves ``client_id`` in several projects from one process (embedded transport)."""

    def __init__(
        self,
        make_client: Callable[[str], FreezerClient],
        config: AgentConfig,
        *,
        project_ids: Iterable[str] = (),
        all_projects: bool = False,
        admin_client: FreezerClient | None = None,
        progress_hook: Callable[[ProgressSnapshot], None] | None = None,
    ) -> None:
        if all_projects and admin_client is None:
            raise ValueError("all_projects needs an admin client to find the registrations")
        self.make_client = make_client
        self.config = config
        self.client_id = config.client_id
        self.project_ids = list(dict.fromkeys(project_ids))
        self.all_projects = all_projects
        self.admin_client = admin_client
        self.progress_hook = progress_hook
        self.agents: dict[str, Agent] = {}
        self.stopping = threading.Event()

    # ----------------------------------------------------------------- discovery
    def registrations(self) -> dict[str, str]:
        """project_id -> the client_id this host is registered as there."""
        found: dict[str, str] = {}
        if self.all_projects:
            assert self.admin_client is not None
            offset = 0
            while True:
                page = self.admin_client.clients.list(limit=100, offset=offset, all_projects=True)
                for doc in page:
                    project = doc.get("project_id") or ""
                    registered = (doc.get("client") or {}).get("client_id") or ""
                    if project and registered in (self.client_id, f"{project}_{self.client_id}"):
                        # A project's own "<project>_<host>" registration wins over a bare one.
                        if found.get(project) != f"{project}_{self.client_id}":
                            found[project] = registered
                if not page.has_more:
                    break
                offset += len(page)
        for project in self.project_ids:
            found.setdefault(project, self.client_id)
        return found

    def _agent(self, project: str, client_id: str) -> Agent:
        agent = self.agents.get(project)
        if agent is not None and agent.client_id == client_id:
            return agent
        agent = Agent(
            self.make_client(project),
            project_config(self.config, project, client_id),
            progress_hook=self.progress_hook,
        )
        agent.stopping = self.stopping  # one stop for every project
        agent.start()  # register (or refresh) in that project, recover its orphans
        self.agents[project] = agent
        LOG.info("serving project %s as client %s", project, client_id)
        return agent

    # ----------------------------------------------------------------- the loop
    def start(self) -> list[str]:
        """Register in (and recover) every project served now; returns them."""
        for project, client_id in self.registrations().items():
            self._agent(project, client_id)
        return sorted(self.agents)

    def poll(self) -> dict[str, list[str]]:
        """One pass over every served project; project -> ids of the jobs that ran."""
        ran: dict[str, list[str]] = {}
        for project, client_id in sorted(self.registrations().items()):
            if self.stopping.is_set():
                break
            try:
                ran[project] = self._agent(project, client_id).poll()
            except Unavailable:
                raise  # the database is gone for every project: back off
            except FreezerAPIError as e:
                # One project's trouble (a deleted registration...) never stops the others.
                LOG.warning("project %s: poll failed: %s", project, e)
        return ran

    def run_forever(self) -> None:
        delay = self.config.poll_interval
        while not self.stopping.is_set():
            try:
                self.poll()
                delay = self.config.poll_interval
            except Unavailable as e:
                delay = min(max(delay * 2, 1.0), self.config.backoff_max)
                LOG.warning("API unreachable (%s); retrying in %.0f s", e, delay)
            except Exception:  # noqa: BLE001 - an agent must survive one bad poll
                LOG.exception("poll failed")
            self.stopping.wait(delay)


__all__ = ["MultiProjectAgent", "PROJECT_PLACEHOLDER", "project_config"]
