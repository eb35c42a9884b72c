"""The agent fixtures (a migrated sqlite file, real agents) for the store's end-to-end tests."""

from tests.agent.conftest import agent_db, api, make_agent  # noqa: F401
