"""The tar backup walks in a thread of its own (``_ahead``): order, errors, early stop."""

from __future__ import annotations

import threading

import pytest

from freezer_ui.engines.tar import backup as tb


def test_order_kept_across_batches() -> None:
    n = tb.WALK_BATCH * 3 + 7
    assert list(tb._ahead(iter(range(n)), threading.Event())) == list(range(n))


def test_error_in_the_walk_reaches_the_consumer_after_what_came_before() -> None:
    def entries():
        yield from range(5)
        raise OSError(5, "Input/output error")

    got = []
    with pytest.raises(OSError, match="Input/output"):
        for x in tb._ahead(entries(), threading.Event()):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]


def test_consumer_stopping_early_stops_the_walking_thread() -> None:
    produced = []

    def entries():
        for i in range(10**9):  # far more than the queue holds
            produced.append(i)
            yield i

    abort = threading.Event()
    it = tb._ahead(entries(), abort)
    assert next(it) == 0
    it.close()  # the backup stopped: the thread must end, not block on a full queue
    assert not abort.is_set()  # the streamers' signal is not ours to set
    assert not [t for t in threading.enumerate() if t.name == "fzui-walk"]
    assert len(produced) <= tb.WALK_BATCH * (tb.WALK_AHEAD + 2)
