"""freezer-ui's job runtime: runs the jobs of freezer-api v2 documents with our engines.

Entry points: :func:`freezer_ui.agent.cli.main` (``python -m freezer_ui.agent run``), and
:class:`freezer_ui.agent.agent.Agent` for embedding.  Design and limits: docs/agent.md.
"""
