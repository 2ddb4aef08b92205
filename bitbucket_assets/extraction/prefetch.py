"""Reading one paginated list on a thread of its own while the sync works on another.

Bitbucket paces `/2.0/repositories/*` and the other endpoints in separate buckets. The effective-permission
list (the other bucket) is the longest read of a large sync, so it is fetched beside the repositories (their
bucket) instead of after them. Only the fetching runs beside: pages are handed over in order and written by
the sync's own thread, each with its checkpoint, so a page's rows are never committed with another stage's.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator

from ..client.api import Page
from ..clock import Clock

_END = object()


class Prefetch:
    """Fetches `pages` ahead (at most `depth` pages waiting) on a daemon thread; errors reach the reader.

    On a simulated clock each thread keeps its own time: the fetching thread starts at the reader's time, and
    a page is ready for the reader once the reader's time has reached the time it was fetched at."""

    def __init__(self, pages: Iterator[Page], clock: Clock, name: str, depth: int = 8):
        self._pages, self._clock, self._depth = pages, clock, depth
        self._items: deque[tuple[object, float | None]] = deque()
        self._changed = threading.Condition()
        self._stop = False
        # the fetching thread's time at its last page (simulated clocks)
        self._latest = started = clock.fork()
        self._thread = threading.Thread(target=self._run, args=(started,), name=name, daemon=True)
        self._thread.start()

    def _run(self, started: float | None) -> None:
        self._clock.join(started)
        try:
            for page in self._pages:
                if not self._put(page):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the reader, which raises it in its own thread
            self._put(exc)

    def _put(self, item: object) -> bool:
        with self._changed:
            while len(self._items) >= self._depth and not self._stop:
                self._changed.wait()
            if self._stop:
                return False
            self._latest = self._clock.fork()
            self._items.append((item, self._latest))
            self._changed.notify_all()
            return True

    def ready(self) -> Iterator[Page]:
        """The pages fetched so far (by the reader's time), without waiting."""
        while True:
            with self._changed:
                if not self._items:
                    return
                item, fetched_at = self._items[0]
                now = self._clock.fork()
                early = fetched_at is not None and now is not None and fetched_at > now
                if item is _END or (early and not isinstance(item, BaseException)):
                    return
                self._items.popleft()
                self._changed.notify_all()
            yield self._take(item, fetched_at)

    def catch_up(self) -> None:
        """On a simulated clock, wait (on the wall clock) until the fetching thread's time has reached the
        reader's, or its queue is full, or it is done.

        A rate-limit bucket hands out its slots in the order threads ask for them. A fetching thread that this
        machine runs more slowly than the reader would otherwise ask after the reader's later calls to the
        same bucket, and be pushed to their time: its list would end later than it would on Bitbucket. On the
        wall clock the two threads are in step already, and nothing waits."""
        now = self._clock.fork()
        if now is None:
            return
        with self._changed:
            while (
                not self._stop
                and self._latest is not None
                and self._latest < now
                and len(self._items) < self._depth
                and not (self._items and self._items[-1][0] is _END)
                and not (self._items and isinstance(self._items[-1][0], BaseException))
            ):
                self._changed.wait(timeout=1.0)

    def behind(self) -> bool:
        """The fetching thread's time is before the reader's (simulated clocks; never on the wall clock)."""
        now = self._clock.fork()
        with self._changed:
            return now is not None and self._latest is not None and self._latest < now and not self._stop

    @property
    def finished(self) -> bool:
        """Every page has been handed to the reader."""
        with self._changed:
            return bool(self._items) and self._items[0][0] is _END

    def rest(self) -> Iterator[Page]:
        """Every remaining page, waiting for each."""
        while True:
            with self._changed:
                while not self._items:
                    self._changed.wait()
                item, fetched_at = self._items[0]
                if item is _END:
                    return
                self._items.popleft()
                self._changed.notify_all()
            yield self._take(item, fetched_at)

    def _take(self, item: object, fetched_at: float | None) -> Page:
        self._clock.join(fetched_at)  # the reader cannot write a page before it was fetched
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop fetching (a page in flight finishes or is interrupted with the client)."""
        with self._changed:
            self._stop = True
            self._changed.notify_all()
        self._thread.join(timeout=5)  # a wait in flight ends when the sync interrupts its client
