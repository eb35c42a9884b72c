"""JSON endpoints for the freezer-ui pages' JavaScript (Horizon's ``@urls.register`` REST API).

Internal to this plugin: the URLs and shapes may change with the pages that use them; no
stability promise.  Each module registers its views when imported; the panel that needs them
imports it (Horizon imports panel modules when it builds its URLconf).
"""
