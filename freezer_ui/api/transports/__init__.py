"""Transports behind :class:`freezer_ui.api.client.FreezerClient` (contract in ``base.py``).

``embedded`` imports Django and ``remote`` imports python-freezerclient, so neither is imported
here: ``freezer_ui.api.freezer.freezerclient`` imports the one the settings select.
"""

from freezer_ui.api.transports.base import BaseTransport, Context, Page

__all__ = ["BaseTransport", "Context", "Page"]
