"""One clock for everything that reads or waits on time: sync stamps, pacing, backoff, approval age, expiry.

`SystemClock` is the real one; its waits end at once when `interrupt()` is called (a terminated run
stops waiting instead of sleeping out a backoff). `SimulatedClock` moves only when something waits on
it, so tests and the simulator path can run "days" without sleeping. Real Bitbucket is only ever
talked to on the real clock: `require_real_clock` refuses a simulated clock for any API that is not on
this machine's loopback, so nothing a real sync writes can be dated by a simulated one.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from typing import Protocol
from urllib.parse import urlsplit


class Interrupted(BaseException):
    """A wait ended because the run is stopping. A `BaseException`, like `KeyboardInterrupt`: retries never
    catch it."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for intervals and deadlines."""

    def sleep(self, seconds: float) -> None:
        """Wait; raises `Interrupted` if the clock is interrupted meanwhile."""

    def sleep_until(self, deadline: float) -> None:
        """Wait until `monotonic()` reaches `deadline`."""

    def interrupt(self) -> None:
        """End every current and future wait with `Interrupted`."""

    def fork(self) -> float | None:
        """The calling thread's time, to hand to work another thread does on its behalf (`join`)."""

    def join(self, time: float | None) -> None:
        """The calling thread goes on from `time` (handed over by `fork`) if that is later than its own."""


class SystemClock:
    """The wall clock, with waits that `interrupt()` ends at once (from any thread)."""

    is_simulated = False

    def __init__(self) -> None:
        self._stop = threading.Event()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.sleep_until(time.monotonic() + max(0.0, seconds))

    def sleep_until(self, deadline: float) -> None:
        while True:
            remaining = deadline - time.monotonic()
            if self._stop.is_set():
                raise Interrupted("stopped while waiting")
            if remaining <= 0:
                return
            self._stop.wait(remaining)

    def interrupt(self) -> None:
        self._stop.set()

    def fork(self) -> float | None:
        return None  # one time for every thread

    def join(self, time: float | None) -> None:
        return None


class SimulatedClock:
    """A clock that jumps forward instead of waiting. Thread-safe: concurrent waits for the same deadline move
    it once, so pacing with several workers takes as much simulated time as it would take real time.

    A thread that waited has a time of its own, so two threads paced by different rate-limit buckets move
    forward side by side, as they would on the wall clock, however fast each runs on this machine. Work handed
    to another thread starts at its sender's time (`fork`, `join`); a thread that never waited reads the
    latest time any thread reached.
    """

    is_simulated = True

    def __init__(self, start: datetime | None = None):
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._elapsed = 0.0  # the latest time any thread reached
        self._floor = 0.0  # no thread is earlier than this (`advance`)
        self._threads = threading.local()
        self._lock = threading.Lock()
        self._stopped = False
        self.waited = 0.0  # simulated seconds the latest time moved because something waited

    def _mine(self) -> float:
        own = getattr(self._threads, "time", None)
        return self._elapsed if own is None else max(own, self._floor)

    def _set(self, time: float) -> None:
        self._threads.time = time
        self._elapsed = max(self._elapsed, time)

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._mine())

    def monotonic(self) -> float:
        with self._lock:
            return self._mine()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            deadline = self._mine() + max(0.0, seconds)
        self.sleep_until(deadline)

    def sleep_until(self, deadline: float) -> None:
        with self._lock:
            if self._stopped:
                raise Interrupted("stopped while waiting")
            self.waited += max(0.0, deadline - self._elapsed)  # how far waiting moved the latest time
            self._set(max(self._mine(), deadline))

    def fork(self) -> float | None:
        with self._lock:
            return self._mine()

    def join(self, time: float | None) -> None:
        if time is None:
            return
        with self._lock:
            if getattr(self._threads, "time", None) is None:
                # A thread with no time of its own starts on the work handed to it when it was handed over,
                # not at the latest time any thread reached: a thread far ahead on another bucket (a second
                # credential's reads) would otherwise drag every new worker to its time.
                self._set(max(self._floor, time))
            else:
                self._set(max(self._mine(), time))

    def advance(self, delta: timedelta | float) -> None:
        """Move time forward without anyone waiting (a day passes between two syncs): every thread goes on
        from the latest time any thread reached, plus `delta`."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        with self._lock:
            self._elapsed += max(0.0, seconds)
            self._floor = self._elapsed

    def interrupt(self) -> None:
        with self._lock:
            self._stopped = True


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def require_real_clock(clock: Clock, api_url: str) -> None:
    """A simulated clock may only drive a simulated Bitbucket (on loopback): never date real data with it."""
    if getattr(clock, "is_simulated", False) and not is_loopback(api_url):
        host = urlsplit(api_url).hostname
        raise ValueError(f"a simulated clock can only drive a Bitbucket simulator on loopback, not {host}")
