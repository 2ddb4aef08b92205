"""Rate limiting and seeded fault injection: the parts of Bitbucket that make clients fail.

Both are off unless configured, and both are deterministic for a given seed and request order.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

RATE_LIMIT_BODY = "Rate limit for this resource has been exceeded"


@dataclass
class RateLimit:
    """A rolling window per credential and resource group (Bitbucket: 1,000 per rolling hour)."""

    limit: int = 1000
    window_seconds: float = 3600.0
    retry_after: bool = False  # Bitbucket sends none; tests can ask for one
    _hits: dict[tuple[str, str], deque] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, key: str, group: str) -> float | None:
        """None when the request may go ahead, else the seconds until a slot frees up."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits[(key, group)]
            while hits and hits[0] <= now - self.window_seconds:
                hits.popleft()
            if len(hits) >= self.limit:
                return hits[0] + self.window_seconds - now
            hits.append(now)
            return None

    def used(self, key: str, group: str) -> int:
        with self._lock:
            return len(self._hits.get((key, group), ()))

    @staticmethod
    def parse(text: str) -> RateLimit:
        """`N/SECONDS`, e.g. `1000/3600` or `50/2`."""
        limit, _, window = text.partition("/")
        return RateLimit(limit=int(limit), window_seconds=float(window or 3600))


@dataclass
class Faults:
    """Seeded misbehaviour. Rates are probabilities per API request."""

    seed: int = 0
    error_rate: float = 0.0  # 500/502/503 with Bitbucket's error envelope
    burst_rate: float = 0.0  # chance a request starts a burst of 429s
    burst_length: int = 3
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    drop_rate: float = 0.0  # the connection is cut halfway through the body
    truncate_rate: float = 0.0  # a 200 whose JSON body is cut short
    malformed_rate: float = 0.0  # a 200 whose body is not JSON at all (a proxy's HTML page)
    server_error_status: int = 0  # the status of every 5xx fault (e.g. 501); 0: 500, 502 or 503 at random
    odd_entry_rate: float = 0.0  # chance each entry of a 2.0 list that has a `user` gets `user: null` instead
    _rng: random.Random = field(init=False)
    _burst_left: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def active(self) -> bool:
        return any(
            (self.error_rate, self.burst_rate, self.latency_ms, self.jitter_ms, self.drop_rate)
        ) or bool(self.truncate_rate or self.malformed_rate or self.odd_entry_rate)

    def null_users(self, body: bytes) -> tuple[bytes, int]:
        """`user: null` in some entries of a 2.0 page (how deleted accounts show up elsewhere in the API);
        returns the body and how many entries were changed."""
        try:
            page = json.loads(body)
        except ValueError:
            return body, 0
        values = page.get("values") if isinstance(page, dict) else None
        if not isinstance(values, list):
            return body, 0
        changed = 0
        with self._lock:
            for entry in values:
                if (
                    isinstance(entry, dict)
                    and isinstance(entry.get("user"), dict)
                    and self._rng.random() < self.odd_entry_rate
                ):
                    entry["user"] = None
                    changed += 1
        return (json.dumps(page).encode(), changed) if changed else (body, 0)

    def delay(self) -> float:
        with self._lock:
            return max(0.0, self.latency_ms + self._rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000.0

    def draw(self) -> str | None:
        """Which fault, if any, strikes this request."""
        with self._lock:
            if self._burst_left > 0:
                self._burst_left -= 1
                return "429"
            roll = self._rng.random()
            for name, rate in (
                ("5xx", self.error_rate),
                ("429", self.burst_rate),
                ("drop", self.drop_rate),
                ("truncate", self.truncate_rate),
                ("malformed", self.malformed_rate),
            ):
                if roll < rate:
                    if name == "429":
                        self._burst_left = self.burst_length - 1
                    return name
                roll -= rate
            return None

    def status_for_5xx(self) -> int:
        with self._lock:
            return self.server_error_status or self._rng.choice((500, 502, 503))

    def configure(self, **settings: float) -> None:
        for key, value in settings.items():
            if key.startswith("_") or not hasattr(self, key):
                raise ValueError(f"unknown fault setting {key!r}")
            setattr(self, key, type(getattr(self, key))(value))
        if "seed" in settings:
            self.__post_init__()
