"""Client-side pacing: a token bucket per rate-limit bucket, so a long sync spreads its calls
instead of living on 429s (Bitbucket allows about 1,000 requests per rolling hour)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..clock import Clock, SystemClock


class WaitTimer:
    """Wall-clock time during which at least one thread waited for the pacing budget: ten threads waiting the
    same minute count one minute, not ten (what "paced" means to whoever reads a sync's progress)."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.lock = threading.Lock()
        self.waiting = 0
        self.since = 0.0
        self.total = 0.0

    @contextmanager
    def wait(self) -> Iterator[None]:
        with self.lock:
            if self.waiting == 0:
                self.since = self.clock.monotonic()
            self.waiting += 1
        try:
            yield
        finally:
            with self.lock:
                self.waiting -= 1
                if self.waiting == 0:
                    self.total += max(0.0, self.clock.monotonic() - self.since)

    def seconds(self) -> float:
        with self.lock:
            running = max(0.0, self.clock.monotonic() - self.since) if self.waiting else 0.0
            return self.total + running


class TokenBucket:
    """`rate` requests per `per` seconds with bursts of at most `burst`; thread-safe, blocking.

    Each call reserves the next free slot before it waits, so concurrent callers queue in order and a
    simulated clock advances exactly as far as the budget requires.
    """

    def __init__(
        self,
        rate: float,
        per: float = 3600.0,
        burst: int | None = None,
        clock: Clock | None = None,
        timer: WaitTimer | None = None,
    ):
        self.clock = clock or SystemClock()
        self.timer = timer or WaitTimer(self.clock)  # shared by a client's buckets: one wall clock
        self.interval = per / rate
        # A small burst keeps short syncs fast while a long one converges to the budget.
        self.capacity = float(burst if burst is not None else max(1, min(50, int(rate // 20))))
        self.tokens = self.capacity
        self.updated = self.clock.monotonic()
        self.lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> None:
        with self.lock:
            # A thread of a simulated clock may be behind the bucket's last reservation: it queues behind it.
            now = max(self.clock.monotonic(), self.updated)
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) / self.interval)
            self.updated = now
            self.tokens -= 1  # reserve: below zero means in debt until the refill reaches this call's slot
            if self.tokens >= 0:
                return
            deadline = now + (-self.tokens) * self.interval
            self.waited += deadline - now  # summed over threads: the budget's debt, not time passed
        with self.timer.wait():
            self.clock.sleep_until(deadline)
