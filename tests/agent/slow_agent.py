"""``python -m freezer_ui.agent`` with every progress step slowed: a run lasts long enough for
a test to kill the process in the middle of it (the test waits for progress, then SIGKILLs)."""

import sys
import time

from freezer_ui.agent import agent as agent_mod

_init = agent_mod.Agent.__init__


def _slow_init(self, *args, **kwargs):
    kwargs.setdefault("progress_hook", lambda snapshot: time.sleep(0.1))
    _init(self, *args, **kwargs)


agent_mod.Agent.__init__ = _slow_init

if __name__ == "__main__":
    from freezer_ui.agent.cli import main

    sys.exit(main(sys.argv[1:]))
