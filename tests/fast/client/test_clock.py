"""One clock: pacing, backoff and sync stamps run on it; a simulated one never sleeps and never meets real
Bitbucket."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from bitbucket_assets.client import BitbucketClient, Credentials, RateLimitExhaustedError, ServerError
from bitbucket_assets.client.pacer import TokenBucket
from bitbucket_assets.clock import Interrupted, SimulatedClock, SystemClock
from bitbucket_assets.extraction.extract import ExtractionOptions
from bitbucket_assets.extraction.sync import run_sync
from bitbucket_simulator import SIM_API_TOKEN, Faults, RateLimit

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def client_on(sim, clock, **kw) -> BitbucketClient:
    return BitbucketClient(Credentials.api_token(sim.email, SIM_API_TOKEN), sim.url, clock=clock, **kw)


def test_token_bucket_on_a_simulated_clock_is_exact() -> None:
    clock = SimulatedClock(START)
    bucket = TokenBucket(rate=20, per=1.0, burst=2, clock=clock)
    for _ in range(12):
        bucket.acquire()
    assert clock.monotonic() == pytest.approx(0.5)  # 2 free, then 10 at 20/s


def test_pacing_concurrent_calls_against_the_simulator_takes_the_budgeted_time(make_sim) -> None:
    """120 calls at 3,600 an hour with a burst of 50, from 8 threads: 70 simulated seconds, none of them
    slept."""
    sim = make_sim()
    clock = SimulatedClock(START)
    client = client_on(sim, clock, requests_per_hour=3600, max_workers=8)
    with ThreadPoolExecutor(max_workers=8) as pool:
        names = list(pool.map(lambda _: client.get("/2.0/user")["display_name"], range(120)))
    assert names == ["Access Sync Bot"] * 120 and len(sim.simulator.request_log) == 120
    assert clock.monotonic() == pytest.approx(70.0, abs=1e-6)
    assert clock.now() == START + timedelta(seconds=70)


def test_backoff_waits_on_the_clock(make_sim) -> None:
    """Exponential backoff of 10, 20 and 40 s (jittered to at least half) passes on the simulated clock."""
    sim = make_sim(faults=Faults(seed=3, error_rate=1.0))
    clock = SimulatedClock(START)
    client = client_on(sim, clock, requests_per_hour=1e7, max_retries=3, backoff_base=10, backoff_max=60)
    with pytest.raises(ServerError):
        client.get("/2.0/user")
    assert client.stats.retries == 3 and client.stats.server_errors == 4
    assert 35 <= clock.waited <= 70


def test_a_429_storm_waits_minutes_then_the_sync_resumes(make_sim, tmp_path) -> None:
    """Bitbucket's 429s carry no Retry-After and its window is an hour: the client waits minutes (on the
    clock), a sync that still runs out keeps its checkpoint, and the next run resumes once the window has
    rolled."""
    sim = make_sim(rate_limit=RateLimit(limit=10, window_seconds=3600))  # per bucket: tiny needs more
    clock = SimulatedClock(START)
    db = str(tmp_path / "w.duckdb")
    with duckdb.connect(db) as con, pytest.raises(RateLimitExhaustedError):
        run_sync(client_on(sim, clock, requests_per_hour=1e7, max_workers=1), con, ExtractionOptions())
    assert clock.waited == 900  # 60 + 120 + 240 + 480 s: fifteen minutes, then it gives up
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("select status from raw.syncs").fetchall() == [("interrupted",)]
    sim.simulator.rate_limit = None  # the hour has rolled
    with duckdb.connect(db) as con:
        resumed = run_sync(client_on(sim, clock, requests_per_hour=1e7), con, ExtractionOptions())
    assert resumed.resumed and resumed.counts["repositories"] == 6


def test_a_sync_on_the_simulator_is_dated_by_its_clock(make_sim, tmp_path) -> None:
    sim = make_sim()
    clock = SimulatedClock(START)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        result = run_sync(client_on(sim, clock, requests_per_hour=1e7), con, ExtractionOptions())
        started, finished = con.execute(
            "select started_at, finished_at from raw.syncs where sync_id = ?", [result.sync_id]
        ).fetchone()
        fetched = con.execute("select min(fetched_at), max(fetched_at) from raw.fetch_log").fetchone()
    assert started == finished == START and fetched == (START, START)


def test_a_simulated_clock_never_talks_to_real_bitbucket() -> None:
    creds = Credentials.api_token("svc@example.com", "token")
    with pytest.raises(ValueError, match=r"simulated clock .* not api\.bitbucket\.org"):
        BitbucketClient(creds, "https://api.bitbucket.org", clock=SimulatedClock(START))
    for loopback in ("http://127.0.0.1:7990", "http://localhost:7990", "http://[::1]:7990"):
        BitbucketClient(creds, loopback, clock=SimulatedClock(START)).close()
    BitbucketClient(creds, "https://api.bitbucket.org").close()  # the real clock goes anywhere


@pytest.mark.parametrize("clock", [SystemClock(), SimulatedClock(START)], ids=["system", "simulated"])
def test_interrupt_ends_a_wait_at_once(clock) -> None:
    """A wait of an hour ends with `Interrupted` when the clock is interrupted from another thread."""
    outcome: list[BaseException] = []
    ready = threading.Event()

    def wait() -> None:
        ready.set()
        try:
            clock.sleep(3600)
        except Interrupted as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    ready.wait()
    clock.interrupt()
    waiter.join(timeout=60)  # generous: only an hour-long sleep could miss it
    assert not waiter.is_alive()
    # The simulated clock may have finished its (instant) wait before the interrupt; later waits end at once.
    assert outcome or isinstance(clock, SimulatedClock)
    with pytest.raises(Interrupted):
        clock.sleep(3600)


def test_a_new_thread_starts_on_the_time_handed_to_it_not_the_latest_any_thread_reached() -> None:
    """One thread far ahead (another rate-limit bucket, paced hours forward) must not drag a worker started
    later for work handed over now."""
    clock = SimulatedClock(START)
    handed_over = clock.fork()
    ahead = threading.Thread(target=clock.sleep, args=(8 * 3600,))
    ahead.start()
    ahead.join()
    assert clock.monotonic() == 8 * 3600  # the latest time any thread reached, for one that never waited
    started: list[float] = []

    def worker() -> None:
        clock.join(handed_over)
        started.append(clock.monotonic())
        clock.sleep(60)
        clock.join(handed_over)  # a thread with a time of its own keeps it
        started.append(clock.monotonic())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert started == [0.0, 60.0]
