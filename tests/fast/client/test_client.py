"""The Bitbucket client against the simulator over HTTP: auth modes, pagination, retries, typed errors."""

from __future__ import annotations

import time

import pytest

from bitbucket_assets.client import (
    AuthenticationError,
    BitbucketClient,
    BitbucketError,
    ConnectionFailedError,
    Credentials,
    EndpointRemovedError,
    MalformedResponseError,
    MissingScopesError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitExhaustedError,
    ServerError,
    credentials_from_env,
)
from bitbucket_assets.clock import SimulatedClock
from bitbucket_simulator import (
    SIM_ACCESS_TOKEN,
    SIM_API_TOKEN,
    SIM_APP_PASSWORD,
    SIM_OAUTH_CLIENT_ID,
    SIM_OAUTH_CLIENT_SECRET,
    Faults,
    RateLimit,
)


def client_for(sim, creds: Credentials | None = None, **kw) -> BitbucketClient:
    kw = {
        "requests_per_hour": 1e7,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "rate_limit_backoff": 0.01,
        **kw,
    }
    return BitbucketClient(creds or Credentials.api_token(sim.email, SIM_API_TOKEN), sim.url, **kw)


def test_api_token_and_pagination_follow_next(tiny_sim) -> None:
    client = client_for(tiny_sim)
    members = list(client.paginate("/2.0/workspaces/tiny-co/members", {"pagelen": 30}))
    assert len(members) == 100 and len({m["user"]["uuid"] for m in members}) == 100
    assert client.stats.calls["2.0/workspaces/*/members"] == 4


def test_access_token_reads_and_oauth_refreshes(make_sim) -> None:
    sim = make_sim()
    bearer = client_for(sim, Credentials.access_token(SIM_ACCESS_TOKEN))
    assert len(list(bearer.paginate("/2.0/repositories/tiny-co"))) == 5
    with pytest.raises(PermissionDeniedError, match="Access tokens cannot"):
        bearer.get("/1.0/groups/tiny-co")
    sim.simulator.credentials.oauth_token_lifetime = 1.0
    oauth = client_for(
        sim,
        Credentials.oauth(
            SIM_OAUTH_CLIENT_ID, SIM_OAUTH_CLIENT_SECRET, sim.url + "/site/oauth2/access_token"
        ),
    )
    assert oauth.get("/2.0/user")["display_name"] == "Access Sync Bot"
    time.sleep(1.1)  # the token expired: the client fetches a new one before calling
    assert oauth.get("/2.0/user")["display_name"] == "Access Sync Bot"
    assert len(sim.simulator.calls(prefix="/site/oauth2/access_token")) == 2


def test_credentials_from_env_and_secret_free_repr() -> None:
    creds = credentials_from_env({"BITBUCKET_EMAIL": "a@b.example", "BITBUCKET_API_TOKEN": "s3cret-token"})
    assert (
        creds.kind == "api_token" and "s3cret-token" not in repr(creds) and "s3cret-token" not in str(creds)
    )
    assert credentials_from_env({"BITBUCKET_ACCESS_TOKEN": "t"}).kind == "access_token"
    assert (
        credentials_from_env({"BITBUCKET_OAUTH_CLIENT_ID": "i", "BITBUCKET_OAUTH_CLIENT_SECRET": "s"}).kind
        == "oauth"
    )
    assert (
        credentials_from_env({"BITBUCKET_USERNAME": "u", "BITBUCKET_APP_PASSWORD": "p"}).kind
        == "app_password"
    )
    with pytest.raises(AuthenticationError, match="BITBUCKET_EMAIL and BITBUCKET_API_TOKEN"):
        credentials_from_env({})


@pytest.mark.parametrize(
    ("creds", "error", "text"),
    [
        (lambda s: Credentials.app_password("svc", SIM_APP_PASSWORD), AuthenticationError, "2026-07-28"),
        (lambda s: Credentials.api_token(s.email, "wrong-token"), AuthenticationError, "account email"),
    ],
)
def test_authentication_errors_name_the_endpoint_not_the_secret(tiny_sim, creds, error, text) -> None:
    credential = creds(tiny_sim)
    with pytest.raises(error) as excinfo:
        client_for(tiny_sim, credential).get("/2.0/user")
    message = str(excinfo.value)
    assert text in message and "[/2.0/user]" in message
    assert credential.secret not in message and credential.secret not in repr(excinfo.value)


def test_typed_errors(make_sim) -> None:
    sim = make_sim()
    sim.simulator.credentials.add_api_token(
        "ro@tiny.example", "ro", sim.org.operator_uuid, {"read:user:bitbucket"}
    )
    with pytest.raises(MissingScopesError) as excinfo:
        client_for(sim, Credentials.api_token("ro@tiny.example", "ro")).get(
            "/2.0/workspaces/tiny-co/projects"
        )
    assert excinfo.value.required == ["read:project:bitbucket"] and "granted: read:user:bitbucket" in str(
        excinfo.value
    )
    client = client_for(sim)
    with pytest.raises(NotFoundError, match=r"\[/2.0/repositories/tiny-co/nope"):
        client.get("/2.0/repositories/tiny-co/nope", workspace="tiny-co")
    with pytest.raises(EndpointRemovedError, match="CHANGE-2770"):
        client.get("/2.0/workspaces")


def test_retries_absorb_every_fault(make_sim) -> None:
    faults = Faults(
        seed=5,
        error_rate=0.1,
        burst_rate=0.05,
        burst_length=2,
        drop_rate=0.05,
        truncate_rate=0.05,
        malformed_rate=0.03,
    )
    sim = make_sim(faults=faults)
    client = client_for(sim, max_retries=8)
    values = list(client.paginate("/2.0/workspaces/tiny-co/members", {"pagelen": 10}))
    assert len({v["user"]["uuid"] for v in values}) == 100
    assert client.stats.retries > 0


def test_exhausted_retries_raise_typed_errors(make_sim) -> None:
    sim = make_sim(faults=Faults(seed=1, error_rate=1.0))
    with pytest.raises(ServerError, match=r"HTTP 5\d\d \[/2.0/user\]"):
        client_for(sim, max_retries=2).get("/2.0/user")
    sim.simulator.faults.configure(error_rate=0, malformed_rate=1.0)
    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        client_for(sim, max_retries=1).get("/2.0/user")
    sim.simulator.faults.configure(malformed_rate=0)
    sim.simulator.rate_limit = RateLimit(limit=1, window_seconds=3600)
    # A 429 storm with no Retry-After, as Bitbucket sends them: minutes of backoff (60, 120, 240, 480 s) on
    # the clock, then the call gives up, 15 minutes later; none of it slept for real.
    clock = SimulatedClock()
    client = client_for(sim, max_retries=2, rate_limit_backoff=60, rate_limit_wait=900, clock=clock)
    client.get("/2.0/user")
    with pytest.raises(RateLimitExhaustedError, match="rate limit still exceeded after waiting 900 s"):
        client.get("/2.0/user")
    assert client.stats.rate_limited == 5 and clock.waited == 900


def test_retry_after_is_honoured(make_sim) -> None:
    sim = make_sim(rate_limit=RateLimit(limit=3, window_seconds=1.5, retry_after=True))
    client = client_for(sim, backoff_base=0.001, backoff_max=0.001)
    started = time.perf_counter()
    for _ in range(5):
        client.get("/2.0/user")
    assert client.stats.rate_limited >= 1
    assert time.perf_counter() - started >= 0.9  # waited for the window instead of hammering


def test_pacer_keeps_a_sync_under_the_server_limit(make_sim) -> None:
    sim = make_sim(rate_limit=RateLimit(limit=20, window_seconds=1.0))
    client = client_for(sim, requests_per_hour=18, window_seconds=1.0)
    for _ in range(40):
        client.get("/2.0/repositories/tiny-co")
    assert client.stats.rate_limited == 0


@pytest.mark.parametrize("status", [501, 405])
def test_answers_a_retry_cannot_change_are_not_retried(make_sim, status) -> None:
    sim = make_sim(faults=Faults(seed=1, error_rate=1.0, server_error_status=501))
    if status == 405:
        sim.simulator.faults.configure(error_rate=0)
        for route in sim.simulator.app.app.router.routes:  # the app inside the simulator's fault middleware
            if getattr(route, "path", "") == "/2.0/user":
                route.methods = {"PATCH"}
    client = client_for(sim, max_retries=5)
    with pytest.raises(BitbucketError, match=rf"unexpected HTTP {status}"):
        client.get("/2.0/user")
    assert client.stats.retries == 0 and len(sim.simulator.request_log) == 1


def test_a_refused_connection_names_the_host_and_every_retry_says_what_it_waits_for(caplog) -> None:
    """Nothing listens on the port (bound, never listened): the error names host and reason, and each retry
    is a log line with what failed and the pause before the next try."""
    import logging
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{closed.getsockname()[1]}"
        client = BitbucketClient(
            Credentials.api_token("a@b.example", "t"),
            f"http://{host}",
            max_retries=2,
            backoff_base=0.01,
            backoff_max=0.02,
        )
        with (
            caplog.at_level(logging.WARNING, logger="bitbucket_assets.client"),
            pytest.raises(ConnectionFailedError) as excinfo,
        ):
            client.get("/2.0/user")
    message = str(excinfo.value)
    assert message.startswith(f"cannot reach {host}: connection refused")
    assert f"check the URL (BITBUCKET_API_URL: http://{host})" in message and "[/2.0/user]" in message
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert [line.split("; ")[-1].split(" in ")[0] for line in retries] == ["retry 1 of 2", "retry 2 of 2"]
    assert all(line.startswith(f"cannot reach {host}") and line.endswith(" s") for line in retries)


def test_pacing_counts_wall_clock_time_not_the_sum_over_threads() -> None:
    """Two threads wait at once (0-5 s and 0-8 s), then one alone (10-12 s): 10 s of wall clock were spent
    waiting, while the waits add up to 15 s."""
    from types import SimpleNamespace

    from bitbucket_assets.client.pacer import WaitTimer

    clock = SimpleNamespace(t=0.0)
    clock.monotonic = lambda: clock.t
    timer = WaitTimer(clock)
    first, second = timer.wait(), timer.wait()
    first.__enter__()
    second.__enter__()
    clock.t = 5.0
    first.__exit__(None, None, None)
    assert timer.seconds() == 5.0  # still waiting: counted as it runs
    clock.t = 8.0
    second.__exit__(None, None, None)
    clock.t = 10.0
    with timer.wait():
        clock.t = 12.0
    assert timer.seconds() == 10.0
