"""The ``freezer-ui-agent`` command line (one module per group of commands)."""
