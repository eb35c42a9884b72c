"""freezer-ui: backup, restore and disaster recovery for OpenStack clouds.

The package holds the Horizon panels (``dashboards/``), the API client (``api/``), the agent
(``agent/``), the engines (``engines/``), the repository format (``repository/``) and the
storages (``storage/``).  Imports point down that list, never up.
"""

__version__ = "0.1.0"
