"""``python -m freezer_ui.agent`` with every progress step slowed: a run lasts long enough for
a test to kill the process in the middle of it (the test waits for progress, then SIGKILLs),
or for a page to show it in progress.

Default: 0.1 s per progress snapshot.  With ``SLOW_AGENT_SECONDS_PER_MIB`` set, the pause is
proportional to the bytes the snapshot adds instead, so a run's length follows its data and
not how often the engine reports (which depends on the machine's speed).
"""

import os
import sys
import time

from freezer_ui.agent import agent as agent_mod

_init = agent_mod.Agent.__init__
_PER_MIB = float(os.environ.get("SLOW_AGENT_SECONDS_PER_MIB") or 0)


def _by_bytes():
    seen = {"bytes": 0}

    def hook(snapshot):
        done = snapshot.bytes_done or 0
        if done < seen["bytes"]:  # a new action: its counter starts again
            seen["bytes"] = 0
        time.sleep((done - seen["bytes"]) / (1 << 20) * _PER_MIB)
        seen["bytes"] = done

    return hook


def _slow_init(self, *args, **kwargs):
    kwargs.setdefault("progress_hook", _by_bytes() if _PER_MIB else lambda s: time.sleep(0.1))
    _init(self, *args, **kwargs)


agent_mod.Agent.__init__ = _slow_init

if __name__ == "__main__":
    from freezer_ui.agent.cli import main

    sys.exit(main(sys.argv[1:]))
