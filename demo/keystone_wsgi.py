"""WSGI entry point gunicorn serves for the demo/test Keystone.

Keystone's oslo.config parses ``sys.argv`` when the application initialises; under gunicorn
that is gunicorn's own command line (``--bind ...``), which Keystone rejects and the worker
crash-loops.  Clearing it before the import is the whole point of this module.  The
configuration comes from ``OS_KEYSTONE_CONFIG_FILES`` (set by ``demo.keystone.start``).
"""

import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402

__all__ = ["application"]
