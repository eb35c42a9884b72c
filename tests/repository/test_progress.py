"""freezer_ui.progress.Progress: counts, rate, ETA, throttled callbacks, threads."""

from __future__ import annotations

import threading

from freezer_ui.progress import Progress, ProgressSnapshot


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_rate_and_eta() -> None:
    clock = Clock()
    p = Progress(clock=clock)
    p.start(total_bytes=1000, total_files=4)
    s = p.snapshot()
    assert (s.bytes_done, s.rate, s.eta, s.finished) == (0, 0.0, None, False)
    clock.t += 2
    p.advance(bytes=200, files=1)
    s = p.snapshot()
    assert s.rate == 100.0 and s.eta == 8.0 and s.fraction == 0.2
    clock.t += 1
    p.finish()
    s = p.snapshot()
    assert s.finished and s.eta == 0.0 and s.elapsed == 3.0
    clock.t += 50  # frozen after finish
    assert p.snapshot().elapsed == 3.0
    assert s.to_dict()["bytes_total"] == 1000


def test_unknown_totals() -> None:
    clock = Clock()
    p = Progress(clock=clock)
    p.advance(bytes=10)  # advance before start starts the clock
    clock.t += 1
    s = p.snapshot()
    assert s.bytes_total is None and s.eta is None and s.fraction is None and s.rate == 10.0
    p.set_total(total_bytes=20)
    assert p.snapshot().eta == 1.0


def test_callbacks_are_throttled() -> None:
    clock = Clock()
    seen: list[ProgressSnapshot] = []
    p = Progress(seen.append, interval=1.0, clock=clock)
    p.start(total_bytes=100)
    for _ in range(10):
        p.advance(bytes=1)
    clock.t += 1.5
    p.advance(bytes=1)
    p.finish()
    assert len(seen) == 3  # start, one after the interval, finish
    assert seen[-1].finished and seen[-1].bytes_done == 11


def test_thread_safe_counts() -> None:
    p = Progress()
    p.start()

    def work() -> None:
        for _ in range(10_000):
            p.advance(bytes=3, files=1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = p.snapshot()
    assert s.bytes_done == 120_000 and s.files_done == 40_000


def test_writer_advances_bytes(tmp_path: object) -> None:
    from freezer_ui.repository import Repository
    from freezer_ui.storage import LocalStorage

    repo = Repository.init(LocalStorage(f"{tmp_path}/r"))
    p = Progress()
    p.start()
    with repo.writer(progress=p) as w:
        w.add_chunk(b"a" * 100)
        w.add_chunk(b"a" * 100)  # deduplicated chunks count too
        w.commit({"backup_name": "x"}, [{"path": "p", "chunks": []}])
    assert p.snapshot().bytes_done == 200
