"""Reading one paginated list on a thread of its own while the sync works on another.

Bitbucket paces `/2.0/repositories/*` and the other endpoints in separate buckets. The effective-permission
list (the other bucket) is the longest read of a large sync, so it is fetched beside the repositories (their
bucket) instead of after them. Only the fetching runs beside: pages are handed over in order and written by
the sync's own thread, each with its checkpoint, so a page's rows are never committed with another stage's.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from ..client.api import Page

_END = object()


class Prefetch:
    """Fetches `pages` ahead (at most `depth` pages waiting) on a daemon thread; errors reach the reader."""

    def __init__(self, pages: Iterator[Page], name: str, depth: int = 8):
        self._pages = pages
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for page in self._pages:
                if not self._put(page):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the reader, which raises it in its own thread
            self._put(exc)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def ready(self) -> Iterator[Page]:
        """The pages fetched so far, without waiting."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if (page := self._take(item)) is None:
                return
            yield page

    def rest(self) -> Iterator[Page]:
        """Every remaining page, waiting for each."""
        while (page := self._take(self._queue.get())) is not None:
            yield page

    def _take(self, item: object) -> Page | None:
        if item is _END:
            self._queue.put(_END)  # later calls see the end too
            return None
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop fetching (a page in flight finishes or is interrupted with the client)."""
        self._stop.set()
        self._thread.join(timeout=5)  # a wait in flight ends when the sync interrupts its client
