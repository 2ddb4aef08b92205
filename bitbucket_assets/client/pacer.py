"""Client-side pacing: a token bucket per rate-limit bucket, so a long sync spreads its calls
instead of living on 429s (Bitbucket allows about 1,000 requests per rolling hour)."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """`rate` requests per `per` seconds with bursts of at most `burst`; thread-safe, blocking."""

    def __init__(self, rate: float, per: float = 3600.0, burst: int | None = None):
        self.interval = per / rate
        # A small burst keeps short syncs fast while a long one converges to the budget.
        self.capacity = float(burst if burst is not None else max(1, min(50, int(rate // 20))))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) / self.interval)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) * self.interval
                self.waited += wait
            time.sleep(wait)
