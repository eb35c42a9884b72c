"""The `make demo` stack: a real Keystone, Horizon and the freezer-ui plugin on 127.0.0.1.

``demo.keystone`` sets up and serves Keystone (also used by the browser-test fixtures),
``demo.settings`` is the Django settings module and ``demo.run`` starts everything.
Kept import-light on purpose: gunicorn imports ``demo.keystone_wsgi`` through this package.
"""
